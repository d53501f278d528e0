"""Sweep pairs whose Fourier series is too short: summarised on the kernel's de Hoog curve instead.

The batched sweep (:mod:`hydrology.transport.batched`) inverts each pair's transform by a plain
Fourier series on a uniform grid. Next to a source, at low Peclet numbers, a curve rises from zero
like exp(-x^2 / 4Dt) and its coefficients fall so slowly that even 288 terms leave errors of tens of
percent (measured on the 100,000-reach network: a peak 50 % low, its time 3 x late). For those pairs
(:func:`hydrology.transport.batched.series_converged` false on a window that starts at the release)
the same log transforms are taken at the de Hoog nodes of the same window and the curve is inverted
as the per-source kernel inverts it (:class:`~hydrology.transport.unit_responses.Responses`, de Hoog
et al. 1982, 2 x 48 + 1 nodes for a window from the release); peaks and crossings are then read as
:func:`hydrology.transport.analytic.forecast` reads them (coarse samples, parabolas, Illinois to a
tolerance), so the result is the per-source kernel's without walking the network once per source.

References
----------
de Hoog, F.R., Knight, J.H. and Stokes, A.N. (1982) SIAM J. Sci. Stat. Comput. 3(3), 357-366.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import numpy as np

from . import laplace
from .analytic import _crossings, _peaks, sample_times
from .closed_form import GRAMS_PER_KG
from .history import SourceHistory
from .kernel import MOMENT_NODES, NEAR_FIELD_TERMS_FACTOR, _moments
from .unit_responses import Responses

if TYPE_CHECKING:
    from ..network import Feature

#: de Hoog terms M of these windows [-]: the kernel's for a window that starts at the release
TERMS = NEAR_FIELD_TERMS_FACTOR * laplace.DEFAULT_TERMS


def exact_nodes(period_s: float) -> tuple[float, np.ndarray]:
    """The Laplace nodes [1/s] at which :func:`summarise_exact` needs each pair's log transform: the
    kernel's :data:`~hydrology.transport.kernel.MOMENT_NODES` (s = 0 first), then the de Hoog nodes
    of a window of ``period_s`` [s]; and that window's abscissa gamma [1/s]."""
    gamma, s = laplace.bromwich_nodes(np.array([period_s]), TERMS)
    return float(gamma[0]), np.concatenate([MOMENT_NODES, s[0]])


def summarise_exact(log_h: np.ndarray, period_s: float, t0_s: np.ndarray, unit_kg: float, rate_kg_s: np.ndarray,
                    release_s: float, threshold_g_m3: np.ndarray, edge_fraction: float) -> dict[str, np.ndarray]:
    """The summaries of :func:`hydrology.transport.batched.summarise_class` from the de Hoog curve.

    Parameters
    ----------
    log_h : ndarray, shape (pairs, len(exact_nodes(period_s)[1])), complex
        log of each pair's resident-concentration transform [(g/m3) per g/s... per g] at
        :func:`exact_nodes`.
    period_s : float
        Window length T [s] of the pairs' class.
    t0_s : ndarray
        Window start of each pair [s].
    unit_kg, rate_kg_s, release_s, threshold_g_m3, edge_fraction
        As :func:`hydrology.transport.batched.summarise_class` (unit release [kg]; worst-case rate
        [kg/s], NaN: none; its duration [s]; threshold [g/m3], NaN: none; edges of the unit release
        at this share of its peak [-]).

    Returns
    -------
    dict of ndarray
        ``arrival_s``, ``peak_s``, ``peak_g_m3``, ``end_s`` and ``worst_*`` of the same [s], [g/m3].
    """
    n = log_h.shape[0]
    gamma, s = exact_nodes(period_s)
    k = MOMENT_NODES.size
    mean, var = _moments(log_h[:, :k])
    final = GRAMS_PER_KG * np.exp(log_h[:, 0].real)
    nodes = np.broadcast_to(s[k:], (n, s.size - k))
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        g = GRAMS_PER_KG * np.exp(log_h[:, k:] + nodes * t0_s[:, None])
    g = np.nan_to_num(g, nan=0.0, posinf=0.0, neginf=0.0)
    z = np.zeros(n)
    labels = cast("tuple[Feature, ...]", tuple(range(n)))  # the rows only need counting here
    resp = Responses(labels, z, z, z, z, mean, var, final, np.asarray(t0_s, float), np.full(n, period_s),
                     np.full(n, gamma), g, np.array(nodes), [np.arange(n)])
    out: dict[str, np.ndarray] = {}
    pulse = SourceHistory.pulse(unit_kg)
    t, _ = sample_times(resp, pulse)
    c = resp.concentration(pulse, t)
    out["peak_s"], out["peak_g_m3"] = _peaks(resp, pulse, t, c)
    out["arrival_s"], out["end_s"] = _crossings(resp, pulse, t, c, edge_fraction * out["peak_g_m3"], out["peak_g_m3"])
    worst = {key: np.full(n, np.nan) for key in ("arrival_s", "peak_s", "peak_g_m3", "end_s")}
    ok = np.flatnonzero(np.isfinite(rate_kg_s))
    if ok.size:
        # one box of 1 kg/s for every pair: its curve scales with the pair's own rate
        box = SourceHistory.box(1.0, release_s)
        sub = _rows(resp, ok)
        tb, _ = sample_times(sub, box)
        cb = sub.concentration(box, tb)
        pk_t, pk = _peaks(sub, box, tb, cb)
        rate = rate_kg_s[ok]
        worst["peak_s"][ok], worst["peak_g_m3"][ok] = pk_t, rate * pk
        thr = threshold_g_m3[ok]
        cross = np.flatnonzero((thr > 0) & (rate * pk >= thr))
        if cross.size:
            sub2 = _rows(sub, cross)
            cut = thr[cross] / rate[cross]
            a, e = _crossings(sub2, box, tb[cross], cb[cross], cut, pk[cross])
            worst["arrival_s"][ok[cross]], worst["end_s"][ok[cross]] = a, e
    out.update({f"worst_{key}": v for key, v in worst.items()})
    return out


def _rows(resp: Responses, rows: np.ndarray) -> Responses:
    """The responses of ``rows`` only (one group, as built by :func:`summarise_exact`)."""
    sub = Responses(tuple(resp.features[i] for i in rows), resp.mass_fraction[rows], resp.distance_m[rows],
                    resp.discharge_m3s[rows], resp.travel_time_s[rows], resp.mean_s[rows], resp.variance_s2[rows],
                    resp.step_final[rows], resp.t0_s[rows], resp.period_s[rows], resp.gamma[rows],
                    resp._samples[rows], resp._nodes[rows], [np.arange(rows.size)])
    return sub

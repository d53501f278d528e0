"""The moment screen of source attribution: every hypothesis scored on the equivalent channel of
:mod:`hydrology.transport.analytic` (closed forms, microseconds each); see :mod:`tracer.attribution`.

Units: s, m, kg, kg/s, g/m3.

References
----------
Fischer, H.B., List, E.J., Koh, R.C.Y., Imberger, J. and Brooks, N.H. (1979) Mixing in Inland and
Coastal Waters, Academic Press, sec. 5.1 (frozen-cloud approximation).
Kreft, A. and Zuber, A. (1978) On the physical meaning of the dispersion equation and its solutions
for different initial and boundary conditions, Chem. Eng. Sci. 33, 1471-1480.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy.special import ndtr

from hydrology.transport import GRAMS_PER_KG, gaussian_puff, ogata_banks

from . import priors
from .attribution_signals import _plateau, _run_moments, event_run, release_kind
from .attribution_types import Hypothesis, ReleaseKind
from .signals import StationSignal
from .upstream import UpstreamMoments

if TYPE_CHECKING:
    from hydrology.network import RiverNetwork
    from hydrology.reach_state import ReachState


def build_hypotheses(net: RiverNetwork, state: ReachState, um: UpstreamMoments) -> list[Hypothesis]:
    """Registered dischargers and one unregistered source per reach, upstream of the station."""
    station = net.feature(um.station, "station")
    reaches = {state.ids[i] for i in um.reach_index}
    hyps: list[Hypothesis] = []
    for d in net.dischargers.values():
        if d.reach in reaches and not (d.reach == station.reach and d.chainage_m >= station.chainage_m):
            hyps.append(Hypothesis(d.id, "discharger", d.reach, d.chainage_m, d))
    for rid in sorted(reaches, key=lambda r: state.index[r]):
        top = station.chainage_m if rid == station.reach else state.length_m[state.index[rid]]
        if top > 0:
            hyps.append(Hypothesis(f"reach:{rid}", "unregistered", rid, top / 2.0))
    return hyps


def _log_priors(hyps: list[Hypothesis], state: ReachState, parameter: str) -> tuple[np.ndarray, list[str]]:
    """Signature-weighted prior over registered dischargers; length-weighted over unregistered reaches."""
    sig = np.zeros(len(hyps))
    notes = [""] * len(hyps)
    reg = [i for i, h in enumerate(hyps) if h.kind == "discharger"]
    unreg = [i for i, h in enumerate(hyps) if h.kind == "unregistered"]
    for i in reg:
        sig[i], notes[i] = priors.log_signature(hyps[i].feature, parameter)  # type: ignore[arg-type]
    logp = np.full(len(hyps), -np.inf)
    if reg:
        w = np.exp(sig[reg])
        logp[reg] = np.log((1 - priors.UNREGISTERED_SHARE if unreg else 1.0) * w / w.sum())
    if unreg:
        L = np.array([state.length_m[state.index[hyps[i].reach]] for i in unreg])
        logp[unreg] = np.log((priors.UNREGISTERED_SHARE if reg else 1.0) * L / L.sum())
        for i in unreg:
            notes[i] = "unregistered source: prior by reach length"
    return logp, notes


def _equivalent_channel(x: np.ndarray, m: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """U = x / mean [m/s], D = var U^3 / (2 x) [m2/s] (as :mod:`hydrology.transport.analytic`)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        u = x / m
        return u, v * u**3 / (2 * x)


def _curve(kind: ReleaseKind, x: np.ndarray, tt: np.ndarray, size: np.ndarray, q: float, u: np.ndarray,
           d: np.ndarray, decay_per_s: float, duration: np.ndarray | None = None) -> np.ndarray:
    """Modelled excess [g/m3] at distance ``x`` [m], ``tt`` [s] after the release started: a puff of
    ``size`` [kg] reaching the station, or a step of ``size`` [kg/s] reaching it, into discharge ``q``.

    ``duration`` [s] (pulse only, rows where it is > 0): the mass released evenly over that time, on
    the frozen cloud (Fischer et al. 1979, sec. 5.1: a Gaussian in time of mean x/U and variance
    2Dx/U^3 at the station) convolved with the box, (M/T)(Phi((t - m)/sd) - Phi((t - T - m)/sd)) f/Q.
    A long release is a flat-topped curve, not a puff of larger dispersion (whose skew puts its mean
    2D/U^2 late: hours for a 12-hour release)."""
    if kind == "pulse":
        out = gaussian_puff(x, tt, size, q / u, u, d, decay_per_s)
        if duration is not None and np.any(duration > 0):
            with np.errstate(invalid="ignore", divide="ignore"):
                m = x / u
                sd = np.sqrt(2.0 * d * x / u**3)
                T = np.maximum(duration, 1e-9)
                box = (GRAMS_PER_KG * size / (q * T)) * np.exp(-decay_per_s * m) * (
                    ndtr((tt - m) / sd) - ndtr((tt - T - m) / sd))
            out = np.where(duration > 0, np.nan_to_num(box), out)
        return out
    return (GRAMS_PER_KG * size / q) * ogata_banks(x, tt, 1.0, u, d, decay_per_s)


def _station_fit(kind: ReleaseKind, s: StationSignal, geo: tuple[np.ndarray, ...], q: float,
                 decay_per_s: float, duration: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Release start [s], ln size (mass [kg] or rate [kg/s]) and weight [-] each hypothesis needs to
    explain a station that saw the event (see the module doc); weight 0 where it cannot tell.

    ``geo``: (fraction, distance [m], mean [s], variance [s2]) from each hypothesis to the station;
    ``duration`` [s]: a pulse's release duration (where > 0 the start is the centroid less x/U and
    half the duration: the frozen-cloud box of :func:`_curve`).
    """
    f, x, m, v = geo
    down = f > 0
    a, b = event_run(s)
    t_run, _pos, integral, centroid, _var = _run_moments(s)
    u, d = _equivalent_channel(x, m, v)
    with np.errstate(invalid="ignore", divide="ignore"):
        if kind == "pulse":
            t0 = centroid - (m + 2 * d / u**2)
            if duration is not None:
                t0 = np.where(duration > 0, centroid - m - duration / 2.0, t0)
            t0 = np.where(down, t0, np.nan)
            size = np.where(down, q * integral / (f * GRAMS_PER_KG), np.nan)
        elif release_kind(s) == "continuous":
            plateau = float(np.median(s.excess[_plateau(s, a, b)]))
            t0 = np.where(down, t_run[-1] - integral / plateau - m, np.nan)  # rise centroid - x/U
            size = np.where(down, q * plateau * np.exp(decay_per_s * m) / (f * GRAMS_PER_KG), np.nan)
        else:  # a station whose excess came and went cannot date a release that is still going on
            return np.full(f.size, np.nan), np.full(f.size, np.nan), np.zeros(f.size)
        return t0, np.log(size), np.where(down, integral, 0.0)


def _screen_durations(saw: list[StationSignal], geo: dict[str, tuple[np.ndarray, ...]]) -> np.ndarray:
    """The release duration [s] each hypothesis needs in the screen (0: a pulse).

    A mass released evenly over T adds T^2/12 to the variance of every curve it makes (variances of
    independent delays add); T^2 = 12 (var_obs - var_h - dt^2/12) where the observed variance exceeds
    the hypothesis's own, averaged over the stations that saw the event (weights: their integrals).
    With it the screen's curve (:func:`_curve`) has the observed width, so a long release close to a
    station is not ranked out of the exact pass for a curve too narrow (found by the calibration
    tuning set: a true source at rank 40 whose instant curve missed by 110 nats while its box fitted).
    """
    any_geo = next(iter(geo.values()))
    num, den = np.zeros(any_geo[0].size), np.zeros(any_geo[0].size)
    for s in saw:
        f, _x, _m, v = geo[s.station]
        _t, _p, integral, _c, v_obs = _run_moments(s)
        if integral <= 0:
            continue
        dt = float(np.median(np.diff(s.t_s))) if s.t_s.size > 1 else 0.0
        down = f > 0
        num += np.where(down, integral * 12.0 * np.clip(v_obs - np.nan_to_num(v) - dt**2 / 12.0, 0.0, None), 0.0)
        den += np.where(down, integral, 0.0)
    return np.sqrt(np.divide(num, den, out=np.zeros_like(num), where=den > 0))

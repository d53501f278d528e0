"""Unit responses of a point source at its receptors: impulse, step and ramp curves on demand.

Built by :func:`hydrology.transport.kernel.point_source_responses`, which samples each receptor's
transform on the Bromwich line of its window; the curves are inverted here (de Hoog et al. 1982,
:mod:`hydrology.transport.laplace`) only for the receptors and times asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import laplace
from .history import SourceHistory

if TYPE_CHECKING:
    from ..network import Feature


def _modes(which: str, t: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """sum_i a_i exp(-b_i t) (impulse), its integral from 0 (step) and that integral's integral (ramp),
    for t >= 0, 0 before; rows of ``t`` (R, N), modes in ``a``, ``b`` (R, K)."""
    tt = np.maximum(t, 0.0)[:, :, None]
    a3, b3 = a[:, None, :], np.where(b > 0, b, 1.0)[:, None, :]
    e = np.exp(-b3 * tt)
    term = {"impulse": a3 * e, "step": a3 * (1 - e) / b3, "ramp": a3 * (tt / b3 - (1 - e) / b3**2)}[which]
    return np.where(t >= 0, np.where(a3 != 0, term, 0.0).sum(axis=2), 0.0)


class Responses:
    """Unit responses of a point source at every receptor it reaches (one row per receptor).

    Curves are resident concentrations [g/m3] per unit source: per kg (impulse), per kg/s (step),
    per kg/s2 (ramp); for an inflow boundary, per g/m3, g/m3 and g/m3/s. Times [s] after the
    release start. ``mean_s`` and ``variance_s2`` are the exact temporal moments of each impulse
    response (decay included), from the derivatives of its transform at s = 0.
    """

    def __init__(self, features: tuple[Feature, ...], mass_fraction: np.ndarray, distance_m: np.ndarray,
                 discharge_m3s: np.ndarray, travel_time_s: np.ndarray, mean_s: np.ndarray, variance_s2: np.ndarray, final: np.ndarray,
                 t0_s: np.ndarray, period_s: np.ndarray, gamma: np.ndarray, samples: np.ndarray,
                 nodes: np.ndarray, groups: list[np.ndarray]) -> None:
        self.features = features
        self.mass_fraction, self.distance_m, self.discharge_m3s = mass_fraction, distance_m, discharge_m3s
        #: mean advective travel time sum (L/U)(1 + beta) [s] (mass-weighted over branches), as
        #: :func:`~hydrology.transport.routing.route_moments`; not the curve's mean (``mean_s``)
        self.travel_time_s = travel_time_s
        self.mean_s, self.variance_s2 = mean_s, variance_s2
        #: S(inf): the step response's final value [g/m3 per kg/s] (per g/m3 for a boundary)
        self.step_final = final
        self.t0_s, self.period_s, self.gamma = t0_s, period_s, gamma
        self._samples, self._nodes, self._groups = samples, nodes, groups
        self._cf: dict[str, list[np.ndarray]] = {}
        self._ramp_end: np.ndarray | None = None
        #: exponential modes of rows with lakes on their path: h = sum_i a_i exp(-b_i t) + the inverted
        #: remainder (a [g/m3 per kg per s], b [1/s]; shape (rows, modes), b = 0 where unused). Set by
        #: point_source_responses: a lake's residence time is far longer than the front it delays, and
        #: one Fourier window cannot resolve both; the modes carry the lakes exactly.
        self.mode_a = np.zeros((len(features), 0))
        self.mode_b = np.zeros((len(features), 0))
        #: the inverted part's integral [g/m3 s per kg]: its step response beyond its window
        self.inverted_final = final

    def __len__(self) -> int:
        return len(self.features)

    @property
    def sd_s(self) -> np.ndarray:
        """Standard deviation of the impulse response [s]."""
        return np.sqrt(self.variance_s2)

    def _coefficients(self, which: str) -> list[np.ndarray]:
        if which not in self._cf:
            power = {"impulse": 0, "step": 1, "ramp": 2}[which]
            self._cf[which] = [laplace.continued_fraction(self._samples[g][:, :self._width(g)]
                                                          / self._nodes[g][:, :self._width(g)] ** power)
                               for g in self._groups]
        return self._cf[which]

    def _width(self, g: np.ndarray) -> int:
        return int(np.count_nonzero(self._nodes[g[0]]))

    def _invert(self, which: str, tau: np.ndarray, rows: np.ndarray) -> np.ndarray:
        out = np.zeros(tau.shape)
        for g, cf in zip(self._groups, self._coefficients(which)):
            hit = np.flatnonzero(np.isin(rows, g))
            if hit.size:
                local = np.searchsorted(g, rows[hit])
                out[hit] = laplace.evaluate(cf[local], self.gamma[rows[hit]], self.period_s[rows[hit]], tau[hit])
        return out

    def ramp_end(self) -> np.ndarray:
        """R at the end of each window [g/m3 per kg/s2]."""
        if self._ramp_end is None:
            every = np.arange(len(self))
            self._ramp_end = self._invert("ramp", self.period_s[:, None], every)[:, 0]
        return self._ramp_end

    def _curve(self, which: str, t_s: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        sel = np.arange(len(self)) if rows is None else np.atleast_1d(np.asarray(rows, int))
        t = np.asarray(t_s, float)
        t = np.broadcast_to(t if t.ndim == 2 else np.atleast_1d(t)[None, :], (sel.size, np.atleast_1d(t).shape[-1]))
        tau = t - self.t0_s[sel, None]
        T = self.period_s[sel, None]
        val = self._invert(which, np.clip(tau, 0.0, T), sel)
        out = np.where((tau >= 0) & (tau <= T), val, 0.0)
        if which == "step":
            out = np.where(tau > T, self.inverted_final[sel, None], out)
        elif which == "ramp":
            out = np.where(tau > T, self.ramp_end()[sel, None] + self.inverted_final[sel, None] * (tau - T), out)
        if self.mode_a.shape[1]:
            moded = np.flatnonzero((self.mode_a[sel] != 0).any(axis=1))
            if moded.size:
                out[moded] += _modes(which, t[moded], self.mode_a[sel][moded], self.mode_b[sel][moded])
        return out

    def impulse(self, t_s: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """h(t) [g/m3 per kg] at times ``t_s`` [s] (shape (N,) or (R, N)), for all rows or ``rows``."""
        return self._curve("impulse", t_s, rows)

    def step(self, t_s: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """S(t) [g/m3 per kg/s]: a unit rate from t = 0 on."""
        return self._curve("step", t_s, rows)

    def ramp(self, t_s: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """R(t) [g/m3 per kg/s2]: a rate growing at 1 kg/s per s from t = 0."""
        return self._curve("ramp", t_s, rows)

    def concentration(self, source: SourceHistory, t_s: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Concentration [g/m3] at every receptor (or ``rows``) for a source history: the sum of its
        impulses x h, jumps x S and slope changes x R (superposition), each kind in one evaluation.
        Clipped at 0: a release never makes a negative concentration, but the inversion's round-off
        (~1e-9 of the peak) and the cancellation of a box's two steps can dip just below it."""
        sel = np.arange(len(self)) if rows is None else np.atleast_1d(np.asarray(rows, int))
        t = np.asarray(t_s, float)
        t = np.broadcast_to(t if t.ndim == 2 else np.atleast_1d(t)[None, :], (sel.size, np.atleast_1d(t).shape[-1]))
        n = t.shape[1]
        c = np.zeros((sel.size, n))
        for which, terms in (("impulse", source.impulses), ("step", source.jumps), ("ramp", source.kinks)):
            if not terms:
                continue
            at = np.array([a for a, _v in terms])
            weight = np.array([v for _a, v in terms])
            lagged = (t[:, None, :] - at[None, :, None]).reshape(sel.size, at.size * n)
            vals = self._curve(which, lagged, sel).reshape(sel.size, at.size, n)
            c += np.einsum("rkn,k->rn", vals, weight)
        return np.maximum(c, 0.0)

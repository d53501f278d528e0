"""The transport kernel: exact responses of the linear river network to a point source.

The linear problem on every reach is 1-D advection-dispersion with first-order decay and OTIS
transient storage (Bencala & Walters 1983; Runkel 1998, eqs. 1-2, decay k in both zones):

    dC/dt + U dC/dx = D d2C/dx2 + alpha (Cs - C) - k C,     dCs/dt = (alpha / beta)(C - Cs) - k Cs,

or a fully mixed lake (a stirred tank of residence time tau = L/U). In the Laplace domain (s [1/s])
the storage zone is eliminated exactly, Cs = (alpha/beta) C / (s + k + alpha/beta), so the main
channel obeys D C'' - U C' - p(s) C = 0 with

    p(s) = s + k + alpha (s + k) / (s + k + alpha / beta)        (De Smedt 2006, eq. 9 in OTIS terms)

and its decaying solution is exp(lambda x), lambda = (U - r) / (2D) = -2 p / (U + r),
r = sqrt(U^2 + 4 D p) (the second form is exact and stays finite as D -> 0).

What crosses from reach to reach is the *mass flux* F = Q C - A D dC/dx. Assumption at reach
junctions: no dispersive flux crosses a node back upstream, so each reach below the source reach is
a semi-infinite channel fed by the flux of the reaches above it (Danckwerts' flux inlet), and its
flux transfer is exp(lambda L) (Kreft & Zuber 1978). A station samples the resident concentration
C = (F / Q) * 2U / (U + r). At a node, fluxes add, and each reach leaving it takes the share
Q_out / max(Q arriving, Q leaving) (:func:`~hydrology.transport.routing.node_outflow_divisor`:
withdrawals take their mass with them, inflows dilute). Confluences thus mix fully.

The source is a point injection into the river (not an inlet boundary): on its own reach the
infinite-domain Green's function, C = M/(A r) exp(lambda (x - c)) below the outfall at chainage c
(the Gaussian puff for a pulse), of which the flux U + r / (2r) exp(lambda (L - c)) leaves the
reach. Back-dispersion above the outfall is neither reported nor lost: it is part of that flux.
An *inflow boundary* (a concentration curve observed at a point, as at x = 0 of a tracer study) is
the Dirichlet problem instead: C(x) = C0 exp(lambda (x - c)), as Ogata & Banks.

Lakes: flux in F -> tank concentration F / (Q (1 + (s + k) tau)), flux out Q times that. A station
in a lake samples the tank (its chainage does not matter).

Responses are inverted numerically (:mod:`hydrology.transport.laplace`, de Hoog et al. 1982) on a
window per receptor placed by the exact travel-time moments: from mean - 6 sd to mean + 10 sd
(:data:`WINDOW_BEFORE_SD`, :data:`WINDOW_AFTER_SD`); windows of similar length share Laplace nodes
(:data:`WINDOW_CLASS_RATIO`), so one pass down the network serves every receptor. For each receptor
the kernel keeps three curves per unit source: the impulse response h [g/m3 per kg], the step
response S [g/m3 per kg/s] and the ramp response R [g/m3 per kg/s2]. Any release history that is
piecewise linear in time (a pulse, a box, a release still going on, a measured rate curve, an
observed inflow curve) is a sum of impulses, jumps and slope changes, so its curve is the same sum
of h, S and R (superposition; :class:`SourceHistory`). Beyond a window, h = 0, S = S(inf) and R
grows linearly at S(inf).

References
----------
Bencala, K.E. and Walters, R.A. (1983) Water Resour. Res. 19(3), 718-724.
De Smedt, F. (2006) Analytical solutions for transport of decaying solutes in rivers with transient
storage, J. Hydrol. 330, 672-680.
de Hoog, F.R., Knight, J.H. and Stokes, A.N. (1982) SIAM J. Sci. Stat. Comput. 3(3), 357-366.
Kreft, A. and Zuber, A. (1978) Chem. Eng. Sci. 33, 1471-1480 (resident and flux concentrations).
Ogata, A. and Banks, R.B. (1961) USGS Prof. Paper 411-A.
Runkel, R.L. (1998) OTIS, USGS WRIR 98-4018.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..exceptions import UnknownElementError
from . import laplace
from .closed_form import GRAMS_PER_KG
from .routing import ForecastError, node_divisors, path_velocity, route_moments

if TYPE_CHECKING:
    from ..network import Feature, FeatureKind, RiverNetwork
    from ..pollutants import Pollutant
    from ..reach_state import ReachState

#: a receptor's window starts this many travel-time standard deviations before the mean [-]
WINDOW_BEFORE_SD = 6.0
#: and ends this many after it [-]: an exponential (lake) tail is then down to e^-11 ~ 2e-5
WINDOW_AFTER_SD = 10.0
#: window lengths are rounded up to powers of this ratio so that receptors share Laplace nodes [-]
WINDOW_CLASS_RATIO = 2.0 ** 0.5
#: shortest window [s]
MIN_WINDOW_S = 1.0


def channel_exponent(s: np.ndarray, velocity_ms: np.ndarray, dispersion_m2s: np.ndarray, decay_per_s: float,
                     storage_ratio: np.ndarray, storage_exchange_per_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spatial exponent lambda(s) [1/m] and r(s) [m/s] of an OTIS reach (see the module doc).

    Parameters
    ----------
    s : ndarray, complex
        Laplace variable [1/s]; broadcasts against the reach arrays.
    velocity_ms, dispersion_m2s : ndarray
        Main-channel velocity U [m/s] and dispersion D [m2/s].
    decay_per_s : float
        First-order decay k [1/s], in the main channel and the storage zone.
    storage_ratio, storage_exchange_per_s : ndarray
        beta = As/A [-] and alpha [1/s]; beta = 0 for none.

    Returns
    -------
    lam : ndarray
        [1/m]; the flux transfer over a length L is exp(lam L).
    r : ndarray
        sqrt(U^2 + 4 D p) [m/s].
    """
    u = np.asarray(velocity_ms, float)
    d = np.asarray(dispersion_m2s, float)
    beta = np.asarray(storage_ratio, float)
    sk = s + decay_per_s
    p = sk
    if np.any(beta > 0):
        alpha = np.where(beta > 0, np.asarray(storage_exchange_per_s, float), 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            omega = np.where(beta > 0, alpha / np.where(beta > 0, beta, 1.0), 1.0)
        p = sk + alpha * sk / (sk + omega)
    r = np.sqrt(u * u + 4.0 * d * p)
    return -2.0 * p / (u + r), r


@dataclass(frozen=True, slots=True)
class SourceHistory:
    """A source strength that is piecewise linear in time, as impulses, jumps and slope changes.

    For a release into the river the strengths are kg (impulses), kg/s (jumps of the rate) and
    kg/s2 (changes of its slope); for an inflow boundary curve, g/m3, g/m3 and g/m3/s. Times [s]
    are after the release start.
    """

    impulses: tuple[tuple[float, float], ...] = ()
    jumps: tuple[tuple[float, float], ...] = ()
    kinks: tuple[tuple[float, float], ...] = ()

    @classmethod
    def pulse(cls, mass_kg: float, at_s: float = 0.0) -> SourceHistory:
        """An instantaneous release of ``mass_kg`` [kg]."""
        return cls(impulses=((at_s, mass_kg),))

    @classmethod
    def box(cls, rate_kg_s: float, duration_s: float | None, at_s: float = 0.0) -> SourceHistory:
        """A constant rate [kg/s] for ``duration_s`` [s]; None: still going on."""
        jumps = ((at_s, rate_kg_s),) if duration_s is None else ((at_s, rate_kg_s), (at_s + duration_s, -rate_kg_s))
        return cls(jumps=jumps)

    @classmethod
    def from_samples(cls, times_s: Sequence[float], values: Sequence[float], *, ongoing: bool = False) -> SourceHistory:
        """Linear interpolation between samples (a rate curve [kg/s] or a concentration curve [g/m3]).

        The value is 0 before the first sample; after the last it drops to 0, or holds when
        ``ongoing``. Two samples at one time make a jump.
        """
        t = np.asarray(times_s, float)
        v = np.asarray(values, float)
        if t.ndim != 1 or t.size != v.size or t.size == 0:
            raise ForecastError("a source curve needs as many times as values, at least one")
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(v))):
            raise ForecastError("a source curve has a time or value that is not finite")
        if np.any(np.diff(t) < 0):
            raise ForecastError("the times of a source curve must not decrease")
        jumps: list[tuple[float, float]] = []
        kinks: list[tuple[float, float]] = []
        level = slope = 0.0
        for i in range(t.size):
            if v[i] != level:  # the first sample, or a second sample at the same time
                jumps.append((float(t[i]), float(v[i] - level)))
                level = float(v[i])
            nxt = i + 1 < t.size and t[i + 1] > t[i]
            new_slope = float((v[i + 1] - v[i]) / (t[i + 1] - t[i])) if nxt else 0.0
            if new_slope != slope:
                kinks.append((float(t[i]), new_slope - slope))
                slope = new_slope
            if nxt:
                level = float(v[i + 1])  # reached along the segment
        if not ongoing and level != 0.0:
            jumps.append((float(t[-1]), -level))
        return cls(jumps=tuple(jumps), kinks=tuple(kinks))

    @property
    def start_s(self) -> float:
        """First time the source is active [s]."""
        return min([t for t, _ in (*self.impulses, *self.jumps, *self.kinks)], default=0.0)

    @property
    def end_s(self) -> float:
        """Last time the source changes [s] (for a source still going on, when it reached its level)."""
        return max([t for t, _ in (*self.impulses, *self.jumps, *self.kinks)], default=0.0)

    @property
    def ongoing(self) -> bool:
        """True when the source does not end: f(t) = sum J + sum K (t - tk) is not 0 after the end."""
        scale = max([abs(v) for _t, v in (*self.jumps, *self.kinks)], default=0.0)
        slope = sum(kv for _t, kv in self.kinks)
        level = sum(jv for _t, jv in self.jumps) + sum(kv * (self.end_s - tk) for tk, kv in self.kinks)
        return abs(slope) > 1e-9 * scale or abs(level) > 1e-9 * scale * max(1.0, self.end_s)

    @property
    def total(self) -> float:
        """Integral of the source over time (released mass [kg] for a rate); inf when ongoing."""
        if self.ongoing:
            return float("inf")
        te = self.end_s
        return (sum(m for _t, m in self.impulses) + sum(j * (te - t) for t, j in self.jumps)
                + sum(k * (te - t) ** 2 / 2.0 for t, k in self.kinks))


@dataclass(frozen=True, slots=True)
class Responses:
    """Unit responses of a point source at every receptor it reaches (one row per receptor).

    Curves are resident concentrations [g/m3] per unit source: per kg (impulse), per kg/s (step),
    per kg/s2 (ramp); for an inflow boundary, per g/m3, g/m3 and g/m3/s. Times [s] after the
    release start.
    """

    features: tuple[Feature, ...]
    mass_fraction: np.ndarray
    distance_m: np.ndarray
    mean_s: np.ndarray
    variance_s2: np.ndarray
    discharge_m3s: np.ndarray
    t0_s: np.ndarray
    period_s: np.ndarray
    gamma: np.ndarray
    impulse_cf: np.ndarray
    step_cf: np.ndarray
    ramp_cf: np.ndarray
    step_final: np.ndarray
    ramp_end: np.ndarray

    def __len__(self) -> int:
        return len(self.features)

    @property
    def sd_s(self) -> np.ndarray:
        """Standard deviation of the travel time [s]."""
        return np.sqrt(self.variance_s2)

    def _curve(self, which: str, t_s: np.ndarray) -> np.ndarray:
        t = np.broadcast_to(np.asarray(t_s, float), (len(self), np.shape(t_s)[-1]) if np.ndim(t_s) else (len(self), 1))
        tau = t - self.t0_s[:, None]
        T = self.period_s[:, None]
        inside = (tau >= 0) & (tau <= T)
        cf = {"impulse": self.impulse_cf, "step": self.step_cf, "ramp": self.ramp_cf}[which]
        val = laplace.evaluate(cf, self.gamma, self.period_s, np.clip(tau, 0.0, T))
        out = np.where(inside, val, 0.0)
        if which == "step":
            out = np.where(tau > T, self.step_final[:, None], out)
        elif which == "ramp":
            out = np.where(tau > T, self.ramp_end[:, None] + self.step_final[:, None] * (tau - T), out)
        return out

    def impulse(self, t_s: np.ndarray) -> np.ndarray:
        """h(t) [g/m3 per kg] at times ``t_s`` [s] (shape (N,) or (R, N))."""
        return self._curve("impulse", t_s)

    def step(self, t_s: np.ndarray) -> np.ndarray:
        """S(t) [g/m3 per kg/s]: a unit rate from t = 0 on."""
        return self._curve("step", t_s)

    def ramp(self, t_s: np.ndarray) -> np.ndarray:
        """R(t) [g/m3 per kg/s2]: a rate growing at 1 kg/s per s from t = 0."""
        return self._curve("ramp", t_s)

    def concentration(self, source: SourceHistory, t_s: np.ndarray) -> np.ndarray:
        """Concentration [g/m3] at every receptor for a source history (superposition)."""
        t = np.asarray(t_s, float)
        shape = (len(self), t.shape[-1]) if t.ndim else (len(self), 1)
        c = np.zeros(shape)
        for at, m in source.impulses:
            c += m * self.impulse(t - at)
        for at, j in source.jumps:
            c += j * self.step(t - at)
        for at, k in source.kinks:
            c += k * self.ramp(t - at)
        return c

    def take(self, rows: np.ndarray) -> Responses:
        """The responses of a subset of receptors."""
        rows = np.asarray(rows, int)
        pick = {name: getattr(self, name)[rows] for name in (
            "mass_fraction", "distance_m", "mean_s", "variance_s2", "discharge_m3s", "t0_s", "period_s", "gamma",
            "impulse_cf", "step_cf", "ramp_cf", "step_final", "ramp_end")}
        return Responses(features=tuple(self.features[i] for i in rows), **pick)


def _window(mean: np.ndarray, sd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Window start [s] and class length [s] of each receptor (see the module doc)."""
    t0 = np.maximum(mean - WINDOW_BEFORE_SD * sd, 0.0)
    need = np.maximum(mean + WINDOW_AFTER_SD * sd - t0, MIN_WINDOW_S)
    cls = np.ceil(np.log(need) / np.log(WINDOW_CLASS_RATIO) - 1e-9)
    return t0, WINDOW_CLASS_RATIO ** cls


def _logsum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log(exp(a) + exp(b)) for complex logs, without overflow."""
    hi = np.where(a.real >= b.real, a, b)
    lo = np.where(a.real >= b.real, b, a)
    with np.errstate(over="ignore", invalid="ignore"):
        return hi + np.log1p(np.exp(lo - hi))


def point_source_responses(net: RiverNetwork, state: ReachState, reach: str, chainage_m: float, pollutant: Pollutant,
                           kinds: tuple[FeatureKind, ...] = ("station", "intake"), *, wind_ms: float = 0.0,
                           boundary: bool = False, terms: int = laplace.DEFAULT_TERMS) -> Responses:
    """Unit responses at every receptor of ``kinds`` downstream of a point on a reach.

    Parameters
    ----------
    net, state : RiverNetwork, ReachState
        The network and its steady state.
    reach : str
        Reach of the source.
    chainage_m : float
        Position of the source from the reach's upstream end [m].
    pollutant : Pollutant
        Its decay rate [1/s] and behaviour (floating material travels at the surface and does not
        enter storage zones; see :func:`~hydrology.transport.routing.path_velocity`).
    kinds : tuple of str
        Feature kinds to report.
    wind_ms : float
        Along-stream 10 m wind [m/s] (floating pollutants only).
    boundary : bool
        False: a point injection (units per kg); True: an inflow boundary, a concentration held at
        the point (units per g/m3; see the module doc).
    terms : int
        de Hoog terms M [-].

    Returns
    -------
    Responses
        Receptors ordered by mean travel time, then distance.
    """
    routed = route_moments(net, state, reach, chainage_m, pollutant, kinds, wind_ms)
    routed.sort(key=lambda r: (r[3], r[2]))
    n = len(routed)
    feats = tuple(r[0] for r in routed)
    frac = np.array([r[1] for r in routed], float)
    dist = np.array([r[2] for r in routed], float)
    mean = np.array([r[3] for r in routed], float)
    var = np.array([r[4] for r in routed], float)
    qrec = np.array([state.discharge_m3s[state.index[f.reach]] for f in feats], float)
    empty = np.zeros((0, 2 * terms + 1), complex)
    if n == 0:
        z = np.zeros(0)
        return Responses(feats, z, z, z, z, z, z, z, z, empty, empty, empty, z, z)
    t0, period = _window(mean, np.sqrt(var))
    classes, cls_of = np.unique(period, return_inverse=True)
    gamma_c, s_c = laplace.bromwich_nodes(classes, terms)
    # every class's nodes, plus s = 0 for the final values, in one vector per reach
    s_all = np.concatenate([s_c.ravel(), [0.0]])
    log_h = _route_log_transfer(net, state, reach, chainage_m, pollutant, wind_ms, boundary, s_all,
                                {id(f): i for i, f in enumerate(feats)}, kinds)
    width = 2 * terms + 1
    rows = np.arange(n)
    idx = cls_of[:, None] * width + np.arange(width)[None, :]
    s_rec = s_all[idx]
    lg = log_h[rows[:, None], idx] + s_rec * t0[:, None]
    scale = 1.0 if boundary else GRAMS_PER_KG
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        g = scale * np.exp(lg)
    g = np.nan_to_num(g, nan=0.0, posinf=0.0, neginf=0.0)
    gamma = gamma_c[cls_of]
    final = scale * np.exp(log_h[:, -1].real)
    impulse_cf = laplace.continued_fraction(g)
    step_cf = laplace.continued_fraction(g / s_rec)
    ramp_cf = laplace.continued_fraction(g / s_rec**2)
    ramp_end = laplace.evaluate(ramp_cf, gamma, period, period[:, None])[:, 0]
    return Responses(feats, frac, dist, mean, var, qrec, t0, period, gamma, impulse_cf, step_cf, ramp_cf,
                     final, ramp_end)


def _route_log_transfer(net: RiverNetwork, state: ReachState, reach: str, chainage_m: float, pollutant: Pollutant,
                        wind_ms: float, boundary: bool, s: np.ndarray, row_of: dict[int, int],
                        kinds: tuple[FeatureKind, ...]) -> np.ndarray:
    """log of the resident-concentration transform [per g/s, or per g/m3 for a boundary] at each
    receptor (rows as ``row_of``) and Laplace node ``s``; the module doc gives the algebra."""
    from .routing import _receptor_index

    if reach not in state.index:
        raise UnknownElementError(f"unknown reach {reach!r}")
    u_all, beta_all = path_velocity(state, pollutant, wind_ms)
    k = pollutant.decay_per_s
    lake = state.lake_mask()
    q = state.discharge_m3s
    rec = _receptor_index(net, kinds)
    divisors = node_divisors(net, state)
    out = np.full((len(row_of), s.size), -np.inf + 0j)
    i0 = state.index[reach]
    # log mass flux entering each pending reach (per unit source)
    acc: dict[int, np.ndarray] = {}
    pending = [i0]
    done: set[int] = set()
    while pending:
        j = heapq.heappop(pending)  # topological order = index order
        if j in done:
            continue
        done.add(j)
        rid = state.ids[j]
        L, uj, qj = state.length_m[j], u_all[j], q[j]
        feats = rec.get(rid, ())
        if lake[j]:
            if j == i0 and boundary:
                raise ForecastError(f"reach {rid!r} is a fully mixed lake: an inflow boundary curve belongs on a river reach")
            log_tank = -np.log1p((s + k) * (L / uj)) - np.log(qj)  # tank conc per unit flux in
            if j == i0:
                log_in = np.zeros_like(s)
            else:
                log_in = acc.pop(j)
            for f in feats:
                if j == i0 and f.chainage_m <= chainage_m:
                    continue
                out[row_of[id(f)]] = log_in + log_tank
            log_end = log_in + log_tank + np.log(qj)
        else:
            lam, r = channel_exponent(s, uj, state.dispersion_m2s[j], k, beta_all[j], state.storage_exchange_per_s[j])
            log_rho = np.log(2.0 * uj / (uj + r))  # resident / flux concentration
            if j == i0:
                # injection: flux leaving = (U + r)/(2r) exp(lam dx); boundary: Q (U + r)/(2U) exp(lam dx)
                log_src = np.log((uj + r) / (2.0 * r)) if not boundary else np.log(qj * (uj + r) / (2.0 * uj))
                for f in feats:
                    if f.chainage_m <= chainage_m:
                        continue
                    out[row_of[id(f)]] = log_src + lam * (f.chainage_m - chainage_m) + log_rho - np.log(qj)
                log_end = log_src + lam * (L - chainage_m)
            else:
                log_in = acc.pop(j)
                for f in feats:
                    out[row_of[id(f)]] = log_in + lam * f.chainage_m + log_rho - np.log(qj)
                log_end = log_in + lam * L
        node = net.reaches[rid].to_node
        downs = net.reaches_out_of(node)
        if not downs:
            continue
        qdiv = divisors[node]
        for dn in downs:
            kk = state.index[dn]
            contrib = log_end + np.log(q[kk] / qdiv)
            acc[kk] = contrib if kk not in acc else _logsum(acc[kk], contrib)
            heapq.heappush(pending, kk)
    return out

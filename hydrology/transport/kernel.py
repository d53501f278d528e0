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
in a lake samples the tank (its chainage does not matter). A lake's residence time (days to years)
dwarfs the front it delays (minutes to hours), which no single Fourier window resolves; where lakes
dominate a curve they are carried as exact exponential modes and only the rest is inverted
(:func:`_lake_modes`).

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
import math
from typing import TYPE_CHECKING

import numpy as np

from ..exceptions import UnknownElementError
from . import laplace
from .closed_form import GRAMS_PER_KG
from .history import SourceHistory
from .routing import ForecastError, node_divisors, path_velocity, reach_moment_arrays
from .unit_responses import Responses

__all__ = ["Responses", "SourceHistory", "channel_exponent", "point_source_responses"]

if TYPE_CHECKING:
    from ..network import FeatureKind, RiverNetwork
    from ..pollutants import Pollutant
    from ..reach_state import ReachState

#: a receptor's window starts this many travel-time standard deviations before the mean [-]
WINDOW_BEFORE_SD = 6.0
#: and ends this many after it [-]: an exponential (lake) tail is then down to e^-11 ~ 2e-5
WINDOW_AFTER_SD = 10.0
#: window lengths are rounded up to powers of this ratio so that receptors share Laplace nodes [-]
WINDOW_CLASS_RATIO = 2.0 ** 0.5
#: windows that start at the release get this many times the de Hoog terms [-]: with 3 x 16 the
#: puff at Peclet U x / D = 3 is within 3e-4 of its peak, at Pe = 10 within 2e-7 (tests); the 1-D
#: model itself does not hold that close to an outfall (cross-sectional mixing takes longer)
NEAR_FIELD_TERMS_FACTOR = 3
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


def _windows(mean: np.ndarray, sd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Window start [s] and class length [s] of each receptor (see the module doc)."""
    t0 = np.maximum(mean - WINDOW_BEFORE_SD * sd, 0.0)
    return t0, _class_length(mean + WINDOW_AFTER_SD * sd - t0)


def _class_length(need: np.ndarray) -> np.ndarray:
    """The window length [s] of the class that holds ``need`` [s] (at least :data:`MIN_WINDOW_S`)."""
    cls = np.ceil(np.log(np.maximum(need, MIN_WINDOW_S)) / np.log(WINDOW_CLASS_RATIO) - 1e-9)
    return WINDOW_CLASS_RATIO ** cls


def _logsum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log(exp(a) + exp(b)) for complex logs, without overflow."""
    hi = np.where(a.real >= b.real, a, b)
    lo = np.where(a.real >= b.real, b, a)
    with np.errstate(over="ignore", invalid="ignore"):
        return hi + np.log1p(np.exp(lo - hi))


#: complex steps i eps [1/s] at which the moments are read from the transform: log H(i eps) =
#: log H(0) - i mean eps - var eps^2 / 2 + O(eps^3); the step with eps sd closest to 1e-2 is used
#: (truncation ~1e-5 relative, round-off ~1e-9)
MOMENT_STEPS = 10.0 ** -np.arange(0, 10)
#: s = 0 and the complex steps
MOMENT_NODES = np.concatenate([[0.0], 1j * MOMENT_STEPS])


def _moments(lg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [s] and variance [s2] of each row's curve from its log transform at :data:`MOMENT_NODES`."""
    c0 = lg[:, :1]
    eps = MOMENT_STEPS[None, :]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        means = -(lg[:, 1:] - c0).imag / eps
        vars_ = -2.0 * (lg[:, 1:] - c0).real / eps**2
        pick = np.argmin(np.abs(np.log10(np.abs(eps * np.sqrt(np.abs(vars_))) + 1e-300) + 2.0), axis=1)
    rows = np.arange(lg.shape[0])
    return means[rows, pick], np.maximum(vars_[rows, pick], 0.0)


def point_source_responses(net: RiverNetwork, state: ReachState, reach: str, chainage_m: float, pollutant: Pollutant,
                           kinds: tuple[FeatureKind, ...] = ("station", "intake"), *, wind_ms: float = 0.0,
                           boundary: bool = False, terms: int = laplace.DEFAULT_TERMS,
                           within: frozenset[int] | set[int] | None = None) -> Responses:
    """Unit responses at every receptor of ``kinds`` downstream of a point on a reach.

    Parameters
    ----------
    net, state : RiverNetwork, ReachState
        The network and its steady state.
    reach : str
        Reach of the source.
    chainage_m : float
        Position of the source from the reach's upstream end [m]. Receptors at or above it on its
        reach are not reported.
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
    within : set of int, optional
        Reach indices (into ``state``) to which the walk is confined, e.g. the reaches above the
        stations a trace uses; receptors elsewhere are not reported. Default: every reach below.
    terms : int
        de Hoog terms M [-] for windows that start after the release; windows that start at the
        release (near field, lakes, low Peclet numbers: curves that rise fast and tail long) use
        :data:`NEAR_FIELD_TERMS_FACTOR` times as many.

    Returns
    -------
    Responses
        Receptors ordered by mean travel time, then distance.
    """
    if reach not in state.index:
        raise UnknownElementError(f"unknown reach {reach!r}")
    L0 = state.length_m[state.index[reach]]
    if not (0.0 <= chainage_m <= L0):
        raise ForecastError(f"chainage {chainage_m} m lies outside reach {reach!r} (0 to {L0} m)")
    plan = _Plan(net, state, reach, chainage_m, pollutant, wind_ms, boundary, kinds, within)
    scale = 1.0 if boundary else GRAMS_PER_KG
    # pass 1: moments of every receptor's impulse response, by complex steps
    lg1 = plan.log_transfer(MOMENT_NODES)
    keep = np.isfinite(lg1[:, 0].real)
    c0 = lg1[:, :1]
    mean, var = _moments(lg1)
    order = np.lexsort((plan.distance, mean))
    order = order[keep[order]]
    feats = tuple(plan.features[i] for i in order)
    mean, var = mean[order], var[order]
    final = scale * np.exp(c0[order, 0].real)
    n = len(order)
    modes_a, modes_b, inv_final, mean_w, var_w = _lake_modes(plan, order, mean, var, final, scale)
    t0, period = _windows(mean_w, np.sqrt(var_w))
    if modes_a.shape[1]:  # a remainder equals minus the modes before the front: its window starts at 0
        moded = (modes_a != 0).any(axis=1)
        t0 = np.where(moded, 0.0, t0)
        period = np.where(moded, _class_length(mean_w + WINDOW_AFTER_SD * np.sqrt(var_w)), period)
    m_terms = np.where(t0 > 0, terms, NEAR_FIELD_TERMS_FACTOR * terms)  # see the docstring
    if n == 0:
        z = np.zeros(0)
        return Responses(feats, z, z, z, z, z, z, z, z, z, z, np.zeros((0, 1), complex), np.zeros((0, 1), complex), [])
    # pass 2: the transform at the Bromwich nodes of every window class (length, terms)
    keys = sorted(set(zip(period.tolist(), m_terms.tolist())))
    key_of = {k: i for i, k in enumerate(keys)}
    width = 2 * int(m_terms.max()) + 1
    nodes = np.zeros((len(keys), width), complex)
    gam = np.zeros(len(keys))
    for i, (T, m) in enumerate(keys):
        g_i, s_i = laplace.bromwich_nodes(np.array([T]), m)
        nodes[i, :s_i.shape[1]] = s_i[0]
        gam[i] = g_i[0]
    cls = np.array([key_of[(p, m)] for p, m in zip(period.tolist(), m_terms.tolist())])
    s_rec = nodes[cls]
    lg2 = np.full((n, width), -np.inf + 0j)
    for c in range(len(keys)):  # each class only as far down as its receptors
        mine = np.flatnonzero(cls == c)
        used = nodes[c] != 0
        lg2[np.ix_(mine, np.flatnonzero(used))] = plan.log_transfer(nodes[c][used], order[mine])
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        g = scale * np.exp(lg2 + s_rec * t0[:, None])
        if modes_a.shape[1]:  # the lakes' modes are carried exactly: invert only the remainder
            g = g - np.exp(s_rec * t0[:, None]) * (modes_a[:, None, :] / (s_rec[:, :, None] + modes_b[:, None, :])).sum(axis=2)
    g = np.where(s_rec != 0, np.nan_to_num(g, nan=0.0, posinf=0.0, neginf=0.0), 0.0)
    groups = [np.flatnonzero(m_terms == m) for m in np.unique(m_terms)]
    resp = Responses(feats, plan.fraction[order], plan.distance[order], plan.discharge[order],
                     plan.travel_time[order], mean, var, final,
                     t0, period, gam[cls], g, s_rec, groups)
    resp.mode_a, resp.mode_b, resp.inverted_final = modes_a, modes_b, inv_final
    return resp


#: lakes carried as exact exponential modes (:func:`_lake_modes`) when their residence time exceeds
#: this many standard deviations of the rest of the path [-]: below it one window resolves both
LAKE_MODE_RATIO = 1.0
#: rate of the mode that carries the remainder's start, in units of 1 / (its window) [-]: e^-20 at the
#: window's end, and resolved by its 2 x 48 terms
START_MODE_RATE = 20.0


def _lake_modes(plan: _Plan, order: np.ndarray, mean: np.ndarray, var: np.ndarray, final: np.ndarray,
                scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Exponential modes of receptors whose curve a lake dominates, and the moments of the rest.

    On a path with lakes of residence times tau_i (no branch with other lakes joining it),
    H(s) = H_c(s) prod_i 1/(1 + (s + k) tau_i), H_c the transfer of everything else. The lakes'
    product has simple poles at s = -b_i, b_i = k + 1/tau_i, with residues A_i = (1/tau_i)
    prod_{j != i} 1/(1 - tau_j/tau_i); so H - sum_i a_i/(s + b_i), a_i = A_i H_c(-b_i), has no pole
    there, and h = sum_i a_i exp(-b_i t) + the inverse of that remainder. The remainder lives on the
    time scale of the rest of the path (it cancels the modes before the front arrives and vanishes
    after it), so its window runs from the release to past the front placed by H_c's own moments (complex steps on H_c: subtracting the
    lakes' tau^2 from the whole curve's variance would lose them to round-off). Receptors where this
    does not apply (equal residence times, a branch that brings other lakes, H_c not finite at -b_i)
    keep one window on the whole curve.

    Returns
    -------
    a, b : (rows, modes) [per unit source per s], [1/s] (0 where unused)
    inverted_final : the remainder's integral (its step response's final value) per row
    mean, var : the moments that place each row's window [s], [s2]
    """
    n = len(order)
    taus = [plan.lake_taus[plan.where[i]] for i in order]
    k = plan.k
    width = max((len(t) + 1 for t in taus if t), default=0)  # the lakes' modes and one to start at 0
    a = np.zeros((n, width))
    b = np.zeros((n, width))
    inv_final = final.copy()
    mean_w, var_w = mean.copy(), var.copy()
    for row, tt in enumerate(taus):
        if not tt:
            continue
        tau = np.array(tt, float)
        tp = tau / (1.0 + k * tau)
        m_c, v_c = (float(v[0]) for v in _moments(plan.log_transfer(MOMENT_NODES, np.array([order[row]]), skip_lakes=True)))
        if not (tp.sum() > LAKE_MODE_RATIO * np.sqrt(v_c)) or len(set(np.round(np.log(tau), 6))) < len(tau):
            continue
        bi = k + 1.0 / tau
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            ratio = tau[None, :] / tau[:, None]
            np.fill_diagonal(ratio, 0.0)
            resid = (1.0 / tau) * np.prod(1.0 / (1.0 - ratio), axis=1)
            log_hc = plan.log_transfer(-bi.astype(complex), np.array([order[row]]), skip_lakes=True)[0]
            ai = scale * resid * np.exp(log_hc.real) * np.cos(log_hc.imag)
        if not (np.all(np.isfinite(ai)) and np.all(np.abs(log_hc.imag) < 1e-9)):
            continue
        # h(0) = 0, so the remainder starts at -sum a_i: a jump at t = 0 that Fourier inversion would
        # halve; a fast mode -sum a_i exp(-c t), gone within the remainder's window, takes it instead
        # (a path of lakes alone, H_c constant, has no remainder and no such jump to carry)
        a[row, :tau.size], b[row, :tau.size] = ai, bi
        if m_c > 1e-9 * tau.sum():
            a[row, tau.size] = -float(np.sum(ai))
            b[row, tau.size] = START_MODE_RATE / max(m_c + WINDOW_AFTER_SD * np.sqrt(v_c), MIN_WINDOW_S)
        inv_final[row] = final[row] - float(np.sum(a[row] / np.where(b[row] > 0, b[row], 1.0)))
        mean_w[row], var_w[row] = max(m_c, 0.0), max(v_c, 0.0)
    return a, b, inv_final, mean_w, var_w


class _Plan:
    """The reaches below a source in topological order, with how fluxes combine at their nodes, and
    the receptors on them; :meth:`log_transfer` evaluates every receptor's transform at given s."""

    def __init__(self, net: RiverNetwork, state: ReachState, reach: str, chainage_m: float, pollutant: Pollutant,
                 wind_ms: float, boundary: bool, kinds: tuple[FeatureKind, ...],
                 within: frozenset[int] | set[int] | None = None) -> None:
        from .routing import _receptor_index

        i0 = state.index[reach]
        divisors = node_divisors(net, state)
        q_all = state.discharge_m3s
        order: list[int] = []
        parents: dict[int, list[tuple[int, float]]] = {i0: []}
        frac: dict[int, float] = {i0: 1.0}
        dist: dict[int, float] = {i0: -chainage_m}  # mass-weighted distance from the source at the reach start
        mean_r, _var_r = reach_moment_arrays(net, state, pollutant, wind_ms)
        # mass-weighted mean advective travel time [s] at the reach start (as route_moments)
        tmean: dict[int, float] = {i0: -mean_r[i0] * chainage_m / state.length_m[i0]}
        pending = [i0]
        while pending:
            j = heapq.heappop(pending)  # reach indices are topological: a heap on them is a topological walk
            pos = len(order)
            order.append(j)
            node = net.reaches[state.ids[j]].to_node
            downs = net.reaches_out_of(node)
            if not downs:
                continue
            qdiv = divisors[node]
            end_dist = dist[j] + state.length_m[j]
            end_mean = tmean[j] + mean_r[j]
            for dn in downs:
                kk = state.index[dn]
                if within is not None and kk not in within:
                    continue
                share = float(q_all[kk] / qdiv)
                if kk not in parents:
                    parents[kk] = []
                    frac[kk] = 0.0
                    dist[kk] = 0.0
                    tmean[kk] = 0.0
                    heapq.heappush(pending, kk)
                parents[kk].append((pos, share))
                w = frac[j] * share
                tot = frac[kk] + w
                dist[kk] = (dist[kk] * frac[kk] + end_dist * w) / tot if tot > 0 else end_dist
                tmean[kk] = (tmean[kk] * frac[kk] + end_mean * w) / tot if tot > 0 else end_mean
                frac[kk] += w
        self.order = np.array(order, int)
        self.parents = [parents[j] for j in order]
        # runs of reaches fed by the reach just before them alone (a plain chain): summed at once
        chained = [len(ps) == 1 and ps[0][0] == pos - 1 for pos, ps in enumerate(self.parents)]
        self.run_end = np.arange(1, len(order) + 1)
        for pos in range(len(order) - 2, 0, -1):
            if chained[pos] and chained[pos + 1]:
                self.run_end[pos] = self.run_end[pos + 1]
        self.chained = chained
        self.log_share = np.array([math.log(ps[0][1]) if len(ps) == 1 else 0.0 for ps in self.parents])
        self.chainage_m = chainage_m
        self.boundary = boundary
        self.k = pollutant.decay_per_s
        u_all, beta_all = path_velocity(state, pollutant, wind_ms)
        o = self.order
        self.lake = state.lake_mask()[o]
        if self.lake[0] and boundary:
            raise ForecastError(f"reach {reach!r} is a fully mixed lake: an inflow boundary curve belongs on a river reach")
        self.L, self.u, self.q = state.length_m[o][:, None], u_all[o][:, None], q_all[o][:, None]
        self.d, self.beta = state.dispersion_m2s[o][:, None], beta_all[o][:, None]
        self.alpha = state.storage_exchange_per_s[o][:, None]
        # the lakes on the way to each reach (residence times [s]); None where branches with other
        # lakes join (the lake modes of _lake_modes then do not apply)
        lake_taus: list[tuple[float, ...] | None] = []
        for pos in range(len(order)):
            if pos == 0:
                base: tuple[float, ...] | None = ()
            else:
                above = {lake_taus[par] for par, _share in self.parents[pos]}
                base = above.pop() if len(above) == 1 else None
            if base is not None and self.lake[pos]:
                base = (*base, float(self.L[pos, 0] / self.u[pos, 0]))
            lake_taus.append(base)
        self.lake_taus = lake_taus
        rec = _receptor_index(net, kinds)
        feats, where, dx = [], [], []
        for pos, j in enumerate(o):
            for f in rec.get(state.ids[j], ()):
                if pos == 0 and f.chainage_m <= chainage_m:
                    continue
                feats.append(f)
                where.append(pos)
                dx.append(f.chainage_m - chainage_m if pos == 0 else f.chainage_m)
        self.features = tuple(feats)
        self.where = np.array(where, int)
        self.dx = np.array(dx, float)
        self.fraction = np.array([frac[o[w]] for w in where], float)
        self.distance = np.array([dist[o[w]] for w in where], float) + np.array(
            [f.chainage_m for f in feats], float)
        self.discharge = np.array([q_all[o[w]] for w in where], float)
        self.travel_time = np.array([tmean[o[w]] + mean_r[o[w]] * f.chainage_m / state.length_m[o[w]]
                                     for w, f in zip(where, feats)], float)

    def log_transfer(self, s: np.ndarray, rows: np.ndarray | None = None, skip_lakes: bool = False) -> np.ndarray:
        """log of the resident-concentration transform [per g/s, or per g/m3 for a boundary] at each
        receptor (or the receptors ``rows``) and Laplace node ``s``; the module doc gives the algebra.
        Only the reaches up to the last of those receptors are computed (a topological prefix holds
        every reach above them), all at once; the summing of fluxes at nodes walks chains at once.
        ``skip_lakes``: every lake passes its flux unchanged (the rest of the path, H_c)."""
        sel = np.arange(len(self.where)) if rows is None else np.asarray(rows, int)
        upto = int(self.where[sel].max()) + 1 if sel.size else 1
        k = self.k
        u, q, L, lake = self.u[:upto], self.q[:upto], self.L[:upto], self.lake[:upto]
        lam, r = channel_exponent(s[None, :], u, self.d[:upto], k, self.beta[:upto], self.alpha[:upto])
        # log(flux out / flux in) of every reach: lam L in a channel, -log(1 + (s + k) tau) in a lake
        log_through = lam * L
        lakes = np.flatnonzero(lake)
        if lakes.size:
            log_through[lakes] = 0.0 if skip_lakes else -np.log1p((s[None, :] + k) * (L[lakes] / u[lakes]))
        # the source reach: injection (flux (U + r)/(2r) exp(lam dx) below the outfall), or a boundary
        # concentration (flux Q (U + r)/(2U) exp(lam dx)); a lake source mixes at once
        if lake[0]:
            log_src = np.zeros(s.size, complex)
            src_through = log_through[0]
        else:
            u0, r0 = u[0], r[0]
            log_src = np.log((u0 + r0) / (2.0 * r0)) if not self.boundary else np.log(q[0] * (u0 + r0) / (2.0 * u0))
            src_through = log_src + lam[0] * (L[0, 0] - self.chainage_m)
        n = upto
        log_in = np.empty((n, s.size), complex)
        log_out = np.empty((n, s.size), complex)
        log_in[0] = 0.0
        log_out[0] = src_through
        pos = 1
        while pos < n:
            if self.chained[pos]:  # a chain: log flux out = the one before + cumulative (share + transfer)
                end = min(int(self.run_end[pos]), n)
                step = self.log_share[pos:end, None] + log_through[pos:end]
                log_out[pos:end] = log_out[pos - 1] + np.cumsum(step, axis=0)
                log_in[pos:end] = log_out[pos:end] - log_through[pos:end]
                pos = end
                continue
            acc = None
            for par, share in self.parents[pos]:
                contrib = log_out[par] + math.log(share)
                acc = contrib if acc is None else _logsum(acc, contrib)
            log_in[pos] = acc
            log_out[pos] = acc + log_through[pos]
            pos += 1
        # receptors: resident = flux x 2U/(U + r) / Q in a channel; flux in / (Q (1 + (s + k) tau)) in a lake
        w = self.where[sel]
        if not w.size:
            return np.zeros((0, s.size), complex)
        uw, qw = u[w], q[w]
        with np.errstate(divide="ignore", invalid="ignore"):
            base = np.where((w == 0)[:, None], log_src[None, :], log_in[w])
            out = base + lam[w] * self.dx[sel][:, None] + np.log(2.0 * uw / (uw + r[w])) - np.log(qw)
            rl = lake[w]
            if rl.any():
                out = np.where(rl[:, None], log_in[w] + log_through[w] - np.log(qw), out)
        return out

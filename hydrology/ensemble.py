"""Monte Carlo plume forecast: P10/P50/P90 of arrival, peak time and peak concentration at every
receptor, and the probability of exceeding the standard.

Uncertain inputs, each one factor per member applied to the whole network (errors that are
correlated along the river move a forecast; independent reach-by-reach errors would average out
along a path and understate the spread):

- flow: lognormal with median 1 and coefficient of variation ``flow_cv`` (sigma_ln =
  sqrt(ln(1 + cv^2))), Q -> phi Q on every reach; velocity, width, depth and dispersion follow from
  each reach's own hydraulics (:func:`hydrology.reach_state.compute_reach_state`: Manning, hydraulic
  geometry, Jobson; a stated velocity stays as stated), dilution at a receptor scales with phi and
  split fractions are unchanged;
- velocity: lognormal factor with median 1 and CV ``velocity_cv`` on the main-channel velocity
  (the error of the velocity method itself);
- dispersion: log-uniform factor in ``dispersion_factor`` (estimators are good to a factor of
  about 2; DESIGN.md section 4).

With median-1 factors and symmetric log ranges the P50 is the deterministic forecast up to the
curvature of the response (tested to 2 %).

Every member's curve comes from the exact transport kernel (:func:`hydrology.transport.analytic.forecast`:
point injection, transient storage, lakes) on the network scaled by the member's factors. Not one
kernel call per member: the kernel is run on a grid of factor nodes (up to :data:`FLOW_GRID_POINTS`
flow x :data:`VELOCITY_NODES` velocity x :data:`DISPERSION_NODES` dispersion factors, evenly in log;
the distinct values when fewer) and each member's arrival, peak time, peak and end are interpolated
multilinearly in the log factors on their logarithms. Measured against a kernel run on each member's
own network (demo basins, flow CV 0.3, velocity CV 0.1, dispersion 0.5-2): at most 0.69 % (peak of a
1-h box release) and 0.56 % (times). Exact cases: an unperturbed ensemble (one node: the deterministic
forecast itself) and an ensemble with no more members than nodes (each member from the kernel). A
member whose cell straddles a receptor's threshold (some nodes exceed it, some never do) crosses it
at thr / peak of its own peak: each node's curve is cut at fixed fractions of its own peak, and those
times are interpolated like the rest and then to the member's fraction (:func:`_threshold_edges`;
0.38 % of the times at most against the kernel on the member's own network, where a kernel run per
such member took 5.8 s for 1,000 members on the 1,000-reach test basin and now 1.6 s in all). The reach state at each flow node is recomputed for the reaches below the
release; between flow nodes velocity and dispersion are interpolated linearly in (ln phi, ln U) and
(ln phi, ln D) (exact for power-law hydraulic geometry, 1.1e-4 on Manning).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from scipy.special import ndtri
from scipy.stats import qmc

from .exceptions import HydrologyError, UnknownElementError
from .network import RiverNetwork
from .reach_state import ReachState, state_at_flow
from .transport.analytic import EDGE_FRACTION_OF_PEAK, Forecast, Release, forecast, level_crossings, receptor_thresholds
from .validate import load_valid

if TYPE_CHECKING:
    import xarray as xr

    from .network import Feature, FeatureKind

#: reach states computed across the sampled flow range, interpolated in between [-]; against a
#: recomputed state the peak concentration and time of a member were within 1.1e-4 on the Manning
#: demo basins for flow factors 0.5-2 (hydraulic geometry is a power law: exact)
FLOW_GRID_POINTS = 9
#: kernel nodes across the sampled velocity factors [-]
VELOCITY_NODES = 5
#: kernel nodes across the sampled dispersion factors [-]
DISPERSION_NODES = 5
#: levels u at which the nodes' curves are cut, at exp(-u^2) of their own peaks [-] (u = 0: the peak):
#: a member whose cell straddles a receptor's threshold crosses it at u = sqrt(ln(peak / thr)); beyond
#: the last level (peak over 20 x the threshold, yet some node of its cell below it) it is run directly
LEVEL_U = np.linspace(0.0, np.sqrt(np.log(20.0)), 13)
#: reported quantiles [-]
QUANTILES = (0.1, 0.5, 0.9)
#: quantile estimator: the empirical inverse distribution (Hyndman & Fan 1996, definition 1); it
#: needs no interpolation, so "never arrives" (+inf) can be a member's value
QUANTILE_METHOD: Final = "inverted_cdf"
#: per-member results kept when asked (receptor x member)
MEMBER_FIELDS = ("arrival_s", "peak_s", "peak_g_m3", "end_s")


class EnsembleError(HydrologyError, ValueError):
    """Bad ensemble arguments (members, spreads, factor range)."""


def sample_factors(members: int, *, flow_cv: float = 0.2, velocity_cv: float = 0.0,
                   dispersion_factor: tuple[float, float] = (0.5, 2.0), seed: int = 0) -> dict[str, np.ndarray]:
    """Per-member flow, velocity and dispersion factors [-] (see the module docstring).

    Lognormal factors have median 1: ln f ~ N(0, ln(1 + cv^2)), so that CV[f] = cv (Aitchison &
    Brown 1957, The Lognormal Distribution, eq. 2.10); the dispersion factor is log-uniform. Drawn
    from a scrambled Sobol' sequence (randomised quasi-Monte Carlo; Owen, A.B. 1998, ACM TOMACS 8(1),
    71-102), mapped through the inverse distribution functions: at 1,000 members the P50 of peak
    concentration on the 1,000-reach test basin moved up to 2.1 % between seeds with Latin hypercube
    draws and up to 0.9 % with these.
    """
    if not (isinstance(members, (int, np.integer)) and members >= 1):
        raise EnsembleError(f"members must be a positive integer, got {members!r}")
    for name, cv in (("flow_cv", flow_cv), ("velocity_cv", velocity_cv)):
        if not (cv >= 0 and np.isfinite(cv)):
            raise EnsembleError(f"{name} must be finite and >= 0, got {cv}")
    lo, hi = (float(v) for v in dispersion_factor)
    if not (0 < lo <= hi and np.isfinite(hi)):
        raise EnsembleError(f"dispersion_factor must be (low, high) with 0 < low <= high, got {dispersion_factor}")
    with warnings.catch_warnings():  # scipy prefers powers of 2; any count keeps the low discrepancy
        warnings.simplefilter("ignore", UserWarning)
        u = qmc.Sobol(3, scramble=True, seed=seed).random(members).T
    u = np.clip(u, 1e-12, 1.0 - 1e-12)  # a point on 0 or 1 would map to an infinite factor
    return {"flow_factor": np.exp(np.sqrt(np.log1p(flow_cv**2)) * ndtri(u[0])),
            "velocity_factor": np.exp(np.sqrt(np.log1p(velocity_cv**2)) * ndtri(u[1])),
            "dispersion_factor": np.exp(np.log(lo) + u[2] * (np.log(hi) - np.log(lo)))}


def _flow_grid(flow: np.ndarray) -> np.ndarray:
    """Flow factors [-] at which the reach state is computed: the distinct ones, or
    :data:`FLOW_GRID_POINTS` spanning them evenly in ln phi."""
    grid = np.unique(flow)
    return np.geomspace(grid[0], grid[-1], FLOW_GRID_POINTS) if grid.size > FLOW_GRID_POINTS else grid


def _factor_nodes(values: np.ndarray, points: int) -> np.ndarray:
    """Kernel nodes along one factor [-]: the distinct values, or ``points`` evenly in ln f."""
    grid = np.unique(values)
    return np.geomspace(grid[0], grid[-1], points) if grid.size > points else grid


def _hydraulics(net: RiverNetwork, state: ReachState, idx: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ln velocity [ln m/s] and ln dispersion [ln m2/s] of reaches ``idx`` at each flow factor of
    ``grid`` (hydraulics recomputed at that flow, :func:`hydrology.reach_state.state_at_flow`), (flow factors, reaches)."""
    ln_u, ln_d = np.empty((grid.size, idx.size)), np.empty((grid.size, idx.size))
    for g, phi in enumerate(grid):
        st = state_at_flow(net, state, float(phi), idx)
        ln_u[g], ln_d[g] = np.log(st.velocity_ms[idx]), np.log(st.dispersion_m2s[idx])
    return ln_u, ln_d


def _at_flow(grid: np.ndarray, ln_u: np.ndarray, ln_d: np.ndarray, phi: float) -> tuple[np.ndarray, np.ndarray]:
    """Velocity [m/s] and dispersion [m2/s] at flow factor ``phi``, linear in (ln phi, ln U) and
    (ln phi, ln D) between the grid's states (exact for power-law hydraulic geometry)."""
    if grid.size == 1:
        return np.exp(ln_u[0]), np.exp(ln_d[0])
    x = np.log(grid)
    j = int(np.clip(np.searchsorted(x, np.log(phi)) - 1, 0, grid.size - 2))
    a = (np.log(phi) - x[j]) / (x[j + 1] - x[j])
    return np.exp((1 - a) * ln_u[j] + a * ln_u[j + 1]), np.exp((1 - a) * ln_d[j] + a * ln_d[j + 1])


class _MemberKernel:
    """The kernel forecast (:func:`hydrology.transport.analytic.forecast`) of one member: the network with
    every discharge and inflow x phi (hydraulics of the reaches below the release recomputed at that
    flow, :func:`_hydraulics`), main-channel velocity x the velocity factor, dispersion x the
    dispersion factor."""

    def __init__(self, net: RiverNetwork, release: Release, kinds: tuple[FeatureKind, ...],
                 threshold_g_m3: float | None, wind_ms: float) -> None:
        st = net.reach_state()
        if release.reach not in st.index:
            raise UnknownElementError(f"unknown reach {release.reach!r}")
        length = st.length_m[st.index[release.reach]]
        if not (0.0 <= release.chainage_m <= length):
            raise EnsembleError(f"chainage {release.chainage_m} m lies outside reach {release.reach!r} (0 to {length} m)")
        self.net, self.state, self.release = net, st, release
        self.nets: dict[float, RiverNetwork] = {}
        self.kw = {"kinds": kinds, "threshold_g_m3": threshold_g_m3, "wind_ms": wind_ms}
        self.idx = np.array(sorted({st.index[release.reach], *(st.index[r] for r in net.all_downstream(release.reach))}))

    def __call__(self, phi: float, vel: float, disp: float, u: np.ndarray, d: np.ndarray
                 ) -> tuple[list[Feature], dict[str, dict[str, float]]]:
        """Arrival, peak and end per receptor id [s, g/m3; NaN: never] of the member (phi, vel, disp),
        given the velocity ``u`` [m/s] and dispersion ``d`` [m2/s] of the reaches below the release at phi."""
        fc = self.forecast(phi, vel, disp, u, d)
        return [self.net.feature(r.id, r.kind) for r in fc.receptors], {r.id: {"arrival_s": np.nan if r.arrival_s is None else r.arrival_s, "peak_s": r.peak_s,
                       "peak_g_m3": r.peak_g_m3, "end_s": np.nan if r.end_s is None else r.end_s} for r in fc.receptors}

    def forecast(self, phi: float, vel: float, disp: float, u: np.ndarray, d: np.ndarray) -> Forecast:
        """The kernel forecast of the member (phi, vel, disp), as :meth:`__call__`."""
        st, net = self.state, self.net
        if phi == 1.0:  # the network's own state, not its exp(ln U) (round-off moves the kernel's crossings ~1e-7)
            u, d = st.velocity_ms[self.idx], st.dispersion_m2s[self.idx]
        vel_all, disp_all = st.velocity_ms.copy(), st.dispersion_m2s.copy()
        vel_all[self.idx], disp_all[self.idx] = u * vel, d * disp
        q = st.discharge_m3s * phi
        scaled = replace(st, discharge_m3s=q, velocity_ms=vel_all, dispersion_m2s=disp_all, area_m2=q / vel_all)
        if phi != 1.0:  # inflows x phi too, so that shares at nodes stay as they are (one copy per flow node)
            if phi not in self.nets:
                self.nets[phi] = RiverNetwork(net.nodes, net.reaches, inflows={n: phi * v for n, v in net.inflows.items()},
                                              features=net.features, name=net.name)
            net = self.nets[phi]
        return forecast(net, self.release, state=scaled, **self.kw)  # type: ignore[arg-type]


def _corners(wt: list[np.ndarray], lo: list[np.ndarray], shape: tuple[int, ...], n_mem: int):  # type: ignore[no-untyped-def]
    """The 8 corners of each member's cell in the 3-D factor grid: (trilinear weight per member, node index per axis)."""
    for corner in np.ndindex(2, 2, 2):
        w = np.ones(n_mem)
        at = []
        for ax, c in enumerate(corner):
            w = w * (wt[ax] if c else 1.0 - wt[ax])
            at.append(np.minimum(lo[ax] + c, shape[ax] - 1))
        yield w, at


def ensemble_members(net: RiverNetwork, release: Release, factors: dict[str, np.ndarray], *,
                     kinds: tuple[FeatureKind, ...] = ("station", "intake"), threshold_g_m3: float | None = None,
                     wind_ms: float = 0.0) -> tuple[list[Feature], np.ndarray, dict[str, np.ndarray]]:
    """Arrival, peak and end at every receptor for every member (receptor x member arrays), from the kernel.

    The kernel forecast is evaluated on the grid of factor nodes (:func:`_factor_nodes`: at most
    :data:`FLOW_GRID_POINTS` flow, :data:`VELOCITY_NODES` velocity and :data:`DISPERSION_NODES`
    dispersion factors, the distinct values when fewer) and each member's values are interpolated
    multilinearly in (ln phi, ln velocity factor, ln dispersion factor) on the logarithms of the
    values; an ensemble with no more members than nodes is computed member by member. A member on the nodes (every member of an unperturbed ensemble) gets the kernel's own
    figures. Where a member's cell mixes nodes at which the plume exceeds a receptor's threshold with
    nodes at which it never does (NaN arrival or end), the member never exceeds if its interpolated
    peak is below the threshold; otherwise its arrival and end are where its curve is at thr / peak of
    its own peak, from the nodes' curves at fixed fractions of theirs (:func:`_threshold_edges`; an
    interpolation across "never" has no meaning), and from the kernel directly beyond those fractions. Thresholds as in :func:`hydrology.transport.analytic.forecast`.
    Returns the receptors, their thresholds [g/m3] (NaN where none applies) and the arrays of
    :data:`MEMBER_FIELDS` [s, g/m3].
    """
    kernel = _MemberKernel(net, release, kinds, threshold_g_m3, wind_ms)
    phi, vel, disp = (np.asarray(factors[k], float) for k in ("flow_factor", "velocity_factor", "dispersion_factor"))
    n_mem = phi.size
    axes = [_flow_grid(phi), _factor_nodes(vel, VELOCITY_NODES), _factor_nodes(disp, DISPERSION_NODES)]
    ln_u, ln_d = _hydraulics(net, kernel.state, kernel.idx, axes[0])
    shape = tuple(a.size for a in axes)
    if n_mem <= int(np.prod(shape)):  # no more members than nodes: each member from the kernel directly
        runs_m = [kernel(phi[m], vel[m], disp[m], *_at_flow(axes[0], ln_u, ln_d, phi[m])) for m in range(n_mem)]
        near = int(np.argmin(np.abs(np.log(phi)) + np.abs(np.log(vel)) + np.abs(np.log(disp))))
        feats = runs_m[near][0]
        thr = np.array([np.nan if t is None else t for t, _ in receptor_thresholds(net, feats, release.pollutant, threshold_g_m3)])
        return feats, thr, {k: np.array([[one[f.id][k] for _, one in runs_m] for f in feats]).reshape(len(feats), n_mem)
                            for k in MEMBER_FIELDS}
    runs, feats_at, fcs = {}, {}, {}
    for g in np.ndindex(*shape):
        fcs[g] = fc = kernel.forecast(float(axes[0][g[0]]), float(axes[1][g[1]]), float(axes[2][g[2]]),
                                      np.exp(ln_u[g[0]]), np.exp(ln_d[g[0]]))
        feats_at[g] = [net.feature(r.id, r.kind) for r in fc.receptors]
        runs[g] = {r.id: {"arrival_s": np.nan if r.arrival_s is None else r.arrival_s, "peak_s": r.peak_s,
                          "peak_g_m3": r.peak_g_m3, "end_s": np.nan if r.end_s is None else r.end_s} for r in fc.receptors}
    # receptors in the order of the node nearest the unperturbed network (nearest first, as forecast())
    mid = tuple(int(np.argmin(np.abs(np.log(a)))) for a in axes)
    feats = feats_at[mid]
    ids = [f.id for f in feats]
    thr = np.array([np.nan if t is None else t for t, _ in receptor_thresholds(net, feats, release.pollutant, threshold_g_m3)])
    node_vals = {k: np.array([[runs[g][r][k] for g in np.ndindex(*shape)] for r in ids]).reshape(len(ids), *shape)
                 for k in MEMBER_FIELDS}
    # each member's cell and weights along each axis (a one-node axis: weight 1 on that node)
    lo, wt = [], []
    for a, f in zip(axes, (phi, vel, disp), strict=True):
        if a.size == 1:
            lo.append(np.zeros(n_mem, int))
            wt.append(np.zeros(n_mem))
            continue
        x = np.log(a)
        j = np.clip(np.searchsorted(x, np.log(f)) - 1, 0, a.size - 2)
        lo.append(j)
        wt.append(np.clip((np.log(f) - x[j]) / (x[j + 1] - x[j]), 0.0, 1.0))
    res = {k: np.zeros((len(ids), n_mem)) for k in MEMBER_FIELDS}
    never = np.zeros((len(ids), n_mem), bool)  # some node of the cell never exceeds (or is at t = 0) ...
    some = np.zeros((len(ids), n_mem), bool)  # ... and some node does
    for w, at in _corners(wt, lo, shape, n_mem):
        used = w > 0
        for k in MEMBER_FIELDS:
            v = node_vals[k][:, at[0], at[1], at[2]]
            never |= ~(v > 0) & used[None, :]
            some |= (v > 0) & used[None, :]
            with np.errstate(divide="ignore", invalid="ignore"):
                res[k] += np.where(used[None, :], w[None, :] * np.log(np.where(v > 0, v, np.nan)), 0.0)
    res = {k: np.exp(v) for k, v in res.items()}
    # members next to "never": a cell where every node is "never" gives NaN, which is the member's
    # answer; in a mixed cell a member whose interpolated peak stays below the threshold never exceeds
    # either; the rest cross the threshold at a fraction thr / peak of their own peak, found from the
    # nodes' curves at fixed fractions of their own peaks (:func:`_threshold_edges`)
    with np.errstate(invalid="ignore"):
        below = res["peak_g_m3"] < thr[:, None]
    for k in ("arrival_s", "end_s"):
        res[k][never & below] = np.nan
    mixed = never & some & ~below
    if mixed.any():
        node_off = np.full((len(ids), LEVEL_U.size - 1, 2, *shape), np.nan)
        for g in np.ndindex(*shape):
            where = {r.id: i for i, r in enumerate(fcs[g].receptors)}
            lv = level_crossings(fcs[g], np.exp(-LEVEL_U[1:] ** 2))
            pk = np.array([runs[g][r]["peak_s"] for r in ids])
            rows = np.array([where[r] for r in ids])
            node_off[(slice(None), slice(None), 0, *g)] = pk[:, None] - lv[rows, :, 0]
            node_off[(slice(None), slice(None), 1, *g)] = lv[rows, :, 1] - pk[:, None]
        arrival, end = _threshold_edges(node_off, lo, wt, shape, res["peak_s"], res["peak_g_m3"], thr)
        res["arrival_s"] = np.where(mixed, arrival, res["arrival_s"])
        res["end_s"] = np.where(mixed, end, res["end_s"])
        mixed &= ~(np.isfinite(arrival) & np.isfinite(end))  # beyond the levels: from the kernel
    redo = np.flatnonzero(mixed.any(axis=0))
    if redo.size:
        for m in redo:
            _, one = kernel(phi[m], vel[m], disp[m], *_at_flow(axes[0], ln_u, ln_d, phi[m]))
            for k in MEMBER_FIELDS:
                res[k][:, m] = [one[r][k] for r in ids]
    return feats, thr, res


def _threshold_edges(node_off: np.ndarray, lo: list[np.ndarray], wt: list[np.ndarray], shape: tuple[int, ...],
                     peak_s: np.ndarray, peak_g_m3: np.ndarray, thr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Arrival and end [s] (receptor x member) where each member's curve crosses the threshold, from
    the nodes' curves at fixed fractions of their own peaks.

    ``node_off`` (receptor, level, side, *nodes): how long before (side 0) and after (side 1) its peak
    a node's curve is at exp(-u^2) of its peak, u = :data:`LEVEL_U` [1:] [s]. Offsets are interpolated
    multilinearly in the log factors on their logarithms (as the members' other values), then in u to
    the member's own u = sqrt(ln(peak / thr)): linear in u is exact where the curve is Gaussian about
    its peak (t - t_peak = sd sqrt(2) u), as every curve is near enough to a smooth peak. NaN where
    the member's peak is below the threshold or more than exp(LEVEL_U[-1]^2) times above it.
    """
    n_rec, n_lev = node_off.shape[:2]
    n_mem = peak_s.size if peak_s.ndim == 1 else peak_s.shape[1]
    acc = np.zeros((n_rec, n_lev, 2, n_mem))
    for w, at in _corners(wt, lo, shape, n_mem):
        v = node_off[:, :, :, at[0], at[1], at[2]]
        with np.errstate(divide="ignore", invalid="ignore"):
            acc += np.where(w > 0, w * np.log(np.where(v > 0, v, np.nan)), 0.0)
    off = np.concatenate([np.zeros((n_rec, 1, 2, n_mem)), np.exp(acc)], axis=1)  # u = 0: the peak itself
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.sqrt(np.log(peak_g_m3 / thr[:, None]))
    j = np.clip(np.searchsorted(LEVEL_U, u) - 1, 0, LEVEL_U.size - 2)
    a = (u - LEVEL_U[j]) / (LEVEL_U[j + 1] - LEVEL_U[j])
    r_idx, m_idx = np.indices(u.shape)
    lo_off, hi_off = off[r_idx, j, :, m_idx], off[r_idx, j + 1, :, m_idx]  # (receptor, member, side)
    d = (1.0 - a)[..., None] * lo_off + a[..., None] * hi_off
    ok = np.isfinite(u) & (u <= LEVEL_U[-1])
    return np.where(ok, peak_s - d[..., 0], np.nan), np.where(ok, peak_s + d[..., 1], np.nan)


def ensemble_forecast(net: RiverNetwork, release: Release, *, members: int = 1000, flow_cv: float = 0.2,
                      velocity_cv: float = 0.0, dispersion_factor: tuple[float, float] = (0.5, 2.0), seed: int = 0,
                      kinds: tuple[FeatureKind, ...] = ("station", "intake"), threshold_g_m3: float | None = None,
                      wind_ms: float = 0.0, keep_members: bool = False) -> xr.Dataset:
    """Monte Carlo forecast from one release: quantiles at every downstream receptor.

    Parameters
    ----------
    net : RiverNetwork
        A valid network.
    release : Release
        Where, what and how much (instantaneous or constant rate).
    members : int
        Number of members [-].
    flow_cv, velocity_cv : float
        Coefficients of variation of the flow and velocity factors [-] (lognormal, median 1).
    dispersion_factor : (float, float)
        Range of the log-uniform dispersion factor [-].
    seed : int
        Seed of the random generator (same seed, same members).
    kinds : tuple of str
        Receptor feature kinds.
    threshold_g_m3 : float, optional
        Threshold for every receptor [g/m3]; default the receptor's standard for the pollutant.
    wind_ms : float
        Along-stream 10 m wind [m/s] (floating pollutants).
    keep_members : bool
        Also return every member's values (receptor x member).

    Returns
    -------
    xarray.Dataset
        ``arrival_s``, ``peak_s``, ``end_s`` [s after the release start] and ``peak_g_m3`` [g/m3]
        over (receptor, quantile); a member whose plume never exceeds the threshold counts as
        arriving later than any time and as clear from the start (NaN where a quantile falls on
        such members);
        ``exceedance_probability`` [1] (NaN where no standard applies); the member factors.
    """
    import xarray as xr

    fac = sample_factors(members, flow_cv=flow_cv, velocity_cv=velocity_cv, dispersion_factor=dispersion_factor, seed=seed)
    feats, thr, res = ensemble_members(net, release, fac, kinds=kinds, threshold_g_m3=threshold_g_m3, wind_ms=wind_ms)
    q = np.asarray(QUANTILES)
    data: dict[str, Any] = {}
    units = {"arrival_s": "s", "peak_s": "s", "peak_g_m3": "g m-3", "end_s": "s"}
    for name in MEMBER_FIELDS:
        # a member that never exceeds the threshold arrives "never" (+inf) and is clear "always" (-inf)
        vals = np.where(np.isnan(res[name]), -np.inf if name == "end_s" else np.inf, res[name])
        qs = np.quantile(vals, q, axis=1, method=QUANTILE_METHOD).T if len(feats) else np.zeros((0, q.size))
        data[name] = (("receptor", "quantile"), np.where(np.isfinite(qs), qs, np.nan),
                      {"units": units[name], "long_name": f"{name} quantiles over members"})
        if keep_members:
            data[f"member_{name}"] = (("receptor", "member"), res[name], {"units": units[name]})
    with np.errstate(invalid="ignore"):
        exceed = np.where(np.isnan(thr), np.nan, np.mean(res["peak_g_m3"] >= thr[:, None], axis=1) if len(feats) else 0.0)
    data["exceedance_probability"] = ("receptor", exceed, {"units": "1", "long_name": "share of members whose peak reaches the threshold"})
    data["threshold_g_m3"] = ("receptor", thr, {"units": "g m-3", "long_name": "receptor threshold (NaN: 1% of each member's peak)"})
    for key, values in fac.items():
        data[key] = ("member", values, {"units": "1", "long_name": f"{key.replace('_', ' ')} of each member"})
    coords = {"receptor": np.array([f.id for f in feats], dtype=object),
              "kind": ("receptor", np.array([f.kind for f in feats], dtype=object)),
              "quantile": ("quantile", q, {"units": "1", "long_name": "P10, P50, P90"}),
              "member": ("member", np.arange(members), {"long_name": "ensemble member number", "units": "1"})}
    attrs = {"Conventions": "CF-1.8", "title": f"Monte Carlo forecast, {members} members",
             "source": "rivertrace hydrology.ensemble (transport kernel on factor nodes, log-interpolated per member)",
             "pollutant": release.pollutant.name, "decay_per_s": release.pollutant.decay_per_s,
             "release_reach": release.reach, "release_chainage_m": release.chainage_m,
             "release_mass_kg": release.total_mass_kg,
             "release_duration_s": release.duration_s or 0.0, "release_kind": "constant rate" if release.duration_s else "instantaneous",
             "flow_cv": flow_cv, "velocity_cv": velocity_cv, "dispersion_factor_range": list(map(float, dispersion_factor)),
             "seed": seed, "quantile_method": QUANTILE_METHOD, "edge_fraction_of_peak": EDGE_FRACTION_OF_PEAK,
             "time_reference": "seconds after the release starts",
             "release_start": release.start.isoformat() if release.start else None}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def _hm(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "-"
    m = round(seconds / 60)
    return f"{m // 60}h{m % 60:02d}"


def cmd_ensemble(args: argparse.Namespace, stream: Any = None) -> int:
    """Run ``rivertrace ensemble``: write the netCDF and print a quantile table (stdout by default)."""
    from .pollutants import pollutant
    from .units import per_day_to_per_s

    net = (getattr(args, "load_network", None) or load_valid)(args.network)
    if args.discharger:
        if args.reach is not None or args.chainage_m is not None:
            raise EnsembleError("give either --discharger or --reach/--chainage-m, not both")
        d = net.feature(args.discharger, "discharger")
        reach, chainage = d.reach, d.chainage_m
    elif args.reach is None or args.chainage_m is None:
        raise EnsembleError("give --discharger D, or --reach R with --chainage-m X")
    else:
        reach, chainage = args.reach, args.chainage_m
    decay = args.decay_per_day or 0.0
    if not decay >= 0:
        raise EnsembleError(f"--decay-per-day must not be negative, got {args.decay_per_day}")
    if not args.mass_kg > 0:
        raise EnsembleError(f"--mass-kg must be positive, got {args.mass_kg}")
    start = None
    if getattr(args, "start", None):
        try:
            start = datetime.fromisoformat(args.start)
        except ValueError as err:
            raise EnsembleError(f"--start {args.start!r}: not an ISO 8601 time") from err
        if start.tzinfo is None:
            raise EnsembleError(f"--start {args.start!r}: give a UTC offset (e.g. +08:00 or Z)")
        start = start.astimezone(UTC)
    pol = pollutant(args.pollutant, per_day_to_per_s(decay))
    if args.duration_s is not None:
        if not args.duration_s > 0:
            raise EnsembleError(f"--duration-s must be positive, got {args.duration_s}")
        release = Release(reach, chainage, pol, rate_kg_s=args.mass_kg / args.duration_s, duration_s=args.duration_s,
                          start=start)
    else:
        release = Release(reach, chainage, pol, mass_kg=args.mass_kg, start=start)
    ds = ensemble_forecast(net, release, members=args.members, flow_cv=args.flow_cv, velocity_cv=args.velocity_cv,
                           dispersion_factor=args.dispersion_factor, seed=args.seed,
                           kinds=tuple(args.kinds.split(",")), threshold_g_m3=args.threshold_mg_l, wind_ms=args.wind_ms)
    from .io.netcdf import add_receptor_coordinates, write_netcdf

    feats = [net.feature(str(r), str(k)) for r, k in zip(ds["receptor"].values, ds["kind"].values, strict=True)]  # type: ignore[arg-type]
    located = ds.assign_coords(receptor_reach=("receptor", np.array([f.reach for f in feats], dtype=object),
                                               {"long_name": "reach of the receptor"}),
                               receptor_chainage_m=("receptor", np.array([f.chainage_m for f in feats], float),
                                                    {"units": "m", "long_name": "chainage from the reach's upstream end"}))
    write_netcdf(add_receptor_coordinates(located, net), args.output)
    stream = stream or sys.stdout
    print(f"{args.members} members; arrival and peak as P10 / P50 / P90 after the release", file=stream)
    print(f"{'receptor':<16}{'arrival':>24}{'peak time':>24}{'peak mg/L P50':>15}{'P(exceed)':>11}", file=stream)
    for r in range(ds.sizes["receptor"]):
        arr = " / ".join(_hm(v) for v in ds["arrival_s"].values[r])
        pk = " / ".join(_hm(v) for v in ds["peak_s"].values[r])
        pe = ds["exceedance_probability"].values[r]
        print(f"{ds['receptor'].values[r]:<16}{arr:>24}{pk:>24}{ds['peak_g_m3'].values[r, 1]:>15.4g}"
              f"{'-' if np.isnan(pe) else f'{pe:.0%}':>11}", file=stream)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


__all__: Sequence[str] = ("EnsembleError", "cmd_ensemble", "ensemble_forecast",
                          "ensemble_members", "sample_factors")

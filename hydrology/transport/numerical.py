"""Numerical 1-D transport on the river network: finite volumes, transient storage, varying flow.

The second forecast engine and the independent reference for the analytic one
(:mod:`hydrology.transport.analytic`). On every reach below a release it solves the OTIS equations
(Bencala & Walters 1983; Runkel 1998, USGS WRIR 98-4018, eqs. 1-2)

    d(A C)/dt = -d(Q C)/dx + d/dx(A D dC/dx) + alpha A (Cs - C) - k A C + sources
    dCs/dt    = alpha (A / As) (C - Cs) - k Cs

with C the main-channel and Cs the storage-zone concentration [g/m3], on cells of length <= dx.

Scheme (operator splitting per step dt: half exchange, advection, dispersion, half exchange, decay):

1. Advection, explicit and conservative: face values by QUICKEST (Leonard 1979, eq. 39 for pure
   advection) bounded by the ULTIMATE universal limiter (Leonard 1991, figs. 10-11), at Courant
   number <= :data:`COURANT_MAX`. The scheme is third-order where the profile is smooth and TVD
   (no new extrema, no negative concentrations) where it is not; its leading truncation error is
   dispersive, not diffusive, so numerical dispersion is far below the first-order upwind value
   U dx (1 - Cr) / 2 and the grid can be much coarser than an upwind scheme needs.
2. Dispersion, backward Euler on one sparse system for the whole simulated network. OTIS itself
   uses Crank-Nicolson with centred advection (Runkel & Chapra 1993, Water Resour. Res. 29(1));
   here diffusion numbers D dt/dx2 are >> 1 and a release starts as mass in one or two cells, for
   which Crank-Nicolson rings (its amplification factor tends to -1 at high wavenumbers; Patankar
   1980, sec. 4.2) and gives negative concentrations. Backward Euler is L-stable and monotone (an
   M-matrix), and it keeps the first two temporal moments: its symbol 1/(1 + D k2 dt) has the same
   second derivative at k = 0 as exp(-D k2 dt), so each step adds exactly 2 D dt of variance (as
   does the three-point Laplacian, whose symbol is -k2 + O(k4)).
3. Storage exchange, exact: in each cell C - Cs relaxes at alpha (1 + A/As) while A C + As Cs is
   kept, applied over half a step before and after 1-2 (Strang splitting, second order in dt; a
   backward-Euler exchange inside step 2 was measured 6 % off in variance at dt = 110 s).
4. First-order decay, exact: C, Cs times exp(-k dt) (the same k in both zones); it commutes with
   the rest, so it adds no splitting error. Advection and dispersion commute on a reach of
   constant coefficients, so their Lie splitting costs nothing there.

A continuous release adds half of each step's mass before advection and half after, so the
release is centred in time; an instantaneous release is put in the cells at t = 0, shared between
the two cell centres around its chainage so that its centre of mass is exact.

Lakes (``fully_mixed`` reaches): one cell, the whole volume V = A L (constant when the flow varies:
the outlet, not the inflow, sets a lake's level), well mixed, with outflow Q:
V dC/dt = Q (Cin - C) - k V C, the kernel's transfer 1 / (1 + (s + k) tau), tau = V / Q = L / U. It
has no internal dispersion and no storage zone (the reach's dispersion and storage fields are
ignored). Each step integrates the tank exactly for the step's mean inflow flux (which comes from
the explicit advection above it; a lake fed by a lake takes that lake's outflow of the same step),
and what does not stay leaves through its outlet, so mass is conserved to round-off. The step is at
most :data:`LAKE_STEP_FRACTION` tau. No dispersion crosses a node at either end of a lake: the lake's
inflow is a Danckwerts flux outlet of the reach above, and its outflow a flux inlet to the reach
below (the kernel's junction assumption). The grid below a lake is sized as if the lake added no
variance: its outflow rises as fast as its inflow.

Network coupling: a junction node mixes fully, C = sum(Q_i C_i) / sum(Q_i), the denominator being
all the water that arrives (upstream reaches, including clean ones outside the simulated domain,
plus the node's inflow); every outgoing reach receives the node concentration, so a split divides
mass by flow. Water that arrives and does not leave (an outlet, a withdrawal between stated
discharges) carries its mass out of the system and is counted in ``mass_out``. Dispersion crosses
a junction through a node unknown Cn of zero volume (the dispersive fluxes into it sum to zero):
an outgoing reach exchanges g (Cn - C) with it, g = 2 A D / dx; an incoming reach exchanges
g (C - Cn / s), where s is its share of the water arriving at the node, since its own water has
concentration Cn / s there. In series (s = 1) this is plain continuity of C; at a confluence it
keeps the tributary's clean water from dispersing up the main stem (with continuity of C, a
station 28 m above a confluence that halves the concentration was measured 5 % low). Boundaries: water
entering at a headwater (or above the release, where the domain starts) is clean and no mass
disperses back across it (Danckwerts 1953); outlets are free outflow (dC/dx = 0). Only the release
reach and the reaches downstream of it are simulated: elsewhere C = 0 (back-dispersion above the
release reach's upstream node is neglected). Mass is conserved to round-off: cells + storage + out
+ decayed = released.

Grid rule: on each reach dx = max(PLUME_RESOLUTION sigma, min(CELL_PECLET D / U, sigma / MIN_CELLS_PER_SIGMA),
MIN_CELL_PECLET D / U), where sigma is the smallest standard deviation [m] the plume can have in
that reach (from the travel-time variance accumulated above it; in the release reach, at its first
receptor; a lake adds none, since its outflow rises as fast as its inflow): cell Peclet number
U dx / D <= :data:`CELL_PECLET`, or at least 1 / :data:`PLUME_RESOLUTION` cells per plume standard
deviation, whichever is coarser, since either keeps the error small where the plume is wide (at 5
and 14 km on a uniform channel the tests measure peak concentration within 0.2 % and peak time
within 0.02 % of the exact Gaussian puff, 671 cells over 30 km; a uniform 400 m grid is 17 % low);
but never fewer than :data:`MIN_CELLS_PER_SIGMA` cells per sigma near a release, where the cell
Peclet rule alone left 3-4 cells per sigma and peaks 4-5 % off the exact ones 200-500 m below a pulse
(12 cells: within 0.9 % in time and 1.7 % in concentration of the exact curves 200-500 m below a
pulse on Ruxi; the refinement study, ``NUMERICAL_CONVERGENCE.md``), down to cell Peclet number
:data:`MIN_CELL_PECLET`. The brief's U dx / 2 <= 0.05 D is the rule for first-order upwinding and
would cost 20 times the cells here. At least :data:`MIN_CELLS_PER_REACH` cells a reach (a lake: one);
when the simulated reaches would need more than :data:`MAX_CELLS` cells (the 1,000-reach case) dx
grows uniformly. The achieved maximum cell Peclet number is in the output attributes. dt is the
largest step with Courant <= COURANT_MAX in every cell at every flow of the run (``refine`` and
``courant`` of :func:`simulate` divide dx and set the Courant number, for refinement studies).

Receptors read the cells by linear interpolation; within half a cell of a reach's end they
extrapolate the reach's own profile to it (a station at chainage 0 below a confluence reads the
mixed water at the node, not the first cell's centre dx/2 further down).

Time-varying flow is quasi-steady: a hydrograph change is felt at once everywhere downstream
(kinematic-wave routing is out of scope), discharges are linear in time between hydrograph samples
and held beyond them. Area follows A = A0 (Q/Q0)^m with m from each reach's hydraulics
(:func:`area_exponent`); the storage-zone area As = beta A0 and the dispersion coefficient keep
their steady values. The solver advances the mass A C, so a change of area dilutes or concentrates
without creating or destroying mass.

References
----------
Bencala, K.E. and Walters, R.A. (1983) Simulation of solute transport in a mountain pool-and-riffle
stream: a transient storage model, Water Resour. Res. 19(3), 718-724.
Danckwerts, P.V. (1953) Continuous flow systems, Chem. Eng. Sci. 2(1), 1-13.
Leonard, B.P. (1979) A stable and accurate convective modelling procedure based on quadratic
upstream interpolation, Comput. Methods Appl. Mech. Eng. 19, 59-98.
Leonard, B.P. (1991) The ULTIMATE conservative difference scheme applied to unsteady
one-dimensional advection, Comput. Methods Appl. Mech. Eng. 88, 17-74.
Patankar, S.V. (1980) Numerical Heat Transfer and Fluid Flow, Hemisphere.
Runkel, R.L. and Chapra, S.C. (1993) An efficient numerical solution of the transient storage
equations for solute transport in small streams, Water Resour. Res. 29(1), 211-215.
Runkel, R.L. (1998) One-dimensional transport with inflow and storage (OTIS), USGS WRIR 98-4018.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike
from scipy.sparse.linalg import splu

from .. import empirical_hydraulics as _emp
from .. import hydraulics as _hyd
from ..exceptions import HydrologyError, UnknownElementError
from ..pollutants import SURFACE_VELOCITY_INDEX, WIND_DRIFT_FACTOR
from .analytic import EDGE_FRACTION_OF_PEAK, ReceptorForecast, path_velocity, receptor_thresholds, route_moments
from .closed_form import GRAMS_PER_KG

if TYPE_CHECKING:
    import xarray as xr

    from ..network import FeatureKind, RiverNetwork
    from ..reach_state import ReachState
    from .analytic import Release

#: largest Courant number Q dt / (A dx) of any cell [-] (ULTIMATE-QUICKEST is TVD up to 1)
COURANT_MAX = 0.9
#: cell Peclet number U dx / D below which a grid is fine enough anyway [-] (module docstring)
CELL_PECLET = 1.0
#: cell length as a share of the plume's standard deviation where the plume is already wide [-]
PLUME_RESOLUTION = 0.1
#: fewest cells per plume standard deviation where the cell Peclet rule is coarser [-] (refinement study)
MIN_CELLS_PER_SIGMA = 12.0
#: ... but never cells finer than this cell Peclet number [-] (a receptor a few metres below a release
#: must not make the whole reach fine)
MIN_CELL_PECLET = 0.25
#: fewest cells in a reach [-] (receptor interpolation and the TVD stencil need a few)
MIN_CELLS_PER_REACH = 8
#: largest time step as a share of a lake's residence time tau [-]: the tank is integrated exactly
#: for an inflow held constant over the step, so the error is that of lumping the inflow (second
#: order in dt / tau; two tanks in series: 7e-5 of the peak at 0.05, measured in the tests)
LAKE_STEP_FRACTION = 0.05
#: most cells in one run [-]: beyond it dx grows uniformly (a 1,000-reach run stays interactive)
MAX_CELLS = 40_000
#: most time records when ``record_every_s`` is not given [-]
MAX_RECORDS = 2000
#: most cells written to ``cell_concentration`` (every k-th cell) [-]
MAX_OUTPUT_CELLS = 500
#: area exponent m of A ~ Q^m for reaches whose velocity is stated: Manning, wide channel,
#: U ~ Q^0.4 (Leopold & Maddock 1953 report 0.34-0.4 at a station) so m = 0.6 [-]
WIDE_CHANNEL_AREA_EXPONENT = 0.6

Hydrograph = tuple[ArrayLike, ArrayLike]


class NumericalError(HydrologyError, ValueError):
    """The numerical engine cannot run as asked (bad hydrograph, unstable time step, no flow)."""


# ---------------------------------------------------------------------------------------- hydraulics
def _exp_manning(net: RiverNetwork, st: ReachState, idx: np.ndarray) -> np.ndarray:
    r = [net.reaches[st.ids[i]] for i in idx]
    geo = [np.array([getattr(x, k) for x in r], float) for k in ("bottom_width_m", "side_slope", "slope", "manning_n")]
    q = st.discharge_m3s[idx]
    u0 = np.asarray(_hyd.normal_flow(q, *geo).velocity_ms)
    u1 = np.asarray(_hyd.normal_flow(1.1 * q, *geo).velocity_ms)
    return 1.0 - np.log(u1 / u0) / np.log(1.1)


def _exp_hydraulic_geometry(net: RiverNetwork, st: ReachState, idx: np.ndarray) -> np.ndarray:
    # A = B H = a c Q^(b + f)  (Leopold & Maddock 1953)
    r = [net.reaches[st.ids[i]] for i in idx]
    return np.array([x.width_exp for x in r], float) + np.array([x.depth_exp for x in r], float)


def _exp_jobson(net: RiverNetwork, st: ReachState, idx: np.ndarray) -> np.ndarray:
    r = [net.reaches[st.ids[i]] for i in idx]
    q = st.discharge_m3s[idx]
    da = np.array([x.drainage_area_m2 for x in r], float)
    s = np.array([x.slope for x in r], float)
    qa = np.array([np.nan if x.mean_annual_discharge_m3s is None else x.mean_annual_discharge_m3s for x in r])
    qa = np.where(np.isnan(qa), q, qa)  # as reach_state does: Qa held at its steady value
    u0 = np.asarray(_emp.jobson_velocity(q, da, s, qa)[0])
    u1 = np.asarray(_emp.jobson_velocity(1.1 * q, da, s, qa)[0])
    return 1.0 - np.log(u1 / u0) / np.log(1.1)


def _exp_override(net: RiverNetwork, st: ReachState, idx: np.ndarray) -> np.ndarray:
    return np.full(len(idx), WIDE_CHANNEL_AREA_EXPONENT)


#: velocity method (``ReachState.velocity_method``) -> area exponent m of A = A0 (Q/Q0)^m
AREA_EXPONENT: dict[str, Callable[[RiverNetwork, ReachState, np.ndarray], np.ndarray]] = {
    "manning": _exp_manning,
    "hydraulic_geometry": _exp_hydraulic_geometry,
    "jobson": _exp_jobson,
    "override": _exp_override,
}


def area_exponent(net: RiverNetwork, state: ReachState | None = None, reaches: ArrayLike | None = None) -> np.ndarray:
    """Exponent m of the flow area A = A0 (Q/Q0)^m of every reach (aligned with ``state.ids``).

    m = 1 - d ln U / d ln Q, by finite difference between Q0 and 1.1 Q0 for Manning (normal depth
    in the trapezoid, Chow 1959) and Jobson (1996) reaches, b + f for hydraulic geometry
    (Leopold & Maddock 1953), and :data:`WIDE_CHANNEL_AREA_EXPONENT` where the velocity is stated.
    Hydraulic-geometry coefficients fitted downstream (bankfull, across reaches, as in
    :mod:`hydrology.synthetic`) give b + f ~ 0.8-0.9, larger than at-a-station values (Leopold &
    Maddock 1953: b = 0.26, f = 0.40, m = 0.66), so a flood wave then speeds the plume too little.

    Parameters
    ----------
    net : RiverNetwork
        A valid network.
    state : ReachState, optional
        Its steady state (default the network's cached one).
    reaches : array_like of int, optional
        Indices into ``state.ids`` to compute (default all).

    Returns
    -------
    m : ndarray
        Area exponent [-], one per reach asked for.
    """
    st = state if state is not None else net.reach_state()
    sel = np.arange(len(st.ids)) if reaches is None else np.asarray(reaches, dtype=int)
    m = np.full(sel.size, np.nan)
    for method, fn in AREA_EXPONENT.items():
        here = np.flatnonzero(st.velocity_method[sel] == method)
        if here.size:
            m[here] = fn(net, st, sel[here])
    bad = np.flatnonzero(~np.isfinite(m))
    if bad.size:
        i = sel[bad[0]]
        raise NumericalError(f"reach {st.ids[i]!r}: no area exponent for velocity method {st.velocity_method[i]!r}")
    return m


# ---------------------------------------------------------------------------------------- advection
def ultimate_quickest(c_uu: np.ndarray, c_u: np.ndarray, c_d: np.ndarray, courant: np.ndarray) -> np.ndarray:
    """Face concentration for explicit advection, QUICKEST with the ULTIMATE limiter.

    QUICKEST (Leonard 1979, pure advection): C_f = (C_U + C_D)/2 - c (C_D - C_U)/2
    - (1 - c^2)(C_D - 2 C_U + C_UU)/6. ULTIMATE (Leonard 1991): in normalised variables
    Ĉ = (C - C_UU)/(C_D - C_UU), where 0 <= Ĉ_U <= 1 the face value is bounded to
    Ĉ_U <= Ĉ_f <= min(1, Ĉ_U / c); elsewhere (a local extremum) C_f = C_U.

    Parameters
    ----------
    c_uu, c_u, c_d : ndarray
        Concentration two cells upwind, upwind and downwind of the face [g/m3].
    courant : ndarray
        Courant number u dt / dx of the upwind cell [-], in (0, 1].

    Returns
    -------
    c_face : ndarray
        Face concentration [g/m3].
    """
    delta = c_d - c_uu
    with np.errstate(divide="ignore", invalid="ignore"):
        quick = 0.5 * (c_u + c_d) - 0.5 * courant * (c_d - c_u) - (1.0 - courant**2) / 6.0 * (c_d - 2.0 * c_u + c_uu)
        chat = (c_u - c_uu) / delta
        fhat = np.minimum(np.maximum((quick - c_uu) / delta, chat), np.minimum(1.0, chat / courant))
        return np.where((chat >= 0.0) & (chat <= 1.0), c_uu + fhat * delta, c_u)


# ---------------------------------------------------------------------------------------- grid
@dataclass(frozen=True, slots=True)
class _Grid:
    """Cells of the simulated reaches (reaches contiguous, in topological order) and their nodes."""

    reach_ids: tuple[str, ...]
    sidx: np.ndarray          # index of each simulated reach in the ReachState arrays
    ncell: np.ndarray         # cells per reach
    dx: np.ndarray            # cell length per reach [m]
    first: np.ndarray         # first cell of each reach
    last: np.ndarray          # last cell of each reach
    cell_reach: np.ndarray    # reach (local index) of each cell
    x_m: np.ndarray           # cell-centre chainage [m]
    node_ids: tuple[str, ...]
    from_node: np.ndarray     # local node index of each reach's upstream node
    to_node: np.ndarray       # local node index of each reach's downstream node
    has_out: np.ndarray       # node has a simulated reach leaving it
    lake: np.ndarray          # reach is a fully mixed lake (one cell, no dispersion, no storage)

    @property
    def n(self) -> int:
        return int(self.cell_reach.size)


def _plume_sigma_m(net: RiverNetwork, st: ReachState, release: Release, u: np.ndarray,
                   sidx: np.ndarray) -> np.ndarray:
    """Smallest standard deviation [m] of an instantaneous plume within each simulated reach.

    From the travel-time variance at the reach's upstream end, sum(2 D L / U^3) over the path
    (dispersion only: storage would widen the plume), times the reach velocity; where two paths
    meet the smaller is kept. In the release reach it is taken at the first located feature below
    the release or, without one, at the reach's end.
    """
    var_end: dict[str, float] = {}
    sig = np.zeros(sidx.size)
    lake = st.lake_mask()
    r0 = release.reach
    for j, i in enumerate(sidx):
        rid = st.ids[i]
        rate = 2.0 * st.dispersion_m2s[i] / u[i] ** 3  # travel-time variance per metre [s2/m]
        if lake[i]:
            # a stirred tank adds tau^2 to the variance but passes its inflow's sharpest feature on
            # undiminished in time scale: its outflow rises as fast as its inflow does (exp(-t/tau)
            # convolved with a short input), so the grid below must still resolve the narrow input
            rate = 0.0
        if rid == r0:
            below = [f.chainage_m for f in net.iter_features() if f.reach == rid and f.chainage_m > release.chainage_m]
            near = min(below, default=st.length_m[i]) - release.chainage_m
            sig[j] = u[i] * math.sqrt(rate * max(near, 0.0))
            var_end[rid] = rate * (st.length_m[i] - release.chainage_m)
            continue
        ups = [var_end[x] for x in net.upstream_reaches(rid) if x in var_end]
        var0 = min(ups) if ups else 0.0
        sig[j] = u[i] * math.sqrt(var0)
        var_end[rid] = var0 + rate * st.length_m[i]
    return sig


def _build_grid(net: RiverNetwork, st: ReachState, release: Release, u: np.ndarray, dx_m: float | None,
                refine: float = 1.0) -> _Grid:
    active = {release.reach} | net.all_downstream(release.reach)
    sidx = np.array([i for i, rid in enumerate(st.ids) if rid in active], dtype=int)
    length = st.length_m[sidx]
    lake = st.lake_mask()[sidx]
    if dx_m is None:
        # the finer of the two rules is not needed: either one bounds the error (module docstring)
        sigma = _plume_sigma_m(net, st, release, u, sidx)
        d_over_u = st.dispersion_m2s[sidx] / u[sidx]
        with np.errstate(divide="ignore"):
            cap = np.where(sigma > 0, sigma / MIN_CELLS_PER_SIGMA, np.inf)
        target = np.maximum.reduce([PLUME_RESOLUTION * sigma, np.minimum(CELL_PECLET * d_over_u, cap),
                                    MIN_CELL_PECLET * d_over_u]) / refine
        ncell = np.maximum(np.ceil(length / target), MIN_CELLS_PER_REACH)
        river = ~lake
        if ncell[river].sum() > MAX_CELLS * refine:  # coarsen uniformly: every reach's dx grows by the same factor
            ncell = np.maximum(np.floor(ncell * MAX_CELLS * refine / ncell[river].sum()), MIN_CELLS_PER_REACH)
    else:
        if not (dx_m > 0 and math.isfinite(dx_m)):
            raise NumericalError(f"dx_m must be positive and finite, got {dx_m}")
        ncell = np.maximum(np.ceil(length / dx_m), 1)
    ncell = np.where(lake, 1, ncell).astype(int)  # a lake is one well-mixed volume
    dx = length / ncell
    first = np.concatenate(([0], np.cumsum(ncell)[:-1]))
    last = first + ncell - 1
    cell_reach = np.repeat(np.arange(sidx.size), ncell)
    x_m = (np.arange(cell_reach.size) - first[cell_reach] + 0.5) * dx[cell_reach]
    ids = tuple(st.ids[i] for i in sidx)
    node_ids: dict[str, int] = {}
    for rid in ids:
        for nd in (net.reaches[rid].from_node, net.reaches[rid].to_node):
            node_ids.setdefault(nd, len(node_ids))
    fn = np.array([node_ids[net.reaches[r].from_node] for r in ids], dtype=int)
    tn = np.array([node_ids[net.reaches[r].to_node] for r in ids], dtype=int)
    has_out = np.bincount(fn, minlength=len(node_ids)) > 0
    return _Grid(ids, sidx, ncell, dx, first, last, cell_reach, x_m, tuple(node_ids), fn, tn, has_out, lake)


def _locate(g: _Grid, reach_local: int, chainage_m: float, extrapolate: bool = False) -> tuple[int, int, float]:
    """Two cells and the weight of the second that linearly interpolate at a chainage.

    Within half a cell of either end of a reach, ``extrapolate`` continues the line through the two
    end cells to the chainage (a receptor reads the reach's own profile, which is smooth up to its
    ends: below a confluence it is the mixed water's; without it a station at chainage 0 would read
    the first cell's centre, dx/2 downstream). Otherwise (a release) the nearest cell takes it all.
    """
    n = int(g.ncell[reach_local])
    s = chainage_m / g.dx[reach_local] - 0.5
    if n == 1:
        return int(g.first[reach_local]), int(g.first[reach_local]), 0.0
    j0 = int(np.clip(np.floor(s), 0, n - 2))
    w = float(s - j0) if extrapolate else float(np.clip(s - j0, 0.0, 1.0))
    return int(g.first[reach_local] + j0), int(g.first[reach_local] + j0 + 1), w


# ---------------------------------------------------------------------------------------- flows
def _hydrograph_arrays(key: str, hyd: Hydrograph) -> tuple[np.ndarray, np.ndarray]:
    try:
        t, q = (np.asarray(v, dtype=float).ravel() for v in hyd)
    except (TypeError, ValueError) as err:
        raise NumericalError(f"hydrograph {key!r}: expected (times_s, discharge_m3s) arrays") from err
    if t.size == 0 or t.size != q.size:
        raise NumericalError(f"hydrograph {key!r}: {t.size} times and {q.size} discharges")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(q))):
        raise NumericalError(f"hydrograph {key!r}: times and discharges must be finite")
    if np.any(np.diff(t) <= 0):
        raise NumericalError(f"hydrograph {key!r}: times must increase strictly")
    return t, q


def _split_hydrographs(net: RiverNetwork, hydrographs: Mapping[str, Hydrograph] | None
                       ) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Sort hydrograph keys into node inflows and reach discharges ("node:"/"reach:" prefixes allowed)."""
    nodes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    reaches: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for key, hyd in (hydrographs or {}).items():
        kind, _, ident = key.partition(":") if key.startswith(("node:", "reach:")) else ("", "", key)
        in_n, in_r = ident in net.nodes, ident in net.reaches
        if kind == "node" or (not kind and in_n and not in_r):
            if not in_n:
                raise UnknownElementError(f"hydrograph {key!r}: unknown node {ident!r}")
            nodes[ident] = _hydrograph_arrays(key, hyd)
        elif kind == "reach" or (not kind and in_r and not in_n):
            if not in_r:
                raise UnknownElementError(f"hydrograph {key!r}: unknown reach {ident!r}")
            reaches[ident] = _hydrograph_arrays(key, hyd)
        elif in_n and in_r:
            raise NumericalError(f"hydrograph {key!r}: both a node and a reach have this id; "
                                 f"write 'node:{ident}' or 'reach:{ident}'")
        else:
            raise UnknownElementError(f"hydrograph {key!r}: no node or reach has this id")
    return nodes, reaches


def _flow_knots(net: RiverNetwork, st: ReachState, g: _Grid, hyd_nodes: Mapping[str, tuple[np.ndarray, np.ndarray]],
                hyd_reaches: Mapping[str, tuple[np.ndarray, np.ndarray]], t_end_s: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Discharge of the simulated reaches and arriving water at their nodes, at hydrograph knots.

    Quasi-steady: a change of inflow at a node is shared among the reaches leaving it in
    proportion to their steady discharge and passed on downstream at once; a reach hydrograph
    replaces that reach's discharge and its change is passed on the same way.

    Returns
    -------
    knots : ndarray (K,)
        Times [s] (0 and t_end_s included; K = 1 for steady flow).
    q : ndarray (K, n_reaches)
        Discharge of each simulated reach [m3/s].
    arriving : ndarray (K, n_nodes)
        Water arriving at each node of the simulated reaches [m3/s] (upstream reaches + inflow).
    """
    ts = [t for t, _ in (*hyd_nodes.values(), *hyd_reaches.values())]
    knots = np.unique(np.clip(np.concatenate([[0.0, t_end_s], *ts]), 0.0, t_end_s)) if ts else np.zeros(1)
    q0 = st.discharge_m3s
    q = np.repeat(q0[None, :], knots.size, axis=0)
    zero = np.zeros(knots.size)
    extra = {nd: np.interp(knots, t, qh) for nd, (t, qh) in hyd_nodes.items()}
    if ts:
        _propagate(net, st, extra, hyd_reaches, knots, q)
    qa = q[:, g.sidx]
    bad = np.argwhere(~(qa > 0))
    if bad.size:
        k, j = bad[0]
        raise NumericalError(f"reach {g.reach_ids[j]!r}: discharge {qa[k, j]} m3/s at t = {knots[k]} s "
                             f"is not positive under the given hydrographs")
    arriving = np.zeros((knots.size, len(g.node_ids)))
    for j, nd in enumerate(g.node_ids):
        arriving[:, j] = net.inflows.get(nd, 0.0) + extra.get(nd, zero)
        for rid in net.reaches_into(nd):
            arriving[:, j] += q[:, st.index[rid]]
    return knots, qa, arriving


def _propagate(net: RiverNetwork, st: ReachState, extra: Mapping[str, np.ndarray],
               hyd_reaches: Mapping[str, tuple[np.ndarray, np.ndarray]], knots: np.ndarray, q: np.ndarray) -> None:
    """Add hydrograph changes to the steady discharges ``q`` (K x reaches) in place, downstream at once."""
    q0 = st.discharge_m3s
    out_sum: dict[str, float] = {}
    for rid in st.ids:
        nd = net.reaches[rid].from_node
        out_sum[nd] = out_sum.get(nd, 0.0) + q0[st.index[rid]]
    delta_in: dict[str, np.ndarray] = {}
    zero = np.zeros(knots.size)
    for i, rid in enumerate(st.ids):
        r = net.reaches[rid]
        if rid in hyd_reaches:
            t, qh = hyd_reaches[rid]
            d = np.interp(knots, t, qh) - q0[i]
        else:
            d = (extra.get(r.from_node, zero) + delta_in.get(r.from_node, zero)) * (q0[i] / out_sum[r.from_node])
        delta_in[r.to_node] = delta_in.get(r.to_node, zero) + d
        q[:, i] += d


# ---------------------------------------------------------------------------------------- solver
@dataclass(frozen=True, slots=True)
class _Transport:
    """Per-reach constants turning a discharge into the transport area and conductances."""

    q0: np.ndarray          # steady discharge [m3/s]
    area0: np.ndarray       # steady flow area [m2]
    m: np.ndarray           # area exponent [-]
    vfac: np.ndarray        # pollutant velocity / water velocity [-]
    drift: np.ndarray       # wind drift [m/s]
    disp: np.ndarray        # dispersion [m2/s]
    alpha: np.ndarray       # storage exchange [1/s] (0 without storage)
    vs: np.ndarray          # storage-zone volume of each cell [m3]

    def area(self, q: np.ndarray) -> np.ndarray:
        """Transport area Q / u_pollutant [m2] at discharge q [m3/s] (water area for dissolved matter)."""
        water = self.area0 * (q / self.q0) ** self.m
        return q / (self.vfac * q / water + self.drift)


class _Stepper:
    """One flow state: Courant numbers, exchange factors and the factorised dispersion matrix."""

    def __init__(self, g: _Grid, tr: _Transport, q: np.ndarray, arriving: np.ndarray, dt: float) -> None:
        area = tr.area(q)
        rc = g.cell_reach
        self.q = q
        self.qcell = q[rc]
        self.vol = area[rc] * g.dx[rc]
        # storage exchange over half a step, exactly: C - Cs relaxes at alpha (1 + V/Vs) while
        # V C + Vs Cs stays (the local two-zone solution of the OTIS equations)
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(tr.vs > 0, tr.alpha[rc] * (1.0 + self.vol / tr.vs), 0.0)
        self.relax = np.exp(-0.5 * dt * rate)
        self.has_storage = bool(np.any(tr.vs > 0))
        n, nn = g.n, len(g.node_ids)
        inner = np.flatnonzero(np.diff(rc) == 0)  # cell i linked to cell i + 1 of the same reach
        cond_r = area * tr.disp / g.dx
        # junction: node unknown Cn (mixed water, zero volume). The simulated water is a share s of
        # all that arrives (the rest, clean, comes from outside the domain or a lateral inflow), so
        # an incoming reach's own water has Cn / s at the node and its flux is g (C - Cn / s); an
        # outgoing reach carries mixed water, g (Cn - C). s = 1 in series: plain continuity.
        # no dispersion crosses a node where a lake begins or ends (a tank has no gradient to
        # disperse along: its inflow is a Danckwerts flux inlet, its outflow a flux source)
        lake_node = _lake_nodes(g)
        jn = np.flatnonzero(g.has_out[g.to_node] & ~lake_node[g.to_node])
        jo = np.flatnonzero(np.isin(g.from_node, g.to_node) & ~lake_node[g.from_node])
        s_act = np.bincount(g.to_node, q, nn) / arriving
        # directed links p -> q with flux gp Cp - gq Cq (column sums vanish: mass is conserved)
        p = np.concatenate([inner, g.last[jn], n + g.from_node[jo]])
        r = np.concatenate([inner + 1, n + g.to_node[jn], g.first[jo]])
        gp = dt * np.concatenate([cond_r[rc[inner]], 2.0 * cond_r[jn], 2.0 * cond_r[jo]])
        gq = dt * np.concatenate([cond_r[rc[inner]], 2.0 * cond_r[jn] / s_act[g.to_node[jn]], 2.0 * cond_r[jo]])
        size = n + nn
        diag = np.concatenate([self.vol, np.zeros(nn)]) + np.bincount(p, gp, size) + np.bincount(r, gq, size)
        used = np.flatnonzero(diag > 0)  # node unknowns without links drop out
        pos = np.full(size, -1)
        pos[used] = np.arange(used.size)
        rows = np.concatenate([pos[used], pos[p], pos[r]])
        cols = np.concatenate([pos[used], pos[r], pos[p]])
        mat = sp.csc_matrix((np.concatenate([diag[used], -gq, -gp]), (rows, cols)), shape=(used.size, used.size))
        self.lu = splu(mat)
        self.n_unknowns = used.size
        self.dt = dt


def _lake_nodes(g: _Grid) -> np.ndarray:
    """True for every node at either end of a lake reach."""
    out = np.zeros(len(g.node_ids), bool)
    out[g.from_node[g.lake]] = True
    out[g.to_node[g.lake]] = True
    return out


def _lake_levels(g: _Grid) -> list[np.ndarray]:
    """Lake reaches (local indices) grouped so that a lake fed by another lake comes in a later group."""
    depth = np.zeros(len(g.reach_ids), int)
    for j in np.flatnonzero(g.lake):  # local order is topological
        above = np.flatnonzero(g.lake & (g.to_node == g.from_node[j]))
        depth[j] = 1 + (int(depth[above].max()) if above.size else 0)
    return [np.flatnonzero(depth == d) for d in range(1, int(depth.max(initial=0)) + 1)]


def _lake_outflow(c0: np.ndarray, vol: np.ndarray, q: np.ndarray, flux_in: np.ndarray, dt: float) -> np.ndarray:
    """Mean outflow [g/s] of stirred tanks over a step, exactly, for a constant inflow flux.

    V dC/dt = F - Q C: C(dt) = F/Q + (C0 - F/Q) exp(-Q dt / V), and what does not stay leaves,
    F - V (C(dt) - C0) / dt (so the tank's mass is V C(dt) after the step, to round-off).
    """
    ceq = flux_in / q
    c1 = ceq + (c0 - ceq) * np.exp(-dt * q / vol)
    return flux_in - vol * (c1 - c0) / dt


def _exchange(conc: np.ndarray, cs: np.ndarray, vol: np.ndarray, vs: np.ndarray, relax: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """Exact main-channel/storage exchange: the difference decays by ``relax``, total mass is kept."""
    diff = (conc - cs) * relax
    mixed = (vol * conc + vs * cs + vs * diff) / (vol + vs)
    return mixed, np.where(vs > 0, mixed - diff, 0.0)


def _step_sizes(g: _Grid, tr: _Transport, q_knots: np.ndarray, t_end_s: float, dt_s: float | None,
                record_every_s: float | None, courant: float = COURANT_MAX) -> tuple[float, int, int]:
    """Time step [s], number of steps and steps per record, with Courant <= ``courant`` throughout.

    With hydrographs the bound is the largest discharge of the run through the smallest area of
    the run (safe when the flow jumps within a step; for a dam tripling the flow it is 3x stricter
    than the steady bound).
    """
    areas = np.array([tr.area(q) for q in q_knots])
    # worst case: the largest discharge through the smallest area seen during the run
    speed = q_knots.max(axis=0) / areas.min(axis=0)
    # a lake's tank is integrated exactly over a step, but with its inflow held at the step's mean,
    # so that its step is bounded by LAKE_STEP_FRACTION of its residence time instead
    dt_max = float(np.min(np.where(g.lake, LAKE_STEP_FRACTION, courant) * g.dx / speed))
    if dt_s is not None:
        if not (dt_s > 0 and math.isfinite(dt_s)):
            raise NumericalError(f"dt_s must be positive and finite, got {dt_s}")
        if dt_s > COURANT_MAX * float(np.min(g.dx / speed)):  # the stability bound, not the chosen default
            dt_max = COURANT_MAX * float(np.min(g.dx / speed))
            j = int(np.argmin(g.dx / speed))
            raise NumericalError(f"dt_s = {dt_s} s gives Courant number {dt_s * speed[j] / g.dx[j]:.3f} > "
                                 f"{COURANT_MAX} on reach {g.reach_ids[j]!r}; use dt_s <= {dt_max:.4g} s")
        dt_max = dt_s
    if record_every_s is not None:
        if not (record_every_s > 0 and math.isfinite(record_every_s)):
            raise NumericalError(f"record_every_s must be positive and finite, got {record_every_s}")
        per = max(1, math.ceil(record_every_s / dt_max - 1e-9))
        dt = record_every_s / per
        n_steps = per * max(1, math.ceil(t_end_s / record_every_s - 1e-9))
    else:
        n_steps = max(1, math.ceil(t_end_s / dt_max))
        dt = t_end_s / n_steps
        per = max(1, math.ceil(n_steps / MAX_RECORDS))
        n_steps = per * math.ceil(n_steps / per)
    return dt, n_steps, per


def simulate(net: RiverNetwork, release: Release, *, t_end_s: float, dt_s: float | None = None,
             dx_m: float | None = None, kinds: tuple[FeatureKind, ...] = ("station", "intake"),
             hydrographs: Mapping[str, Hydrograph] | None = None, record_every_s: float | None = None,
             threshold_g_m3: float | None = None, wind_ms: float = 0.0, state: ReachState | None = None,
             refine: float = 1.0, courant: float = COURANT_MAX) -> xr.Dataset:
    """Simulate a release on the network with the numerical engine.

    Parameters
    ----------
    net : RiverNetwork
        A valid network.
    release : Release
        Instantaneous (mass M [kg] put at the chainage at t = 0, shared between the two nearest
        cell centres so its centre of mass is exact), continuous (rate [kg/s] for duration [s]) or
        a rate curve (linear between samples; each step adds the exact mass of its interval). An
        inflow concentration curve is refused (:class:`NumericalError`).
    t_end_s : float
        Simulated time after the release start [s]; the run covers at least this.
    dt_s : float, optional
        Time step [s]; default the largest with Courant <= :data:`COURANT_MAX` (a larger one is refused).
    dx_m : float, optional
        Largest cell length [m]; default the rule in the module docstring.
    kinds : tuple of str
        Feature kinds reported as receptors (those downstream of the release).
    hydrographs : mapping, optional
        ``{node_id: (times_s, extra_inflow_m3s)}`` (inflow added at a node, e.g. a dam release,
        [s], [m3/s]) and/or ``{reach_id: (times_s, discharge_m3s)}`` (the reach's discharge);
        prefix a key with ``node:`` or ``reach:`` when a node and a reach share an id.
    record_every_s : float, optional
        Output interval [s]; default at most :data:`MAX_RECORDS` records.
    threshold_g_m3 : float, optional
        Arrival/end threshold [g/m3] stored for :func:`summarize` (default each receptor's standard,
        as :func:`hydrology.transport.analytic.forecast` chooses it).
    wind_ms : float
        Along-stream 10 m wind [m/s] (floating pollutants).
    state : ReachState, optional
        Steady reach state (default the network's cached one).
    refine : float
        Divides the default cell length [-] (2: cells half as long); for refinement studies.
    courant : float
        Largest Courant number of the default time step [-], at most :data:`COURANT_MAX`.

    Returns
    -------
    xr.Dataset
        ``concentration(time, receptor)`` [g m-3], ``peak_time(receptor)`` [s] and
        ``peak_concentration(receptor)`` [g m-3] over every step, ``cell_concentration(time, cell)`` [g m-3] (every
        k-th cell of the simulated reaches, at most :data:`MAX_OUTPUT_CELLS`), ``mass_in_system``,
        ``mass_out``, ``mass_released``, ``mass_decayed`` (time) [kg], ``discharge(time, flow_reach)``
        [m3 s-1]; time in seconds since the release start (CF-1.8).

    Raises
    ------
    NumericalError
        A bad hydrograph, a non-positive discharge, an unstable ``dt_s``, an inflow concentration
        curve, a bad ``refine`` or ``courant``.
    ForecastError, UnknownElementError
        A release off its reach, an unknown reach.
    """
    if not (t_end_s > 0 and math.isfinite(t_end_s)):
        raise NumericalError(f"t_end_s must be positive and finite, got {t_end_s}")
    if release.is_boundary:
        raise NumericalError("the numerical engine takes releases (a mass, a rate, a rate curve), not an inflow "
                             "concentration curve: use the analytic engine for an observed boundary curve")
    st = state if state is not None else net.reach_state()
    routed = route_moments(net, st, release.reach, release.chainage_m, release.pollutant, kinds, wind_ms)
    routed.sort(key=lambda r: (r[3], r[2]))
    u0, beta = path_velocity(st, release.pollutant, wind_ms)
    if not (refine > 0 and math.isfinite(refine)):
        raise NumericalError(f"refine must be positive and finite, got {refine}")
    if not (0 < courant <= COURANT_MAX):
        raise NumericalError(f"courant must be in (0, {COURANT_MAX}], got {courant}")
    g = _build_grid(net, st, release, u0, dx_m, refine)
    s = g.sidx
    beta = np.where(st.lake_mask(), 0.0, beta)  # a lake has no storage zone: it is all one mixed volume
    alpha = np.where(beta[s] > 0, st.storage_exchange_per_s[s], 0.0)
    bad = np.flatnonzero(~(alpha >= 0) | ~np.isfinite(alpha))
    if bad.size:
        raise NumericalError(f"reach {g.reach_ids[bad[0]]!r}: storage ratio {beta[s][bad[0]]} needs a "
                             f"storage_exchange_per_s, got {st.storage_exchange_per_s[s][bad[0]]}")
    floating = release.pollutant.behaviour == "floating"
    # a lake's volume is set by its outlet, not by its inflow: m = 0, so tau = V / Q shortens as Q grows
    tr = _Transport(q0=st.discharge_m3s[s], area0=st.area_m2[s], m=np.where(g.lake, 0.0, area_exponent(net, st, s)),
                    vfac=np.full(s.size, 1.0 / SURFACE_VELOCITY_INDEX if floating else 1.0),
                    drift=np.full(s.size, WIND_DRIFT_FACTOR * wind_ms if floating else 0.0),
                    disp=np.where(g.lake, 0.0, st.dispersion_m2s[s]), alpha=alpha,
                    vs=(beta[s] * st.area_m2[s] * g.dx)[g.cell_reach])
    hyd_nodes, hyd_reaches = _split_hydrographs(net, hydrographs)
    knots, q_knots, arriving = _flow_knots(net, st, g, hyd_nodes, hyd_reaches, t_end_s)
    if np.any(~(np.array([tr.area(q) for q in q_knots]) > 0)):
        raise NumericalError(f"an upstream wind of {wind_ms} m/s stops the floating plume")
    dt, n_steps, per = _step_sizes(g, tr, q_knots, t_end_s, dt_s, record_every_s, courant)
    n_rec = n_steps // per + 1

    # receptors and release, as cell interpolation weights
    local = {rid: j for j, rid in enumerate(g.reach_ids)}
    rec = [_locate(g, local[f.reach], f.chainage_m, extrapolate=True) for f, *_ in routed]
    ri0 = np.array([r[0] for r in rec], dtype=int)
    ri1 = np.array([r[1] for r in rec], dtype=int)
    rw = np.array([r[2] for r in rec], dtype=float)
    s0, s1, sw = _locate(g, local[release.reach], release.chainage_m)
    src_cells, src_w = np.array([s0, s1]), np.array([1.0 - sw, sw])
    out_cells = np.arange(0, g.n, max(1, math.ceil(g.n / MAX_OUTPUT_CELLS)))

    # stencil: C_ext = [cells, ghost above each reach, ghost below each reach]
    n, nr = g.n, len(g.reach_ids)
    i_uu = np.arange(n) - 1
    i_uu[g.first] = n + np.arange(nr)
    i_d = np.arange(n) + 1
    i_d[g.last] = n + nr + np.arange(nr)
    nn = len(g.node_ids)
    has_in = np.bincount(g.to_node, minlength=nn) > 0
    lake_node = _lake_nodes(g)
    lake_levels = _lake_levels(g)

    def flow_at(t: float) -> tuple[np.ndarray, np.ndarray]:
        if knots.size == 1:
            return q_knots[0], arriving[0]
        k = int(np.clip(np.searchsorted(knots, t, side="right") - 1, 0, knots.size - 2))
        w = min(max((t - knots[k]) / (knots[k + 1] - knots[k]), 0.0), 1.0)
        return q_knots[k] + w * (q_knots[k + 1] - q_knots[k]), arriving[k] + w * (arriving[k + 1] - arriving[k])

    q, arr = flow_at(0.0)
    stp = _Stepper(g, tr, q, arr, dt)
    den = np.maximum(arr, np.bincount(g.from_node, q, nn))
    conc = np.zeros(n)
    cs = np.zeros(n)
    released = out = decayed = 0.0
    source = release.source_history()  # a box or a measured rate curve: mass added per step below

    tj, jv = (np.array([x[i] for x in source.jumps], float) for i in (0, 1))
    tk, kv = (np.array([x[i] for x in source.kinks], float) for i in (0, 1))

    def released_by(t: float) -> float:  # mass [g] a rate history has released by time t
        return GRAMS_PER_KG * float(jv @ np.maximum(t - tj, 0.0) + kv @ np.maximum(t - tk, 0.0) ** 2 / 2.0)

    if release.mass_kg is not None:
        released = release.mass_kg * GRAMS_PER_KG
        np.add.at(conc, src_cells, released * src_w / stp.vol[src_cells])  # the two cells may be one
    decay = math.exp(-release.pollutant.decay_per_s * dt)

    rec_c = np.zeros((n_rec, ri0.size))
    rec_cell = np.zeros((n_rec, out_cells.size))
    rec_mass = np.zeros((n_rec, 4))
    rec_q = np.zeros((n_rec, nr))

    def at_receptors() -> np.ndarray:
        # (an extrapolation to a reach end can dip below 0 on a steep front: clipped)
        return np.maximum(conc[ri0] * (1.0 - rw) + conc[ri1] * rw, 0.0)

    def record(k: int) -> None:
        rec_c[k] = at_receptors()
        rec_cell[k] = conc[out_cells]
        rec_mass[k] = (stp.vol @ conc + tr.vs @ cs, out, released, decayed)
        rec_q[k] = stp.q

    record(0)
    # every step's highest value at each receptor, with the steps before and after it, so that the
    # peak does not depend on the record interval (a long run keeps at most MAX_RECORDS records)
    peak = _PeakTracker(rec_c[0])
    for step in range(n_steps):
        t0, t1 = step * dt, (step + 1) * dt
        added = released_by(t1) - released_by(t0) if release.mass_kg is None else 0.0
        if added:  # half before advection, half after: the step's release is centred in time
            np.add.at(conc, src_cells, 0.5 * added * src_w / stp.vol[src_cells])
            released += added
        old_vol = stp.vol
        if knots.size > 1:
            q, arr = flow_at(t1)
            den = np.maximum(arr, np.bincount(g.from_node, q, nn))
            if not np.array_equal(q, stp.q):  # a new flow state: new volumes, refactorise
                stp = _Stepper(g, tr, q, arr, dt)
        if stp.has_storage:  # first half of the storage exchange (Strang splitting)
            conc, cs = _exchange(conc, cs, old_vol, tr.vs, stp.relax)
        mass = old_vol * conc
        # advection (explicit, ULTIMATE-QUICKEST); ghosts from the nodes' mixed concentrations
        mix_up = np.bincount(g.to_node, stp.q * conc[g.last], nn) / den
        q_out = np.bincount(g.from_node, stp.q, nn)
        with np.errstate(invalid="ignore", divide="ignore"):
            mix_dn = np.bincount(g.from_node, stp.q * conc[g.first], nn) / q_out
        ghost_dn = np.where(g.has_out[g.to_node] & ~lake_node[g.to_node], mix_dn[g.to_node], conc[g.last])
        ext = np.concatenate([conc, mix_up[g.from_node], ghost_dn])
        phi = stp.qcell * ultimate_quickest(ext[i_uu], conc, ext[i_d], stp.qcell * dt / old_vol)
        for lv in lake_levels:  # level by level, so a lake fed by a lake takes that lake's outflow of this step
            node_flux = np.bincount(g.to_node, phi[g.last], nn)
            f_in = stp.q[lv] * np.where(has_in, node_flux / den, 0.0)[g.from_node[lv]]
            lc = g.first[lv]
            phi[lc] = _lake_outflow(conc[lc], old_vol[lc], stp.q[lv], f_in, dt)
        node_flux = np.bincount(g.to_node, phi[g.last], nn)
        inlet = stp.q * np.where(has_in, node_flux / den, 0.0)[g.from_node]
        out += dt * float(node_flux @ (1.0 - q_out / den))  # outlets, and withdrawals at the mix
        phi_in = np.empty(n)
        phi_in[1:] = phi[:-1]
        phi_in[g.first] = inlet
        mass += dt * (phi_in - phi)
        if added:
            np.add.at(mass, src_cells, 0.5 * added * src_w)
        # dispersion (backward Euler), then the second half of the exchange
        rhs = np.zeros(stp.n_unknowns)
        rhs[:n] = mass
        conc = stp.lu.solve(rhs)[:n]
        if stp.has_storage:
            conc, cs = _exchange(conc, cs, stp.vol, tr.vs, stp.relax)
        if decay != 1.0:
            before = stp.vol @ conc + tr.vs @ cs
            conc *= decay
            cs *= decay
            decayed += before * (1.0 - decay)
        peak.update(at_receptors(), step + 1)
        if (step + 1) % per == 0:
            record((step + 1) // per)
    return _dataset(net, release, routed, g, st, threshold_g_m3, dt, per, rec_c, rec_cell, out_cells, rec_mass, rec_q,
                    tr, knots.size > 1, peak.result(dt))


class _PeakTracker:
    """Highest value of each receptor over all steps, refined by a parabola through its neighbours."""

    def __init__(self, first: np.ndarray) -> None:
        self.prev = first.copy()
        self.c = first.copy()
        self.before = first.copy()
        self.after = first.copy()
        self.k = np.zeros(first.size, int)
        self.want = np.zeros(first.size, bool)

    def update(self, cur: np.ndarray, k: int) -> None:
        self.after[self.want] = cur[self.want]
        self.want[:] = False
        new = cur > self.c
        self.before[new], self.c[new], self.after[new], self.k[new] = self.prev[new], cur[new], cur[new], k
        self.want[new] = True
        self.prev = cur

    def result(self, dt: float) -> tuple[np.ndarray, np.ndarray]:
        """Peak time [s] and concentration [g/m3] (a parabola through the best step and its two
        neighbours, as :func:`summarize` refines records)."""
        y0, y1, y2 = self.before, self.c, self.after
        den = y0 - 2.0 * y1 + y2
        with np.errstate(divide="ignore", invalid="ignore"):
            off = np.where((den < 0) & (self.k > 0), np.clip(0.5 * (y0 - y2) / den, -1.0, 1.0), 0.0)
        return (self.k + off) * dt, y1 - 0.25 * (y0 - y2) * off


# ---------------------------------------------------------------------------------------- output
def _time_units(release: Release) -> str:
    if release.start is None:
        return "seconds since 1970-01-01 00:00:00"
    start = release.start if release.start.tzinfo is None else release.start.astimezone(UTC)
    return f"seconds since {start.strftime('%Y-%m-%d %H:%M:%S')}"


def _dataset(net: RiverNetwork, release: Release, routed: list, g: _Grid, st: ReachState, threshold_g_m3: float | None,
             dt: float, per: int, rec_c: np.ndarray, rec_cell: np.ndarray, out_cells: np.ndarray, rec_mass: np.ndarray,
             rec_q: np.ndarray, tr: _Transport, varying: bool,
             peaks: tuple[np.ndarray, np.ndarray]) -> xr.Dataset:
    import xarray as xr

    feats = [r[0] for r in routed]
    thr = receptor_thresholds(net, feats, release.pollutant, threshold_g_m3)
    time = np.arange(rec_c.shape[0]) * per * dt
    kg = {"units": "kg"}
    river = ~g.lake
    pe = float(np.max(tr.q0[river] / tr.area(tr.q0)[river] * g.dx[river] / tr.disp[river], initial=0.0))
    ds = xr.Dataset(
        {
            "concentration": (("time", "receptor"), rec_c, {
                "units": "g m-3", "long_name": f"{release.pollutant.name} concentration at receptor"}),
            "cell_concentration": (("time", "cell"), rec_cell, {
                "units": "g m-3", "long_name": f"{release.pollutant.name} main-channel concentration in cell"}),
            "mass_in_system": ("time", rec_mass[:, 0] / GRAMS_PER_KG, {
                **kg, "long_name": "mass in main channel and storage zones"}),
            "mass_out": ("time", rec_mass[:, 1] / GRAMS_PER_KG, {
                **kg, "long_name": "cumulative mass carried out through outlets and withdrawals"}),
            "mass_released": ("time", rec_mass[:, 2] / GRAMS_PER_KG, {**kg, "long_name": "cumulative mass released"}),
            "mass_decayed": ("time", rec_mass[:, 3] / GRAMS_PER_KG, {**kg, "long_name": "cumulative mass lost to decay"}),
            "discharge": (("time", "flow_reach"), rec_q, {
                "units": "m3 s-1", "long_name": "discharge of simulated reach"}),
            "peak_time": ("receptor", peaks[0], {
                "units": "s", "long_name": "time after release start of the highest concentration over all steps"}),
            "peak_concentration": ("receptor", peaks[1], {
                "units": "g m-3", "long_name": "highest concentration at receptor over all solver steps"}),
            "threshold": ("receptor", np.array([np.nan if v is None else v for v, _ in thr], float), {
                "units": "g m-3", "long_name": "concentration defining arrival and end (NaN: share of peak)"}),
        },
        coords={
            "time": ("time", time, {"units": _time_units(release), "standard_name": "time", "calendar": "standard",
                                    "long_name": "time after release start", "axis": "T"}),
            "receptor": ("receptor", np.array([f.id for f in feats], dtype=object), {"long_name": "receptor id"}),
            "kind": ("receptor", np.array([f.kind for f in feats], dtype=object), {"long_name": "receptor kind"}),
            "receptor_reach": ("receptor", np.array([f.reach for f in feats], dtype=object), {"long_name": "reach id"}),
            "chainage_m": ("receptor", np.array([f.chainage_m for f in feats], float), {
                "units": "m", "long_name": "chainage from the reach's upstream end"}),
            "distance_m": ("receptor", np.array([r[2] for r in routed], float), {
                "units": "m", "long_name": "distance along the river from the release"}),
            "mass_fraction": ("receptor", np.array([r[1] for r in routed], float), {
                "units": "1", "long_name": "share of the released mass passing the receptor (steady flow)"}),
            "receptor_discharge": ("receptor", np.array([st.discharge_m3s[st.index[f.reach]] for f in feats], float), {
                "units": "m3 s-1", "long_name": "steady discharge at receptor"}),
            "threshold_basis": ("receptor", np.array([b for _, b in thr], dtype=object)),
            "reach": ("cell", np.array(g.reach_ids, dtype=object)[g.cell_reach[out_cells]], {"long_name": "reach id"}),
            "x_m": ("cell", g.x_m[out_cells], {"units": "m", "long_name": "cell-centre chainage from the reach's upstream end"}),
            "flow_reach": ("flow_reach", np.array(g.reach_ids, dtype=object), {"long_name": "reach id"}),
        },
        attrs={
            "Conventions": "CF-1.8",
            "title": "rivertrace numerical plume simulation",
            "source": "rivertrace hydrology.transport.numerical (finite volume, ULTIMATE-QUICKEST advection, "
                      "backward-Euler dispersion and OTIS transient storage)",
            "engine": "numerical",
            "pollutant": release.pollutant.name,
            "decay_per_s": release.pollutant.decay_per_s,
            "source_reach": release.reach,
            "source_chainage_m": release.chainage_m,
            "release_kind": "instantaneous" if release.mass_kg is not None else "continuous",
            "release_mass_kg": release.total_mass_kg,
            "release_duration_s": float(release.duration_s or 0.0),
            "release_centroid_s": _release_centroid_s(release),
            "dt_s": dt,
            "n_cells": g.n,
            "max_cell_peclet": pe,
            "flow": "quasi-steady hydrographs" if varying else "steady",
        },
    )
    return ds


def _release_centroid_s(release: Release) -> float:
    """Mass-weighted mean release time [s]: 0 for a pulse, half the duration for a box, and for a
    rate curve (linear between samples, so t r(t) is quadratic on each segment) Simpson's rule, exact."""
    if release.mass_kg is not None:
        return 0.0
    if release.rate_curve is None:
        return 0.5 * float(release.duration_s or 0.0)
    t, r = np.asarray(release.rate_curve, float).T
    h, tm, rm = np.diff(t), 0.5 * (t[1:] + t[:-1]), 0.5 * (r[1:] + r[:-1])
    first = np.sum(h / 6.0 * (t[:-1] * r[:-1] + 4.0 * tm * rm + t[1:] * r[1:]))
    return float(first / np.sum(h * rm))


def _seconds(ds: xr.Dataset) -> np.ndarray:
    t = ds["time"].values
    if np.issubdtype(t.dtype, np.datetime64):  # read back with decode_times=True: time 0 is the release
        return (t - t[0]) / np.timedelta64(1, "s")
    return np.asarray(t, float)


def summarize(ds: xr.Dataset, thresholds: float | Mapping[str, float] | None = None) -> list[ReceptorForecast]:
    """Arrival, peak and end at every receptor of a :func:`simulate` result, as the analytic engine reports them.

    Arrival and end are the first and last times the curve is at or above the threshold (linear
    interpolation between records); the peak is the solver's highest step at the receptor refined
    by a parabola through its two neighbouring steps (``peak_time``, ``peak_concentration``; from
    the records the same way for a dataset without them), so that it does not depend on the record
    interval; without a threshold the edges are at :data:`~hydrology.transport.analytic.EDGE_FRACTION_OF_PEAK`
    of the receptor's own peak. ``mean_travel_time_s`` is the curve's first temporal moment less
    the release's mass-weighted mean time. A plume still above its threshold when the run ends has
    ``end_s = None`` and a warning names it.

    Parameters
    ----------
    ds : xr.Dataset
        Output of :func:`simulate` (or read back from its netCDF file).
    thresholds : float or mapping, optional
        One threshold for all receptors, or receptor id -> threshold [g/m3]; default the
        thresholds stored by :func:`simulate`.

    Returns
    -------
    list of ReceptorForecast
        In the dataset's receptor order (nearest first).
    """
    t = _seconds(ds)
    c = np.asarray(ds["concentration"].values, float)
    ids = [str(v) for v in ds["receptor"].values]
    stored = ds["threshold"].values
    basis = [str(v) for v in ds["threshold_basis"].values]
    step_peaks = None
    if "peak_concentration" in ds:
        pt = ds["peak_time"].values
        pt = pt / np.timedelta64(1, "s") if np.issubdtype(pt.dtype, np.timedelta64) else np.asarray(pt, float)
        step_peaks = (pt, np.asarray(ds["peak_concentration"].values, float))
    half_dur = float(ds.attrs.get("release_centroid_s", 0.5 * float(ds.attrs.get("release_duration_s", 0.0))))
    res: list[ReceptorForecast] = []
    unfinished: list[str] = []
    for j, rid in enumerate(ids):
        y = c[:, j]
        if isinstance(thresholds, Mapping):
            level = thresholds.get(rid)
            b = "given" if level is not None else basis[j]
            level = level if level is not None else (None if np.isnan(stored[j]) else float(stored[j]))
        elif thresholds is not None:
            level, b = float(thresholds), "given"
        else:
            level, b = (None, basis[j]) if np.isnan(stored[j]) else (float(stored[j]), basis[j])
        i = int(np.argmax(y))
        peak_t, peak_c = float(t[i]), float(y[i])
        if 0 < i < y.size - 1:
            y0, y1, y2 = y[i - 1], y[i], y[i + 1]
            den = y0 - 2 * y1 + y2
            if den < 0:
                off = float(np.clip(0.5 * (y0 - y2) / den, -1.0, 1.0))
                peak_t = float(t[i] + off * (t[i + 1] - t[i]))
                peak_c = float(y1 - 0.25 * (y0 - y2) * off)
        if step_peaks is not None and step_peaks[1][j] > 0:  # every solver step, not only the records
            peak_t, peak_c = float(step_peaks[0][j]), float(step_peaks[1][j])
        cut = level if level is not None else EDGE_FRACTION_OF_PEAK * peak_c
        above = np.flatnonzero(y >= cut) if peak_c > 0 else np.zeros(0, int)
        arrival = end = None
        if above.size and peak_c >= cut:
            a, e = above[0], above[-1]
            arrival = float(t[a] if a == 0 else np.interp(cut, [y[a - 1], y[a]], [t[a - 1], t[a]]))
            if e < y.size - 1:
                end = float(np.interp(cut, [y[e + 1], y[e]], [t[e + 1], t[e]]))
            else:
                unfinished.append(rid)
        total = np.trapezoid(y, t)
        mean_t = float(np.trapezoid(t * y, t) / total - half_dur) if total > 0 else math.nan
        res.append(ReceptorForecast(
            id=rid, kind=str(ds["kind"].values[j]), reach=str(ds["receptor_reach"].values[j]),  # type: ignore[arg-type]
            chainage_m=float(ds["chainage_m"].values[j]), distance_m=float(ds["distance_m"].values[j]),
            mean_travel_time_s=mean_t, mass_fraction=float(ds["mass_fraction"].values[j]),
            discharge_m3s=float(ds["receptor_discharge"].values[j]), threshold_g_m3=level, threshold_basis=b,
            arrival_s=arrival, peak_s=peak_t if peak_c > 0 else math.nan, peak_g_m3=peak_c, end_s=end))
    if unfinished:
        warnings.warn(f"the plume is still above its threshold at the end of the run (t = {t[-1]:.0f} s) at "
                      f"{unfinished}; their end_s is None: simulate longer", RuntimeWarning, stacklevel=2)
    return res

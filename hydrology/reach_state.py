"""Steady hydraulic state of every reach, as arrays: velocity, depth, width, area, dispersion.

Velocity is chosen per reach, first that applies (each reach records which in ``velocity_method``):

1. ``override``: a stated ``velocity_ms`` (e.g. NHDPlus VE_MA);
2. ``manning``: normal depth in a trapezoid (Chow 1959), velocity U = Q/A;
3. ``hydraulic_geometry``: B = a Q^b, H = c Q^f (Leopold & Maddock 1953), U = Q/(B H);
4. ``jobson``: peak-concentration velocity of Jobson (1996, USGS WRIR 96-4013) from drainage area.

Width and depth come from the trapezoid or the hydraulic geometry; with a velocity override the
area is Q/U (continuity) and the depth is A/B. Dispersion: a stated ``dispersion_m2s`` wins, else
the registered estimator (default :data:`hydrology.dispersion.DEFAULT_ESTIMATOR`) with shear
velocity u* = sqrt(g R S). A reach where a needed quantity cannot be had raises
:class:`~hydrology.exceptions.HydraulicsError` naming it: nothing is assumed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from . import dispersion as _dispersion
from . import empirical_hydraulics as _emp
from . import hydraulics as _hyd
from .exceptions import HydraulicsError

if TYPE_CHECKING:
    from .network import RiverNetwork


@dataclass(frozen=True, slots=True)
class ReachState:
    """Per-reach steady state; arrays are aligned with ``ids`` (topological order). SI units."""

    ids: tuple[str, ...]
    index: dict[str, int]
    length_m: np.ndarray
    discharge_m3s: np.ndarray
    velocity_ms: np.ndarray
    depth_m: np.ndarray
    width_m: np.ndarray
    area_m2: np.ndarray
    dispersion_m2s: np.ndarray
    storage_ratio: np.ndarray
    storage_exchange_per_s: np.ndarray
    velocity_method: np.ndarray
    dispersion_method: np.ndarray
    #: True where the reach is a fully mixed lake or pool (a stirred tank, residence time L/U)
    fully_mixed: np.ndarray | None = None

    def lake_mask(self) -> np.ndarray:
        """Boolean mask of fully mixed reaches (all False when none is)."""
        return np.zeros(len(self.ids), bool) if self.fully_mixed is None else self.fully_mixed

    def travel_time_s(self) -> np.ndarray:
        """Advective travel time through each reach, L/U [s] (main channel, no storage)."""
        return self.length_m / self.velocity_ms


def _arr(net: RiverNetwork, rows: np.ndarray, name: str) -> np.ndarray:
    """One reach field in topological order (``rows``), NaN where unset, from the network's columns."""
    return net.reaches.column(name)[rows]


def compute_reach_state(net: RiverNetwork, *, estimator: str | None = None) -> ReachState:
    """Compute the steady hydraulic state of every reach of ``net``.

    Parameters
    ----------
    net : RiverNetwork
        A valid network (see :func:`hydrology.validate.require_valid`).
    estimator : str, optional
        Dispersion estimator name for reaches without ``dispersion_m2s``; default
        :data:`hydrology.dispersion.DEFAULT_ESTIMATOR`.

    Raises
    ------
    HydraulicsError
        Naming the first reach whose velocity, width/depth or dispersion cannot be computed.
    """
    ids = list(net.reach_order)
    rows = net.reach_order_rows
    n = len(ids)
    q_map = net.steady_discharge
    q = np.array([q_map[i] for i in ids], dtype=float)
    a = {k: _arr(net, rows, k) for k in (
        "length_m", "slope", "manning_n", "bottom_width_m", "side_slope", "width_coef", "width_exp",
        "depth_coef", "depth_exp", "drainage_area_m2", "mean_annual_discharge_m3s", "velocity_ms",
        "dispersion_m2s", "storage_ratio", "storage_exchange_per_s")}
    u = np.full(n, np.nan)
    h = np.full(n, np.nan)
    b = np.full(n, np.nan)
    radius = np.full(n, np.nan)
    vmethod = np.full(n, "", dtype=object)

    trap = ~np.isnan(a["manning_n"]) & ~np.isnan(a["bottom_width_m"]) & ~np.isnan(a["side_slope"]) & ~np.isnan(a["slope"])
    if trap.any():
        nf = _hyd.normal_flow(q[trap], a["bottom_width_m"][trap], a["side_slope"][trap], a["slope"][trap], a["manning_n"][trap])
        u[trap] = nf.velocity_ms
        b[trap] = nf.top_width_m
        h[trap] = nf.area_m2 / nf.top_width_m
        radius[trap] = nf.hydraulic_radius_m
        vmethod[trap] = "manning"
    hg = ~trap & ~np.isnan(a["width_coef"]) & ~np.isnan(a["width_exp"]) & ~np.isnan(a["depth_coef"]) & ~np.isnan(a["depth_exp"])
    if hg.any():
        b[hg] = _emp.hydraulic_geometry(q[hg], a["width_coef"][hg], a["width_exp"][hg])
        h[hg] = _emp.hydraulic_geometry(q[hg], a["depth_coef"][hg], a["depth_exp"][hg])
        u[hg] = q[hg] / (b[hg] * h[hg])
        radius[hg] = b[hg] * h[hg] / (b[hg] + 2.0 * h[hg])  # rectangle of width B, depth H
        vmethod[hg] = "hydraulic_geometry"
    jb = np.isnan(u) & ~np.isnan(a["drainage_area_m2"]) & ~np.isnan(a["slope"])
    if jb.any():
        qa = np.where(np.isnan(a["mean_annual_discharge_m3s"][jb]), q[jb], a["mean_annual_discharge_m3s"][jb])
        vp, _vmp = _emp.jobson_velocity(q[jb], a["drainage_area_m2"][jb], a["slope"][jb], qa)
        u[jb] = vp
        vmethod[jb] = "jobson"
    ov = ~np.isnan(a["velocity_ms"])
    if ov.any():
        u[ov] = a["velocity_ms"][ov]
        vmethod[ov] = "override"
        # continuity: with a known width the depth follows from A = Q/U
        known_b = ov & ~np.isnan(b)
        h[known_b] = q[known_b] / (u[known_b] * b[known_b])
        radius[known_b] = b[known_b] * h[known_b] / (b[known_b] + 2.0 * h[known_b])
    bad = np.flatnonzero(np.isnan(u) | ~(u > 0))
    if bad.size:
        raise HydraulicsError(f"reach {ids[bad[0]]!r}: no velocity can be computed "
                              f"({bad.size} reach(es) in all); see `rivertrace validate`")

    area = q / u
    d = a["dispersion_m2s"].copy()
    dmethod = np.where(np.isnan(d), "", "override").astype(object)
    need = np.isnan(d)
    if need.any():
        missing = need & (np.isnan(b) | np.isnan(h) | np.isnan(a["slope"]))
        if missing.any():
            i = int(np.flatnonzero(missing)[0])
            raise HydraulicsError(
                f"reach {ids[i]!r}: dispersion cannot be estimated without width, depth and slope; "
                f"give dispersion_m2s or a cross-section ({int(missing.sum())} reach(es) in all)")
        name = estimator or _dispersion.DEFAULT_ESTIMATOR
        ustar = _hyd.shear_velocity(radius[need], a["slope"][need])
        d[need] = _dispersion.estimate_dispersion(name, b[need], h[need], u[need], ustar)
        dmethod[need] = name
    beta = np.nan_to_num(a["storage_ratio"], nan=0.0)
    alpha = a["storage_exchange_per_s"]
    return ReachState(
        ids=tuple(ids), index={rid: i for i, rid in enumerate(ids)}, length_m=a["length_m"],
        discharge_m3s=q, velocity_ms=u, depth_m=h, width_m=b, area_m2=area, dispersion_m2s=d,
        storage_ratio=beta, storage_exchange_per_s=alpha, velocity_method=vmethod, dispersion_method=dmethod,
        fully_mixed=net.reaches.fully_mixed[rows],
    )


#: per-reach fields that follow the discharge (recomputed by :func:`state_at_flow`)
_FLOW_FIELDS = ("velocity_ms", "depth_m", "width_m", "area_m2", "dispersion_m2s", "storage_ratio",
                "storage_exchange_per_s", "velocity_method", "dispersion_method")


def state_at_flow(net: RiverNetwork, state: ReachState, flow_factor: float,
                  reaches: np.ndarray | None = None) -> ReachState:
    """The steady state with every discharge times ``flow_factor`` [-], and the hydraulics of ``reaches``
    (indices into ``state``; default all) recomputed at that discharge.

    Hydraulics are per reach (Manning or the empirical relations, then the dispersion estimator: each
    reads only the reach's own discharge and geometry), so the reaches a plume can reach are enough;
    the others keep their velocity and take area = Q / U. Used by the ensemble and the forecast bands.
    """
    from .network import Node, RiverNetwork

    if flow_factor == 1.0:
        return state
    idx = np.arange(len(state.ids)) if reaches is None else np.asarray(reaches, dtype=int)
    ids = [state.ids[i] for i in idx]
    scaled = {rid: replace(net.reaches[rid], discharge_m3s=float(flow_factor * state.discharge_m3s[i]))
              for rid, i in zip(ids, idx)}
    nodes = {n: net.nodes.get(n, Node(n)) for r in scaled.values() for n in (r.from_node, r.to_node)}
    sub = compute_reach_state(RiverNetwork(nodes, scaled))
    order = [sub.index[rid] for rid in ids]
    q = state.discharge_m3s * flow_factor
    fields = {}
    for name in _FLOW_FIELDS:
        a = getattr(state, name).copy()
        a[idx] = getattr(sub, name)[order]
        fields[name] = a
    rest = np.ones(q.size, dtype=bool)
    rest[idx] = False
    fields["area_m2"][rest] = q[rest] / fields["velocity_ms"][rest]
    return replace(state, discharge_m3s=q, **fields)


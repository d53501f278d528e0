"""Steady dissolved oxygen on the river network: effluents -> DO at every downstream station.

Each reach is cut at the dischargers and stations on it and handed, upstream first, to
:func:`hydrology.oxygen_path.do_profile_along_path` (extended Streeter-Phelps with nitrification,
QUAL2K reaeration, temperature-corrected rates). At nodes the arriving reaches and any lateral
inflow mix completely (C = sum Q_i C_i / sum Q_i); at a split every reach leaves with the node's
water. Effluent flow adds to the river flow below its outfall. Kinetics run only below an outfall
of the scenario: water that no effluent has reached (upstream of every outfall, tributaries without
one) is the stated background state, the river's observed clean-water quality, and it mixes in at
confluences as it is.

Units: SI inside (s, 1/s, m3/s, g/m3); temperature [degC]. Rates in the conditions are at 20 C.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .exceptions import HydrologyError
from .oxygen import cbod_ultimate_from_bod5, do_saturation
from .oxygen_path import PathSegments, PointInflow, WaterState, do_profile_along_path
from .units import per_day_to_per_s

if TYPE_CHECKING:
    from .network import RiverNetwork


class OxygenScenarioError(HydrologyError, ValueError):
    """An effluent scenario that cannot be computed (unknown discharger, negative flow...)."""


@dataclass(frozen=True, slots=True)
class Effluent:
    """What a discharger emits in a scenario (steady).

    Attributes
    ----------
    discharge_m3s : float
        Effluent flow [m3/s].
    bod5_g_m3 : float
        Five-day BOD [g/m3]; converted to ultimate CBOD with the conditions' bottle rate.
    nh3n_g_m3 : float
        Ammonia nitrogen [g N/m3].
    do_g_m3 : float
        Effluent dissolved oxygen [g/m3] (treated effluent is typically 2-4 g/m3).
    """

    discharge_m3s: float
    bod5_g_m3: float
    nh3n_g_m3: float
    do_g_m3: float = 2.0

    def __post_init__(self) -> None:
        for name in ("discharge_m3s", "bod5_g_m3", "nh3n_g_m3", "do_g_m3"):
            v = getattr(self, name)
            if not (v >= 0 and np.isfinite(v)):
                raise OxygenScenarioError(f"effluent {name} must be a finite non-negative number, got {v}")


@dataclass(frozen=True, slots=True)
class DOConditions:
    """River-wide conditions of a DO scenario (all stated; shown in results).

    Defaults are typical summer values for a small Chinese river, each with its source:
    kd20 0.3/d and kn20 0.25/d (QUAL2K example ranges, Chapra 1997 table 19.1 and lecture 23),
    bottle rate k1 0.23/d (Chapra 1997, typical domestic wastewater), background CBOD 2 g/m3 and
    NH3-N 0.2 g/m3 (GB 3838 class II-III water), background DO at 95 % of saturation.
    """

    temperature_c: float = 25.0
    kd20_per_s: float = per_day_to_per_s(0.3)
    kn20_per_s: float = per_day_to_per_s(0.25)
    bottle_k1_per_s: float = per_day_to_per_s(0.23)
    background_cbod_g_m3: float = 2.0
    background_nh3n_g_m3: float = 0.2
    background_do_fraction: float = 0.95
    reaeration_method: str = "qual2k"


@dataclass(frozen=True, slots=True)
class StationDO:
    """Predicted steady state at a station. Concentrations [g/m3]."""

    id: str
    do_g_m3: float
    saturation_g_m3: float
    cbod_g_m3: float
    nh3n_g_m3: float
    discharge_m3s: float
    anoxic_upstream: bool
    affected: bool  # False: no effluent of the scenario reaches this station (background water)


@dataclass(frozen=True, slots=True)
class DOResult:
    """DO at every station, and the conditions used."""

    stations: dict[str, StationDO]
    conditions: DOConditions
    effluents: dict[str, Effluent] = field(default_factory=dict)


def background_state(q_m3s: float, cond: DOConditions) -> WaterState:
    """Clean water of the scenario: background CBOD, NH3-N and DO [g/m3] at flow ``q_m3s``."""
    sat = float(do_saturation(cond.temperature_c))
    return WaterState(q_m3s, cond.background_cbod_g_m3, cond.background_nh3n_g_m3, cond.background_do_fraction * sat)


def predict_do(net: RiverNetwork, effluents: Mapping[str, Effluent], conditions: DOConditions | None = None) -> DOResult:
    """Steady DO, CBOD and NH3-N at every station of ``net`` under an effluent scenario.

    Parameters
    ----------
    net : RiverNetwork
        A valid network.
    effluents : mapping of discharger id -> Effluent
        Dischargers not listed emit nothing in this scenario.
    conditions : DOConditions, optional
        Temperature, rates and background water.

    Returns
    -------
    DOResult

    References
    ----------
    Chapra, S.C. (1997) Surface Water-Quality Modeling, lectures 21-23 (point sources, mixing,
    Streeter-Phelps with nitrogenous BOD); the QUAL2K network mass balance (Chapra et al. 2012).
    """
    cond = conditions or DOConditions()
    st = net.reach_state()
    by_reach_dis: dict[str, list[tuple[float, str, WaterState]]] = {}
    for did, eff in effluents.items():
        d = net.feature(did, "discharger")
        cbod = float(cbod_ultimate_from_bod5(eff.bod5_g_m3, cond.bottle_k1_per_s))
        by_reach_dis.setdefault(d.reach, []).append((d.chainage_m, did, WaterState(eff.discharge_m3s, cbod, eff.nh3n_g_m3, eff.do_g_m3)))
    affected: set[str] = set()
    for rid in by_reach_dis:
        affected.add(rid)
        affected |= net.all_downstream(rid)

    end_state: dict[str, WaterState] = {}
    results: dict[str, StationDO] = {}
    sat = float(do_saturation(cond.temperature_c))
    stations_on: dict[str, list] = {}
    for f in net.stations.values():
        stations_on.setdefault(f.reach, []).append(f)
    for rid in net.reach_order:
        i = st.index[rid]
        q_base = float(st.discharge_m3s[i])
        stations = stations_on.get(rid, [])
        if rid not in affected:
            bg = background_state(q_base, cond)
            end_state[rid] = bg
            for f in stations:
                results[f.id] = StationDO(f.id, bg.do_g_m3, sat, bg.cbod_g_m3, bg.nh3n_g_m3, q_base, False, False)
            continue
        start = _reach_start_state(net, rid, q_base, end_state, cond)
        origin = 0.0
        if not any(u in affected for u in net.reaches_into(net.reaches[rid].from_node)):
            # effluent first enters on this reach: above the first outfall the water is background
            origin = min(c for c, _, _ in by_reach_dis[rid])
            for f in stations:
                if f.chainage_m < origin:
                    results[f.id] = StationDO(f.id, start.do_g_m3, sat, start.cbod_g_m3, start.nh3n_g_m3,
                                              start.discharge_m3s, False, False)
            stations = [f for f in stations if f.chainage_m >= origin]
        end_state[rid] = _run_reach(st, rid, start, by_reach_dis.get(rid, []), stations, cond, results, origin)
    return DOResult(results, cond, dict(effluents))


def _reach_start_state(net: RiverNetwork, rid: str, q_base: float, end_state: Mapping[str, WaterState],
                       cond: DOConditions) -> WaterState:
    """Water entering a reach: mix of the arriving reaches (+ lateral inflow), split by flow share."""
    node = net.reaches[rid].from_node
    ups = [end_state[u] for u in net.reaches_into(node)]
    base_in = sum(net.steady_discharge[u] for u in net.reaches_into(node))
    share = net.split_fraction(rid)
    lateral = q_base - base_in * share  # water the network adds at this node (inflows, gauged gains)
    parts = [WaterState(s.discharge_m3s * share, s.cbod_g_m3, s.nh3n_g_m3, s.do_g_m3) for s in ups]
    if lateral > 1e-9 * q_base:
        parts.append(background_state(lateral, cond))
    total = sum(p.discharge_m3s for p in parts)
    if lateral < -1e-9 * q_base:  # a losing node: water leaves at river concentration
        scale = (total + lateral) / total
        parts = [WaterState(p.discharge_m3s * scale, p.cbod_g_m3, p.nh3n_g_m3, p.do_g_m3) for p in parts]
        total *= scale
    conc = np.array([[p.cbod_g_m3, p.nh3n_g_m3, p.do_g_m3] for p in parts])
    q = np.array([p.discharge_m3s for p in parts])
    cb, nh, do = (q @ conc) / total
    return WaterState(total, float(cb), float(nh), float(do))


def _run_reach(st, rid: str, start: WaterState, dischargers: list[tuple[float, str, WaterState]],
               stations: list, cond: DOConditions, results: dict[str, StationDO], origin: float = 0.0) -> WaterState:
    """Run one reach from chainage ``origin`` [m], cut at its dischargers and stations; record the
    stations; return the state at the reach end."""
    i = st.index[rid]
    length = float(st.length_m[i])
    cuts = sorted({origin, length, *(c for c, _, _ in dischargers), *(f.chainage_m for f in stations)})
    cuts = [c for c in cuts if origin <= c <= length]
    bounds = np.array(cuts)
    seg_len = np.diff(bounds)
    keep = seg_len > 1e-6
    starts = bounds[:-1][keep]
    seg_len = seg_len[keep]
    if seg_len.size == 0:  # an outfall at the very end of its reach: mix and pass on
        parts = [start, *(w for _, _, w in dischargers)]
        q = sum(p.discharge_m3s for p in parts)
        mixed = [sum(p.discharge_m3s * getattr(p, k) for p in parts) / q for k in ("cbod_g_m3", "nh3n_g_m3", "do_g_m3")]
        return WaterState(q, *mixed)
    u, h = float(st.velocity_ms[i]), float(st.depth_m[i])
    loads = []
    q_running = np.full(seg_len.size, start.discharge_m3s)
    for c, did, state in dischargers:
        k = int(np.searchsorted(starts, c, side="right") - 1)
        k = min(max(k, 0), seg_len.size - 1)
        loads.append(PointInflow(did, k, state, "discharger"))
        q_running[k:] += state.discharge_m3s
    n_seg = seg_len.size
    segs = PathSegments(travel_time_s=seg_len / u, discharge_m3s=q_running, velocity_ms=np.full(n_seg, u),
                        depth_m=np.full(n_seg, h), temperature_c=np.full(n_seg, cond.temperature_c),
                        kd20_per_s=np.full(n_seg, cond.kd20_per_s), kn20_per_s=np.full(n_seg, cond.kn20_per_s))
    prof = do_profile_along_path(segs, start, loads, reaeration_method=cond.reaeration_method)
    ends = starts + seg_len
    anoxic_so_far = np.cumsum(prof.anoxic) > 0
    for f in stations:
        if f.chainage_m <= starts[0]:  # at the very start: the mixed inflow, before any kinetics
            results[f.id] = StationDO(f.id, float(prof.do_start_g_m3[0]), float(prof.saturation_g_m3[0]),
                                      float(prof.cbod_start_g_m3[0]), float(prof.nh3n_start_g_m3[0]),
                                      float(q_running[0]), False, True)
            continue
        k = int(np.argmin(np.abs(ends - f.chainage_m)))
        results[f.id] = StationDO(f.id, float(prof.do_g_m3[k]), float(prof.saturation_g_m3[k]), float(prof.cbod_g_m3[k]),
                                  float(prof.nh3n_g_m3[k]), float(q_running[k]), bool(anoxic_so_far[k]), True)
    return WaterState(float(q_running[-1]), float(prof.cbod_g_m3[-1]), float(prof.nh3n_g_m3[-1]), float(prof.do_g_m3[-1]))

"""Attribution of a steady dissolved-oxygen sag (e.g. "DO below standard for 3 days").

Streeter-Phelps with nitrification is linear in the loads, so the extra deficit a steady load W of
ultimate CBOD [g/s] (with NH3-N in the proportion of its kind) causes at a station is W times a
transfer coefficient. Carrying mass-flux increments (CBOD, NH3-N, deficit) [g/s] through a reach of
travel time t multiplies them by

    K(t) = [[e^-kd t, 0, 0], [0, e^-kn t, 0], [kd phi(kd, ka), 4.57 kn phi(kn, ka), e^-ka t]],
    phi(a, b) = (e^-a t - e^-b t)/(b - a)   (Chapra 1997, lectures 21 and 23),

fluxes add at confluences and divide by flow at splits, and the deficit at the station is the
deficit flux over the station's flow. A reverse pass from each station gives the row vector that
maps a load at any upstream point to its deficit there. Each hypothesis then gets the load that
best explains the observed extra deficits at all stations (least squares, W >= 0), a Gaussian
likelihood, and the priors of :mod:`tracer.priors` (feasibility compares W with the discharger's
capacity).

Observed extra deficit at a station = median DO before the event - median DO during it; the event
is when the anomaly station is below its standard. Units: s, 1/s, g/s, g/m3.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hydrology.oxygen import NBOD_RATIO, THETA_CBOD, THETA_NITRIFICATION, THETA_REAERATION, arrhenius, reaeration_rate
from hydrology.oxygen_network import DOConditions
from hydrology.standards import limit
from hydrology.timezones import network_zone

from . import priors
from .attribution import (
    DEFAULT_HORIZON_S,
    AttributionError,
    AttributionResult,
    Candidate,
    _log_priors,
    build_hypotheses,
)
from .upstream import upstream_moments

if TYPE_CHECKING:
    from hydrology.network import Feature, RiverNetwork
    from hydrology.reach_state import ReachState

    from .readings import Readings

#: NH3-N flux per CBOD flux of a load, by discharger kind [gN/gO2] (raw wastewater ratios, e.g.
#: Metcalf & Eddy 2014 table 3-15: raw sewage ~35 mg/L NH3-N per ~290 mg/L ultimate CBOD)
N_TO_CBOD = {"sewage_plant": 0.12, "livestock": 0.15, "food_processing": 0.03, "industrial_plant": 0.03, "outfall": 0.1}
DEFAULT_N_TO_CBOD = 0.1
#: uncertainty of an observed extra deficit: sensor/daily-cycle floor [g/m3] and model error [-]
DEFICIT_FLOOR_G_M3 = 0.25
DEFICIT_RELATIVE_ERROR = 0.2


def _phi(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(e^-at - e^-bt)/(b - a), stable as b -> a (limit t e^-at)."""
    d = b - a
    small = np.abs(d * t) < 1e-8
    safe = np.where(small, 1.0, d)
    return np.where(small, t * np.exp(-a * t), (np.exp(-a * t) - np.exp(-b * t)) / safe)


def _kinetics(state: ReachState, cond: DOConditions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Temperature-corrected kd, kn, ka [1/s] of every reach."""
    kd = np.full(len(state.ids), float(arrhenius(cond.kd20_per_s, cond.temperature_c, THETA_CBOD)))
    kn = np.full(len(state.ids), float(arrhenius(cond.kn20_per_s, cond.temperature_c, THETA_NITRIFICATION)))
    ka = np.asarray(arrhenius(reaeration_rate(state.velocity_ms, state.depth_m, cond.reaeration_method),
                              cond.temperature_c, THETA_REAERATION), dtype=float)
    return kd, kn, ka


def _propagate(g: np.ndarray, t: float, kd: float, kn: float, ka: float) -> np.ndarray:
    """Row vector g (station sensitivity at a reach point) moved upstream by travel time t: g K(t)."""
    ta = np.array([t])
    a, b, c = g
    return np.array([a * math.exp(-kd * t) + c * kd * float(_phi(np.array([kd]), np.array([ka]), ta)[0]),
                     b * math.exp(-kn * t) + c * NBOD_RATIO * kn * float(_phi(np.array([kn]), np.array([ka]), ta)[0]),
                     c * math.exp(-ka * t)])


def station_sensitivity(net: RiverNetwork, state: ReachState, station: Feature, cond: DOConditions,
                        horizon_s: float) -> dict[int, np.ndarray]:
    """Reach index -> row vector mapping flux increments at that reach's downstream end to the
    station's deficit flux [g/s per g/s]; the station's own reach maps from the station point."""
    kd, kn, ka = _kinetics(state, cond)
    s_idx = state.index[station.reach]
    acc: dict[int, np.ndarray] = {s_idx: np.array([0.0, 0.0, 1.0])}
    age: dict[int, float] = {s_idx: 0.0}
    done: dict[int, np.ndarray] = {}
    heap = [-s_idx]
    q = state.discharge_m3s
    from hydrology.transport.analytic import node_outflow_divisor

    while heap:
        j = -heapq.heappop(heap)
        if j in done:
            continue
        g = acc.pop(j)
        done[j] = g
        length = station.chainage_m if j == s_idx else state.length_m[j]
        tt = length / state.velocity_ms[j]
        if age[j] + tt > horizon_s:
            continue
        g_start = _propagate(g, tt, kd[j], kn[j], ka[j])
        node = net.reaches[state.ids[j]].from_node
        share = q[j] / node_outflow_divisor(net, state, node)
        for up in net.reaches_into(node):
            k = state.index[up]
            acc[k] = acc.get(k, np.zeros(3)) + share * g_start
            age[k] = min(age.get(k, math.inf), age[j] + tt)
            heapq.heappush(heap, -k)
    return done


def attribute_do(net: RiverNetwork, readings: Readings, station: str, *, conditions: DOConditions | None = None,
                 horizon_s: float = DEFAULT_HORIZON_S, operations: Mapping[str, priors.OperationsEvidence] | None = None,
                 state: ReachState | None = None) -> AttributionResult:
    """Rank the sources of a steady DO sag at ``station`` (see module doc)."""
    st = state if state is not None else net.reach_state()
    cond = conditions or DOConditions()
    anomaly = net.feature(station, "station")
    frame = readings.frame[readings.frame["parameter"] == "DO"]
    sdo = readings.series(station, "DO").sort_index()
    if sdo.empty:
        raise AttributionError(f"no DO readings at station {station!r}")
    std = float(limit("DO", anomaly.get("target_class") or "III").value_g_m3)  # type: ignore[arg-type]
    # GB 3838 days are local calendar days of the basin: the network document's IANA zone
    daily = sdo.tz_convert(network_zone(net)).resample("1D").mean()
    low_days = daily.index[daily < std]
    if len(low_days) == 0:
        raise AttributionError(f"daily mean DO at {station!r} never falls below the class standard {std} mg/L")
    t_event = low_days[0]
    stations = sorted(set(frame["station_id"]) & set(net.stations))
    deficit: dict[str, tuple[float, float]] = {}
    for sid in stations:
        s = readings.series(sid, "DO").sort_index()
        before, during = s[s.index < t_event], s[s.index >= t_event]  # tz-aware comparison
        if len(before) < 3 or len(during) < 3:
            continue
        d = float(before.median() - during.median())
        deficit[sid] = (d, math.hypot(DEFICIT_FLOOR_G_M3, DEFICIT_RELATIVE_ERROR * max(d, 0.0)))
    # hypotheses: everything upstream of the anomaly station (moments only used for distance/time)
    from hydrology.pollutants import Pollutant

    um = upstream_moments(net, st, anomaly, Pollutant("BOD5", "oxygen_demanding"), horizon_s)
    hyps = build_hypotheses(net, st, um)
    logp, sig_notes = _log_priors(hyps, st, "DO")
    H = len(hyps)
    kd, kn, ka = _kinetics(st, cond)
    A = np.zeros((H, len(deficit)))  # extra deficit [g/m3] per g/s of CBOD at each hypothesis
    y = np.array([deficit[s][0] for s in deficit])
    sig = np.array([deficit[s][1] for s in deficit])
    for col, sid in enumerate(deficit):
        sf = net.feature(sid, "station")
        sens = station_sensitivity(net, st, sf, cond, horizon_s)
        q_s = st.discharge_m3s[st.index[sf.reach]]
        for i, h in enumerate(hyps):
            j = st.index[h.reach]
            if j not in sens or (j == st.index[sf.reach] and h.chainage_m >= sf.chainage_m):
                continue
            below = (sf.chainage_m if j == st.index[sf.reach] else st.length_m[j]) - h.chainage_m
            g = _propagate(sens[j], below / st.velocity_ms[j], kd[j], kn[j], ka[j])
            ratio = N_TO_CBOD.get(h.feature.get("kind", ""), DEFAULT_N_TO_CBOD) if h.feature is not None else DEFAULT_N_TO_CBOD
            A[i, col] = (g[0] + ratio * g[1]) / q_s
    wA = A / sig
    wy = y / sig
    denom = np.sum(wA * wA, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        W = np.where(denom > 0, np.maximum(np.sum(wA * wy, axis=1) / denom, 0.0), 0.0)
    fit = -0.5 * np.sum((wy[None, :] - wA * W[:, None]) ** 2, axis=1)
    f_list, o_list, feas_notes, ops_notes = priors.discharger_terms(
        [h.feature for h in hyps], "DO", list(W / 1000.0), pulse=False, operations=operations)
    feas, ops = np.array(f_list), np.array(o_list)
    logpost = logp + fit + feas + ops
    prob = np.exp(logpost - logpost.max())
    prob /= prob.sum()
    _fa, xa, ma, _va = um.at(np.array([st.index[h.reach] for h in hyps]), np.array([h.chainage_m for h in hyps]),
                            st.length_m[[st.index[h.reach] for h in hyps]])
    cands = []
    for i in np.argsort(-logpost, kind="stable"):
        h = hyps[i]
        rate = W[i] / 1000.0
        rel = math.sqrt(1.0 / denom[i]) / W[i] if W[i] > 0 and denom[i] > 0 else math.inf
        k = math.exp(1.6449 * min(rel, 3.0))
        cands.append(Candidate(
            id=h.id, kind=h.feature.get("kind", "discharger") if h.feature is not None else "unregistered",
            probability=float(prob[i]), distance_m=float(xa[i]), travel_time_s=float(ma[i]),
            release_start=pd.Timestamp(t_event).to_pydatetime(), release_start_interval=None,
            mass_kg=None, mass_kg_interval=None, rate_kg_s=float(rate),
            rate_kg_s_interval=(rate / k, rate * k) if rate > 0 else None, log_posterior=float(logpost[i]),
            evidence={"prior": float(logp[i]), "fit": float(fit[i]), "feasibility": float(feas[i]), "operations": float(ops[i])},
            explanation={"signature": sig_notes[i], "feasibility": feas_notes[i], "operations": ops_notes[i],
                         "fit": "extra deficits [mg/L] " + ", ".join(f"{s} {deficit[s][0]:.2f}" for s in deficit)},
        ))
    nearest = min((c for c in cands if c.kind != "unregistered"), key=lambda c: c.distance_m, default=None)
    saw = tuple(s for s in deficit if deficit[s][0] > 2 * deficit[s][1])
    return AttributionResult(station, "DO", "steady_do", tuple(cands), saw, tuple(s for s in deficit if s not in saw),
                             nearest.id if nearest else None,
                             (f"event from {pd.Timestamp(t_event).isoformat()}; rate_kg_s is ultimate CBOD",))

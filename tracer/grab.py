"""How to tell apart candidates the stations cannot: one grab sample, and operations checks.

:func:`grab_sample` predicts, with the transport kernel's response curves (the ones
:mod:`tracer.attribution` scores its best candidates with, :func:`hydrology.transport.kernel.point_source_responses`),
each undecided candidate's concentration at places between and below the candidates, down to the
anomaly station: every station and named site (bridges, boom and dam sites) there, and points every
:data:`STEP_M` along those reaches with their ends. Each candidate's fitted release is used: a box of
its mass over its fitted duration, an instant, or a rate still going on. At each place and time
(every :data:`TIME_STEP_S` from ``now`` for ``horizon_s``) the expected information gain of one
reading (:func:`tracer.separation.information_gain`, Lindley 1956) is computed with a reading error
of the sensor noise plus the curve's model error :data:`tracer.attribution.CURVE_RELATIVE_ERROR`
(relative, on the candidates' mean prediction there); the largest wins. A place above a candidate's
outfall sees none of its plume (predicted 0), which is what makes a sample *between* two outfalls
decisive.

:func:`operations_checks` names, for each registered discharger in an undecided group, the
operations evidence to check (power meter: production on while treatment is off; the online
effluent monitor; the discharge log), in Chinese and English.

Units: s, m, kg, kg/s, mg/L (= g/m3); times UTC.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from hydrology.network import Feature, RiverNetwork
from hydrology.pollutants import pollutant as make_pollutant
from hydrology.timezones import local_time, network_zone
from hydrology.transport.kernel import point_source_responses

from .attribution import CURVE_RELATIVE_ERROR, AttributionResult, Candidate
from .separation import information_gain

if TYPE_CHECKING:
    from hydrology.pollutants import Pollutant
    from hydrology.reach_state import ReachState

#: spacing of the sampling points along a reach [m]
STEP_M = 500.0
#: spacing of the candidate sampling times [s]
TIME_STEP_S = 900.0
#: how far ahead the sampling times go [s]
DEFAULT_HORIZON_S = 24 * 3600.0
#: candidates compared when the first group is a single one (the runners-up) [-]
FEW = 3
#: sampling points closer than this to a candidate's outfall are left out [m]
OUTFALL_CLEARANCE_M = 100.0
#: id prefix of the sampling points that are not features of the network
POINT_PREFIX = "point:"


@dataclass(frozen=True, slots=True)
class GrabSample:
    """The one extra sample that would split the candidates best."""

    reach: str
    chainage_m: float
    site: str | None  # a station's or named site's id, None for a point on the reach
    site_name: str | None
    time: datetime  # UTC
    gain_nats: float
    #: each candidate's predicted excess concentration there and then [mg/L]
    predicted_mg_l: dict[str, float]
    #: each candidate's probability, the weights of the gain [-]
    weights: dict[str, float]
    sigma_mg_l: float  # standard deviation of the reading's error used [mg/L]


def undecided(result: AttributionResult) -> tuple[Candidate, ...]:
    """The first group when it holds more than one candidate; else the :data:`FEW` best candidates."""
    gs = result.groups
    if not gs:
        return ()
    if len(gs[0]) > 1:
        return gs[0]
    return tuple(c for c in result.candidates if c.probability > 0.0)[:FEW]


def _location(net: RiverNetwork, state: ReachState, c: Candidate, station: Feature) -> tuple[str, float]:
    """Where a candidate releases: a discharger's outfall, or mid-reach for an unregistered source
    (as :func:`tracer.attribution.build_hypotheses`)."""
    if c.id.startswith("reach:"):
        rid = c.id.split(":", 1)[1]
        top = station.chainage_m if rid == station.reach else float(state.length_m[state.index[rid]])
        return rid, top / 2.0
    f = net.feature(c.id)
    return f.reach, float(f.chainage_m)


def sampling_places(net: RiverNetwork, state: ReachState, sources: Sequence[tuple[str, float]],
                    station: Feature, step_m: float = STEP_M) -> list[Feature]:
    """Stations, named sites and points every ``step_m`` (and reach ends) on the reaches from the
    highest source down to the anomaly ``station`` (not below it: every plume passes the station)."""
    above = net.all_upstream(station.reach) | {station.reach}
    region: set[str] = set()
    for rid, _c in sources:
        region |= ({rid} | net.all_downstream(rid)) & above
    places: list[Feature] = []
    for f in net.iter_features(("station", "site")):
        if f.reach in region and not (f.reach == station.reach and f.chainage_m > station.chainage_m):
            places.append(f)
    for rid in sorted(region, key=lambda r: state.index[r]):
        length = float(state.length_m[state.index[rid]])
        end = station.chainage_m if rid == station.reach else length
        outfalls = [c for r, c in sources if r == rid]
        for x in [*np.arange(step_m, end, step_m).tolist(), end]:
            # not at an outfall: a bottle there may catch the effluent or not (mixing zone)
            if x > 0 and all(abs(x - c) > OUTFALL_CLEARANCE_M for c in outfalls):
                places.append(Feature("site", f"{POINT_PREFIX}{rid}@{x:.0f}", rid, float(x)))
    return places


def _with_places(net: RiverNetwork, places: list[Feature]) -> RiverNetwork:
    """A copy of the network whose only receptors (``site``) are the sampling places."""
    return RiverNetwork(net.nodes, net.reaches, inflows=net.inflows,
                        features={"site": {f.id: replace(f, kind="site") for f in places}}, name=net.name)


def predict(net: RiverNetwork, state: ReachState, c: Candidate, reach: str, chainage_m: float, pol: Pollutant,
            places: list[Feature], t_s: np.ndarray, t_ref: datetime) -> np.ndarray:
    """(places, times) predicted excess [mg/L] of a candidate's fitted release at ``t_s`` [s after
    ``t_ref``]; 0 where its plume does not go (above its outfall, other branches)."""
    out = np.zeros((len(places), t_s.size))
    if c.release_start is None or (c.mass_kg is None and c.rate_kg_s is None):
        return out
    sampled = _with_places(net, places)
    within = {state.index[f.reach] for f in places} | {state.index[reach]}
    r = point_source_responses(sampled, state, reach, chainage_m, pol, ("site",), within=within)
    if len(r) == 0:
        return out
    tt = t_s - (c.release_start - t_ref).total_seconds()
    rows = np.arange(len(r))
    if c.rate_kg_s is not None:
        curve = c.rate_kg_s * r.step(tt, rows=rows)
    elif c.duration_s:
        curve = c.mass_kg * (r.step(tt, rows=rows) - r.step(tt - c.duration_s, rows=rows)) / c.duration_s  # type: ignore[operator]
    else:
        curve = c.mass_kg * r.impulse(tt, rows=rows)  # type: ignore[operator]
    index = {f.id: i for i, f in enumerate(places)}
    for k, f in enumerate(r.features):
        out[index[f.id]] = np.clip(curve[k], 0.0, None)
    return out


def grab_sample(net: RiverNetwork, result: AttributionResult, now: datetime, *, noise_mg_l: float,
                horizon_s: float = DEFAULT_HORIZON_S, time_step_s: float = TIME_STEP_S, step_m: float = STEP_M,
                state: ReachState | None = None) -> GrabSample | None:
    """The place and time of one grab sample with the largest expected information gain [nats] about
    which undecided candidate (:func:`undecided`) released; None when fewer than two candidates have a
    fitted release or no place tells them apart (every gain 0).

    Parameters
    ----------
    net : RiverNetwork
        The network the attribution ran on.
    result : AttributionResult
        A pulse or continuous attribution (DO attributions have no plume: None).
    now : datetime
        Earliest sampling time (timezone-aware) [UTC].
    noise_mg_l : float
        Standard deviation of a reading's own error [mg/L] (> 0), e.g. the anomaly station's noise.
    horizon_s, time_step_s : float
        Sampling times from ``now`` to ``now + horizon_s``, every ``time_step_s`` [s].
    step_m : float
        Spacing of the sampling points along a reach [m].
    """
    if not noise_mg_l > 0.0 or not horizon_s > 0.0 or not time_step_s > 0.0 or not step_m > 0.0:
        raise ValueError("noise_mg_l, horizon_s, time_step_s and step_m must be > 0")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if result.model not in ("pulse", "continuous"):
        return None
    cands = [c for c in undecided(result) if c.release_start is not None]
    if len(cands) < 2:
        return None
    st = state if state is not None else net.reach_state()
    station = net.feature(result.station, "station")
    pol = make_pollutant(result.parameter)
    locs = [_location(net, st, c, station) for c in cands]
    places = sampling_places(net, st, locs, station, step_m)
    t_s = np.arange(0.0, horizon_s + 0.5 * time_step_s, time_step_s)
    pred = np.stack([predict(net, st, c, rid, x, pol, places, t_s, now) for c, (rid, x) in zip(cands, locs)])
    w = np.array([c.probability for c in cands])
    w = w / w.sum()
    best = (0.0, -1, -1, 1.0)
    spread = pred.max(axis=0) - pred.min(axis=0)
    for i, j in zip(*np.nonzero(spread > 1e-3 * noise_mg_l)):
        mu = pred[:, i, j]
        sigma = math.hypot(noise_mg_l, CURVE_RELATIVE_ERROR * float(w @ mu))
        g = information_gain(w.tolist(), mu.tolist(), sigma)
        if g > best[0]:
            best = (g, int(i), int(j), sigma)
    gain, i, j, sigma = best
    if i < 0:
        return None
    f = places[i]
    named = not f.id.startswith(POINT_PREFIX)
    return GrabSample(f.reach, f.chainage_m, f.id if named else None, f.name if named else None,
                      now + timedelta(seconds=float(t_s[j])), float(gain),
                      {c.id: float(pred[k, i, j]) for k, c in enumerate(cands)},
                      {c.id: float(w[k]) for k, c in enumerate(cands)}, sigma)


@dataclass(frozen=True, slots=True)
class OperationsCheck:
    """What to check at one discharger of an undecided group (Chinese and English)."""

    discharger: str
    zh: str
    en: str


def operations_checks(net: RiverNetwork, group: Sequence[Candidate]) -> tuple[OperationsCheck, ...]:
    """For each registered discharger in ``group``: the power-meter record (production on while
    treatment is off), the online effluent monitor and the discharge log around its fitted release."""
    out = []
    for c in group:
        if c.id.startswith("reach:") or c.id not in net.dischargers:
            continue
        f = net.dischargers[c.id]
        tz = network_zone(net)
        name = f.name or c.id
        when_en = when_zh = ""
        iv = c.release_start_interval
        if iv is not None and iv[1] > iv[0]:  # (the steady DO model has no release time)
            a, b = (local_time(t, tz) for t in iv)  # the network's zone, as the checklist around it
            when_en = f" between {a} and {b}"
            when_zh = f"（{a} 至 {b}）"
        out.append(OperationsCheck(  # zh names the discharger by id: network names may be English
            c.id,
            f"核查 {c.id}{when_zh}：用电监控是否“生产开、治污停”；调取废水在线监测（出水流量、浓度）记录；"
            "检查排污口及旁路是否有排放痕迹。",
            f"Check {name} ({c.id}){when_en}: power meters for 'production on, treatment off'; the online "
            "effluent monitor (flow, concentration); the outfall and any bypass for signs of discharge."))
    return tuple(out)

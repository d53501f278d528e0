"""Seeded attribution benchmark: synthetic pulse incidents, their readings, and accuracy figures.

An incident (:func:`make_incident`) is drawn as follows; every number is a module constant.

1. A parameter from :data:`POLLUTANT_MIX`, then a registered discharger that emits it (``tracer``:
   any; else one listing it, or listing nothing) and can release the smallest mass
   (:func:`tracer.priors.capacity`), with a station within :data:`DETECTION_WINDOW_S` of mean travel
   time downstream. A mass log-uniform in :data:`MASS_RANGE_KG` capped at that capacity, a release
   at a random second of 2025. A draw whose frozen-cloud peak f M / (Q sqrt(2 pi var_t)) (Fischer et
   al. 1979, sec. 5.1) is below the detection level at every such station is redrawn (nobody traces
   what no station sees); ``Incident.redraws`` counts redraws by cause.
   Continuous incidents (``release="continuous"``): a rate log-uniform in :data:`RATE_RANGE_KG_S`
   capped at the discharger's continuous capacity, still going on when the record ends; the plateau
   f R / Q must reach the detection level; the record ends once the plateau has reached the farthest
   station in the window, and starts more than that long before the release (a station's baseline
   is its median: the record must be mostly background, as a bureau's days of history are).
2. Readings: the numerical engine (:func:`hydrology.transport.numerical.simulate`, not the analytic moments
   attribution uses) runs on the part of the network the plume reaches (:func:`downstream_document`),
   every :data:`RECORD_EVERY_S` from a random lead before the release until the plume has passed
   the farthest station in the window (mean + :data:`PLUME_SIGMAS` sigma), at every station in the
   window; value = (background + plume) (1 + 0.1 N(0, 1)), clipped at 0.
3. The anomaly station is the one whose excess first exceeds the detection level of
   :func:`tracer.signals.station_signals` (its ``saw``); the :data:`MAX_UPSTREAM_STATIONS` stations
   nearest upstream of it (none below the source) get background-only readings.
4. Attribution is told wrong flows (:data:`FLOW_ERRORS`): ``global`` scales every stated reach
   discharge and node inflow by one factor uniform in 1 +- :data:`FLOW_ERROR`; ``per_reach`` gives
   each reach its own factor. A :class:`Basin` may share a pool of such networks between incidents
   (``n_flow_networks``): a 100,000-reach state takes ~2 s to build.

Identifiability rule. Release time and mass are free, so a competing registered discharger D explains
the readings as well as the true source T when (a) no station with readings lies between them (the
same stations are below both, within twice the attribution horizon: arrival-time differences between
stations and the pattern of silence are then identical) and (b) its mean travel time to the anomaly
station is within +-:data:`CONFUSION_TIME_RATIO` of T's. Under (a) only the plume's width differs; its
travel-time variance grows about in proportion to travel time, so (b) bounds the width difference by
sqrt(1.25) - 1 = 12 %, below the attribution's 25 % curve-model error and the 20 % flow error. An
incident is identifiable when a station saw it and no such D exists; the others are reported apart,
and accuracy is tabulated against the smallest travel-time gap to a same-stretch D to check the rule.

Stricter rule (``identifiable_strict``, reported beside the first): attribution fits a release
duration, so D also explains the readings when (b') its own travel-time variance at the anomaly
station is no more than T's plus T_r^2/12 for a release lasting T_r (variances of independent delays
add): D explains the curve with a longer release of its own. For a pulse that is every D nearer than
T on the stretch (issue 11: "same-stretch candidates are identifiable only through priors or
operations evidence"); not applied to releases still going on.

Units: s, m, kg, g/m3 (= mg/L), m3/s.

References
----------
Fischer, H.B., List, E.J., Koh, R.C.Y., Imberger, J. and Brooks, N.H. (1979) Mixing in Inland and
Coastal Waters, Academic Press, sec. 5.1 (frozen-cloud approximation).
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd

from hydrology.document import network_from_document
from hydrology.network import Feature, Reach, RiverNetwork
from hydrology.pollutants import Pollutant
from hydrology.pollutants import pollutant as make_pollutant
from hydrology.reach_state import ReachState
from hydrology.transport.analytic import Release, path_velocity, route_moments
from hydrology.transport.numerical import simulate

from . import priors
from .attribution import DEFAULT_HORIZON_S, AttributionError, attribute_release, build_hypotheses
from .exceptions import TracerError
from .readings import Readings, readings_from_frame
from .signals import NOISE_FLOOR_ABSOLUTE, NOISE_FLOOR_RELATIVE, SAW_SIGMAS, station_signals
from .upstream import upstream_moments

#: multiplicative sensor noise, standard deviation [-] (DESIGN.md section 6)
SENSOR_NOISE = 0.10
#: flow error the attribution is told: factors uniform in 1 +- FLOW_ERROR [-] (DESIGN.md section 6)
FLOW_ERROR = 0.20
#: reading interval [s]
RECORD_EVERY_S = 300.0
#: a discharger needs a station within this mean travel time [s]; readings cover these stations
DETECTION_WINDOW_S = 86400.0
#: released mass, log-uniform [kg]
MASS_RANGE_KG = (5.0, 500.0)
#: continuous incidents: release rate, log-uniform [kg/s]
RATE_RANGE_KG_S = (0.002, 0.2)
#: finite ("box") incidents: release duration, log-uniform [s] (issue 11: 5 minutes to 12 hours)
DURATION_RANGE_S = (300.0, 43200.0)
#: share of readings lost at random, and share of incidents with one station offline (issue 11) [-]
MISSING_SHARE, OFFLINE_SHARE = 0.05, 0.10
#: bins of the first choice's stated probability for the reliability table and ECE [-]
CALIBRATION_BINS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
#: Monte Carlo draws of the ECE of a calibrated first choice (:func:`ece_if_calibrated`) [-]
CALIBRATION_NULL_DRAWS = 2000
#: readings start this many reading intervals before the release (uniform, inclusive) [-]
LEAD_STEPS = (24, 72)
#: the record ends when the plume is this many standard deviations past the farthest station [-]
PLUME_SIGMAS = 6.0
#: parameter -> probability of an incident
POLLUTANT_MIX: dict[str, float] = {"COD": 0.45, "tracer": 0.40, "petroleum": 0.15}
#: background concentration [g/m3]: COD of a class II-III river, a trace of oil film, and for a dye
#: tracer its detection floor
BACKGROUND_G_M3: dict[str, float] = {"COD": 2.0, "petroleum": 0.01, "tracer": 0.001}
#: silent stations upstream of the anomaly station that get readings [-]
MAX_UPSTREAM_STATIONS = 5
#: competitors within this relative mean travel time of the truth are not separable [-]
CONFUSION_TIME_RATIO = 0.25
#: redraws before giving up [-]; bins of the competitor travel-time gap in the accuracy table [-]
MAX_DRAWS, GAP_BINS = 2000, (0.0, 0.1, 0.25, 0.5, 1.0, math.inf)
#: why an incident is not identifiable
NOT_SEEN = "no station saw it"
BEYOND_HORIZON = "true source beyond the attribution horizon"
SAME_STRETCH = f"a registered discharger on the same stretch within {CONFUSION_TIME_RATIO:.0%} of travel time"
SAME_STRETCH_DURATION = ("a registered discharger on the same stretch whose own curve is no wider than the observed one "
                         "(a longer release there explains it)")
_YEAR = datetime(2025, 1, 1, tzinfo=UTC)
_REACH_NUMBERS = tuple(f.name for f in fields(Reach)
                       if f.name not in ("id", "from_node", "to_node", "length_m", "geometry", "name", "extra"))

FlowErrorMode = Literal["global", "per_reach"]


class BenchmarkError(TracerError, ValueError):
    """A benchmark cannot be drawn (no discharger with a station in reach, an unknown mode)."""


# ------------------------------------------------------------------------------------ flow errors
def _global_flow_error(net: RiverNetwork, rng: np.random.Generator) -> tuple[RiverNetwork, float]:
    f = float(rng.uniform(1.0 - FLOW_ERROR, 1.0 + FLOW_ERROR))
    reaches = {rid: r if r.discharge_m3s is None else replace(r, discharge_m3s=r.discharge_m3s * f)
               for rid, r in net.reaches.items()}
    return _rebuilt(net, reaches, {n: q * f for n, q in net.inflows.items()}, f"flows x {f:.3f}"), f


def _per_reach_flow_error(net: RiverNetwork, rng: np.random.Generator) -> tuple[RiverNetwork, float]:
    q = net.steady_discharge
    fac = rng.uniform(1.0 - FLOW_ERROR, 1.0 + FLOW_ERROR, len(net.reaches))
    reaches = {rid: replace(r, discharge_m3s=q[rid] * k) for (rid, r), k in zip(net.reaches.items(), fac)}
    return _rebuilt(net, reaches, net.inflows, "per-reach flow errors"), float(np.mean(fac))


def _rebuilt(net: RiverNetwork, reaches: Mapping[str, Reach], inflows: Mapping[str, float], what: str) -> RiverNetwork:
    out = RiverNetwork(net.nodes, reaches, inflows=inflows, features=net.features, departments=net.departments,
                       name=f"{net.name} ({what})", crs=net.crs, notes=net.notes, extra=net.extra)
    node = next(iter(out.nodes))
    out.reaches_into(node), out.reaches_out_of(node)  # build the graph caches now, not in a timed call
    return out


#: flow-error mode -> perturbation (network, rng) -> (network the attribution is told, mean factor)
FLOW_ERRORS: dict[str, Callable[[RiverNetwork, np.random.Generator], tuple[RiverNetwork, float]]] = {
    "global": _global_flow_error, "per_reach": _per_reach_flow_error}


# ------------------------------------------------------------------------------------ basins
@dataclass(frozen=True, slots=True)
class Basin:
    """A network incidents are drawn on, with its flow-error mode and caches.

    ``n_flow_networks``: None draws a new perturbed network per incident; k draws k of them once
    (seeded by ``seed``) and gives each incident one at random.
    """

    name: str
    net: RiverNetwork
    flow_error: FlowErrorMode = "global"
    n_flow_networks: int | None = None
    seed: int = 0
    cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.flow_error not in FLOW_ERRORS:
            raise BenchmarkError(f"basin {self.name!r}: unknown flow-error mode {self.flow_error!r}; "
                                 f"known: {sorted(FLOW_ERRORS)}")

    @property
    def state(self) -> ReachState:
        return self.net.reach_state()

    def attribution_network(self, rng: np.random.Generator) -> tuple[RiverNetwork, ReachState, float, bool]:
        """(network with wrong flows, its state, mean flow factor, whether it is new)."""
        perturb = FLOW_ERRORS[self.flow_error]
        if self.n_flow_networks is None:
            net, f = perturb(self.net, rng)
            return net, net.reach_state(), f, True
        k = int(rng.integers(self.n_flow_networks))
        pool = self.cache.setdefault("flow_networks", {})
        new = k not in pool
        if new:
            net, f = perturb(self.net, np.random.default_rng([self.seed, k]))
            pool[k] = (net, net.reach_state(), f)
        return (*pool[k], new)

    def stations_on(self, reach: str) -> list[Feature]:
        if "stations" not in self.cache:
            for f in self.net.stations.values():
                self.cache.setdefault("stations", {}).setdefault(f.reach, []).append(f)
        return self.cache.get("stations", {}).get(reach, [])

    def eligible(self, parameter: str, minimum: float, pulse: bool = True) -> list[tuple[Feature, float]]:
        """Dischargers that emit ``parameter`` and can release ``minimum`` (a mass [kg] for a pulse, a
        rate [kg/s] otherwise), with their capacity in the same unit."""
        key = f"eligible:{parameter}:{minimum}:{pulse}"
        if key not in self.cache:
            caps = [(d, priors.capacity(d, parameter, pulse=pulse)) for d in self.net.dischargers.values()
                    if parameter == "tracer" or not d.get("pollutants") or parameter in d.get("pollutants")]
            self.cache[key] = [(d, math.inf if c is None else c) for d, c in caps if c is None or c >= minimum]
        return self.cache[key]


# ------------------------------------------------------------------------------------ readings
def downstream_document(net: RiverNetwork, state: ReachState, reach: str, chainage_m: float, t_end_s: float,
                        pollutant: Pollutant, stations: Iterable[Feature] = ()) -> dict[str, Any]:
    """The part of ``net`` a release can reach within ``t_end_s`` [s], as a network document.

    Reaches are kept while the advective travel time to their upstream end (a lower bound: storage
    only slows a plume) is below ``t_end_s``. Each states the full network's steady discharge
    [m3/s]; each node gets as inflow the water that arrives there from outside the kept reaches
    (tributaries, the source reach's own upstream water, the node's inflow; at a headwater, the
    water leaving it), so the water arriving at every node, and hence mixing and the junction
    treatment of the numerical engine, is that of the full network. ``stations`` on kept reaches
    are copied.
    """
    u, _ = path_velocity(state, pollutant)
    tt = state.length_m / u
    i0 = state.index[reach]
    start = {i0: -chainage_m / state.length_m[i0] * tt[i0]}
    heap, keep = [i0], list[int]()
    while heap:
        j = heapq.heappop(heap)  # topological order: every kept parent of j is done
        if keep and keep[-1] == j:
            continue
        keep.append(j)
        end = start[j] + tt[j]
        if end > t_end_s:
            continue
        for d in net.reaches_out_of(net.reaches[state.ids[j]].to_node):
            k = state.index[d]
            start[k] = min(start.get(k, math.inf), end)
            heapq.heappush(heap, k)
    kept = {state.ids[j] for j in keep}
    q = state.discharge_m3s
    reaches, nodes, inflows = [], dict[str, None](), []
    for j in keep:
        r = net.reaches[state.ids[j]]
        item = {"id": r.id, "from_node": r.from_node, "to_node": r.to_node, "length_m": r.length_m,
                **{k: v for k in _REACH_NUMBERS if (v := getattr(r, k)) is not None}, "discharge_m3s": float(q[j])}
        reaches.append(item)
        nodes.setdefault(r.from_node, None)
        nodes.setdefault(r.to_node, None)
    for n in nodes:
        outs = [q[state.index[r]] for r in net.reaches_out_of(n) if r in kept]
        ins = net.reaches_into(n)
        outside = net.inflows.get(n, 0.0) + sum(q[state.index[r]] for r in ins if r not in kept)
        if outs and (outside > 0 or not ins):  # a bare headwater: its water enters there, clean
            inflows.append({"node": n, "discharge_m3s": float(outside if outside > 0 else sum(outs))})
    return {"format": "rivertrace-network", "version": 1, "name": f"{net.name} below {reach}",
            "nodes": [{"id": n} for n in nodes], "reaches": reaches, "inflows": inflows,
            "stations": [{"id": s.id, "reach": s.reach, "chainage_m": s.chainage_m} for s in stations
                         if s.reach in kept]}


def _noise_scale(parameter: str) -> float:
    """Noise scale station_signals finds on a background-only record [g/m3] (1.4826 MAD = 0.1 b)."""
    b = BACKGROUND_G_M3[parameter]
    return max(SENSOR_NOISE * b, NOISE_FLOOR_RELATIVE * b, NOISE_FLOOR_ABSOLUTE)


def _readings(values: Mapping[str, np.ndarray], times: pd.DatetimeIndex, parameter: str) -> Readings:
    df = pd.DataFrame({"station_id": np.repeat(list(values), len(times)), "parameter": parameter,
                       "time": np.tile(times, len(values)), "value": np.concatenate(list(values.values())),
                       "unit": "mg/L"})
    df = df[np.isfinite(df["value"].to_numpy(float))].reset_index(drop=True)  # a lost reading is absent
    if parameter == "tracer":
        # the loaders know the standards' items only; a dye tracer goes in through the Readings
        # constructor, which checks the columns and sorts (g/m3 = mg/L, so nothing to convert)
        return Readings(df.drop(columns="unit").assign(time=df["time"].astype("datetime64[ns, UTC]"), flag=None))
    if (res := readings_from_frame(df)).rejected:
        raise BenchmarkError(f"generated readings rejected: {res.rejected[:3]}")
    return res.readings


# ------------------------------------------------------------------------------------ incidents
@dataclass(frozen=True, slots=True)
class Incident:
    """One seeded release, the readings it produced, and what attribution will be told.

    ``mass_kg`` is NaN for a continuous release, ``rate_kg_s`` None for a pulse; a finite ("box")
    release has both and its ``duration_s``.
    """

    basin: str
    discharger: str
    parameter: str
    mass_kg: float
    release_start: datetime
    flow_factor: float
    readings: Readings = field(repr=False)
    anomaly_station: str | None
    stations_downstream: tuple[str, ...]
    stations_upstream: tuple[str, ...]
    identifiable: bool
    reason: str
    competitor_gap: float
    confusers: tuple[str, ...]
    redraws: Mapping[str, int]
    generate_s: float
    attribution_net: RiverNetwork = field(repr=False, compare=False)
    attribution_state: ReachState = field(repr=False, compare=False)
    warm_up: bool = False
    release: str = "pulse"
    rate_kg_s: float | None = None
    duration_s: float | None = None
    sample_every_s: float = RECORD_EVERY_S
    #: identifiable also under rule (b') of the module doc (no same-stretch discharger explains it
    #: with a longer release of its own)
    identifiable_strict: bool = False


def make_incident(basin: Basin, rng: np.random.Generator, *, mass_range_kg: tuple[float, float] = MASS_RANGE_KG,
                  pollutant_mix: Mapping[str, float] = POLLUTANT_MIX, window_s: float = DETECTION_WINDOW_S,
                  release: str = "pulse", rate_range_kg_s: tuple[float, float] = RATE_RANGE_KG_S,
                  duration_range_s: tuple[float, float] = DURATION_RANGE_S, sample_every_s: float = RECORD_EVERY_S,
                  faults: bool = False) -> Incident:
    """Draw one incident on ``basin`` (see the module docstring for the protocol).

    ``release``: ``"pulse"``, ``"box"`` (a mass released at a constant rate over a duration
    log-uniform in ``duration_range_s``) or ``"continuous"``. ``sample_every_s``: the stations'
    reporting interval [s] (the solver runs finer and is sampled). ``faults``: lose
    :data:`MISSING_SHARE` of the readings at random and, in :data:`OFFLINE_SHARE` of incidents, every
    reading of one station below the source.
    """
    if release not in ("pulse", "box", "continuous"):
        raise BenchmarkError(f"unknown release kind {release!r}; choose 'pulse', 'box' or 'continuous'")
    pulse = release != "continuous"  # a box releases a finite mass, like a pulse
    size_range = mass_range_kg if pulse else rate_range_kg_s
    t_start = time.perf_counter()
    net, st = basin.net, basin.state
    params, p = list(pollutant_mix), np.array(list(pollutant_mix.values()), float)
    redraws: Counter[str] = Counter()
    for _ in range(MAX_DRAWS):
        parameter = params[int(rng.choice(len(params), p=p / p.sum()))]
        if not (pool := basin.eligible(parameter, size_range[0], pulse)):
            redraws["no discharger emits it"] += 1
            continue
        d, cap = pool[int(rng.integers(len(pool)))]
        pol = make_pollutant(parameter)
        below = route_moments(net, st, d.reach, d.chainage_m, pol, ("station",))
        routed = [r for r in below if r[1] > 0 and r[3] <= window_s]
        if not routed:
            redraws["no station within the window"] += 1
            continue
        size = float(np.exp(rng.uniform(math.log(size_range[0]), math.log(min(size_range[1], cap)))))
        dur = (float(np.exp(rng.uniform(*np.log(duration_range_s)))) if release == "box" else 0.0)
        # frozen-cloud peak; a box's mass spread over its duration adds T^2/12 to the variance
        peak = max(f * size * 1000.0 / (st.discharge_m3s[st.index[s.reach]] * (math.sqrt(2 * math.pi * (v + dur**2 / 12))
                                                                           if pulse else 1.0))
                   for s, f, _x, _m, v in routed)
        if peak >= SAW_SIGMAS * _noise_scale(parameter):
            break
        redraws["too dilute to be seen"] += 1
    else:
        raise BenchmarkError(f"basin {basin.name!r}: no detectable incident in {MAX_DRAWS} draws ({dict(redraws)})")

    start = _YEAR + timedelta(seconds=int(rng.integers(0, 365 * 86400)))
    t_end = max(m + PLUME_SIGMAS * math.sqrt(v) for _s, _f, _x, m, v in routed) + 3600.0 + dur
    step = float(sample_every_s)
    n_after = math.ceil(t_end / step)
    lead_s = int(rng.integers(LEAD_STEPS[0], LEAD_STEPS[1] + 1)) * RECORD_EVERY_S  # hours of background
    lead = math.ceil(lead_s / step) + (0 if pulse else n_after)
    t_rel = np.arange(-lead, n_after + 1) * step
    times = pd.DatetimeIndex(pd.Timestamp(start) + pd.to_timedelta(t_rel, unit="s"))
    down = [r[0] for r in routed]
    sub = network_from_document(downstream_document(net, st, d.reach, d.chainage_m, t_end, pol, down))
    if release == "pulse":
        rel = Release(d.reach, d.chainage_m, pol, mass_kg=size, start=start)
    elif release == "box":
        rel = Release(d.reach, d.chainage_m, pol, rate_kg_s=size / dur, duration_s=dur, start=start)
    else:  # still going on at the end
        rel = Release(d.reach, d.chainage_m, pol, rate_kg_s=size, duration_s=(n_after + 1) * step, start=start)
    ds = simulate(sub, rel, t_end_s=n_after * step, kinds=("station",), record_every_s=min(step, RECORD_EVERY_S))
    t_sim, bg = np.asarray(ds["time"].values, float), BACKGROUND_G_M3[parameter]

    def noisy(c: np.ndarray) -> np.ndarray:  # (background + plume) x (1 + 0.1 N(0, 1)), clipped at 0
        return np.clip((bg + c) * (1 + SENSOR_NOISE * rng.standard_normal(t_rel.size)), 0.0, None)

    values = {s.id: noisy(np.interp(t_rel, t_sim, ds["concentration"].sel(receptor=s.id).values, left=0.0))
              for s in down}
    offline: str | None = None
    if faults:
        if len(down) > 1 and rng.random() < OFFLINE_SHARE:
            offline = down[int(rng.integers(len(down)))].id
            values[offline] = np.full(t_rel.size, np.nan)
        for sid, series in values.items():  # lose readings at random
            values[sid] = np.where(rng.random(t_rel.size) < MISSING_SHARE, np.nan, series)
    readings = _readings(values, times, parameter)
    signals = station_signals(readings, parameter, [k for k in values if k != offline], times[0])
    seen = {sid: s.t_s[np.argmax(s.excess > SAW_SIGMAS * s.noise)] for sid, s in signals.items() if s.saw}
    anet, astate, factor, new = basin.attribution_network(rng)
    ups: list[Feature] = []
    ident, reason, gap, confusers = False, NOT_SEEN, math.nan, tuple[str, ...]()
    strict = False
    anomaly = net.feature(min(seen, key=seen.__getitem__), "station") if seen else None
    if anomaly is not None:
        um = upstream_moments(net, st, anomaly, pol, DEFAULT_HORIZON_S)
        exclude = {r[0].id for r in below}
        ups = [s for i in um.reach_index for s in basin.stations_on(st.ids[i]) if s.id not in exclude]
        if ups:
            ri = np.array([st.index[s.reach] for s in ups])
            f, _x, m, _v = um.at(ri, np.array([s.chainage_m for s in ups]), st.length_m[ri])
            ups = [ups[i] for i in np.argsort(m, kind="stable") if f[i] > 0][:MAX_UPSTREAM_STATIONS]
            readings = readings.concat(_readings({s.id: noisy(np.zeros(t_rel.size)) for s in ups}, times, parameter))
        ident, reason, gap, confusers = identifiability(net, st, anomaly, d.id, pol, [*down, *ups])
        strict = ident and (release == "continuous" or identifiability(net, st, anomaly, d.id, pol, [*down, *ups],
                                                                       release_duration_s=dur)[0])
    return Incident(basin.name, d.id, parameter, size if pulse else math.nan, start, factor, readings,
                    anomaly.id if anomaly else None, tuple(values), tuple(s.id for s in ups), ident, reason, gap,
                    confusers, dict(redraws), time.perf_counter() - t_start, anet, astate, new, release,
                    None if release == "pulse" else (size / dur if release == "box" else size),
                    dur if release == "box" else None, step, strict)


def identifiability(net: RiverNetwork, state: ReachState, anomaly: Feature, truth: str, pollutant: Pollutant,
                    stations: Sequence[Feature], horizon_s: float = DEFAULT_HORIZON_S,
                    release_duration_s: float | None = None) -> tuple[bool, str, float, tuple[str, ...]]:
    """Apply the module's identifiability rule on the true network.

    ``release_duration_s`` [s] (a pulse: 0; None: the rule without release durations, as for a
    release still going on): attribution fits a release duration, so a same-stretch discharger D
    whose own travel-time variance at the anomaly station is no larger than the observed curve's,
    var_D <= var_T + T^2/12 (variances of independent delays add), explains the readings with a
    longer release of its own (the nearer one always can); it is a confuser whatever its travel time
    (issue 11: same-stretch candidates are then identifiable only through priors or operations
    evidence), with reason :data:`SAME_STRETCH_DURATION`.

    Returns
    -------
    (identifiable, reason, gap, confusers)
        ``gap``: smallest relative difference |t_D / t_T - 1| [-] of mean travel time to the anomaly
        station among registered dischargers D with the same stations below them as the truth T
        (inf when there is none); ``confusers``: those within :data:`CONFUSION_TIME_RATIO`.
    """
    um = upstream_moments(net, state, anomaly, pollutant, horizon_s)
    regs = [h for h in build_hypotheses(net, state, um) if h.kind == "discharger"]
    ids = [h.id for h in regs]
    if truth not in ids:
        return False, BEYOND_HORIZON, math.nan, ()
    r_idx, chain = np.array([state.index[h.reach] for h in regs]), np.array([h.chainage_m for h in regs])
    length = state.length_m[r_idx]
    _f, _x, mean, var = um.at(r_idx, chain, length)
    below = np.array([upstream_moments(net, state, s, pollutant, 2 * horizon_s).at(r_idx, chain, length)[0] > 0
                      for s in stations])
    t = ids.index(truth)
    same = np.all(below == below[:, [t]], axis=0)
    same[t] = False
    rel = np.abs(mean / mean[t] - 1.0)
    gap = float(np.min(rel[same])) if same.any() else math.inf
    by_time = same & (rel <= CONFUSION_TIME_RATIO)
    mimic = (same & ~by_time & (var <= var[t] + release_duration_s**2 / 12.0) if release_duration_s is not None
             else np.zeros(len(ids), bool))
    confusers = tuple(ids[i] for i in np.flatnonzero(by_time | mimic))
    if not confusers:
        return True, "", gap, ()
    return False, SAME_STRETCH if by_time.any() else SAME_STRETCH_DURATION, gap, confusers


# ------------------------------------------------------------------------------------ evaluation
@dataclass(frozen=True, slots=True)
class Outcome:
    """How attribution did on one incident (rank None: not detected, or the truth not ranked)."""

    incident: Incident = field(repr=False)
    rank: int | None
    top_id: str | None
    baseline_id: str | None
    release_error_s: float
    mass_error: float  # relative error of the fitted size: the mass of a pulse, the rate of a continuous release
    elapsed_ms: float
    n_candidates: int
    stations_saw: int
    evidence: Mapping[str, Mapping[str, float]]
    model: str | None = None  # the release model attribution chose
    top_probability: float = math.nan  # the probability attribution stated for its first choice
    duration_error_s: float = math.nan  # |fitted - true| release duration of a right first choice (box and pulse) [s]

    @property
    def top1(self) -> bool:
        return self.rank == 1

    @property
    def top3(self) -> bool:
        return self.rank is not None and self.rank <= 3


def attribute_incident(incident: Incident) -> Outcome:
    """Run :func:`tracer.attribution.attribute_release` on an incident, timing that call only.

    The attribution network's state is precomputed; when the network is new to this process an
    untimed call first warms its caches, as in a running service.
    """
    inc, station = incident, incident.anomaly_station
    if station is None:
        return Outcome(inc, None, None, None, math.nan, math.nan, math.nan, 0, 0, {})
    for _ in range(2 if inc.warm_up else 1):
        t = time.perf_counter()
        try:
            res = attribute_release(inc.attribution_net, inc.readings, station, inc.parameter, state=inc.attribution_state)
        except AttributionError:  # the station's excess does not survive the window around its event:
            # a detected incident attribution cannot trace counts as a miss, not a crash of the benchmark
            return Outcome(inc, None, None, None, math.nan, math.nan, (time.perf_counter() - t) * 1e3, 0, 0, {})
        elapsed = (time.perf_counter() - t) * 1e3
    rank = res.rank_of(inc.discharger)
    top = res.candidates[0]
    t_err = m_err = math.nan
    fitted, true = (top.mass_kg, inc.mass_kg) if inc.release != "continuous" else (top.rate_kg_s, inc.rate_kg_s)
    d_err = math.nan
    if rank == 1 and top.release_start is not None and fitted is not None and true is not None:
        t_err = abs((top.release_start - inc.release_start).total_seconds())
        m_err = abs(fitted / true - 1.0)
        if inc.release != "continuous":  # a pulse lasts 0 s
            d_err = abs((top.duration_s or 0.0) - (inc.duration_s or 0.0))
    evidence = {"top": top.evidence, **({"truth": res.candidates[rank - 1].evidence} if rank else {})}
    return Outcome(inc, rank, top.id, res.nearest_upstream_discharger, t_err, m_err, elapsed, len(res.candidates),
                   len(res.stations_saw), evidence, res.model, top.probability, d_err)


def _group(outs: Sequence[Outcome]) -> dict[str, Any]:
    def share(flags: list[bool]) -> float | None:
        return round(float(np.mean(flags)), 4) if flags else None

    return {"n": len(outs), "top1": share([o.top1 for o in outs]), "top3": share([o.top3 for o in outs]),
            "baseline_top1": share([o.baseline_id == o.incident.discharger for o in outs])}


def calibration(outs: Sequence[Outcome]) -> dict[str, Any]:
    """Calibration of the first choice's stated probability p: among first choices stated at p, the
    share that is right should be p. Returns the expected calibration error (ECE: the bins'
    |accuracy - mean p| weighted by their counts; Guo et al. 2017, eq. 3), the Brier score of the
    first choice, mean (p - right)^2, and the reliability table over :data:`CALIBRATION_BINS`."""
    p = np.array([o.top_probability for o in outs], float)
    right = np.array([o.top1 for o in outs], float)
    ok = np.isfinite(p)
    p, right = p[ok], right[ok]
    if not p.size:
        return {"n": 0, "ece": None, "brier": None, "bins": []}
    edges = np.asarray(CALIBRATION_BINS)
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, edges.size - 2)
    rows, ece = [], 0.0
    for b in range(edges.size - 1):
        m = which == b
        if m.any():
            acc, conf = float(right[m].mean()), float(p[m].mean())
            ece += m.sum() / p.size * abs(acc - conf)
            rows.append({"bin": [float(edges[b]), float(edges[b + 1])], "n": int(m.sum()),
                         "mean_probability": round(conf, 4), "share_right": round(acc, 4)})
    null = ece_if_calibrated(p)
    return {"n": int(p.size), "ece": round(float(ece), 4), "brier": round(float(np.mean((p - right) ** 2)), 4),
            "ece_if_calibrated_median": round(float(np.median(null)), 4),
            "ece_if_calibrated_p90": round(float(np.percentile(null, 90)), 4),
            "ece_calibrated_share_above": round(float(np.mean(null >= ece)), 4), "bins": rows}


def _ece(p: np.ndarray, right: np.ndarray) -> float:
    edges = np.asarray(CALIBRATION_BINS)
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, edges.size - 2)
    return float(sum(np.mean(which == b) * abs(right[which == b].mean() - p[which == b].mean())
                     for b in range(edges.size - 1) if np.any(which == b)))


def ece_if_calibrated(p: np.ndarray, draws: int = CALIBRATION_NULL_DRAWS, seed: int = 0) -> np.ndarray:
    """ECE [-] of a perfectly calibrated first choice with the same stated probabilities ``p``: each
    first choice right with probability p (Monte Carlo, ``draws`` draws). A finite sample has an ECE
    above 0 even when the probabilities are right (about 0.11 for 60 first choices spread over
    0.3-1): the measured ECE is judged against this spread (``ece_calibrated_share_above``: the share
    of calibrated draws with an ECE at least the measured one; small means miscalibrated)."""
    rng = np.random.default_rng(seed)
    p = np.asarray(p, float)
    return np.array([_ece(p, (rng.random(p.size) < p).astype(float)) for _ in range(draws)])


def _quantiles(values: Sequence[float], digits: int) -> tuple[float | None, float | None]:
    """Median and 90th percentile, rounded (None, None when empty)."""
    q = np.percentile(values, [50, 90]) if len(values) else [None, None]
    return tuple(None if v is None else round(float(v), digits) for v in q)  # type: ignore[return-value]


def summarize(outcomes: Iterable[Outcome]) -> dict[str, Any]:
    """Accuracy and timing figures over outcomes (see :func:`evaluate`)."""
    outs = list(outcomes)
    det = [o for o in outs if o.incident.anomaly_station is not None]
    ident = [o for o in det if o.incident.identifiable]
    t_err = _quantiles([o.release_error_s for o in det if o.top1], 1)
    m_err = _quantiles([o.mass_error for o in det if o.top1], 4)
    d_err = _quantiles([o.duration_error_s for o in det if o.top1 and math.isfinite(o.duration_error_s)], 1)
    ms = _quantiles([o.elapsed_ms for o in det], 2)
    gaps = {f"[{lo:g}, {hi:g})": _group([o for o in det if lo <= o.incident.competitor_gap < hi])
            for lo, hi in itertools.pairwise(GAP_BINS)}
    gaps["none on the stretch"] = _group([o for o in det if o.incident.competitor_gap == math.inf])
    failures = [{"basin": o.incident.basin, "truth": o.incident.discharger, "parameter": o.incident.parameter,
                 "flow_factor": round(o.incident.flow_factor, 3), "anomaly_station": o.incident.anomaly_station,
                 "rank_of_truth": o.rank, "top": o.top_id, "competitor_gap": round(o.incident.competitor_gap, 3),
                 "stations_saw": o.stations_saw,
                 **{f"evidence_{k}": {n: round(v, 2) for n, v in e.items()} for k, e in o.evidence.items()}}
                for o in ident if not o.top1]
    return {
        "incidents": len(outs), "detected": len(det), "identifiable": _group(ident),
        "not_identifiable": _group([o for o in det if not o.incident.identifiable]), "all_detected": _group(det),
        "median_release_time_error_s": t_err[0], "p90_release_time_error_s": t_err[1],
        "median_mass_error": m_err[0], "p90_mass_error": m_err[1],
        "median_duration_error_s": d_err[0], "p90_duration_error_s": d_err[1],
        "calibration_identifiable": calibration(ident),
        "identifiable_strict": _group([o for o in ident if o.incident.identifiable_strict]),
        "calibration_identifiable_strict": calibration([o for o in ident if o.incident.identifiable_strict]),
        "by_release": {k: _group([o for o in ident if o.incident.release == k])
                       for k in sorted({o.incident.release for o in ident})},
        "model_chosen": dict(Counter(f"{o.incident.release} -> {o.model}" for o in det)),
        "attribution_median_ms": ms[0], "attribution_p90_ms": ms[1],
        "candidates_median": float(np.median([o.n_candidates for o in det])) if det else None,
        "identifiable_by_parameter": {p: _group([o for o in ident if o.incident.parameter == p])
                                      for p in sorted({o.incident.parameter for o in det})},
        "by_competitor_gap": gaps,
        "not_identifiable_reasons": dict(Counter(o.incident.reason for o in outs if not o.incident.identifiable)),
        "redraws": dict(sum((Counter(o.incident.redraws) for o in outs), Counter())),
        "failures": failures,
    }


def evaluate(incidents: Iterable[Incident]) -> dict[str, Any]:
    """Attribute every incident and summarise.

    Returns
    -------
    dict
        ``identifiable`` / ``not_identifiable`` / ``all_detected``: count, top-1 and top-3 accuracy
        [-] and the nearest-upstream-discharger baseline's top-1 [-]; median and p90 |release-time
        error| [s] and relative |size error| [-] (``mass_error``: the mass of a pulse, the rate of a
        continuous release) of the top-1 candidate when it is right; ``model_chosen`` (true release
        -> the model attribution chose: counts); median and
        p90 time of :func:`~tracer.attribution.attribute_release` [ms]; accuracy by parameter and by
        competitor travel-time gap; redraw counts; the failures on identifiable incidents.
    """
    return summarize(attribute_incident(i) for i in incidents)

"""Anomaly detection on station readings: is this real, or a sensor fault, or the daily cycle?

``detect`` screens every (station, parameter) series for sensor faults first, labels them, removes
the faulty readings, and runs the water-event rules on what is left. Anomalies are then grouped into
incidents. Everything is SI (see :mod:`tracer.readings`; temperature in degC); times are UTC.

Sensor faults (:data:`FaultKind`), in order of screening:

``out_of_range``
    Outside the instrument's range ``valid_range`` [internal unit].
``spike``
    1..``spike_max_readings`` readings that depart from *both* neighbours by more than ``spike_k``
    robust noise scales and come back (the neighbours agree within ``spike_return_fraction`` of the
    departure, and so do the readings on either side of them), all within ``spike_max_span_s``.
    A water event does not come and go between two five-minute readings, and a plume's sharp peak
    sits on moving flanks; with hourly data the span test fails, so nothing is called a spike.
``flatline``
    At least ``flatline_min_readings`` readings over ``flatline_min_duration_s`` that are constant
    (stuck sensor, repeated last value) or exactly linear in time (a logger's interpolated gap fill).
``isolated_jump``
    A one-reading step of more than ``jump_k`` noise scales to a level that holds for
    ``jump_hold_readings``, which no other parameter at the station (within
    ``corroboration_window_s``) and no neighbouring station on the same parameter (within
    ``neighbour_window_s``) shows as an abrupt change. It is only called when witnesses have data:
    other parameters at the station or a downstream neighbour (an upstream station cannot see a
    source between it and us, so its silence is no evidence). Silence is evidence only where
    someone could have spoken. The fault lasts until the
    series steps back in one reading, up to ``jump_max_duration_s``. A gradual return is a washout,
    as when a plume passes, and is no fault; a step that never comes back is reported as a level
    shift (calibration, sonde swap?) but its readings are kept.

Water-event rules (:data:`RuleName`), on fault-free readings:

``exceedance``
    A reading violates the station's target class of the standard (GB 3838-2002 Table 1; DO is a
    minimum). One anomaly per run of violating readings.
``persistence``
    ``persistence_readings`` consecutive violating readings.
``daily_persistence``
    The daily mean (local days in ``day_timezone``, at least ``daily_min_coverage`` of the day
    covered) violates the limit on ``daily_persistence_days`` consecutive days: the Puhe rule, "DO
    below standard for 3 consecutive days".
``sudden_change``
    At least ``sudden_change_min_readings`` consecutive readings depart, in the parameter's
    ``direction``, by more than ``mad_k`` robust scales *and* by ``sudden_change_min_relative`` of
    the baseline, from a baseline that respects the daily cycle: the median of the readings in the
    same ``baseline_bin_s`` time-of-day bin over the previous ``baseline_days`` local days, with
    scale 1.4826 x MAD (Hampel 1974; Leys et al. 2013, J. Exp. Soc. Psych. 49, 764), floored.
    DO is first rescaled to a common temperature with the station's own temperature readings
    (:func:`compensate_do_for_temperature`), so a warm night is not an event. The rule does not
    apply to temperature and discharge by default (``sudden_change_applies``): weather and storms
    move them far more than any useful threshold.
``increment``
    The window mean at a station exceeds that of its upstream neighbours (worst of them, shifted by
    the given travel times) by more than ``increment_threshold`` (default ``increment_fraction_of_limit``
    x the class limit) for ``increment_min_windows`` consecutive windows. For DO the deficit counts,
    and each station's departure from its own same-hour baseline is compared (``increment_vs_baseline``),
    so the daily cycle and a normal gradient between the stations cancel; the DO rule therefore needs
    ``baseline_min_days`` of history at both stations before it can judge.

Severity is ``m x (1 + log2(1 + h))``: ``m`` the peak relative departure (from the limit for the
exceedance rules and for increments when a limit exists, from the baseline for sudden changes, from
the threshold otherwise) and ``h`` the duration in hours. Levels: below 0.25 low, below 1 moderate,
below 4 high, otherwise critical. DO at 3.5 g/m3 against 5 for 72 h scores 2.2 (high); oil at ten
times its limit for 2 h scores 23 (critical).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import pandas as pd

from .baseline import DAY_NS, NS, _local_midnight, _local_ns, compensate_do_for_temperature, daily_cycle_baseline
from .exceptions import DetectionConfigError, UnknownStationError
from .faults import FAULT_SCREENS, SensorFault, _isolated_jumps, _noise_scale, _runs, _ts
from .readings import NOT_MEASURED_FLAGS, Readings, internal_unit

RuleName = Literal["exceedance", "persistence", "daily_persistence", "sudden_change", "increment"]
FaultKind = Literal["flatline", "spike", "out_of_range", "isolated_jump"]
Direction = Literal["up", "down", "both"]
SeverityLevel = Literal["low", "moderate", "high", "critical"]
ALL_RULES: frozenset[str] = frozenset(
    {"exceedance", "persistence", "daily_persistence", "sudden_change", "increment"})
#: severity level thresholds (upper bounds, exclusive)
SEVERITY_LEVELS: tuple[tuple[float, SeverityLevel], ...] = (
    (0.25, "low"), (1.0, "moderate"), (4.0, "high"), (math.inf, "critical"))

#: parameter defaults: direction of harm, noise floor [internal unit], instrument range [internal unit]
#: (floors: typical sensor accuracy, e.g. optical DO +-0.1 g/m3; ranges: typical sonde specifications)
#: settings that parameters may override (:data:`PARAMETER_DEFAULTS`); these values apply otherwise
GLOBAL_DEFAULTS: dict[str, Any] = {"increment_window_s": 3600.0, "increment_min_windows": 2,
                                   "increment_vs_baseline": False}
PARAMETER_DEFAULTS: dict[str, dict[str, Any]] = {
    # DO has a daily cycle (photosynthesis): neighbours compared across a travel-time lag sit at
    # different phases of it, and a pool between them keeps a normal gradient; so the increment rule
    # compares each station's departure from its own same-hour baseline, where both cancel
    "DO": {"direction": "down", "scale_floor": 0.05, "valid_range": (0.0, 20.0), "increment_vs_baseline": True},
    # weather moves temperature and storms move discharge far beyond any useful sudden-change
    # threshold (French Creek: 5 degC off its 7-day same-hour median); GB 3838 regulates man-made
    # change of the weekly mean, which is a plume question, not a station rule
    "temperature": {"direction": "both", "scale_floor": 0.05, "valid_range": (-1.0, 40.0),
                    "sudden_change_applies": False},
    "pH": {"direction": "both", "scale_floor": 0.05},
    "discharge": {"direction": "both", "scale_floor": 1e-3, "sudden_change_applies": False},
    "conductivity": {"direction": "both", "scale_floor": 1e-4},
    "turbidity": {"direction": "up", "scale_floor": 1.0, "valid_range": (0.0, 4000.0)},
    "petroleum": {"direction": "up", "scale_floor": 0.005},
    "NH3-N": {"direction": "up", "scale_floor": 0.02},
    "TP": {"direction": "up", "scale_floor": 0.005},
    "TN": {"direction": "up", "scale_floor": 0.05},
    "CODMn": {"direction": "up", "scale_floor": 0.2},
    "COD": {"direction": "up", "scale_floor": 1.0},
    "BOD5": {"direction": "up", "scale_floor": 0.2},
}


@dataclass(frozen=True, slots=True)
class StationContext:
    """What detection needs to know about a station.

    Parameters
    ----------
    id : str
        Station id, as in the readings.
    target_class : str or None
        Target class of the standard ('I'..'V'); None: no limit-based rules at this station.
    upstream_neighbours, downstream_neighbours : tuple of str
        Nearest stations up- and downstream on the river path (ids present in the same mapping).
    upstream_travel_times_s : tuple of float
        Travel time from each upstream neighbour [s], aligned with ``upstream_neighbours``; empty
        means the increment rule compares simultaneous windows (choose ``increment_window_s`` longer
        than the travel time then).
    """

    id: str
    target_class: str | None
    upstream_neighbours: tuple[str, ...] = ()
    downstream_neighbours: tuple[str, ...] = ()
    upstream_travel_times_s: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.upstream_travel_times_s and len(self.upstream_travel_times_s) != len(self.upstream_neighbours):
            raise DetectionConfigError(
                f"station {self.id!r}: {len(self.upstream_travel_times_s)} travel times for "
                f"{len(self.upstream_neighbours)} upstream neighbours")

    @property
    def neighbours(self) -> tuple[str, ...]:
        """Up- and downstream neighbours."""
        return self.upstream_neighbours + self.downstream_neighbours


@dataclass(frozen=True, slots=True)
class DetectionRules:
    """Detection settings; values are in the parameter's internal unit (see :mod:`tracer.readings`).

    ``overrides`` maps ``(station_id, parameter)`` keys, either part ``None`` for "any", to field
    values; :meth:`for_series` applies built-in parameter defaults (:data:`PARAMETER_DEFAULTS`, for
    the fields left ``None`` here), then ``(None, p)``, ``(s, None)`` and ``(s, p)`` overrides.
    The module docstring describes what each rule and fault screen does with these fields.

    Parameters
    ----------
    enabled : frozenset of str
        Water-event rules to run (:data:`ALL_RULES`).
    standard : str
        Standard whose class limits the exceedance rules use (``hydrology.standards``).
    persistence_readings : int
        Consecutive violating readings for ``persistence`` [-].
    daily_persistence_days, daily_min_coverage, day_timezone : int, float, str
        Consecutive days [d] for ``daily_persistence``; the fraction of a day's expected readings a
        daily mean needs [-]; the IANA zone of "a day" (and of the time-of-day bins).
    max_gap_s : float
        Readings further apart than max(this, 2.5 x the median interval) [s] break a run.
    baseline_days, baseline_min_days, baseline_bin_s : int, int, float
        Baseline window [d], fewest days with data for a baseline [d], time-of-day bin width [s].
    mad_k, sudden_change_min_readings, sudden_change_min_relative : float, int, float
        Departure threshold in robust scales [-]; consecutive readings needed [-]; smallest
        departure as a fraction of the baseline [-]. 0.15 sits below the 20 % DO drops the issue
        asks to catch; on the French Creek record 0.10 gives 1.6 false alarms per 30 days, 0.15 gives
        0.8 (see :mod:`tracer.detection_eval`).
    sudden_change_applies : bool or None
        Whether ``sudden_change`` applies to the parameter (None: parameter default).
    do_temperature_compensation : bool
        Rescale DO to a common temperature before the sudden-change test.
    direction : {"up", "down", "both"} or None
        Which departures harm (None: parameter default; DO ``down``, pollutants ``up``).
    scale_floor, scale_floor_relative : float or None, float
        Smallest noise/baseline scale [unit] (None: parameter default) and, for baselines, as a
        fraction of the baseline [-].
    increment_threshold, increment_fraction_of_limit : float or None, float
        Increment over upstream [unit]; when None, this fraction of the class limit [-].
    increment_window_s, increment_min_windows : float, int
        Averaging window [s] and consecutive windows needed [-] (None: parameter or global default).
    increment_vs_baseline : bool or None
        Compare departures from each station's same-hour baseline rather than raw values (None:
        parameter default; True for DO).
    valid_range : (float, float) or None
        Instrument range [unit] (None: parameter default, or no range test).
    flatline_min_readings, flatline_min_duration_s : int, float
        Shortest flat-line [readings] and [s].
    flatline_tolerance, linear_tolerance_relative : float
        Largest change still "constant" [unit]; largest relative slope change still "linear" [-].
    spike_k, spike_max_readings, spike_max_span_s, spike_return_fraction : float, int, float, float
        Spike departure in noise scales [-], longest spike [readings], longest span including the
        two neighbours [s], how closely the neighbours must agree as a fraction of the departure [-].
    jump_k, jump_step_fraction, jump_hold_readings, jump_max_duration_s : float, float, int, float
        Jump size in noise scales [-], share of the step taken in one reading [-], readings the new
        level must hold [-], longest jump fault [s].
    corroboration_k, corroboration_window_s, neighbour_window_s : float, float, float
        A witness's abrupt change in noise scales [-]; time windows for other parameters at the
        station and for neighbours [s].
    incident_gap_s : float
        Anomalies closer than this [s] join one incident.
    group_across_parameters : bool
        Also group different parameters at the same or neighbouring stations.
    ignore_flags : frozenset of str
        Readings whose source flag is one of these are not used (default: the flags of a value
        that is not a measurement of the river, :data:`tracer.readings.NOT_MEASURED_FLAGS`).
    overrides : mapping
        Per station/parameter field values, as above.
    """

    enabled: frozenset[str] = ALL_RULES
    standard: str = "GB3838-2002"
    persistence_readings: int = 3
    daily_persistence_days: int = 3
    daily_min_coverage: float = 0.5
    day_timezone: str = "Asia/Shanghai"
    max_gap_s: float = 3600.0
    baseline_days: int = 7
    baseline_min_days: int = 3
    baseline_bin_s: float = 3600.0
    mad_k: float = 5.0
    sudden_change_min_readings: int = 3
    sudden_change_min_relative: float = 0.15
    sudden_change_applies: bool | None = None
    do_temperature_compensation: bool = True
    direction: Direction | None = None
    scale_floor: float | None = None
    scale_floor_relative: float = 0.01
    increment_threshold: float | None = None
    increment_fraction_of_limit: float = 0.3
    increment_window_s: float | None = None
    increment_min_windows: int | None = None
    increment_vs_baseline: bool | None = None
    valid_range: tuple[float, float] | None = None
    flatline_min_readings: int = 6
    flatline_min_duration_s: float = 7200.0
    flatline_tolerance: float = 0.0
    linear_tolerance_relative: float = 1e-4
    spike_k: float = 6.0
    spike_max_readings: int = 3
    spike_max_span_s: float = 1800.0
    spike_return_fraction: float = 0.5
    jump_k: float = 8.0
    jump_step_fraction: float = 0.8
    jump_hold_readings: int = 6
    jump_max_duration_s: float = 86400.0
    corroboration_k: float = 4.0
    corroboration_window_s: float = 1800.0
    neighbour_window_s: float = 21600.0
    incident_gap_s: float = 21600.0
    group_across_parameters: bool = False
    ignore_flags: frozenset[str] = NOT_MEASURED_FLAGS
    overrides: Mapping[tuple[str | None, str | None], Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.enabled) - ALL_RULES
        if unknown:
            raise DetectionConfigError(f"unknown rule(s) {sorted(unknown)}; known: {sorted(ALL_RULES)}")
        names = {f.name for f in dataclasses.fields(self)} - {"overrides"}
        for key, values in self.overrides.items():
            bad = set(values) - names
            if bad:
                raise DetectionConfigError(f"override {key!r}: unknown field(s) {sorted(bad)}")
        for name in ("persistence_readings", "daily_persistence_days", "baseline_days", "baseline_min_days",
                     "sudden_change_min_readings", "increment_min_windows", "flatline_min_readings",
                     "spike_max_readings", "jump_hold_readings", "max_gap_s", "baseline_bin_s",
                     "increment_window_s", "incident_gap_s", "mad_k", "spike_k", "jump_k"):
            if getattr(self, name) is not None and not getattr(self, name) > 0:
                raise DetectionConfigError(f"rule setting {name} = {getattr(self, name)!r} must be positive")
        if self.baseline_min_days > self.baseline_days:
            raise DetectionConfigError(
                f"baseline_min_days {self.baseline_min_days} exceeds baseline_days {self.baseline_days}")
        if self.direction not in (None, "up", "down", "both"):
            raise DetectionConfigError(f"direction {self.direction!r} is not 'up', 'down' or 'both'")
        object.__setattr__(self, "overrides", MappingProxyType(
            {k: MappingProxyType(dict(v)) for k, v in self.overrides.items()}))

    def for_series(self, station_id: str, parameter: str) -> DetectionRules:
        """Settings for one station and parameter, with defaults and overrides applied."""
        changes = {k: v for k, v in PARAMETER_DEFAULTS.get(parameter, {}).items() if getattr(self, k) is None}
        changes.update({k: v for k, v in GLOBAL_DEFAULTS.items() if getattr(self, k) is None and k not in changes})
        for key in ((None, parameter), (station_id, None), (station_id, parameter)):
            changes.update(self.overrides.get(key, {}))
        return dataclasses.replace(self, overrides={}, **changes) if changes else self


@dataclass(frozen=True, slots=True)
class Anomaly:
    """A water event seen by one rule at one station on one parameter.

    ``value`` is the worst reading (or daily/window mean) [internal unit]; ``threshold`` the limit or
    the departure threshold at that reading [internal unit]; ``detected_at`` the time of the reading
    that completed the rule (start + N-1 readings, end of the N-th day...), the earliest moment an
    on-line system could have raised it.
    """

    station_id: str
    parameter: str
    rule: str
    start: pd.Timestamp
    end: pd.Timestamp
    severity: float
    value: float
    threshold: float
    message: str
    detected_at: pd.Timestamp

    @property
    def level(self) -> SeverityLevel:
        """Severity level of :data:`SEVERITY_LEVELS`."""
        return severity_level(self.severity)


@dataclass(frozen=True, slots=True)
class Incident:
    """Anomalies grouped: same station and parameter, or neighbouring stations on one path.

    ``id`` is stable: built from the first anomaly's station, parameter and start time (UTC).
    """

    id: str
    station_ids: tuple[str, ...]
    parameters: tuple[str, ...]
    start: pd.Timestamp
    end: pd.Timestamp
    severity: float
    anomalies: tuple[Anomaly, ...]

    @property
    def level(self) -> SeverityLevel:
        """Severity level of the worst anomaly."""
        return severity_level(self.severity)

    @property
    def detected_at(self) -> pd.Timestamp:
        """When the first of its anomalies could have been raised."""
        return min(a.detected_at for a in self.anomalies)


@dataclass(frozen=True, slots=True)
class DetectionResult:
    """Anomalies, sensor faults and incidents, each sorted by start time."""

    anomalies: tuple[Anomaly, ...]
    faults: tuple[SensorFault, ...]
    incidents: tuple[Incident, ...]


def severity_score(magnitude: float, duration_s: float) -> float:
    """Severity of a departure: ``magnitude x (1 + log2(1 + duration / 1 h))``.

    Parameters
    ----------
    magnitude : float
        Peak relative departure from the reference (limit, baseline or threshold) [-].
    duration_s : float
        Duration [s].
    """
    return float(magnitude) * (1.0 + math.log2(1.0 + max(duration_s, 0.0) / 3600.0))


def severity_level(score: float) -> SeverityLevel:
    """Level of a severity score: low < 0.25 <= moderate < 1 <= high < 4 <= critical."""
    return next(level for bound, level in SEVERITY_LEVELS if score < bound)


def detect(readings: Readings, stations: Mapping[str, StationContext],
           rules: DetectionRules | None = None) -> DetectionResult:
    """Screen readings for sensor faults, find water-quality anomalies and group them into incidents.

    Parameters
    ----------
    readings : Readings
        Validated readings (SI, UTC).
    stations : mapping of str to StationContext
        Every station in the readings, and every neighbour they name.
    rules : DetectionRules, optional
        Settings; ``DetectionRules()`` when omitted.

    Returns
    -------
    DetectionResult

    Raises
    ------
    UnknownStationError
        A reading's station, or a neighbour, is not in ``stations``.
    DetectionConfigError
        A mapping key differs from the id of its StationContext.
    """
    rules = rules if rules is not None else DetectionRules()
    for sid, ctx in stations.items():
        if ctx.id != sid:
            raise DetectionConfigError(f"stations[{sid!r}] describes station {ctx.id!r}")
        missing = [n for n in ctx.neighbours if n not in stations]
        if missing:
            raise UnknownStationError(f"station {sid!r}: neighbour(s) {missing} not in the station mapping")
    frame = readings.frame
    if rules.ignore_flags:
        frame = frame[~frame["flag"].isin(rules.ignore_flags)]
    unknown = sorted(set(frame["station_id"].unique()) - set(stations))
    if unknown:
        raise UnknownStationError(f"readings name station(s) {unknown[:10]} not in the station mapping")

    series: dict[tuple[str, str], _Series] = {}
    t_all = frame["time"].array.asi8
    x_all = frame["value"].to_numpy(dtype=float)
    # the frame is sorted by station, parameter and time: series are contiguous blocks
    sid_all = frame["station_id"].to_numpy()
    par_all = frame["parameter"].to_numpy()
    if len(frame):
        change = np.flatnonzero((sid_all[1:] != sid_all[:-1]) | (par_all[1:] != par_all[:-1])) + 1
        for a, b in zip(np.r_[0, change], np.r_[change, len(frame)]):
            sid, par = str(sid_all[a]), str(par_all[a])
            series[(sid, par)] = _Series.build(sid, par, t_all[a:b], x_all[a:b], rules.for_series(sid, par),
                                               stations[sid])
    faults: list[SensorFault] = []
    for s in series.values():
        for screen in FAULT_SCREENS.values():
            faults.extend(screen(s))
    faults.extend(_isolated_jumps(series, stations))
    for (sid, par), s in series.items():
        if par == "DO" and (sid, "temperature") in series:
            s.temperature = series[(sid, "temperature")].clean()
    anomalies: list[Anomaly] = []
    for s in series.values():
        for name, rule in SERIES_RULES.items():
            if name in s.rules.enabled:
                anomalies.extend(rule(s))
    anomalies.extend(_increments(series, stations))
    anomalies.sort(key=lambda a: (a.start, a.station_id, a.parameter, a.rule))
    faults.sort(key=lambda f: (f.start, f.station_id, f.parameter, f.kind))
    incidents = _group(anomalies, stations, rules)
    return DetectionResult(tuple(anomalies), tuple(faults), tuple(incidents))


# ---------------------------------------------------------------------------------------------------
# one series


@dataclass(slots=True)
class _Series:
    """Working state of one (station, parameter) series: times [ns], values, fault mask."""

    station: str
    parameter: str
    rules: DetectionRules
    t: np.ndarray
    x: np.ndarray
    good: np.ndarray
    gap_ns: int
    limit: Any
    noise: np.ndarray
    temperature: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def build(cls, station: str, parameter: str, t: np.ndarray, x: np.ndarray, rules: DetectionRules,
              ctx: StationContext) -> _Series:
        dt = np.diff(t)
        median_dt = float(np.median(dt)) if dt.size else 0.0
        gap_ns = int(max(rules.max_gap_s * NS, 2.5 * median_dt))
        inside = np.ones(t.size, dtype=bool)
        if rules.valid_range is not None:
            inside = (x >= rules.valid_range[0]) & (x <= rules.valid_range[1])
        noise = np.zeros(t.size)
        noise[inside] = _noise_scale(t[inside], x[inside], float(rules.scale_floor or 0.0))
        return cls(station, parameter, rules, t, x, np.ones(t.size, dtype=bool), gap_ns,
                   _limit_for(parameter, ctx.target_class, rules.standard), noise)

    def fault(self, kind: str, i0: int, i1: int, message: str) -> SensorFault:
        """Label readings i0..i1 (indices into the full series) as a fault."""
        self.good[i0:i1 + 1] = False
        return SensorFault(self.station, self.parameter, kind, _ts(self.t[i0]), _ts(self.t[i1]), message,
                           i1 - i0 + 1)

    def clean(self) -> tuple[np.ndarray, np.ndarray]:
        """Times [ns] and values of the readings not labelled as faults."""
        return self.t[self.good], self.x[self.good]

    def unit(self) -> str:
        return internal_unit(self.parameter)


def _limit_for(parameter: str, target_class: str | None, standard: str) -> Any:
    """The standard's limit for a parameter at a class, or None (no class, no numeric limit)."""
    if target_class is None:
        return None
    from hydrology.exceptions import UnknownModelError
    from hydrology.standards import StandardsError, limit

    try:
        return limit(parameter, target_class, standard)
    except (UnknownModelError, StandardsError):
        return None


# ---------------------------------------------------------------------------------------------------
# water-event rules


def _violation(s: _Series, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mask of values violating the limit, their relative departure [-], and the bound each is held to."""
    lim = s.limit
    if lim.kind in ("max", "min"):
        bound = np.full(v.shape, float(lim.value_g_m3))
        rel = (v - bound) / bound if lim.kind == "max" else (bound - v) / bound
        return rel > 0, rel, bound
    lo, hi = lim.value_g_m3
    bound = np.where(v < lo, lo, hi).astype(float)
    dist = np.maximum(lo - v, v - hi)
    return dist > 0, dist / np.abs(bound), bound


def _anomaly(s: _Series, rule: str, t0: int, t1: int, worst: float, threshold: float, magnitude: float,
             detected: int, what: str) -> Anomaly:
    sev = severity_score(magnitude, (t1 - t0) / NS)
    return Anomaly(s.station, s.parameter, rule, _ts(t0), _ts(t1), sev, float(worst), float(threshold),
                   f"{s.station} {s.parameter}: {what}", _ts(detected))


def _limit_text(s: _Series) -> str:
    lim = s.limit
    word = {"max": "maximum", "min": "minimum", "range": "range"}[lim.kind]
    return f"class {lim.water_class} {word} {lim.value_g_m3} {s.unit()} ({lim.standard})"


def _exceedance_runs(s: _Series, min_readings: int, rule: str) -> list[Anomaly]:
    if s.limit is None:
        return []
    t, x = s.clean()
    bad, rel, bound = _violation(s, x)
    out = []
    for a, b in _runs(bad, t, s.gap_ns):
        if b - a + 1 < min_readings:
            continue
        w = a + int(np.argmax(rel[a:b + 1]))
        out.append(_anomaly(s, rule, t[a], t[b], x[w], bound[w], rel[w], t[a + min_readings - 1],
                            f"{b - a + 1} reading(s) violate the {_limit_text(s)}, worst {x[w]:.4g}"))
    return out


def _rule_exceedance(s: _Series) -> list[Anomaly]:
    return _exceedance_runs(s, 1, "exceedance")


def _rule_persistence(s: _Series) -> list[Anomaly]:
    return _exceedance_runs(s, s.rules.persistence_readings, "persistence")


def _rule_daily_persistence(s: _Series) -> list[Anomaly]:
    r = s.rules
    t, x = s.clean()
    if s.limit is None or x.size < 2:
        return []
    day = _local_ns(t, r.day_timezone) // DAY_NS
    d0 = int(day[0])
    k = day - d0
    count = np.bincount(k)
    mean = np.bincount(k, weights=x) / np.maximum(count, 1)
    expected = DAY_NS / max(float(np.median(np.diff(t))), 1.0)
    covered = count >= r.daily_min_coverage * expected
    bad, rel, bound = _violation(s, mean)
    out = []
    need = r.daily_persistence_days
    for a, b in _runs(bad & covered, np.arange(mean.size), 1):
        if b - a + 1 < need:
            continue
        w = a + int(np.argmax(rel[a:b + 1]))
        last = t[k <= b][-1]
        out.append(_anomaly(s, "daily_persistence", _local_midnight(d0 + a, r.day_timezone).value, last,
                            mean[w], bound[w], rel[w], _local_midnight(d0 + a + need, r.day_timezone).value,
                            f"daily mean violates the {_limit_text(s)} on {b - a + 1} consecutive days "
                            f"({r.day_timezone}), worst {mean[w]:.4g}"))
    return out


def _rule_sudden_change(s: _Series) -> list[Anomaly]:
    r = s.rules
    t, x = s.clean()
    if x.size < r.sudden_change_min_readings or r.sudden_change_applies is False:
        return []
    note = ""
    if s.parameter == "DO" and r.do_temperature_compensation and s.temperature is not None \
            and len(s.temperature[1]):  # every temperature reading may have been set aside as a sensor fault
        x = compensate_do_for_temperature(t, x, *s.temperature, max_pair_s=0.5 * r.max_gap_s)
        note = f" (DO compensated to {np.median(s.temperature[1]):.1f} degC)"
    med, scale = daily_cycle_baseline(t, x, r)
    sign = {"up": 1.0, "down": -1.0}.get(r.direction or "up", 0.0)
    dev = (x - med) * sign if sign else np.abs(x - med)
    with np.errstate(invalid="ignore"):
        hit = (scale > 0) & (dev > r.mad_k * scale) & (dev >= r.sudden_change_min_relative * np.abs(med))
    out = []
    for a, b in _runs(hit, t, s.gap_ns):
        if b - a + 1 < r.sudden_change_min_readings:
            continue
        w = a + int(np.argmax(dev[a:b + 1]))
        ref = max(abs(med[w]), scale[w])
        thr = med[w] + (sign or np.sign(x[w] - med[w])) * r.mad_k * scale[w]
        out.append(_anomaly(s, "sudden_change", t[a], t[b], x[w], thr, dev[w] / ref,
                            t[a + r.sudden_change_min_readings - 1],
                            f"{b - a + 1} readings depart from the same-hour baseline "
                            f"{med[w]:.4g} {s.unit()} (scale {scale[w]:.3g}), worst {x[w]:.4g}{note}"))
    return out


#: per-series water-event rules; ``increment`` needs neighbours and runs in :func:`_increments`
SERIES_RULES: dict[str, Callable[[_Series], list[Anomaly]]] = {
    "exceedance": _rule_exceedance, "persistence": _rule_persistence,
    "daily_persistence": _rule_daily_persistence, "sudden_change": _rule_sudden_change}


def _window_means(s: _Series, lag_ns: int, win_ns: int) -> pd.Series:
    t, x = s.clean()
    if s.rules.increment_vs_baseline:
        # departure from the station's own same-hour baseline; NaN (skipped) until it has history
        base, _scale = daily_cycle_baseline(t, x, s.rules)
        x = x - base
    return pd.Series(x).groupby((t + lag_ns) // win_ns).mean()


def _increments(series: Mapping[tuple[str, str], _Series],
                stations: Mapping[str, StationContext]) -> list[Anomaly]:
    out = []
    for (sid, par), s in series.items():
        r, ctx = s.rules, stations[sid]
        if "increment" not in r.enabled or not ctx.upstream_neighbours:
            continue
        thr = r.increment_threshold
        if thr is None and s.limit is not None and s.limit.kind in ("max", "min"):
            thr = r.increment_fraction_of_limit * float(s.limit.value_g_m3)
        if thr is None:
            continue
        win_s, min_windows = r.increment_window_s, r.increment_min_windows
        assert win_s is not None and min_windows is not None  # for_series fills them
        win_ns = int(win_s * NS)
        lags = ctx.upstream_travel_times_s or (0.0,) * len(ctx.upstream_neighbours)
        ups = {u: _window_means(series[(u, par)], int(lag * NS), win_ns)
               for u, lag in zip(ctx.upstream_neighbours, lags) if (u, par) in series}
        if not ups:
            continue
        sign = -1.0 if (r.direction == "down") else 1.0
        up = pd.concat(ups, axis=1)
        ref = up.max(axis=1) if sign > 0 else up.min(axis=1)
        here = _window_means(s, 0, win_ns)
        delta = ((here - ref) * sign).dropna()
        if delta.empty:
            continue
        w_ids = delta.index.to_numpy()
        hit = delta.to_numpy() > thr
        for a, b in _runs(hit, w_ids, 1):
            if b - a + 1 < min_windows:
                continue
            w = a + int(np.argmax(delta.to_numpy()[a:b + 1]))
            scale_ref = float(s.limit.value_g_m3) if s.limit is not None and s.limit.kind != "range" else thr
            out.append(_anomaly(
                s, "increment", w_ids[a] * win_ns, (w_ids[b] + 1) * win_ns, here[w_ids[w]],
                ref[w_ids[w]] + sign * thr, delta.iloc[w] / scale_ref,
                (w_ids[a] + min_windows) * win_ns,
                f"{b - a + 1} window(s) of {win_s / 3600:g} h with {par} "
                f"{'below' if sign < 0 else 'above'} upstream ({', '.join(ups)}) by up to "
                f"{delta.iloc[w]:.4g} {s.unit()} (threshold {thr:.4g})"))
    return out


# ---------------------------------------------------------------------------------------------------
# incidents


def _group(anomalies: list[Anomaly], stations: Mapping[str, StationContext],
           rules: DetectionRules) -> list[Incident]:
    """Union anomalies of the same parameter (any, if ``group_across_parameters``) at the same or
    neighbouring stations whose intervals lie within ``incident_gap_s`` of each other."""
    n = len(anomalies)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    gap = pd.Timedelta(seconds=rules.incident_gap_s)
    order = sorted(range(n), key=lambda i: anomalies[i].start)
    active: list[int] = []
    for i in order:
        a = anomalies[i]
        active = [j for j in active if anomalies[j].end + gap >= a.start]
        for j in active:
            b = anomalies[j]
            if not (rules.group_across_parameters or a.parameter == b.parameter):
                continue
            if a.station_id == b.station_id or b.station_id in stations[a.station_id].neighbours \
                    or a.station_id in stations[b.station_id].neighbours:
                parent[find(i)] = find(j)
        active.append(i)
    groups: dict[int, list[Anomaly]] = {}
    for i in order:
        groups.setdefault(find(i), []).append(anomalies[i])
    out = []
    for members in groups.values():
        first = min(members, key=lambda a: (a.start, a.station_id, a.parameter))
        out.append(Incident(
            f"{first.station_id}/{first.parameter}/{first.start.strftime('%Y%m%dT%H%M%SZ')}",
            tuple(dict.fromkeys(a.station_id for a in members)), tuple(dict.fromkeys(a.parameter for a in members)),
            min(a.start for a in members), max(a.end for a in members), max(a.severity for a in members),
            tuple(members)))
    return sorted(out, key=lambda inc: (inc.start, inc.id))

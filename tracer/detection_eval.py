"""Evidence of detection quality on a real five-minute DO record (USGS French Creek, WY, 2012).

The record (streamMetabolizer ``inst/extdata/french.csv``: one station, two sondes, 2012-08-23 to
2012-09-30, DO [mg/L] and water temperature [degC] every 5 min, times in MDT) has no known pollution
incident, so every incident that :func:`tracer.detection.detect` raises on it is a false alarm.
Events are then injected into copies of it, one per run, with a seeded generator:

- DO drops of 20-40 % lasting 1-3 days (multiplicative, with 1-hour cosine ramps), placed where the
  record has data for at least 80 % of the event and at least 7 days of history;
- oil-like spikes in a synthetic ``petroleum`` series (background ~0.01 g/m3 with lognormal noise;
  a rise over ``rise_readings`` readings to 0.1-0.5 g/m3, i.e. 2-10x the class III limit, and an
  exponential decay with an e-folding time of 0.5-3 h).

An event counts as detected when an anomaly on its parameter overlaps it; the delay is the
anomaly's ``detected_at`` minus the event's start. Run ``python -m tracer.detection_eval`` for the
figures.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .detection import DetectionResult, DetectionRules, StationContext, detect
from .readings import LoadResult, Readings, readings_from_frame

STATION = "french_creek_low"
#: local zone of the record's clock (streamMetabolizer's load_french_creek: "original is in MDT")
RECORD_TIMEZONE = "America/Denver"
DEFAULT_RECORD = Path(__file__).resolve().parents[1] / "tests" / "data" / "water_quality" / "french_creek_do_temp.csv"
HOUR_NS = 3600 * 10**9
DAY_NS = 24 * HOUR_NS


def load_french_creek(path: str | Path = DEFAULT_RECORD) -> LoadResult:
    """The French Creek record as readings (DO and temperature) through the normal validation.

    NA rows, duplicate times and physically impossible temperatures come back as rejected rows.
    """
    raw = pd.read_csv(path)
    local = pd.to_datetime(raw["date"] + " " + raw["time"], format="%m/%d/%Y %H:%M:%S")
    times = local.dt.tz_localize(RECORD_TIMEZONE, ambiguous="NaT", nonexistent="NaT")
    parts = [pd.DataFrame({"station_id": STATION, "parameter": par, "time": times, "value": raw[col], "unit": unit})
             for col, par, unit in (("oxy", "DO", "mg/L"), ("temp", "temperature", "degC"))]
    return readings_from_frame(pd.concat(parts, ignore_index=True))


def default_rules() -> DetectionRules:
    """The default rules, with local days in the record's zone."""
    return DetectionRules(day_timezone=RECORD_TIMEZONE)


def stations() -> dict[str, StationContext]:
    """The record's single station, target class III (DO >= 5 g/m3)."""
    return {STATION: StationContext(STATION, "III")}


@dataclass(frozen=True, slots=True)
class FalseAlarmReport:
    """Incidents raised on the clean record and what raised them."""

    record_days: float
    incidents: int
    incidents_per_30_days: float
    incidents_by_parameter: dict[str, int]
    anomalies_by_rule: dict[str, int]
    incidents_by_rule: dict[str, int]
    faults_by_kind: dict[str, int]
    rejected_rows: int
    incident_list: list[str]


@dataclass(frozen=True, slots=True)
class InjectionReport:
    """Detection of injected events of one kind."""

    kind: str
    events: int
    detected: int
    detection_rate: float
    within_window: int
    delays_h: list[float]
    median_delay_h: float
    max_delay_h: float
    detected_by_rule: dict[str, int]
    events_with_new_faults: int
    new_faults_in_events: dict[str, int]


def false_alarms(readings: Readings, rules: DetectionRules | None = None) -> tuple[FalseAlarmReport, DetectionResult]:
    """Run detection on the record as it is and count what it raises."""
    rules = rules or default_rules()
    res = detect(readings, stations(), rules)
    t = readings.frame["time"]
    days = (t.max() - t.min()).total_seconds() / 86400.0
    by_rule = Counter(a.rule for a in res.anomalies)
    inc_rule: Counter[str] = Counter()
    for inc in res.incidents:
        inc_rule.update({a.rule for a in inc.anomalies})
    report = FalseAlarmReport(
        round(days, 2), len(res.incidents), round(len(res.incidents) / days * 30.0, 2),
        dict(Counter(p for inc in res.incidents for p in inc.parameters)), dict(by_rule), dict(inc_rule),
        dict(Counter(f.kind for f in res.faults)), 0,
        [f"{inc.id} {inc.start} .. {inc.end} {inc.level} rules={sorted({a.rule for a in inc.anomalies})}"
         for inc in res.incidents])
    return report, res


def _with_values(readings: Readings, parameter: str, values: np.ndarray) -> Readings:
    frame = readings.frame.copy()
    sel = (frame["parameter"] == parameter).to_numpy()
    frame.loc[sel, "value"] = values
    return Readings(frame)


def _score(kind: str, parameter: str, events: list[tuple[int, int]], results: list[DetectionResult],
           window_ns: list[int], base: DetectionResult) -> InjectionReport:
    """Detection rate and delays; faults in an event count only if the un-injected run lacks them."""
    known = {(f.station_id, f.parameter, f.kind, f.start) for f in base.faults}
    detected, within, delays = 0, 0, []
    rules: Counter[str] = Counter()
    touching = 0
    kinds: Counter[str] = Counter()
    for (start, end), r, window in zip(events, results, window_ns):
        hits = [a for a in r.anomalies if a.parameter == parameter
                and a.start.value <= end and a.end.value >= start]
        inside = [f.kind for f in r.faults if f.parameter == parameter and f.start.value <= end
                  and f.end.value >= start and (f.station_id, f.parameter, f.kind, f.start) not in known]
        touching += bool(inside)
        kinds.update(inside)
        if not hits:
            continue
        detected += 1
        first = min(hits, key=lambda a: a.detected_at)
        delay = max(first.detected_at.value - start, 0)
        delays.append(round(delay / HOUR_NS, 3))
        within += delay <= window
        rules[first.rule] += 1
    n = len(events)
    return InjectionReport(kind, n, detected, round(detected / n, 3) if n else math.nan, within, delays,
                           float(np.median(delays)) if delays else math.nan,
                           float(np.max(delays)) if delays else math.nan, dict(rules), touching, dict(kinds))


def inject_do_drops(readings: Readings, n_events: int = 20, seed: int = 1,
                    rules: DetectionRules | None = None) -> InjectionReport:
    """Inject DO drops of 20-40 % lasting 1-3 days, one per run, and score detection.

    The persistence window of the report's ``within_window`` is the shorter of the event's duration
    and ``daily_persistence_days``.
    """
    rules = rules or default_rules()
    rng = np.random.default_rng(seed)
    base = detect(readings, stations(), rules)
    do = readings.frame[readings.frame["parameter"] == "DO"]
    t = do["time"].array.asi8
    x = do["value"].to_numpy()
    interval = float(np.median(np.diff(t)))
    events: list[tuple[int, int]] = []
    results: list[DetectionResult] = []
    windows: list[int] = []
    tries = 0
    while len(events) < n_events and tries < 100 * n_events:
        tries += 1
        duration = int(rng.uniform(1.0, 3.0) * DAY_NS)
        depth = rng.uniform(0.2, 0.4)
        start = int(rng.uniform(t[0] + 7 * DAY_NS, t[-1] - duration))
        inside = (t >= start) & (t <= start + duration)
        if inside.sum() < 0.8 * duration / interval:
            continue  # the record has no data for much of this event: it could not be seen
        env = _envelope(t, start, start + duration, HOUR_NS)
        res = detect(_with_values(readings, "DO", x * (1.0 - depth * env)), stations(), rules)
        events.append((start, start + duration))
        results.append(res)
        windows.append(min(duration, int(rules.daily_persistence_days * DAY_NS)))
    return _score("DO drop 20-40% for 1-3 d", "DO", events, results, windows, base)


def _envelope(t: np.ndarray, start: int, end: int, ramp: int) -> np.ndarray:
    """0 outside [start, end], 1 inside, with raised-cosine ramps of length ``ramp`` [ns] at both ends."""
    up = np.clip((t - start) / ramp, 0.0, 1.0)
    down = np.clip((end - t) / ramp, 0.0, 1.0)
    return 0.5 * (1 - np.cos(np.pi * up)) * 0.5 * (1 - np.cos(np.pi * down))


def synthetic_petroleum(times: np.ndarray, rng: np.random.Generator, background: float = 0.01,
                        sigma_log: float = 0.15) -> np.ndarray:
    """Background oil-in-water [g/m3]: ``background`` x lognormal noise (AR(1), lag-1 r = 0.5)."""
    e = rng.normal(0.0, sigma_log, times.size)
    for i in range(1, e.size):
        e[i] = 0.5 * e[i - 1] + math.sqrt(1 - 0.25) * e[i]
    return background * np.exp(e)


def inject_oil_spikes(readings: Readings, n_events: int = 20, seed: int = 2, rise_readings: int = 3,
                      rules: DetectionRules | None = None) -> tuple[InjectionReport, FalseAlarmReport]:
    """Add a synthetic petroleum series on the DO clock, inject one spike per run, score detection.

    Also returns the false alarms of the petroleum series without any spike (seeded background).
    The window of ``within_window`` is one hour.
    """
    rules = rules or default_rules()
    rng = np.random.default_rng(seed)
    do = readings.frame[readings.frame["parameter"] == "DO"]
    t = do["time"].array.asi8
    base = synthetic_petroleum(t, rng)
    oil = do.assign(parameter="petroleum", value=base)
    with_oil = Readings(pd.concat([readings.frame, oil], ignore_index=True))
    clean_report, base_result = false_alarms(with_oil, rules)
    interval = int(np.median(np.diff(t)))
    events: list[tuple[int, int]] = []
    results: list[DetectionResult] = []
    windows: list[int] = []
    for _ in range(n_events):
        peak = rng.uniform(0.1, 0.5)
        efold = int(rng.uniform(0.5, 3.0) * HOUR_NS)
        k = int(rng.integers(np.searchsorted(t, t[0] + 7 * DAY_NS), t.size - 100))
        start = int(t[k - 1])  # last reading before the front
        rise = rise_readings * interval
        dt = (t - start).astype(float)
        shape = np.where(dt <= 0, 0.0, np.where(dt < rise, dt / rise, np.exp(-np.maximum(dt - rise, 0.0) / efold)))
        end = start + rise + 3 * efold
        res = detect(_with_values(with_oil, "petroleum", base + peak * shape), stations(), rules)
        events.append((start, end))
        results.append(res)
        windows.append(HOUR_NS)
    kind = f"oil spike, rise over {rise_readings} reading(s)"
    return _score(kind, "petroleum", events, results, windows, base_result), clean_report


def main(argv: list[str] | None = None) -> None:
    """Print (and optionally write as JSON) the false-alarm and detection figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--record", default=str(DEFAULT_RECORD))
    ap.add_argument("--events", type=int, default=20)
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args(argv)
    loaded = load_french_creek(args.record)
    fa, _ = false_alarms(loaded.readings)
    fa = FalseAlarmReport(**{**asdict(fa), "rejected_rows": len(loaded.rejected_row_numbers)})
    drops = inject_do_drops(loaded.readings, args.events)
    oil, oil_clean = inject_oil_spikes(loaded.readings, args.events)
    oil_sharp, _ = inject_oil_spikes(loaded.readings, args.events, seed=3, rise_readings=1)
    out = {"false_alarms": asdict(fa), "petroleum_background_false_alarms": asdict(oil_clean),
           "do_drops": asdict(drops), "oil_spikes": asdict(oil), "oil_spikes_sharp_front": asdict(oil_sharp)}
    text = json.dumps(out, indent=2, default=str)
    print(text)
    if args.json:
        Path(args.json).write_text(text)


if __name__ == "__main__":
    main()

"""Incidents that evolve: what detection over all readings now says, against the incidents already open.

Detection (:func:`tracer.detection.detect`) is a pure function of the readings it is given, so the
incidents it finds in the complete data do not depend on the order or batching in which the readings
arrived. What does depend on arrival order is what the service had *already* opened on partial data: a
downstream station's backlog that arrived first opens an incident there, and the upstream station's
data arriving hours later shows the same plume began earlier, upstream. This module decides, at every
screening, how the stored incidents move toward what the complete data says:

* **open**: a detected incident that overlaps no stored one is opened under its canonical id
  (``network:first station/parameter/start``, from the data, not from the arrival order).
* **update**: a stored incident with the detected incident's id whose evidence changed (its readings
  in the evidence window: :func:`evidence_window`) is traced, forecast and planned again; what changed
  (new station, plume passed a station, the ranking, the intake arrival) is said by
  :func:`material_changes`.
* **merge**: stored incidents that overlap a detected incident under another id (opened on partial
  data) are merged into the canonical one, which is opened if it is not stored yet. The merge is
  recorded on both; the old ones are closed as merged.
* **cancel**: a stored open incident that detection no longer finds, although all its evidence is still
  in the screened readings (e.g. the readings were re-sent flagged as a sensor fault), is cancelled.
* An incident an operator closed is never reopened by the same plume.

The last screening after the last reading therefore always works on the complete data and leaves
the same incidents (ids, stations, first station, trace, checklist) whatever the order was; the
property test in ``tests/tracer/test_reconcile.py`` drives it over permutations, batchings and delays.

Evidence window (assumption, stated): a trace of an incident uses the readings of every station from
:data:`LOOKBACK` before the incident's start to :data:`SETTLE` after its end. Readings outside it are
not given to the trace, so a reading arriving later outside it changes nothing, and a re-trace is due
exactly when a reading inside it is new (:func:`evidence_digest`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from hydrology.timezones import local_time, zone
from tracer.readings import Readings

#: readings before an incident's start given to its trace (baselines, upstream stations) [-]
LOOKBACK = pd.Timedelta(days=3)
#: readings after an incident's last anomalous reading given to its trace (the tail, the return to normal) [-]
SETTLE = pd.Timedelta(hours=2)
#: an intake arrival (P50) that moved by more than this is a change worth an update alert [s]
ARRIVAL_MOVE_S = 900.0


@dataclass(frozen=True, slots=True)
class Known:
    """A stored incident, as reconciliation sees it.

    ``keys``: its (station, parameter) pairs; ``start``/``end``: first and last anomalous reading
    (UTC); ``closed``: closed by an operator (a merged incident is not ``closed`` here: it is gone);
    ``digest``: :func:`evidence_digest` of the evidence its current version was computed on.
    """

    id: str
    keys: frozenset[tuple[str, str]]
    start: pd.Timestamp
    end: pd.Timestamp
    closed: bool = False
    digest: str = ""


@dataclass(frozen=True, slots=True)
class Step:
    """One thing to do. ``kind``: ``open``, ``update``, ``unchanged`` or ``cancel``; ``incident`` is the
    detected incident (None for ``cancel``); ``merge`` the stored ids folded into it (each closed as merged
    into ``id``)."""

    kind: str
    id: str
    incident: object
    digest: str
    merge: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Change:
    """What changed between two versions of an incident, in both languages."""

    zh: str
    en: str


@dataclass(frozen=True, slots=True)
class Picture:
    """What a version of an incident says, for comparing versions (:func:`material_changes`).

    ``intakes``: intake id -> (P10, P50, P90 arrival) [s since epoch, None: not reached]."""

    stations: tuple[str, ...] = ()
    passed: tuple[str, ...] = ()
    ranking: tuple[str, ...] = ()
    intakes: Mapping[str, tuple[float | None, float | None, float | None]] = field(default_factory=dict)
    actions: tuple[str, ...] = ()


def evidence_window(incident: object) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The readings a trace of ``incident`` (a :class:`tracer.detection.Incident`) is given: from
    :data:`LOOKBACK` before its start to :data:`SETTLE` after its end (UTC)."""
    return incident.start - LOOKBACK, incident.end + SETTLE  # type: ignore[attr-defined]


def evidence(readings: Readings, incident: object) -> Readings:
    """The readings of every station inside :func:`evidence_window` (what the trace sees)."""
    t0, t1 = evidence_window(incident)
    f = readings.frame
    keep = (f["time"] >= t0) & (f["time"] <= t1)
    return Readings(f.loc[keep].reset_index(drop=True))


def evidence_digest(readings: Readings) -> str:
    """A digest of readings that does not depend on their order: SHA-256 over station, parameter,
    time [ns], value and flag of the rows sorted by station, parameter and time (Readings keeps them
    so sorted; sorted again here so the digest never depends on that)."""
    f = readings.frame.sort_values(["station_id", "parameter", "time"], kind="stable")
    h = hashlib.sha256()
    h.update("\x1f".join(f["station_id"].astype(str)).encode())
    h.update("\x1e".join(f["parameter"].astype(str)).encode())
    h.update(np.ascontiguousarray(f["time"].array.asi8).tobytes())
    h.update(np.ascontiguousarray(f["value"].to_numpy(dtype=float)).tobytes())
    h.update("\x1f".join(f["flag"].fillna("").astype(str)).encode())
    return h.hexdigest()


def _overlaps(known: Known, incident: object) -> bool:
    keys = {(s, p) for s in incident.station_ids for p in incident.parameters}  # type: ignore[attr-defined]
    if not keys & known.keys:
        return False
    t0, t1 = evidence_window(incident)
    return known.start <= t1 and known.end >= t0


def reconcile(detected: Sequence[object], known: Sequence[Known], network: str,
              digests: Mapping[str, str], screened_from: pd.Timestamp | None = None) -> list[Step]:
    """What to do with each detected incident, given the stored ones (see module doc).

    Parameters
    ----------
    detected : sequence of tracer.detection.Incident
        Detection over the current readings.
    known : sequence of Known
        The network's stored incidents that are not merged away.
    network : str
        The network name (ids are ``network:detection id``).
    digests : mapping of str to str
        Detection id -> :func:`evidence_digest` of that incident's evidence now.
    screened_from : Timestamp, optional
        Start of the readings detection screened. A stored open incident whose whole evidence window
        lies after it, and that no detected incident overlaps any more, is cancelled (its anomaly is
        gone from the data: e.g. readings re-sent with a fault flag). Without it nothing is cancelled
        (an incident whose readings merely left the screening window is not cancelled).

    Returns
    -------
    list of Step
        One per detected incident that is not covered by an incident an operator closed, in
        detection order; then a ``cancel`` step (``incident`` None) per stored incident to cancel.
    """
    by_id = {k.id: k for k in known}
    taken: set[str] = set()
    steps = []
    for inc in detected:
        iid = f"{network}:{inc.id}"  # type: ignore[attr-defined]
        digest = digests[inc.id]  # type: ignore[attr-defined]
        mine = by_id.get(iid)
        others = [k for k in known if k.id != iid and k.id not in taken and _overlaps(k, inc)]
        if (mine is not None and mine.closed) or any(k.closed for k in others):
            continue  # an operator closed this plume: new readings of it do not reopen it
        merge = tuple(k.id for k in others)
        taken.update(merge)
        if mine is None:
            steps.append(Step("open", iid, inc, digest, merge))
        elif merge or mine.digest != digest:
            steps.append(Step("update", iid, inc, digest, merge))
        else:
            steps.append(Step("unchanged", iid, inc, digest))
    if screened_from is not None:
        seen = {s.id for s in steps} | taken
        for k in known:
            covered = any(_overlaps(k, inc) for inc in detected)
            if not k.closed and k.id not in seen and not covered and k.start - LOOKBACK >= screened_from:
                steps.append(Step("cancel", k.id, None, ""))
    return steps


def passed_stations(readings: Readings, incident: object) -> tuple[str, ...]:
    """Stations of ``incident`` that the plume has passed: each of their anomalies ended before the
    station's latest reading of that parameter (a later, normal reading exists)."""
    f = readings.frame
    last = f.groupby(["station_id", "parameter"], sort=False)["time"].max().to_dict() if len(f) else {}
    out = []
    for sid in incident.station_ids:  # type: ignore[attr-defined]
        mine = [a for a in incident.anomalies if a.station_id == sid]  # type: ignore[attr-defined]
        if mine and all(a.end < last.get((sid, a.parameter), a.end) for a in mine):
            out.append(sid)
    return tuple(out)


def _hm(t: float | None, tz: ZoneInfo, lang: str) -> str:
    return "—" if t is None else local_time(pd.Timestamp(t, unit="s", tz="UTC").to_pydatetime(), tz, lang)


def material_changes(before: Picture | None, after: Picture, tz: ZoneInfo | None = None) -> list[Change]:
    """What changed that a responder must hear about (an ``update`` alert): a new station saw the
    plume, the plume passed a station, the most likely candidate or the set of the top three changed (a swap
    of the second and third is noise, not news), an intake's
    P50 arrival moved by more than :data:`ARRIVAL_MOVE_S`, or actions were added or withdrawn.
    Empty when nothing did (the new numbers are kept without an alert). Times are written in ``tz``, the
    network's zone (default Asia/Shanghai, :func:`hydrology.timezones.zone`)."""
    tz = tz or zone(None)
    if before is None:
        return []
    out = []
    for s in after.stations:
        if s not in before.stations:
            out.append(Change(f"新站点 {s} 监测到污染", f"new station {s} sees the plume"))
    for s in after.passed:
        if s not in before.passed:
            out.append(Change(f"污染团已通过 {s}", f"the plume has passed {s}"))
    if before.ranking[:1] != after.ranking[:1] or set(before.ranking[:3]) != set(after.ranking[:3]):
        out.append(Change(f"嫌疑排序变为 {'、'.join(after.ranking[:3]) or '无'}（原 {'、'.join(before.ranking[:3]) or '无'}）",
                          f"ranking now {', '.join(after.ranking[:3]) or 'none'} (was {', '.join(before.ranking[:3]) or 'none'})"))
    for rid, (_lo, mid, _hi) in after.intakes.items():
        old = before.intakes.get(rid, (None, None, None))[1]
        if (old is None) != (mid is None) or (old is not None and mid is not None and abs(mid - old) > ARRIVAL_MOVE_S):
            delta = "" if old is None or mid is None else f"（{(mid - old) / 60:+.0f} 分钟）"
            delta_en = "" if old is None or mid is None else f" ({(mid - old) / 60:+.0f} min)"
            out.append(Change(f"{rid} 预计到达时间 {_hm(old, tz, 'zh')} → {_hm(mid, tz, 'zh')}{delta}",
                              f"{rid} arrival {_hm(old, tz, 'en')} -> {_hm(mid, tz, 'en')}{delta_en}"))
    added = [a for a in after.actions if a not in before.actions]
    gone = [a for a in before.actions if a not in after.actions]
    if added:
        out.append(Change(f"新增措施 {len(added)} 项", f"{len(added)} action(s) added"))
    if gone:
        out.append(Change(f"撤销措施 {len(gone)} 项", f"{len(gone)} action(s) withdrawn"))
    return out

"""The one place where protobuf messages become domain objects and back.

Science packages never see a protobuf; servicers call these functions. Units: the proto fields carry
their units in their names, as the domain does, so conversion is mostly structural; readings are
converted to SI by :mod:`tracer.readings` (their ``unit`` field).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from hydrology.network import Feature, RiverNetwork
from hydrology.problems import Problem
from server.generated.rivertrace.v1 import common_pb2, monitoring_pb2, network_pb2
from tracer.readings import (
    UNITS,
    LoadResult,
    RejectedRow,
    canonical_parameter,
    normalise_unit,
    parameter_quantity,
    readings_from_frame,
)

FEATURE_KIND = {"station": common_pb2.FEATURE_KIND_STATION, "discharger": common_pb2.FEATURE_KIND_DISCHARGER,
                "intake": common_pb2.FEATURE_KIND_INTAKE, "structure": common_pb2.FEATURE_KIND_STRUCTURE,
                "site": common_pb2.FEATURE_KIND_SITE}
FEATURE_KIND_NAME = {v: k for k, v in FEATURE_KIND.items()}


def timestamp(t: datetime | pd.Timestamp | int | None) -> Timestamp | None:
    """A protobuf Timestamp from a timezone-aware datetime, a pandas Timestamp or ns since the epoch."""
    if t is None:
        return None
    ts = Timestamp()
    if isinstance(t, (int, np.integer)):
        ts.FromNanoseconds(int(t))
    else:
        ts.FromNanoseconds(int(pd.Timestamp(t).value))
    return ts


def to_datetime(ts: Timestamp) -> datetime:
    return datetime.fromtimestamp(ts.ToNanoseconds() / 1e9, tz=UTC)


def problem(p: Problem) -> common_pb2.Problem:
    return common_pb2.Problem(severity=p.severity, element=p.element, id=p.id, field=p.field, message=p.message)


def feature(f: Feature) -> network_pb2.Feature:
    return network_pb2.Feature(kind=FEATURE_KIND[f.kind], id=f.id, name=f.name or "",
                               location=common_pb2.Location(reach_id=f.reach, chainage_m=f.chainage_m),
                               attributes_json=json.dumps(dict(f.attrs), ensure_ascii=False, default=str))


def features(net: RiverNetwork, kind: int) -> list[network_pb2.Feature]:
    kinds = None if kind == common_pb2.FEATURE_KIND_UNSPECIFIED else (FEATURE_KIND_NAME[kind],)
    return [feature(f) for f in net.iter_features(kinds)]  # type: ignore[arg-type]


#: plausible readings by quantity, in the internal SI unit (beyond the physical bounds of
#: tracer.readings, which leave concentrations unbounded above): a value outside is refused by field
#: with the range in the message. 1e5 g/m3 (100 g/L) is above the COD of any raw industrial effluent;
#: 300,000 m3/s is above the Amazon's mean flow (about 209,000 m3/s); 100 S/m is above saturated brine.
PLAUSIBLE_READING: dict[str, tuple[float, float, str]] = {
    "mass_concentration": (0.0, 1e5, "g/m3"), "temperature": (-2.0, 100.0, "degC"),
    "discharge": (-3e5, 3e5, "m3/s"), "turbidity": (0.0, 1e5, "NTU"), "conductivity": (0.0, 100.0, "S/m"),
    "count": (0.0, 1e12, "count/L"), "dimensionless": (0.0, 1e6, "1"),
}
#: longest station id, parameter, unit or flag in a reading [characters]
MAX_READING_TEXT = 128


def _si_value(parameter: str, unit: str, value: float) -> tuple[float, str] | None:
    """(value in the internal unit, quantity), or None when the parameter or unit is unknown."""
    try:
        p = canonical_parameter(parameter)
        q = parameter_quantity(p)
        conv = UNITS[q].get(normalise_unit(unit))
    except Exception:  # noqa: BLE001 - unknown names are rejected by readings_from_frame with their reason
        return None
    if conv is None:
        return None
    return value * conv.scale + conv.offset, q


def readings_batch(batch: monitoring_pb2.ReadingBatch, known_stations: set[str],
                   window_s: tuple[float, float] | None = None) -> LoadResult:
    """Validate and convert a batch of readings to SI; rejected rows keep their index in the batch.

    ``window_s``: accepted reading times [s since the epoch, UTC]; a time outside (e.g. year 1 or
    2286, which do not fit a nanosecond clock) is rejected by field, never an error of the batch.
    Values outside :data:`PLAUSIBLE_READING` are rejected with the range in the message.
    """
    rs = batch.readings
    early: list[RejectedRow] = []
    keep: list[int] = []
    lo, hi = window_s if window_s is not None else (-9.2e9, 9.2e9)
    for i, r in enumerate(rs):
        texts = (("station_id", r.station_id), ("parameter", r.parameter), ("unit", r.unit), ("flag", r.flag))
        long = next((f for f, v in texts if len(v) > MAX_READING_TEXT), None)
        if long is not None:
            early.append(RejectedRow(i + 1, long, getattr(r, long)[:40] + "...",
                                     f"{long} is longer than {MAX_READING_TEXT} characters"))
            continue
        if r.HasField("time") and not lo <= r.time.seconds <= hi:
            early.append(RejectedRow(i + 1, "time", f"{r.time.seconds} s since 1970",
                                     f"time is outside the accepted window {_iso(lo)} .. {_iso(hi)} (UTC)"))
            continue
        si = _si_value(r.parameter, r.unit, r.value) if math.isfinite(r.value) else None
        if si is not None:
            v, q = si
            a, b, u = PLAUSIBLE_READING.get(q, (-math.inf, math.inf, ""))
            if not a <= v <= b:
                early.append(RejectedRow(i + 1, "value", repr(r.value),
                                         f"{r.parameter} {v:g} {u} is outside the plausible range [{a:g}, {b:g}] {u}"))
                continue
        keep.append(i)
    n = len(keep)
    sub = [rs[i] for i in keep]
    t_ns = np.fromiter((r.time.seconds * 1_000_000_000 + r.time.nanos if r.HasField("time") else -1 for r in sub),
                       dtype=np.int64, count=n)
    times = pd.Series(pd.to_datetime(t_ns, unit="ns", utc=True))
    times[t_ns < 0] = pd.NaT
    df = pd.DataFrame({"station_id": [r.station_id for r in sub], "parameter": [r.parameter for r in sub], "time": times,
                       "value": np.fromiter((r.value for r in sub), dtype=float, count=n), "unit": [r.unit for r in sub],
                       "flag": [r.flag or None for r in sub]})
    res = readings_from_frame(df, known_stations=known_stations)
    if not early and n == len(rs):
        return res
    remap = [RejectedRow(keep[r.row_number - 1] + 1, r.field, r.value, r.reason) for r in res.rejected]
    return LoadResult(res.readings, tuple(sorted(early + remap, key=lambda r: r.row_number)))


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def reading_rows(result: LoadResult) -> list[tuple[str, str, int, float, str | None]]:
    """Storage rows (station, parameter, time ns, SI value, flag) of the accepted readings."""
    f = result.readings.frame
    t_ns = f["time"].astype("int64").to_numpy()
    flags = f["flag"].where(f["flag"].notna(), None).tolist() if "flag" in f else [None] * len(f)
    return list(zip(f["station_id"].tolist(), f["parameter"].tolist(), t_ns.tolist(), f["value"].astype(float).tolist(), flags))


def rejected_problems(result: LoadResult) -> list[common_pb2.Problem]:
    """Rejected rows as problems: element "readings", id "#<index in batch>" (0-based), field, reason."""
    return [common_pb2.Problem(severity="error", element="readings", id=f"#{r.row_number - 1}", field=r.field,
                               message=f"{r.reason} (value {r.value!r})") for r in result.rejected]


# ------------------------------------------------------------------------------------------ incidents
from google.protobuf.duration_pb2 import Duration

from server.generated.rivertrace.v1 import alerts_pb2, incidents_pb2
from server.outbox_store import IncidentRecord
from tracer.incident import actions

ACTION_KIND = {k: getattr(incidents_pb2, f"ACTION_KIND_{k.upper()}") for k in
               ("halt_discharge", "interception", "dilution_release", "intake_suspension", "monitoring", "notify")}
ACTION_STATUS = {k: getattr(incidents_pb2, f"ACTION_STATUS_{k.upper()}") for k in ("pending", "acknowledged", "done", "not_feasible")}
ACTION_STATUS_NAME = {v: k for k, v in ACTION_STATUS.items()}
ACTION_KIND_NAME = {v: k for k, v in ACTION_KIND.items()}
#: wire status name -> state of tracer.incident.actions (the wire says "pending" for "open")
ACTION_DOMAIN_STATE = {"pending": actions.OPEN, "acknowledged": actions.ACKNOWLEDGED, "done": actions.DONE,
                       "not_feasible": actions.NOT_FEASIBLE}


def action_state(msg: incidents_pb2.Action, changed_at: datetime) -> actions.ActionState:
    """The domain state of a stored Action, with its recorded history. An action stored before histories were
    kept (or set by the planner, e.g. not feasible) has none; a status other than pending then counts as one
    change at ``changed_at`` (UTC), which is what the state machine needs to tell an idempotent repeat from a
    first move."""
    state = ACTION_DOMAIN_STATE[ACTION_STATUS_NAME[msg.status]]
    history = tuple((h.at.ToDatetime(tzinfo=UTC), ACTION_DOMAIN_STATE[ACTION_STATUS_NAME[h.status]], h.note)
                    for h in msg.history)
    if not history and state != actions.OPEN:
        history = ((changed_at, state, ""),)
    return actions.ActionState(id=msg.id, state=state, version=len(history), history=history)
INCIDENT_STATE = {k: getattr(incidents_pb2, f"INCIDENT_STATE_{k.upper()}") for k in ("open", "traced", "responding", "closed")}
INCIDENT_STATE_NAME = {v: k for k, v in INCIDENT_STATE.items()}


def duration(seconds: float) -> Duration:
    d = Duration()
    d.FromNanoseconds(int(seconds * 1e9))
    return d


def candidate(c: Any) -> incidents_pb2.Candidate:
    """A :class:`tracer.attribution.Candidate` as a message (mass 0 / rate 0 when not applicable)."""
    msg = incidents_pb2.Candidate(id=c.id, kind=c.kind, probability=c.probability, distance_m=c.distance_m,
                                  travel_time=duration(c.travel_time_s), mass_kg=c.mass_kg or 0.0, rate_kg_s=c.rate_kg_s or 0.0)
    if c.release_start is not None:
        msg.release_start.CopyFrom(timestamp(c.release_start))
    msg.evidence.update({k: float(v) for k, v in c.evidence.items()})
    msg.explanation.update(dict(c.explanation))
    return msg


def trace_response(res: Any, undecided: Any = (), grab: Any = None, checks: Any = ()) -> incidents_pb2.TraceResponse:
    """A :class:`tracer.attribution.AttributionResult` and its separation (:func:`tracer.trace.separation`:
    the undecided group's ids, the :class:`tracer.grab.GrabSample` or None, the operations checks) as a
    TraceResponse. ``groups`` holds every candidate, best group first; the grab sample is left unset when
    there is none (the first group has a single member)."""
    msg = incidents_pb2.TraceResponse(
        model=res.model, candidates=[candidate(c) for c in res.candidates], stations_saw=list(res.stations_saw),
        stations_silent=list(res.stations_silent), nearest_upstream_discharger=res.nearest_upstream_discharger or "",
        groups=[incidents_pb2.CandidateGroup(candidate_ids=[c.id for c in g], probabilities=[float(c.probability) for c in g])
                for g in res.groups],
        operations_checks=[incidents_pb2.OperationsCheck(discharger_id=c.discharger, text_zh=c.zh, text_en=c.en)
                           for c in checks])
    if grab is not None:
        g = msg.grab_sample
        g.reach_id, g.chainage_m, g.expected_gain_nats = grab.reach, float(grab.chainage_m), float(grab.gain_nats)
        g.site_id, g.site_name, g.sigma_mg_l = grab.site or "", grab.site_name or "", float(grab.sigma_mg_l)
        g.time.CopyFrom(timestamp(grab.time))
        g.predicted_mg_l.update({k: float(v) for k, v in grab.predicted_mg_l.items()})
    return msg


def arrivals(fc: Any) -> list[incidents_pb2.ReceptorArrival]:
    """Receptor forecasts with absolute times (the release must have a start)."""
    start = fc.release.start
    out = []
    for r in fc.receptors:
        msg = incidents_pb2.ReceptorArrival(id=r.id, kind=FEATURE_KIND[r.kind], distance_m=r.distance_m, peak_mg_l=r.peak_g_m3,
                                            threshold_mg_l=r.threshold_g_m3 or 0.0)
        if start is not None:
            for name, s in (("arrival", r.arrival_s), ("peak", r.peak_s), ("end", r.end_s)):
                if s is not None:
                    getattr(msg, name).CopyFrom(timestamp(pd.Timestamp(start) + pd.Timedelta(seconds=s)))
        out.append(msg)
    return out


def add_bands(msgs: list[incidents_pb2.ReceptorArrival], bands: Any, start: Any) -> None:
    """Fill each receptor's ``band`` from :class:`hydrology.forecast_bands.Bands` (times after ``start``)."""
    from hydrology.forecast_bands import suspension_window

    def at(seconds: float | None) -> Any:
        return None if seconds is None else timestamp(pd.Timestamp(start) + pd.Timedelta(seconds=seconds))

    for msg in msgs:
        b = bands.receptors.get(msg.id)
        if b is None:
            continue
        for name, values in (("arrival", b.arrival_s), ("peak", b.peak_s), ("end", b.end_s)):
            tq = getattr(msg.band, name)
            for q, field in zip(bands.quantiles, ("p10", "p50", "p90")):
                v = values[q]
                if v is not None and not (name == "end" and v == 0.0):  # end 0: this quantile never exceeded
                    getattr(tq, field).CopyFrom(at(v))
        msg.band.p_arrival = b.p_arrival
        w = suspension_window(b) if b.kind == "intake" else None
        if w is not None:
            msg.band.suspend_from.CopyFrom(at(w[0]))
            if w[1] is not None:
                msg.band.suspend_until.CopyFrom(at(w[1]))


def action(a: Any) -> incidents_pb2.Action:
    msg = incidents_pb2.Action(id=a.id, kind=ACTION_KIND[a.kind], department=a.department or "", target=a.target,
                               priority=a.priority, rationale=a.rationale[1], rationale_zh=a.rationale[0],
                               status=ACTION_STATUS[a.status])
    if a.deadline is not None:
        msg.deadline.CopyFrom(timestamp(a.deadline))
    if a.window_start is not None:
        msg.window.start.CopyFrom(timestamp(a.window_start))
    if a.window_end is not None:
        msg.window.end.CopyFrom(timestamp(a.window_end))
    for k, v in (a.numbers or {}).items():
        if isinstance(v, int | float | np.floating | np.integer) and not isinstance(v, bool) and math.isfinite(v):
            msg.numbers[k] = float(v)
    return msg


def checklist(cl: Any) -> incidents_pb2.Checklist:
    return incidents_pb2.Checklist(incident_id=cl.incident, created_at=timestamp(cl.created_at),
                                   actions=[action(a) for a in cl.actions], summary=cl.summary[1], summary_zh=cl.summary[0],
                                   markdown_zh=cl.markdown("zh"), markdown_en=cl.markdown("en"))


def alert(alert_id: str, incident: incidents_pb2.Incident, sequence: int, summary: tuple[str, str],
          cap_xml: str = "", created: pd.Timestamp | None = None, kind: str = "") -> alerts_pb2.Alert:
    """An alert of ``kind`` (opened, update, merged, action, closed) about ``incident``."""
    return alerts_pb2.Alert(alert_id=alert_id, incident_id=incident.id, sequence=sequence,
                            created_at=timestamp(created if created is not None else pd.Timestamp.now(tz="UTC")),
                            incident=incident, summary=summary[1], summary_zh=summary[0], cap_xml=cap_xml, kind=kind)


def incident_record(msg: incidents_pb2.Incident) -> IncidentRecord:
    """An incident as the rows :meth:`server.outbox_store.Outbox.put_incident` stores: the whole message
    (JSON) and the figures one queries by (state, stations, ranking, actions, versions)."""
    def ns(ts: Any) -> int:
        return int(ts.ToNanoseconds())

    acts = tuple((a.id, ACTION_KIND_NAME.get(a.kind, "unspecified"), a.department or None, a.target,
                  ACTION_STATUS_NAME.get(a.status, "unspecified"), ns(a.deadline) if a.HasField("deadline") else None,
                  ns(a.history[-1].at) if a.history else None) for a in msg.checklist.actions)
    top = msg.candidates[0] if msg.candidates else None
    return IncidentRecord(
        id=msg.id, network=msg.network, network_version=msg.network_version, state=INCIDENT_STATE_NAME[msg.state],
        payload=json_format.MessageToJson(msg), first_station=msg.station_ids[0] if msg.station_ids else "",
        parameter=msg.parameters[0] if msg.parameters else "", start_ns=ns(msg.start),
        end_ns=ns(msg.end) if msg.HasField("end") else None, version=msg.version,
        top_candidate=top.id if top else None, top_probability=top.probability if top else None,
        merged_into=msg.merged_into or None, actions=acts,
        candidates=tuple((c.id, c.kind, c.probability) for c in msg.candidates),
        versions=tuple((v.version, ns(v.created_at), list(v.reasons), list(v.ranking)) for v in msg.versions))

"""One version of an incident: trace, forecast with bands, checklist, and what changed since the last one.

The science is called here and its results converted to the stored message
(:class:`incidents_pb2.Incident`); what to do with each detected incident (open, update, merge) is
decided by :mod:`tracer.incident.reconcile`, and the pipeline (:mod:`server.pipeline`) stores the
result with its alert.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from hydrology.forecast_bands import suspension_window
from hydrology.oxygen_network import DOConditions
from hydrology.timezones import local_time, zone
from hydrology.transport.analytic import forecast
from server.generated.rivertrace.v1 import incidents_pb2
from tracer.incident.bands import incident_bands, start_error_s
from tracer.incident.reconcile import Change, Picture
from tracer.planner import extra_flow_network, plan
from tracer.priors import OperationsEvidence
from tracer.readings import Readings, water_temperature_c
from tracer.trace import plan_input_from_trace, trace

from . import convert

log = logging.getLogger("rivertrace.pipeline")
DEFAULT_DO = DOConditions(temperature_c=25.0)


def do_conditions(readings: Readings, det_incident: Any) -> tuple[DOConditions, str]:
    """DO conditions of an incident and where they came from: the water temperature measured during it (its
    first station's, else the network's median; :func:`tracer.readings.water_temperature_c`), the stated
    default (25 degC) only when no station reported one."""
    station, t0, t1 = det_incident.station_ids[0], det_incident.start - pd.Timedelta(days=1), det_incident.end
    t = water_temperature_c(readings, station, t0, t1)
    if t is None:
        return DEFAULT_DO, f"{DEFAULT_DO.temperature_c:g} degC: default, no station measured water temperature"
    f = readings.frame
    own = ((f["station_id"] == station) & (f["parameter"] == "temperature") & (f["time"] >= t0) & (f["time"] <= t1)).any()
    where = f"{station}'s readings" if own else "every station's readings"
    return replace(DEFAULT_DO, temperature_c=t), f"{t:.1f} degC: median of {where}"


def gauged_network(net: Any, readings: Readings, det_incident: Any) -> tuple[Any, dict[str, str]]:
    """The network with the discharge its gauges measured during the incident, and where each came from.

    Each station that reported discharge [m3/s] between a day before the incident's start and its end
    sets its reach's discharge to the median of those readings (:meth:`RiverNetwork.with_discharges`:
    a stated discharge wins at that reach and flows on downstream); non-positive readings (reverse
    flow, a gauge at rest) are left out. Without discharge readings the network's own flows stand,
    and the conditions say so."""
    f = readings.frame
    t0, t1 = det_incident.start - pd.Timedelta(days=1), det_incident.end
    sel = f[(f["parameter"] == "discharge") & (f["time"] >= t0) & (f["time"] <= t1) & (f["value"] > 0)]
    gauged: dict[str, float] = {}
    notes: dict[str, str] = {}
    for sid, values in sel.groupby("station_id")["value"]:
        station = net.stations.get(str(sid))
        if station is None:
            continue
        q = float(values.median())
        model = net.steady_discharge.get(station.reach)
        gauged[station.reach] = q
        notes[f"discharge_m3s:{station.reach}"] = (f"{q:.3g} m3/s: median of {sid}'s gauge readings"
                                                   + (f" (model {model:.3g})" if model is not None else ""))
    if not gauged:
        return net, {"discharge_m3s": "the network's steady flows: no gauge reported discharge"}
    return net.with_discharges(gauged), notes


def scoped_id(network: str, detection_id: str) -> str:
    """The incident's one id, everywhere (incident, alerts, checklist actions, CAP): the network name, then
    detection's ``first station/parameter/start (UTC, to the second)``, as :func:`tracer.incident.actions.incident_id`
    writes it. Two networks that reuse station ids get two incidents."""
    return f"{network}:{detection_id}"


def build_incident(net: Any, network: str, version: int, det_incident: Any, readings: Readings,
                   do: DOConditions = DEFAULT_DO, operations: dict[str, OperationsEvidence] | None = None,
                   cap: dict[str, Any] | None = None, passed: tuple[str, ...] = (),
                   bands: bool = True, conditions: dict[str, str] | None = None,
                   halted: dict[str, datetime] | None = None,
                   released: dict[str, tuple[float, datetime]] | None = None) -> tuple[incidents_pb2.Incident, tuple[str, str], set[str]]:
    """Trace, forecast and plan one detected incident; returns the message, a summary and the departments.

    ``readings``: what the trace is given (the pipeline passes the incident's evidence window).
    ``passed``: stations the plume has passed (their observed peaks narrow the bands). ``bands``: forecast
    P10/P50/P90 at every receptor (:mod:`tracer.incident.bands`), narrowed by the passages already
    observed; the intake suspension covers the band. ``conditions``: what the models used and where it came
    from (stored in the incident). ``halted``: discharger -> when its halt order was carried out (a release
    still going on from it ends then). ``released``: dilution releases started (:func:`dilutions`): the trace
    stays on ``net`` (the readings were taken at its flows), the forecast, its bands and the plan run with
    the released water (:func:`diluted_network`), and the passages seen below a release are not
    assimilated into bands at the new flows. ``cap``: a dict that receives what a CAP 1.2
    document of the alert needs (``forecast`` or ``do_event``, and ``checklist``)."""
    iid = scoped_id(network, det_incident.id)
    msg = incidents_pb2.Incident(id=iid, network=network, network_version=version,
                                 state=convert.INCIDENT_STATE["open"], station_ids=list(det_incident.station_ids),
                                 parameters=list(det_incident.parameters), start=convert.timestamp(det_incident.start),
                                 detected_at=convert.timestamp(det_incident.detected_at), severity=det_incident.severity,
                                 level=det_incident.level, updated_at=convert.timestamp(pd.Timestamp.now(tz="UTC")),
                                 end=convert.timestamp(det_incident.end), passed_station_ids=list(passed),
                                 conditions=conditions or {})
    station, parameter = det_incident.station_ids[0], det_incident.parameters[0]
    summary = (f"{station} {parameter} 异常（{det_incident.level}）", f"{station} {parameter} anomaly ({det_incident.level})")
    departments: set[str] = set()
    try:
        res = trace(net, readings, station, parameter, do_conditions=do, operations=operations)
    except Exception as exc:  # noqa: BLE001 - the incident stands without a trace; say why
        log.info("incident %s: not traced: %s", iid, exc)
        return msg, (summary[0] + f"；未溯源：{exc}", summary[1] + f"; not traced: {exc}"), departments
    msg.state = convert.INCIDENT_STATE["traced"]
    msg.candidates.extend(convert.candidate(c) for c in res.candidates[:10])
    inp = plan_input_from_trace(net, readings, res, do_conditions=do, incident_id=iid, separate=True, halted=halted)
    fc = None
    ahead = diluted_network(net, released or {})
    if inp.release is not None:
        fc = forecast(ahead, inp.release)
        msg.arrivals.extend(convert.arrivals(fc))
        if bands and inp.release.start is not None:
            below = {sid for sid, st in net.stations.items() for s in (released or {})
                     if s in net.structures and net.is_upstream(net.structures[s], st)}
            try:
                b = incident_bands(ahead, inp.release, readings, det_incident, passed,
                                   start_sd_s=start_error_s(res.candidates[0]), ignore=below)
                convert.add_bands(list(msg.arrivals), b, inp.release.start)
                windows = {rid: w for rid, rb in b.receptors.items() if rb.kind == "intake"
                           for w in [suspension_window(rb)] if w is not None}
                inp = replace(inp, suspension=windows)
            except Exception:
                log.exception("incident %s: no forecast bands", iid)
    cl = plan(ahead, inp)
    if cap is not None:
        cap.update(forecast=fc, do_event=inp.do_event, checklist=cl)
    msg.checklist.CopyFrom(convert.checklist(cl))
    msg.state = convert.INCIDENT_STATE["responding"]
    departments = {a.department for a in cl.actions if a.department}
    top = res.candidates[0]
    summary = (f"{summary[0]}；首要嫌疑 {top.id}（{top.probability:.0%}）；{cl.summary[0]}",
               f"{summary[1]}; most likely source {top.id} ({top.probability:.0%}); {cl.summary[1]}")
    return msg, summary, departments


def picture(msg: incidents_pb2.Incident) -> Picture:
    """What a stored version says, for :func:`tracer.incident.reconcile.material_changes`."""
    def p50(a: incidents_pb2.ReceptorArrival) -> tuple[float | None, float | None, float | None]:
        q = a.band.arrival
        if a.HasField("band"):
            return tuple(float(getattr(q, f).seconds) if q.HasField(f) else None for f in ("p10", "p50", "p90"))  # type: ignore[return-value]
        t = float(a.arrival.seconds) if a.HasField("arrival") else None
        return t, t, t

    return Picture(tuple(msg.station_ids), tuple(msg.passed_station_ids), tuple(c.id for c in msg.candidates[:3]),
                   {a.id: p50(a) for a in msg.arrivals if a.kind == convert.FEATURE_KIND["intake"]},
                   tuple(a.id for a in msg.checklist.actions))


def _suffix(action_id: str, incident_id: str) -> str:
    return action_id.removeprefix(incident_id)


def carry_over(msg: incidents_pb2.Incident, previous: list[incidents_pb2.Incident], tz: ZoneInfo | None = None) -> None:
    """Keep what responders did: an action of the new checklist that a previous version (or a merged
    incident, matched by kind and target) had acknowledged or done keeps that status and its history (the
    last of ``previous`` that has one wins); a moved deadline
    says so in its rationale; an action no longer indicated but acknowledged or done stays (its rationale
    says it is no longer indicated); others no longer indicated are withdrawn. Times in ``tz``, the network's zone."""
    new = {_suffix(a.id, msg.id): a for a in msg.checklist.actions}
    acted = (incidents_pb2.ACTION_STATUS_ACKNOWLEDGED, incidents_pb2.ACTION_STATUS_DONE)
    for prev in previous:
        for old in prev.checklist.actions:
            key = _suffix(old.id, prev.id)
            a = new.get(key)
            if a is None:
                if old.status in acted:
                    kept = msg.checklist.actions.add()
                    kept.CopyFrom(old)
                    kept.id = msg.id + key
                    if "no longer indicated" not in kept.rationale:
                        kept.rationale += " (no longer indicated; kept because it was acted on)"
                        kept.rationale_zh += "（已不再需要；因已处置而保留）"
                    new[key] = kept
                continue
            if old.status in acted:  # the planner never acknowledges or does anything: a responder did
                a.status = old.status
            if old.status == incidents_pb2.ACTION_STATUS_DONE and old.numbers:
                # what was done was done with these figures (a dilution's release rate): a re-plan at the new
                # flows must not change them, or the next forecast would add a different release
                a.numbers.clear()
                a.numbers.update(old.numbers)
            if old.history:
                del a.history[:]
                a.history.extend(old.history)
            if old.HasField("deadline") and a.HasField("deadline") and old.deadline != a.deadline:
                was = old.deadline.ToDatetime(tzinfo=UTC)
                a.rationale += f" (deadline moved from {local_time(was, tz or zone(None))} as the forecast changed)"
                a.rationale_zh += f"（预报更新，截止时间由 {local_time(was, tz or zone(None), 'zh')} 调整）"


def halts(msg: incidents_pb2.Incident | None) -> dict[str, datetime]:
    """Discharger -> when its halt order was marked done (UTC), from the incident's checklist."""
    out: dict[str, datetime] = {}
    for a in msg.checklist.actions if msg is not None else ():
        if a.kind == incidents_pb2.ACTION_KIND_HALT_DISCHARGE and a.status == incidents_pb2.ACTION_STATUS_DONE:
            done = [h.at for h in a.history if h.status == incidents_pb2.ACTION_STATUS_DONE]
            out[a.target] = (done[-1] if done else msg.updated_at).ToDatetime(tzinfo=UTC)
    return out


#: the planner's figure of the extra release a dilution needs [m3/s] (tracer.planner.build_dilution)
DILUTION_Q_KEY = "engine_q_add_m3s"


def dilutions(msg: incidents_pb2.Incident | None) -> dict[str, tuple[float, datetime]]:
    """Structure -> (extra release [m3/s], when it was marked started (UTC)) of the dilution releases marked
    done in the incident's checklist; the release is the planner's figure the action was made with."""
    out: dict[str, tuple[float, datetime]] = {}
    for a in msg.checklist.actions if msg is not None else ():
        if a.kind != incidents_pb2.ACTION_KIND_DILUTION_RELEASE or a.status != incidents_pb2.ACTION_STATUS_DONE:
            continue
        q = a.numbers.get(DILUTION_Q_KEY, 0.0)
        if q > 0:
            done = [h.at for h in a.history if h.status == incidents_pb2.ACTION_STATUS_DONE]
            out[a.target] = (q, (done[-1] if done else msg.updated_at).ToDatetime(tzinfo=UTC))
    return out


def diluted_network(net: Any, released: dict[str, tuple[float, datetime]]) -> Any:
    """``net`` with each started dilution release added as steady flow below its structure
    (:func:`tracer.planner.extra_flow_network`). Steady: the forecast takes the extra water as present
    everywhere below the structure from the start, which holds once the release water has passed (the
    planner times a release to arrive before the plume's leading edge; a late one is said so in the
    action, and then this forecast is optimistic where the plume is ahead of the water)."""
    for sid, (q, _t) in sorted(released.items()):
        s = net.structures.get(sid)
        if s is not None:
            net = extra_flow_network(net, s.reach, q)
    return net


def version_entry(msg: incidents_pb2.Incident, version: int, changes: list[Change], when: datetime) -> incidents_pb2.IncidentVersion:
    """The history entry of ``msg`` as version ``version``: why, who saw it, the ranking, the intakes."""
    v = incidents_pb2.IncidentVersion(version=version, created_at=convert.timestamp(when),
                                      reasons=[c.en for c in changes], reasons_zh=[c.zh for c in changes],
                                      station_ids=list(msg.station_ids), ranking=[c.id for c in msg.candidates[:3]])
    v.arrivals.extend(a for a in msg.arrivals if a.kind == convert.FEATURE_KIND["intake"])
    return v


def cap_document(net: Any, cap: dict[str, Any], alert_id: str, incident_id: str, sent: pd.Timestamp,
                 previous_xml: str = "") -> str:
    """The alert as a CAP 1.2 document: msgType Alert, or Update (referring to ``previous_xml``, the
    incident's latest CAP document) for a new version; "" when the chain did not reach a forecast or a
    DO event, or the document cannot be built (logged: the alert goes out all the same)."""
    from .cap import build_cap, facts_from_do_event, facts_from_forecast, reference_of

    try:
        when = sent.to_pydatetime()
        if cap.get("forecast") is not None and cap["forecast"].release.start is not None:
            facts = facts_from_forecast(net, cap["forecast"], cap.get("checklist"), alert_id=alert_id,
                                        incident_id=incident_id, sent=when, observed=True)
        elif cap.get("do_event") is not None:
            facts = facts_from_do_event(net, cap["do_event"], cap.get("checklist"), alert_id=alert_id,
                                        incident_id=incident_id, sent=when)
        else:
            return ""
        if not previous_xml:
            return build_cap(facts, msg_type="Alert")
        return build_cap(facts, msg_type="Update", references=(reference_of(previous_xml),))
    except Exception:
        log.exception("alert %s: no CAP document", alert_id)
        return ""

"""Thin servicers for incidents and alert targets (see proto/rivertrace/v1/incidents.proto, alerts.proto)."""

from __future__ import annotations

import queue
import re
from typing import Any

import grpc
import pandas as pd
from google.protobuf import json_format

from hydrology.oxygen_network import DOConditions
from hydrology.pollutants import pollutant
from hydrology.standards import exceeds
from hydrology.transport.analytic import Release, forecast
from server.generated.rivertrace.v1 import (
    alerts_pb2,
    alerts_pb2_grpc,
    audit_pb2,
    audit_pb2_grpc,
    incidents_pb2,
    incidents_pb2_grpc,
)
from tracer.readings import canonical_parameter
from tracer.trace import trace

from . import convert
from .config import Config
from .errors import ServiceError, abort, bad_request
from .outbox_store import Outbox, TargetRow
from .pipeline import Broadcaster, operations_evidence, readings_frame
from .servicers import Networks, _who
from .storage import Store, now_ns

ADDRESS_RE = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")
#: readings at the end of the record that must all be within the standard to close an incident [-]
CLOSE_NORMAL_READINGS = 3


def _load(payload: str) -> incidents_pb2.Incident:
    return json_format.Parse(payload, incidents_pb2.Incident())


class IncidentServicer(incidents_pb2_grpc.IncidentServiceServicer):
    def __init__(self, config: Config, store: Store, networks: Networks, outbox: Outbox, broadcaster: Broadcaster) -> None:
        self.config, self.store, self.networks, self.outbox, self.broadcaster = config, store, networks, outbox, broadcaster

    def ListIncidents(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            state = convert.INCIDENT_STATE_NAME.get(request.state) if request.state else None
            return incidents_pb2.ListIncidentsResponse(
                incidents=[_load(p) for _i, _s, p in self.outbox.incidents(request.network or None, state)])
        except Exception as exc:  # noqa: BLE001
            abort(context, exc)

    def GetIncident(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return _load(self.outbox.get_incident(request.id)[3])
        except Exception as exc:  # noqa: BLE001
            abort(context, exc)

    def WatchIncidents(self, request: Any, context: grpc.ServicerContext) -> Any:
        q = self.broadcaster.subscribe(request.network)
        try:
            while context.is_active():
                try:
                    yield q.get(timeout=0.25)
                except queue.Empty:
                    continue
        finally:
            self.broadcaster.unsubscribe(q)

    def Trace(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            _v, net = self.networks.get(request.network)
            horizon = request.horizon.ToTimedelta().total_seconds() if request.HasField("horizon") else 72 * 3600.0
            net.feature(request.station_id, "station")  # NOT_FOUND before any work
            anchor = (request.station_id, canonical_parameter(request.parameter))
            frame = readings_frame(self.store, request.network, anchor)
            t_end = frame.frame["time"].max() if len(frame.frame) else pd.Timestamp.now(tz="UTC")
            ops = operations_evidence(self.store, request.network, t_end - pd.Timedelta(seconds=horizon), t_end)
            res = trace(net, frame, request.station_id, request.parameter, operations=ops,
                        horizon_s=horizon, do_conditions=DOConditions(temperature_c=request.temperature_c or 25.0))
            return incidents_pb2.TraceResponse(model=res.model, candidates=[convert.candidate(c) for c in res.candidates],
                                               stations_saw=list(res.stations_saw), stations_silent=list(res.stations_silent),
                                               nearest_upstream_discharger=res.nearest_upstream_discharger or "")
        except Exception as exc:  # noqa: BLE001
            abort(context, exc)

    def Forecast(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            _v, net = self.networks.get(request.network)
            if request.WhichOneof("where") == "discharger_id":
                d = net.feature(request.discharger_id, "discharger")
                reach, chainage = d.reach, d.chainage_m
            elif request.WhichOneof("where") == "location":
                reach, chainage = request.location.reach_id, request.location.chainage_m
            else:
                raise bad_request("give discharger_id or location", [("where", "missing")])
            if not request.mass_kg > 0:
                raise bad_request(f"mass_kg must be positive, got {request.mass_kg}", [("mass_kg", "not positive")])
            if not request.pollutant:
                raise bad_request("pollutant is required", [("pollutant", "missing")])
            pol = pollutant(request.pollutant, max(request.decay_per_day, 0.0) / 86400.0)
            start = convert.to_datetime(request.start) if request.HasField("start") else pd.Timestamp.now(tz="UTC").to_pydatetime()
            dur = request.duration.ToTimedelta().total_seconds() if request.HasField("duration") else 0.0
            rel = (Release(reach, chainage, pol, rate_kg_s=request.mass_kg / dur, duration_s=dur, start=start) if dur > 0
                   else Release(reach, chainage, pol, mass_kg=request.mass_kg, start=start))
            fc = forecast(net, rel, threshold_g_m3=request.threshold_mg_l or None)
            return incidents_pb2.ForecastResponse(receptors=convert.arrivals(fc))
        except Exception as exc:  # noqa: BLE001
            abort(context, exc)

    def Plan(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            inc = _load(self.outbox.get_incident(request.incident_id)[3])
            if not inc.HasField("checklist"):
                raise ServiceError(grpc.StatusCode.FAILED_PRECONDITION,
                                   f"incident {request.incident_id!r} could not be traced, so it has no checklist")
            return inc.checklist
        except Exception as exc:  # noqa: BLE001
            abort(context, exc)

    def _save(self, inc: incidents_pb2.Incident, event: str, summary: tuple[str, str]) -> None:
        inc.updated_at.CopyFrom(convert.timestamp(now_ns()))
        self.outbox.put_incident(inc.id, inc.network, inc.network_version, convert.INCIDENT_STATE_NAME[inc.state],
                                 json_format.MessageToJson(inc))
        departments = {a.department for a in inc.checklist.actions if a.department}
        alert = convert.alert(f"{inc.id}/{event}", inc, 0, summary)
        self.outbox.enqueue(alert.alert_id, inc.id, alert.SerializeToString(), inc.network, departments)
        self.broadcaster.publish(inc)

    def UpdateAction(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            if request.status not in convert.ACTION_STATUS_NAME:
                raise bad_request("status must be PENDING, ACKNOWLEDGED, DONE or NOT_FEASIBLE", [("status", "unspecified")])
            inc = _load(self.outbox.get_incident(request.incident_id)[3])
            action = next((a for a in inc.checklist.actions if a.id == request.action_id), None)
            if action is None:
                raise ServiceError(grpc.StatusCode.NOT_FOUND, f"no action {request.action_id!r} in incident {inc.id!r}")
            action.status = request.status
            name = convert.ACTION_STATUS_NAME[request.status]
            who, role = _who(self.config, context)
            self.store.audit(who, role, "UpdateAction", f"{inc.id} {action.id} -> {name} {request.note}".strip())
            self._save(inc, f"action/{action.id}/{name}",
                       (f"{action.id} 状态：{name}（{who}）", f"{action.id} is now {name} ({who})"))
            return action
        except Exception as exc:  # noqa: BLE001
            abort(context, exc)

    def CloseIncident(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            inc = _load(self.outbox.get_incident(request.id)[3])
            if inc.state == convert.INCIDENT_STATE["closed"]:
                raise ServiceError(grpc.StatusCode.FAILED_PRECONDITION, f"incident {inc.id!r} is already closed")
            if not request.force:
                self._require_normal(inc)
            inc.state = convert.INCIDENT_STATE["closed"]
            who, role = _who(self.config, context)
            self.store.audit(who, role, "CloseIncident", f"{inc.id} force={request.force} {request.note}".strip())
            self._save(inc, "closed", (f"事件 {inc.id} 已关闭", f"incident {inc.id} closed"))
            return inc
        except Exception as exc:  # noqa: BLE001
            abort(context, exc)

    def _require_normal(self, inc: incidents_pb2.Incident) -> None:
        _v, net = self.networks.get(inc.network)
        for sid in inc.station_ids:
            cls = net.feature(sid, "station").get("target_class") or "III"
            for par in inc.parameters:
                rows = self.store.readings(inc.network, sid, par)[-CLOSE_NORMAL_READINGS:]
                if len(rows) < CLOSE_NORMAL_READINGS or any(exceeds(par, r[3], cls) for r in rows):
                    raise ServiceError(grpc.StatusCode.FAILED_PRECONDITION,
                                       f"{sid} {par} is not back within class {cls} on its last {CLOSE_NORMAL_READINGS} "
                                       "readings; close with force=true to override")


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    def __init__(self, store: Store) -> None:
        self.store = store

    def ListAudit(self, request: Any, context: grpc.ServicerContext) -> Any:
        rows = self.store.audit_log(request.limit or 1000)
        return audit_pb2.ListAuditResponse(entries=[
            audit_pb2.AuditEntry(time=convert.timestamp(t), client=c or "", role=r or "", method=m, detail=d or "")
            for t, c, r, m, d in rows])


class AlertServicer(alerts_pb2_grpc.AlertServiceServicer):
    def __init__(self, config: Config, store: Store, outbox: Outbox) -> None:
        self.config, self.store, self.outbox = config, store, outbox

    def RegisterTarget(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            if not request.id:
                raise bad_request("id is required", [("id", "missing")])
            which = request.WhichOneof("endpoint")
            if which == "grpc_address" and not ADDRESS_RE.match(request.grpc_address):
                raise bad_request(f"grpc_address {request.grpc_address!r} is not host:port", [("grpc_address", "not host:port")])
            if which == "webhook_url" and not request.webhook_url.startswith(("http://", "https://")):
                raise bad_request(f"webhook_url {request.webhook_url!r} is not http(s)", [("webhook_url", "not http(s)")])
            if which is None:
                raise bad_request("give grpc_address or webhook_url", [("endpoint", "missing")])
            row = TargetRow(request.id, request.grpc_address or None, request.webhook_url or None,
                            request.webhook_secret or None, request.network or None, tuple(request.departments), now_ns())
            self.outbox.put_target(row)
            who, role = _who(self.config, context)
            self.store.audit(who, role, "RegisterTarget", f"{row.id} -> {row.grpc_address or row.webhook_url}")
            return self._target(row)
        except Exception as exc:  # noqa: BLE001
            abort(context, exc)

    @staticmethod
    def _target(t: TargetRow) -> alerts_pb2.Target:
        msg = alerts_pb2.Target(id=t.id, network=t.network or "", departments=list(t.departments),
                                created_at=convert.timestamp(t.created_at_ns))
        if t.grpc_address:
            msg.grpc_address = t.grpc_address
        elif t.webhook_url:
            msg.webhook_url = t.webhook_url
        return msg

    def RemoveTarget(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            self.outbox.remove_target(request.id)
            who, role = _who(self.config, context)
            self.store.audit(who, role, "RemoveTarget", request.id)
            return alerts_pb2.RemoveTargetResponse()
        except Exception as exc:  # noqa: BLE001
            abort(context, exc)

    def ListTargets(self, request: Any, context: grpc.ServicerContext) -> Any:
        return alerts_pb2.ListTargetsResponse(targets=[self._target(t) for t in self.outbox.targets()])

    def ListDeliveries(self, request: Any, context: grpc.ServicerContext) -> Any:
        state = {"pending": alerts_pb2.DELIVERY_STATE_PENDING, "delivered": alerts_pb2.DELIVERY_STATE_DELIVERED,
                 "retrying": alerts_pb2.DELIVERY_STATE_RETRYING}
        out = []
        for alert_id, target, inc, seq, st, attempts, nxt, err, done in self.outbox.deliveries(
                request.incident_id or None, request.target_id or None):
            d = alerts_pb2.Delivery(alert_id=alert_id, target_id=target, incident_id=inc, sequence=seq, state=state[st],
                                    attempts=attempts, next_attempt=convert.timestamp(nxt), last_error=err or "")
            if done:
                d.delivered_at.CopyFrom(convert.timestamp(done))
            out.append(d)
        return alerts_pb2.ListDeliveriesResponse(deliveries=out)


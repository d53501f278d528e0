"""Thin servicers for incidents and alert targets (see proto/rivertrace/v1/incidents.proto, alerts.proto)."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pandas as pd
from google.protobuf import json_format

from hydrology.pollutants import pollutant
from hydrology.standards import exceeds
from hydrology.transport.analytic import Release
from server.generated.rivertrace.v1 import (
    alerts_pb2,
    alerts_pb2_grpc,
    audit_pb2,
    audit_pb2_grpc,
    incidents_pb2,
    incidents_pb2_grpc,
)
from tracer.incident.actions import IllegalTransition, transition

from . import convert
from .compute import ComputePool, forecast_call, trace_call
from .config import Config
from .endpoints import EndpointError, check_endpoint
from .errors import ServiceError, abort, bad_request
from .outbox_store import NotOwnerError, Outbox, TargetRow
from .pipeline import Broadcaster
from .servicers import Networks, _who, check_name
from .storage import Store, now_ns

log = logging.getLogger("rivertrace.incidents")

#: longest trace horizon or release duration accepted (30 days) [s]
MAX_HORIZON_S = 30 * 86400.0
#: largest release mass accepted (a million tonnes) [kg]
MAX_MASS_KG = 1e9
#: largest threshold a forecast accepts [mg/L]: the plausibility range of a mass concentration (server.convert)
MAX_THRESHOLD_MG_L = 1e5
#: water temperature of the DO model when the request gives none [degC]
DEFAULT_TEMPERATURE_C = 25.0
#: water temperatures a trace accepts [degC]: supercooled river water to a hot tropical summer
TEMPERATURE_RANGE_C = (-2.0, 50.0)


def _seconds(d: Any) -> float:
    """A Duration in seconds, without the overflow of ToTimedelta on absurd values."""
    return d.seconds + d.nanos * 1e-9


def _out_of_range(checks: list[tuple[str, float, float, float, str]]) -> list[tuple[str, str]]:
    """(field, description) for every value outside its closed range (NaN is outside every range)."""
    return [(f, f"must be in [{lo:g}, {hi:g}] {unit}, got {v:g}") for f, v, lo, hi, unit in checks if not lo <= v <= hi]


def _not_positive(checks: list[tuple[str, float, float, str]]) -> list[tuple[str, str]]:
    """(field, description) for every value outside the half-open range (0, hi]: a zero mass or
    threshold is physically meaningless, so it is refused rather than read as "unset"."""
    return [(f, f"must be in (0, {hi:g}] {unit}, got {v:g}") for f, v, hi, unit in checks if not 0.0 < v <= hi]


#: a watcher checks that its call is alive at least this often, whatever happens [s]
WATCH_CHECK_S = 30.0
#: readings at the end of the record that must all be within the standard to close an incident [-]
CLOSE_NORMAL_READINGS = 3
#: longest note on an action or a closure [characters]
MAX_NOTE = 2000


def _load(payload: str) -> incidents_pb2.Incident:
    return json_format.Parse(payload, incidents_pb2.Incident())


def _effective_at(request: Any, inc: incidents_pb2.Incident) -> datetime:
    """When an action's change happened in the field: ``effective_at`` (a crew reporting after the fact), else
    now; refused with the range when in the future or more than a day before the incident's start."""
    now = datetime.now(UTC)
    if not request.HasField("effective_at"):
        return now
    when = request.effective_at.ToDatetime(tzinfo=UTC)
    earliest = inc.start.ToDatetime(tzinfo=UTC) - timedelta(days=1)
    if not earliest <= when <= now + timedelta(seconds=60):
        raise bad_request(f"effective_at must be between {earliest.isoformat()} (a day before the incident's start) "
                          f"and now, got {when.isoformat()}", [("effective_at", "out of range")])
    return when


class IncidentServicer(incidents_pb2_grpc.IncidentServiceServicer):
    def __init__(self, config: Config, store: Store, networks: Networks, outbox: Outbox, broadcaster: Broadcaster,
                 on_action: Any = None, pool: ComputePool | None = None) -> None:
        self.config, self.store, self.networks, self.outbox, self.broadcaster = config, store, networks, outbox, broadcaster
        #: worker processes for Trace and Forecast (server.compute); None: they run in the calling thread
        self.pool = pool
        #: called with the network after an action that changes the forecast is done (a halt order carried out,
        #: a dilution release started)
        self.on_action = on_action
        # Trace and Forecast hold the GIL for hundreds of ms: at most config.heavy_calls compute at once,
        # so that reads and ingest acknowledgements get their share of the interpreter under load
        self._heavy = threading.BoundedSemaphore(config.heavy_calls)

    @contextmanager
    def _heavy_slot(self, context: grpc.ServicerContext) -> Iterator[None]:
        remaining = context.time_remaining()
        if not self._heavy.acquire(timeout=None if remaining is None else max(0.0, remaining)):
            raise ServiceError(grpc.StatusCode.DEADLINE_EXCEEDED, "the deadline passed while waiting for a compute slot "
                               f"(at most {self.config.heavy_calls} traces and forecasts run at once)")
        try:
            yield
        finally:
            self._heavy.release()

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
        """Incident changes as they happen. An idle watcher sleeps on its queue (no polling) and is
        woken by a change or by the end of its call; it holds one stream slot (server.streams)."""
        q = self.broadcaster.subscribe(request.network)

        def _wake() -> None:
            try:
                q.put_nowait(None)
            except queue.Full:  # it has updates waiting; it will see the call has ended
                pass

        context.add_callback(_wake)
        try:
            while context.is_active():
                try:
                    item = q.get(timeout=WATCH_CHECK_S)
                except queue.Empty:
                    continue
                if item is None:
                    break
                yield item
        finally:
            self.broadcaster.unsubscribe(q)

    def Trace(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            check_name(request.network, "network")
            horizon = _seconds(request.horizon) if request.HasField("horizon") else 72 * 3600.0
            # proto3 optional: unset is the default, 0 degC is 0 degC (winter water)
            temperature_c = request.temperature_c if request.HasField("temperature_c") else DEFAULT_TEMPERATURE_C
            problems = _out_of_range([("horizon", horizon, 60.0, MAX_HORIZON_S, "s"),
                                      ("temperature_c", temperature_c, *TEMPERATURE_RANGE_C, "degC")])
            if problems:
                raise bad_request(f"{problems[0][0]} {problems[0][1]}", problems)
            version, net = self.networks.get(request.network)
            net.feature(request.station_id, "station")  # NOT_FOUND before any work
            args = (request.network, version, request.station_id, request.parameter, horizon, temperature_c)
            with self._heavy_slot(context):
                if self.pool is not None:
                    res, sep = self.pool.trace(*args, timeout=context.time_remaining())
                else:
                    res, sep = trace_call(self.store, self.networks, *args)
            return convert.trace_response(res, *sep)
        except Exception as exc:  # noqa: BLE001
            abort(context, exc)

    def Forecast(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            check_name(request.network, "network")
            dur = _seconds(request.duration) if request.HasField("duration") else 0.0
            if not request.HasField("mass_kg"):
                raise bad_request(f"mass_kg is required, in (0, {MAX_MASS_KG:g}] kg", [("mass_kg", "missing")])
            problems = _not_positive([("mass_kg", request.mass_kg, MAX_MASS_KG, "kg")]
                                     + ([("threshold_mg_l", request.threshold_mg_l, MAX_THRESHOLD_MG_L, "mg/L")]
                                        if request.HasField("threshold_mg_l") else []))
            checks = [("decay_per_day", request.decay_per_day, 0.0, 100.0, "1/d"),
                      ("duration", dur, 0.0, MAX_HORIZON_S, "s")]
            if request.WhichOneof("where") == "location":
                checks.append(("location.chainage_m", request.location.chainage_m, 0.0, 1e6, "m"))
            if request.HasField("start"):
                now = pd.Timestamp.now(tz="UTC").timestamp()
                checks.append(("start", float(request.start.seconds), now - self.config.reading_past_days * 86400.0,
                               now + MAX_HORIZON_S, "s since 1970"))
            problems += _out_of_range(checks)
            if len(request.pollutant) > 64:
                problems.append(("pollutant", "is longer than 64 characters"))
            if problems:
                raise bad_request(f"{problems[0][0]} {problems[0][1]}", problems)
            version, net = self.networks.get(request.network)
            if request.WhichOneof("where") == "discharger_id":
                d = net.feature(request.discharger_id, "discharger")
                reach, chainage = d.reach, d.chainage_m
            elif request.WhichOneof("where") == "location":
                reach, chainage = request.location.reach_id, request.location.chainage_m
            else:
                raise bad_request("give discharger_id or location", [("where", "missing")])
            if not request.pollutant:
                raise bad_request("pollutant is required", [("pollutant", "missing")])
            pol = pollutant(request.pollutant, request.decay_per_day / 86400.0)
            start = convert.to_datetime(request.start) if request.HasField("start") else pd.Timestamp.now(tz="UTC").to_pydatetime()
            rel = (Release(reach, chainage, pol, rate_kg_s=request.mass_kg / dur, duration_s=dur, start=start) if dur > 0
                   else Release(reach, chainage, pol, mass_kg=request.mass_kg, start=start))
            threshold = request.threshold_mg_l if request.HasField("threshold_mg_l") else None
            args = (request.network, version, rel, threshold, request.bands)
            with self._heavy_slot(context):
                if self.pool is not None:
                    fc, bands = self.pool.forecast(*args, timeout=context.time_remaining())
                else:
                    fc, bands = forecast_call(self.networks, *args)
            receptors = convert.arrivals(fc)
            if bands is not None:
                convert.add_bands(receptors, bands, start)
            return incidents_pb2.ForecastResponse(receptors=receptors)
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

    def _save(self, inc: incidents_pb2.Incident, event: str, summary: tuple[str, str], audit: tuple) -> None:
        """The incident, its alert and the audit row of the change, in one transaction; then tell the watchers."""
        inc.updated_at.CopyFrom(convert.timestamp(now_ns()))
        departments = {a.department for a in inc.checklist.actions if a.department}
        sent = pd.Timestamp.now(tz="UTC").floor("s")
        alert_id = f"{inc.id}/{event}"
        alert = convert.alert(alert_id, inc, 0, summary, self._follow_up_cap(inc.id, alert_id, event, summary, sent), sent,
                              kind=event.split("/", 1)[0])
        with self.store.transaction():
            self.outbox.put_incident(convert.incident_record(inc))
            self.outbox.enqueue(alert.alert_id, inc.id, alert.SerializeToString(), inc.network, departments)
            self.store.audit(*audit)
        self.broadcaster.publish(inc)

    def _follow_up_cap(self, incident_id: str, alert_id: str, event: str, summary: tuple[str, str],
                       sent: pd.Timestamp) -> str:
        """The CAP Update (an action's state changed) or Cancel (closed) of the incident's latest CAP
        document; "" when the incident has none (it was never traced)."""
        from .cap import follow_up_cap

        latest = self.outbox.latest_alert(incident_id)
        previous = alerts_pb2.Alert.FromString(latest).cap_xml if latest is not None else ""
        if not previous:
            return ""
        try:
            return follow_up_cap(previous, alert_id=alert_id, sent=sent.to_pydatetime(),
                                 msg_type="Cancel" if event == "closed" else "Update", headline=summary)
        except Exception:
            log.exception("alert %s: no CAP document", alert_id)
            return ""

    def UpdateAction(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Move one action through the state machine of tracer.incident.actions, atomically.

        The read, the check and the write (incident row, its one alert, the audit row) are one
        BEGIN IMMEDIATE transaction, so concurrent updates of different actions never lose each
        other. A repeat of the current state is OK and changes nothing (no alert); an illegal move,
        or any move on a closed incident, is FAILED_PRECONDITION (mapped in server.errors)."""
        try:
            if request.status not in convert.ACTION_STATUS_NAME:
                raise bad_request("status must be PENDING, ACKNOWLEDGED, DONE or NOT_FEASIBLE", [("status", "unspecified")])
            if len(request.note) > MAX_NOTE:
                raise bad_request(f"note is longer than {MAX_NOTE} characters", [("note", "too long")])
            name = convert.ACTION_STATUS_NAME[request.status]
            who, role = _who(self.config, context)
            with self.store.transaction():
                inc = _load(self.store.incident_for_update(request.incident_id)[3])
                action = next((a for a in inc.checklist.actions if a.id == request.action_id), None)
                if action is None:
                    raise ServiceError(grpc.StatusCode.NOT_FOUND, f"no action {request.action_id!r} in incident {inc.id!r}")
                before = convert.action_state(action, inc.updated_at.ToDatetime(tzinfo=UTC))
                when = _effective_at(request, inc)
                try:
                    after, changed = transition(before, convert.ACTION_DOMAIN_STATE[name], now=when,
                                                 note=request.note,
                                                 incident_closed=inc.state == convert.INCIDENT_STATE["closed"])
                except IllegalTransition as exc:
                    raise IllegalTransition(f"incident {inc.id!r}: {exc}") from exc
                if not changed:
                    return action
                action.status = request.status
                action.history.add(at=convert.timestamp(after.history[-1][0]), status=request.status, note=request.note,
                                   by=who or "")
                # each state is entered at most once per action, so this alert id is new for every change
                self._save(inc, f"action/{action.id}/{name}",
                           (f"{action.id} 状态：{name}（{who}）", f"{action.id} is now {name} ({who})"),
                           (who, role, "UpdateAction", f"{inc.id} {action.id} -> {name} {request.note}".strip()))
            if self.on_action is not None and name == "done" and action.kind in (
                    incidents_pb2.ACTION_KIND_HALT_DISCHARGE, incidents_pb2.ACTION_KIND_DILUTION_RELEASE):
                self.on_action(inc.network)  # the release stopped, or more water flows: forecast and plan again
            return action
        except Exception as exc:  # noqa: BLE001
            abort(context, exc)

    def CloseIncident(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            with self.store.transaction():  # read-check-write in one transaction, as UpdateAction
                inc = _load(self.store.incident_for_update(request.id)[3])
                if inc.state == convert.INCIDENT_STATE["closed"]:
                    raise ServiceError(grpc.StatusCode.FAILED_PRECONDITION, f"incident {inc.id!r} is already closed")
                if not request.force:
                    self._require_normal(inc)
                if len(request.note) > MAX_NOTE:
                    raise bad_request(f"note is longer than {MAX_NOTE} characters", [("note", "too long")])
                inc.state = convert.INCIDENT_STATE["closed"]
                who, role = _who(self.config, context)
                self._save(inc, "closed", (f"事件 {inc.id} 已关闭", f"incident {inc.id} closed"),
                           (who, role, "CloseIncident", f"{inc.id} force={request.force} {request.note}".strip()))
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


#: longest id, network name or department name of a target [characters]
MAX_TARGET_TEXT = 128
#: most targets one (non-admin) client may register [-]
MAX_TARGETS_PER_OWNER = 100
#: most departments in a target's scope [-]
MAX_TARGET_DEPARTMENTS = 64
DELIVERY_STATE = {"pending": alerts_pb2.DELIVERY_STATE_PENDING, "delivered": alerts_pb2.DELIVERY_STATE_DELIVERED,
                  "retrying": alerts_pb2.DELIVERY_STATE_RETRYING, "dead": alerts_pb2.DELIVERY_STATE_DEAD}
DELIVERY_STATE_NAME = {v: k for k, v in DELIVERY_STATE.items()}


class AlertServicer(alerts_pb2_grpc.AlertServiceServicer):
    """Targets are owned: a hub sees and changes only the targets it registered; an admin all."""

    def __init__(self, config: Config, store: Store, outbox: Outbox, on_change: Any = None) -> None:
        self.config, self.store, self.outbox = config, store, outbox
        self.on_change = on_change  # the deliverer's wake(): a new endpoint or a replay is tried at once

    def _denied(self, who: str | None, role: str | None, method: str, exc: Exception) -> None:
        if isinstance(exc, NotOwnerError):  # the refused change rolled back; the refusal is still audited
            self.store.audit(who, role, method, f"denied: {exc}")

    def _check_request(self, request: Any) -> None:
        bad = []
        if not request.id:
            bad.append(("id", "missing"))
        for name, value in (("id", request.id), ("network", request.network)):
            if len(value) > MAX_TARGET_TEXT:
                bad.append((name, f"longer than {MAX_TARGET_TEXT} characters ({len(value)})"))
        if len(request.departments) > MAX_TARGET_DEPARTMENTS:
            bad.append(("departments", f"more than {MAX_TARGET_DEPARTMENTS} departments ({len(request.departments)})"))
        bad += [(f"departments[{i}]", f"empty or longer than {MAX_TARGET_TEXT} characters")
                for i, d in enumerate(request.departments) if not d or len(d) > MAX_TARGET_TEXT]
        if len(request.webhook_secret) > 256:
            bad.append(("webhook_secret", "longer than 256 characters"))
        which = request.WhichOneof("endpoint")
        if which is None:
            bad.append(("endpoint", "missing: give grpc_address or webhook_url"))
        elif request.tls and which != "grpc_address":
            bad.append(("tls", "applies to grpc_address only (a webhook says https://)"))
        if bad:
            raise bad_request(f"{len(bad)} problem(s) with the target; first: {bad[0][0]}: {bad[0][1]}", bad)
        try:
            check_endpoint(request.grpc_address or None, request.webhook_url or None, self.config.delivery_allow)
        except EndpointError as err:
            raise bad_request(f"{err.field} {err}", [(err.field, str(err))]) from err

    def RegisterTarget(self, request: Any, context: grpc.ServicerContext) -> Any:
        who, role = _who(self.config, context)
        try:
            self._check_request(request)
            if role != "admin" and self.outbox.target(request.id) is None and \
                    len(self.outbox.targets(owner=who)) >= MAX_TARGETS_PER_OWNER:
                raise ServiceError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                   f"{who!r} has {MAX_TARGETS_PER_OWNER} targets, the most a client may register")
            row = TargetRow(request.id, request.grpc_address or None, request.webhook_url or None,
                            request.webhook_secret or None, request.network or None, tuple(request.departments), now_ns(),
                            owner=who, tls=bool(request.tls))
            detail = f"{row.id} -> {row.grpc_address or row.webhook_url}{' (tls)' if row.tls else ''}"
            self.outbox.put_target(row, role, audit=(who, role, "RegisterTarget", detail))
            if self.on_change is not None:
                self.on_change()
            return self._target(self.outbox.target(row.id) or row)
        except Exception as exc:  # noqa: BLE001
            self._denied(who, role, "RegisterTarget", exc)
            abort(context, exc)

    @staticmethod
    def _target(t: TargetRow) -> alerts_pb2.Target:
        msg = alerts_pb2.Target(id=t.id, network=t.network or "", departments=list(t.departments),
                                created_at=convert.timestamp(t.created_at_ns), tls=t.tls, owner=t.owner or "")
        if t.grpc_address:
            msg.grpc_address = t.grpc_address
        elif t.webhook_url:
            msg.webhook_url = t.webhook_url
        return msg

    def RemoveTarget(self, request: Any, context: grpc.ServicerContext) -> Any:
        who, role = _who(self.config, context)
        try:
            if not request.id:
                raise bad_request("id is required", [("id", "missing")])
            self.outbox.remove_target(request.id, who, role, audit=(who, role, "RemoveTarget", request.id[:MAX_TARGET_TEXT]))
            return alerts_pb2.RemoveTargetResponse()
        except Exception as exc:  # noqa: BLE001
            self._denied(who, role, "RemoveTarget", exc)
            abort(context, exc)

    def ListTargets(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            who, role = _who(self.config, context)
            targets = self.outbox.targets(owner=who if role == "hub" else None)
            return alerts_pb2.ListTargetsResponse(targets=[self._target(t) for t in targets])
        except Exception as exc:  # noqa: BLE001
            abort(context, exc)

    def ListDeliveries(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            who, role = _who(self.config, context)
            if request.state and request.state not in DELIVERY_STATE_NAME:
                raise bad_request(f"state {request.state} is not a DeliveryState", [("state", "unknown value")])
            out = []
            for alert_id, target, inc, seq, st, attempts, nxt, err, done in self.outbox.deliveries(
                    request.incident_id or None, request.target_id or None, owner=who if role == "hub" else None,
                    state=DELIVERY_STATE_NAME.get(request.state)):
                d = alerts_pb2.Delivery(alert_id=alert_id, target_id=target, incident_id=inc, sequence=seq,
                                        state=DELIVERY_STATE[st], attempts=attempts, next_attempt=convert.timestamp(nxt),
                                        last_error=err or "")
                if done:
                    d.delivered_at.CopyFrom(convert.timestamp(done))
                out.append(d)
            return alerts_pb2.ListDeliveriesResponse(deliveries=out)
        except Exception as exc:  # noqa: BLE001
            abort(context, exc)

    def GetAlert(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            who, role = _who(self.config, context)
            if not request.alert_id:
                raise bad_request("alert_id is required", [("alert_id", "empty")])
            return alerts_pb2.Alert.FromString(self.outbox.alert(request.alert_id, owner=who if role == "hub" else None))
        except Exception as exc:  # noqa: BLE001
            abort(context, exc)

    def ReplayDeliveries(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            who, role = _who(self.config, context)
            what = " ".join(f"{k}={v}" for k, v in (("target", request.target_id), ("alert", request.alert_id),
                                                    ("incident", request.incident_id)) if v) or "all"
            n = self.outbox.replay(request.target_id, request.alert_id, request.incident_id,
                                   audit=(who, role, "ReplayDeliveries", what[:300]))
            if self.on_change is not None:
                self.on_change()
            return alerts_pb2.ReplayDeliveriesResponse(replayed=n)
        except Exception as exc:  # noqa: BLE001
            abort(context, exc)

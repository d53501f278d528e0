"""The automatic pipeline: readings arrive -> detection opens an incident -> attribution -> forecast
-> checklist -> an alert to every registered callback whose scope covers the place.

Runs on one background thread fed by the ingest service (triggers for the same network coalesce),
so acknowledging readings never waits for the science. A new incident (stable id from detection)
is traced, forecast and planned once; its record and its alert are written to SQLite together, so
a crash between the two cannot lose the alert. A detected incident sharing a station and parameter
with an open one is the same event (e.g. a downstream station reported first and an upstream one
caught up later) and opens nothing new. Watchers are told of every incident change.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import replace
from typing import Any

import pandas as pd
from google.protobuf import json_format

from hydrology.oxygen_network import DOConditions
from hydrology.transport.analytic import forecast
from server.generated.rivertrace.v1 import incidents_pb2
from tracer.detection import detect
from tracer.planner import plan
from tracer.priors import OperationsEvidence
from tracer.readings import Readings, water_temperature_c
from tracer.trace import plan_input_from_trace, station_contexts, trace

from . import convert
from .outbox_store import Outbox
from .servicers import Networks
from .storage import Store

log = logging.getLogger("rivertrace.pipeline")
#: readings older than this before the newest one are not screened again [ns]
WINDOW_NS = 10 * 86400 * 10**9
#: at most one screening of a network per this many seconds (triggers in between coalesce) [s]
MIN_INTERVAL_S = 2.0
#: a screening starts no sooner than this many times the last one's duration after the last one
#: started, so screening takes at most 1/DUTY_FACTOR of the wall time on a large network [-]
DUTY_FACTOR = 4.0
DEFAULT_DO = DOConditions(temperature_c=25.0)


class Broadcaster:
    """Fan-out of incident changes to WatchIncidents streams (each subscriber has its own queue)."""

    def __init__(self) -> None:
        self._subs: list[tuple[str, queue.Queue]] = []
        self._lock = threading.Lock()

    def subscribe(self, network: str) -> queue.Queue:
        q: queue.Queue = queue.Queue(maxsize=1000)
        with self._lock:
            self._subs.append((network, q))
        return q

    def unsubscribe(self, q: queue.Queue) -> None:
        with self._lock:
            self._subs = [(n, s) for n, s in self._subs if s is not q]

    def publish(self, incident: incidents_pb2.Incident) -> None:
        with self._lock:
            subs = list(self._subs)
        for network, q in subs:
            if not network or network == incident.network:
                try:
                    q.put_nowait(incident)
                except queue.Full:  # a stalled watcher must not stall the pipeline
                    log.warning("watcher queue full; dropping an update for %s", incident.id)


def readings_frame(store: Store, network: str, anchor: tuple[str, str] | None = None) -> Readings:
    """The recent readings of a network as Readings: the last :data:`WINDOW_NS` before the newest
    reading of the network, or of the ``anchor`` (station, parameter) when one is given (an
    on-demand trace looks at the event at its station, whatever else arrived since)."""
    newest = store.newest_reading_ns(network, *(anchor or (None, None)))
    rows = store.readings(network, start_ns=newest - WINDOW_NS) if newest is not None else []
    df = pd.DataFrame(rows, columns=["station_id", "parameter", "time_ns", "value", "flag"])
    df["time"] = pd.to_datetime(df["time_ns"].astype("int64"), unit="ns", utc=True).astype("datetime64[ns, UTC]")
    return Readings(df[["station_id", "parameter", "time", "value", "flag"]].reset_index(drop=True))


def operations_evidence(store: Store, network: str, start: pd.Timestamp, end: pd.Timestamp) -> dict[str, OperationsEvidence]:
    """Per discharger, what its power meters and effluent monitor said between ``start`` and ``end``:
    production on while treatment is off at any time is the signature of illicit discharge. A state
    that did not report production (an HJ 212 treatment-facility state) takes the production state
    last reported in the window; a state that did not report treatment says nothing about it."""
    out: dict[str, OperationsEvidence] = {}
    production: dict[str, bool] = {}
    for d, _t, prod, treat, exceed in store.operations(network, int(start.value), int(end.value)):
        if prod is not None:
            production[d] = prod
        old = out.get(d, OperationsEvidence())
        out[d] = OperationsEvidence(old.production_on_treatment_off or (production.get(d, False) and treat is False),
                                    old.effluent_exceedance or bool(exceed), old.violations)
    return out


def do_conditions(readings: Readings, det_incident: Any) -> DOConditions:
    """DO conditions of an incident: the water temperature measured during it (its first station's, else the
    network's median; :func:`tracer.readings.water_temperature_c`), the stated default (25 degC) only when no
    station reported one."""
    t = water_temperature_c(readings, det_incident.station_ids[0], det_incident.start - pd.Timedelta(days=1),
                            det_incident.end)
    return DEFAULT_DO if t is None else replace(DEFAULT_DO, temperature_c=t)


def scoped_id(network: str, detection_id: str) -> str:
    """The incident's one id, everywhere (incident, alerts, checklist actions, CAP): the network name, then
    detection's ``first station/parameter/start (UTC, to the second)``, as :func:`tracer.incident.actions.incident_id`
    writes it. Two networks that reuse station ids get two incidents."""
    return f"{network}:{detection_id}"


def build_incident(net: Any, network: str, version: int, det_incident: Any, readings: Readings,
                   do: DOConditions = DEFAULT_DO, operations: dict[str, OperationsEvidence] | None = None,
                   cap: dict[str, Any] | None = None) -> tuple[incidents_pb2.Incident, tuple[str, str], set[str]]:
    """Trace, forecast and plan one detected incident; returns the message, a summary and the departments.

    ``cap``: a dict that receives what a CAP 1.2 document of the alert needs (``forecast`` or
    ``do_event``, and ``checklist``), when the chain gets that far."""
    iid = scoped_id(network, det_incident.id)
    msg = incidents_pb2.Incident(id=iid, network=network, network_version=version,
                                 state=convert.INCIDENT_STATE["open"], station_ids=list(det_incident.station_ids),
                                 parameters=list(det_incident.parameters), start=convert.timestamp(det_incident.start),
                                 detected_at=convert.timestamp(det_incident.detected_at), severity=det_incident.severity,
                                 level=det_incident.level, updated_at=convert.timestamp(pd.Timestamp.now(tz="UTC")))
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
    inp = plan_input_from_trace(net, readings, res, do_conditions=do, incident_id=iid, separate=True)
    fc = None
    if inp.release is not None:
        fc = forecast(net, inp.release)
        msg.arrivals.extend(convert.arrivals(fc))
    cl = plan(net, inp)
    if cap is not None:
        cap.update(forecast=fc, do_event=inp.do_event, checklist=cl)
    msg.checklist.CopyFrom(convert.checklist(cl))
    msg.state = convert.INCIDENT_STATE["responding"]
    departments = {a.department for a in cl.actions if a.department}
    top = res.candidates[0]
    summary = (f"{summary[0]}；首要嫌疑 {top.id}（{top.probability:.0%}）；{cl.summary[0]}",
               f"{summary[1]}; most likely source {top.id} ({top.probability:.0%}); {cl.summary[1]}")
    return msg, summary, departments


def cap_document(net: Any, cap: dict[str, Any], alert_id: str, incident_id: str, sent: pd.Timestamp) -> str:
    """The alert as a CAP 1.2 document (msgType Alert), or "" when the chain did not reach a forecast or
    a DO event, or the document cannot be built (logged: the alert goes out all the same)."""
    from .cap import build_cap, facts_from_do_event, facts_from_forecast

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
        return build_cap(facts, msg_type="Alert")
    except Exception:
        log.exception("alert %s: no CAP document", alert_id)
        return ""


class Pipeline:
    """Background worker running detection and the incident chain after readings are stored."""

    def __init__(self, store: Store, outbox: Outbox, networks: Networks, broadcaster: Broadcaster) -> None:
        self.store, self.outbox, self.networks, self.broadcaster = store, outbox, networks, broadcaster
        self._queue: queue.Queue = queue.Queue()
        self._pending: set[str] = set()
        self._last_run: dict[str, float] = {}
        self._last_duration: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._run, name="rivertrace-pipeline", daemon=True)
        self._thread.start()

    def notify(self, network: str, _stations: set[str] | None = None) -> None:
        with self._lock:
            if network in self._pending:
                return
            self._pending.add(network)
            self._idle.clear()
        self._queue.put(network)

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Block until no trigger is queued or running (for tests and the demo)."""
        return self._idle.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        self._queue.put(None)
        self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.is_set():
            network = self._queue.get()
            if network is None:
                break
            gap = max(MIN_INTERVAL_S, DUTY_FACTOR * self._last_duration.get(network, 0.0))
            wait = self._last_run.get(network, -1e9) + gap - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                break
            with self._lock:
                self._pending.discard(network)
            started = self._last_run[network] = time.monotonic()
            try:
                self.run_once(network)
            except Exception:
                log.exception("pipeline failed for network %s", network)
            self._last_duration[network] = time.monotonic() - started
            with self._lock:
                if not self._pending:
                    self._idle.set()

    def _open_incident_keys(self, network: str) -> list[set[tuple[str, str]]]:
        """(station, parameter) pairs of every incident of the network that is not closed."""
        out = []
        for _id, state, payload in self.outbox.incidents(network):
            if state != "closed":
                msg = json_format.Parse(payload, incidents_pb2.Incident())
                out.append({(s, p) for s in msg.station_ids for p in msg.parameters})
        return out

    def prepare(self, network: str, version: int) -> None:
        """After PutNetwork, in the background: what screening needs for this version (the steady hydraulic
        state and the station neighbourhoods, 1.7 CPU-s on a 100,000-reach network), so that the first
        ingest is screened at once instead of paying for it."""
        def work() -> None:
            try:
                self.networks.derived(network, version, "station_contexts", station_contexts)
            except Exception:  # the first screening computes it again and reports the error
                log.exception("preparing network %s version %d failed", network, version)

        threading.Thread(target=work, name=f"prepare-{network}", daemon=True).start()

    def run_once(self, network: str) -> list[str]:
        """Screen a network's recent readings; handle every new incident; return their ids."""
        version, net = self.networks.get(network)
        readings = readings_frame(self.store, network)
        contexts = self.networks.derived(network, version, "station_contexts", station_contexts)  # once per version
        det = detect(readings, contexts)
        open_sets = self._open_incident_keys(network)
        new = []
        for inc in det.incidents:
            iid = scoped_id(network, inc.id)
            if self.outbox.has_incident(iid):
                continue
            keys = {(s, p) for s in inc.station_ids for p in inc.parameters}
            if any(keys & k for k in open_sets):
                continue  # the same event, already open under the id of its first detection
            open_sets.append(keys)
            ops = operations_evidence(self.store, network, inc.start - pd.Timedelta(days=3), inc.end)
            cap: dict[str, Any] = {}
            msg, summary, departments = build_incident(net, network, version, inc, readings, operations=ops, cap=cap,
                                                       do=do_conditions(readings, inc))
            alert_id = f"{iid}/opened"
            sent = pd.Timestamp.now(tz="UTC").floor("s")
            alert = convert.alert(alert_id, msg, 0, summary, cap_document(net, cap, alert_id, iid, sent), sent)
            with self.store.transaction():  # the incident and its alert commit together
                self.outbox.put_incident(iid, network, version, convert.INCIDENT_STATE_NAME[msg.state],
                                         json_format.MessageToJson(msg))
                self.outbox.enqueue(alert_id, iid, alert.SerializeToString(), network, departments)
            self.broadcaster.publish(msg)
            new.append(iid)
            log.info("incident %s: %s", iid, summary[1])
        return new

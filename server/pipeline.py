"""The automatic pipeline: readings arrive -> detection -> incidents opened, updated or merged -> trace,
forecast with bands, checklist -> an alert to every registered callback whose scope covers the place.

Runs on one background thread fed by the ingest service (triggers for the same network coalesce),
so acknowledging readings never waits for the science. Every screening runs detection over the
network's recent readings and reconciles what it finds with the stored incidents
(:mod:`tracer.incident.reconcile`): a new plume is opened under the id its data give it (first station,
parameter, start), whatever order the readings came in; an incident whose evidence changed is traced
again and stored as a new version with what changed (an ``update`` alert when a responder must hear of
it); incidents opened on partial data that turn out to be one plume are merged (a ``merged`` alert).
Each incident, its alert and its merges are written to SQLite together, so a crash between them cannot
lose an alert. Watchers are told of every incident change.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

import pandas as pd
from google.protobuf import json_format

from hydrology.timezones import local_time, network_zone
from server.generated.rivertrace.v1 import incidents_pb2
from tracer.detection import DetectionRules, detect
from tracer.incident.reconcile import (
    Change,
    Known,
    Step,
    evidence,
    evidence_digest,
    material_changes,
    passed_stations,
    reconcile,
)
from tracer.priors import OperationsEvidence
from tracer.readings import Readings
from tracer.trace import station_contexts

from . import convert
from .incident_chain import (
    DEFAULT_DO,
    build_incident,
    cap_document,
    carry_over,
    dilutions,
    do_conditions,
    gauged_network,
    halts,
    picture,
    scoped_id,
    version_entry,
)
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
__all__ = ["DEFAULT_DO", "Broadcaster", "Pipeline", "build_incident", "do_conditions", "operations_evidence",
           "readings_frame", "scoped_id"]


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


class Pipeline:
    """Background worker running detection and the incident chain after readings are stored."""

    def __init__(self, store: Store, outbox: Outbox, networks: Networks, broadcaster: Broadcaster) -> None:
        self.store, self.outbox, self.networks, self.broadcaster = store, outbox, networks, broadcaster
        self._queue: queue.Queue = queue.Queue()
        self._pending: set[str] = set()
        self._last_run: dict[str, float] = {}
        self._last_duration: dict[str, float] = {}
        self._lock = threading.Lock()
        self._preparing: list[threading.Thread] = []  # background preparations after PutNetwork
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

    def prepare(self, network: str, version: int) -> None:
        """After PutNetwork, in the background: what screening needs for this version (the steady hydraulic
        state and the station neighbourhoods, 1.7 CPU-s on a 100,000-reach network), so that the first
        ingest is screened at once instead of paying for it."""
        def work() -> None:
            try:
                self.networks.derived(network, version, "station_contexts", station_contexts)
            except Exception:  # the first screening computes it again and reports the error
                log.exception("preparing network %s version %d failed", network, version)

        t = threading.Thread(target=work, name=f"prepare-{network}", daemon=True)
        with self._lock:
            self._preparing = [p for p in self._preparing if p.is_alive()] + [t]
        t.start()

    def wait_prepared(self, timeout: float = 60.0) -> bool:
        """Block until every background preparation started so far is finished (for tests)."""
        with self._lock:
            threads = list(self._preparing)
        for t in threads:
            t.join(timeout)
        return not any(t.is_alive() for t in threads)

    def _stored(self, network: str) -> dict[str, incidents_pb2.Incident]:
        """The network's stored incidents that were not merged into another."""
        out = {}
        for iid, _state, payload in self.outbox.incidents(network):
            msg = json_format.Parse(payload, incidents_pb2.Incident())
            if not msg.merged_into:
                out[iid] = msg
        return out

    @staticmethod
    def _known(msg: incidents_pb2.Incident) -> Known:
        start = pd.Timestamp(msg.start.ToNanoseconds(), tz="UTC")
        end = pd.Timestamp(msg.end.ToNanoseconds(), tz="UTC") if msg.HasField("end") else start
        return Known(msg.id, frozenset((s, p) for s in msg.station_ids for p in msg.parameters), start, end,
                     msg.state == convert.INCIDENT_STATE["closed"], msg.evidence_digest)

    def run_once(self, network: str) -> list[str]:
        """Screen a network's recent readings; open, update or merge incidents (:mod:`tracer.incident.reconcile`);
        return the ids of the incidents opened or updated."""
        version, net = self.networks.get(network)
        readings = readings_frame(self.store, network)
        contexts = self.networks.derived(network, version, "station_contexts", station_contexts)  # once per version
        det = detect(readings, contexts, DetectionRules(day_timezone=network_zone(net).key))  # local days of the basin
        stored = self._stored(network)
        frames = {inc.id: evidence(readings, inc) for inc in det.incidents}
        newest = self.store.newest_reading_ns(network)
        screened_from = pd.Timestamp(newest - WINDOW_NS, tz="UTC") if newest is not None else None
        # what responders did counts as evidence too: a halt order carried out or a dilution release started
        # changes the forecast
        def done_by_responders(msg: incidents_pb2.Incident | None) -> str:
            return ("".join(f"|{d}@{t.isoformat()}" for d, t in sorted(halts(msg).items()))
                    + "".join(f"|{s}+{q:g}@{t.isoformat()}" for s, (q, t) in sorted(dilutions(msg).items())))

        digests = {k: evidence_digest(f) + done_by_responders(stored.get(scoped_id(network, k))) for k, f in frames.items()}
        steps = reconcile(det.incidents, [self._known(m) for m in stored.values()], network, digests, screened_from)
        done = []
        for step in steps:
            if step.kind == "cancel":
                self._cancel(stored[step.id])
            elif step.kind != "unchanged":
                self._apply(step, net, network, version, readings, frames[step.incident.id], stored)  # type: ignore[attr-defined]
                done.append(step.id)
        return done

    def _apply(self, step: Step, net: Any, network: str, version: int, readings: Readings, frame: Readings,
               stored: dict[str, incidents_pb2.Incident]) -> None:
        """Trace, forecast and plan the step's incident on its evidence; store it as a new version (with an
        ``opened`` or ``update`` alert) or refresh the current one (no alert: nothing a responder must hear
        changed); close the incidents merged into it (a ``merged`` alert each). One transaction."""
        inc = step.incident
        ops = operations_evidence(self.store, network, inc.start - pd.Timedelta(days=3), inc.end)  # type: ignore[attr-defined]
        cap: dict[str, Any] = {}
        passed = passed_stations(readings, inc)
        do, do_source = do_conditions(frame, inc)
        flows, flow_sources = gauged_network(net, frame, inc)
        previous = stored.get(step.id)
        merged = [stored[m] for m in step.merge]
        halted = {k: v for m in (*merged, previous) for k, v in halts(m).items()}
        released = {k: v for m in (*merged, previous) for k, v in dilutions(m).items()}
        msg, summary, departments = build_incident(flows, network, version, inc, frame, operations=ops, cap=cap,
                                                   do=do, passed=passed, halted=halted, released=released,
                                                   conditions={"water_temperature_c": do_source, **flow_sources,
                                                               **{f"halted:{d}": t.isoformat() for d, t in halted.items()},
                                                               **{f"dilution:{s}": f"{q:.3g} m3/s from {t.isoformat()}"
                                                                  for s, (q, t) in released.items()}})
        msg.evidence_digest = step.digest
        now = pd.Timestamp.now(tz="UTC").floor("s")
        tz = network_zone(net)
        carry_over(msg, [m for m in (previous, *merged) if m is not None], tz)
        changes = material_changes(picture(previous) if previous is not None else None, picture(msg), tz)
        changes += [Change(f"合并事件 {m}（同一污染团）", f"merged {m} (the same plume)") for m in step.merge]
        before = set(previous.conditions) if previous is not None else set()
        changes += [Change(f"停产令已执行：{d} 于 {local_time(t, tz, 'zh')} 停止排放，重新预报",
                           f"halt order carried out: {d} stopped at {local_time(t, tz)}; forecast again")
                    for d, t in halted.items() if f"halted:{d}" not in before]
        changes += [Change(f"稀释调水已开始：{s} 自 {local_time(t, tz, 'zh')} 增泄 {q:.3g} m³/s，重新预报",
                           f"dilution release started: {s} +{q:.3g} m3/s from {local_time(t, tz)}; forecast again")
                    for s, (q, t) in released.items() if f"dilution:{s}" not in before]
        if previous is None:
            msg.version, kind = 1, "opened"
            changes.insert(0, Change("事件开启", "opened"))
        else:
            msg.versions.extend(previous.versions)
            msg.merged_from.extend(previous.merged_from)
            msg.version, kind = (previous.version + 1, "update") if changes else (previous.version, "")
        msg.merged_from.extend(step.merge)
        entry = version_entry(msg, msg.version, changes, now.to_pydatetime())
        if kind:
            msg.versions.append(entry)
        elif msg.versions:  # the same version with the newest numbers; its reasons stay
            del entry.reasons[:], entry.reasons_zh[:]
            entry.reasons.extend(msg.versions[-1].reasons)
            entry.reasons_zh.extend(msg.versions[-1].reasons_zh)
            msg.versions[-1].CopyFrom(entry)
        alert = None
        if kind:
            alert_id = f"{step.id}/opened" if kind == "opened" else f"{step.id}/update/{msg.version:04d}"
            if kind == "update":
                why = ("；".join(c.zh for c in changes), "; ".join(c.en for c in changes))
                summary = (f"第 {msg.version} 版：{why[0]}。{summary[0]}", f"version {msg.version}: {why[1]}. {summary[1]}")
            prev_cap = self._latest_cap(step.id) if kind == "update" else ""
            alert = convert.alert(alert_id, msg, 0, summary, cap_document(net, cap, alert_id, step.id, now, prev_cap),
                                  now, kind=kind)
        closing = [self._merged_away(m, step.id, now) for m in merged]
        with self.store.transaction():  # the incident, its alert and the merges commit together
            if previous is not None:  # what responders did since it was read (UpdateAction, CloseIncident) stays
                self._responders_win(msg, previous, tz)
            self.outbox.put_incident(convert.incident_record(msg))
            if alert is not None:
                self.outbox.enqueue(alert.alert_id, step.id, alert.SerializeToString(), network, departments)
            for old, old_alert, old_departments in closing:
                self.outbox.put_incident(convert.incident_record(old))
                self.outbox.enqueue(old_alert.alert_id, old.id, old_alert.SerializeToString(), network, old_departments)
        for old, _a, _d in closing:
            self.broadcaster.publish(old)
        self.broadcaster.publish(msg)
        log.info("incident %s: %s%s", step.id, kind or "refreshed", f" ({summary[1]})" if kind else "")

    def _responders_win(self, msg: incidents_pb2.Incident, read: incidents_pb2.Incident, tz: Any) -> None:
        """Inside the writing transaction: the stored incident again, on the writer connection. When an action
        update or a close landed since ``read`` was taken (the science runs outside the transaction), its
        statuses, histories and closed state go into ``msg``, so the pipeline never undoes a responder."""
        fresh = json_format.Parse(self.store.incident_for_update(msg.id)[3], incidents_pb2.Incident())
        if fresh == read:
            return
        carry_over(msg, [fresh], tz)
        if fresh.state == convert.INCIDENT_STATE["closed"]:
            msg.state = fresh.state

    def _cancel(self, msg: incidents_pb2.Incident) -> None:
        """Close an incident detection no longer finds in data that still holds all its evidence, with a
        ``cancel`` alert (CAP Cancel of its latest document) and a version saying why."""
        read = incidents_pb2.Incident.FromString(msg.SerializeToString())
        now = pd.Timestamp.now(tz="UTC").floor("s")
        why = Change("检测不再发现该异常（数据已更正或标记为仪器故障），事件取消",
                     "cancelled: detection no longer finds the anomaly (readings corrected or flagged as a sensor fault)")
        msg.state = convert.INCIDENT_STATE["closed"]
        msg.version += 1
        msg.updated_at.CopyFrom(convert.timestamp(now))
        msg.versions.append(version_entry(msg, msg.version, [why], now.to_pydatetime()))
        alert_id = f"{msg.id}/cancel"
        xml = self._cancel_cap(msg.id, alert_id, now, (why.zh, why.en))
        alert = convert.alert(alert_id, msg, 0, (f"事件 {msg.id}：{why.zh}", f"incident {msg.id}: {why.en}"), xml, now,
                              kind="cancel")
        with self.store.transaction():
            self._responders_win(msg, read, None)
            self.outbox.put_incident(convert.incident_record(msg))
            self.outbox.enqueue(alert_id, msg.id, alert.SerializeToString(), msg.network,
                                {a.department for a in msg.checklist.actions if a.department})
        self.broadcaster.publish(msg)
        log.info("incident %s: cancelled", msg.id)

    def _cancel_cap(self, incident_id: str, alert_id: str, now: pd.Timestamp, headline: tuple[str, str]) -> str:
        """CAP Cancel of the incident's latest CAP document; "" when it has none or it cannot be built (logged)."""
        from .cap import follow_up_cap

        prev = self._latest_cap(incident_id)
        if not prev:
            return ""
        try:
            return follow_up_cap(prev, alert_id=alert_id, sent=now.to_pydatetime(), msg_type="Cancel", headline=headline)
        except Exception:
            log.exception("alert %s: no CAP document", alert_id)
            return ""

    def _latest_cap(self, incident_id: str) -> str:
        from server.generated.rivertrace.v1 import alerts_pb2

        latest = self.outbox.latest_alert(incident_id)
        return alerts_pb2.Alert.FromString(latest).cap_xml if latest is not None else ""

    def _merged_away(self, old: incidents_pb2.Incident, into: str, now: pd.Timestamp) -> tuple[Any, Any, set[str]]:
        """``old`` closed as merged into ``into``, with its ``merged`` alert (CAP Cancel of its latest document)."""
        old = incidents_pb2.Incident.FromString(old.SerializeToString())
        old.state, old.merged_into = convert.INCIDENT_STATE["closed"], into
        old.updated_at.CopyFrom(convert.timestamp(now))
        alert_id = f"{old.id}/merged"
        summary = (f"事件 {old.id} 与 {into} 为同一污染团，已合并", f"incident {old.id} is the same plume as {into}: merged into it")
        xml = self._cancel_cap(old.id, alert_id, now, summary)
        departments = {a.department for a in old.checklist.actions if a.department}
        return old, convert.alert(alert_id, old, 0, summary, xml, now, kind="merged"), departments

"""Thin servicers for the network and monitoring services: validate, convert, call, convert back.

Every state-changing call is audited. Errors go through :func:`server.errors.abort` (one table).
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc

from hydrology.document import network_from_document
from hydrology.network import RiverNetwork
from hydrology.validate import require_valid, validate_document
from server.generated.rivertrace.v1 import (
    common_pb2,
    monitoring_pb2,
    monitoring_pb2_grpc,
    network_pb2,
    network_pb2_grpc,
)
from tracer.readings import internal_unit

from . import convert
from .auth import client_of
from .config import Config
from .errors import ServiceError, abort, bad_request
from .storage import Store

log = logging.getLogger("rivertrace.server")
MAX_BATCH = 50_000


class Networks:
    """Parsed, validated networks by (name, version), cached (parsing a big network takes seconds)."""

    def __init__(self, store: Store, size: int = 8) -> None:
        self.store = store
        self._cache: OrderedDict[tuple[str, int], RiverNetwork] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, name: str, version: int = 0) -> tuple[int, RiverNetwork]:
        v = self.store.network_version(name, version)  # cheap: the document is read only on a miss
        key = (name, v)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return v, self._cache[key]
        stored = self.store.get_network(name, v)
        net = require_valid(network_from_document(stored.document))
        with self._lock:
            self._cache[key] = net
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return stored.version, net


def _who(config: Config, context: grpc.ServicerContext) -> tuple[str | None, str | None]:
    c = client_of(config, context.invocation_metadata())
    return (c.name, c.role) if c else (None, None)


def _document(request: network_pb2.PutNetworkRequest) -> dict[str, Any]:
    which = request.WhichOneof("source")
    if which == "document_json":
        try:
            doc = json.loads(request.document_json)
        except json.JSONDecodeError as err:
            raise bad_request(f"document_json is not JSON: {err.msg} at line {err.lineno} column {err.colno}",
                              [("document_json", err.msg)]) from err
        if not isinstance(doc, dict):
            raise bad_request("document_json must be a JSON object", [("document_json", "not an object")])
        return doc
    if which == "geopackage":
        from hydrology.gpkg import read_network_gpkg

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "upload.gpkg"
            path.write_bytes(request.geopackage)
            try:
                return read_network_gpkg(path)
            except Exception as err:
                raise bad_request(f"geopackage could not be read: {err}", [("geopackage", str(err))]) from err
    raise bad_request("give document_json or geopackage", [("source", "missing")])


class NetworkServicer(network_pb2_grpc.NetworkServiceServicer):
    def __init__(self, config: Config, store: Store, networks: Networks) -> None:
        self.config, self.store, self.networks = config, store, networks

    def _put(self, name: str, doc: dict[str, Any], context: grpc.ServicerContext, what: str) -> network_pb2.PutNetworkResponse:
        if not name:
            raise bad_request("name is required", [("name", "missing")])
        net, problems = validate_document(doc)
        errors = [p for p in problems if p.severity == "error"]
        if errors or net is None:
            raise bad_request(f"network has {len(errors)} error(s); first: {errors[0] if errors else 'unparseable'}",
                              [(f"{p.element}[{p.id}].{p.field}" if p.id else f"{p.element}.{p.field}", p.message)
                               for p in errors])
        who, role = _who(self.config, context)
        stored = self.store.put_network(name, doc, who)
        self.store.audit(who, role, what, f"{name} v{stored.version}")
        return network_pb2.PutNetworkResponse(name=name, version=stored.version, stored_at=convert.timestamp(stored.stored_at_ns),
                                              warnings=[convert.problem(p) for p in problems if p.severity == "warning"])

    def PutNetwork(self, request: network_pb2.PutNetworkRequest, context: grpc.ServicerContext) -> Any:
        try:
            return self._put(request.name, _document(request), context, "PutNetwork")
        except Exception as exc:  # noqa: BLE001 - mapped to a status by the one table
            abort(context, exc)

    def GetNetwork(self, request: network_pb2.GetNetworkRequest, context: grpc.ServicerContext) -> Any:
        try:
            s = self.store.get_network(request.name, request.version)
            return network_pb2.GetNetworkResponse(name=s.name, version=s.version, stored_at=convert.timestamp(s.stored_at_ns),
                                                  document_json=json.dumps(s.document, ensure_ascii=False))
        except Exception as exc:  # noqa: BLE001
            abort(context, exc)

    def ValidateNetwork(self, request: network_pb2.ValidateNetworkRequest, context: grpc.ServicerContext) -> Any:
        try:
            doc = _document(network_pb2.PutNetworkRequest(document_json=request.document_json))
            _net, problems = validate_document(doc)
            errs = [convert.problem(p) for p in problems if p.severity == "error"]
            return network_pb2.ValidateNetworkResponse(valid=not errs, errors=errs,
                                                       warnings=[convert.problem(p) for p in problems if p.severity == "warning"])
        except Exception as exc:  # noqa: BLE001
            abort(context, exc)

    def UpdateFlows(self, request: network_pb2.UpdateFlowsRequest, context: grpc.ServicerContext) -> Any:
        try:
            stored = self.store.get_network(request.name)
            doc = json.loads(json.dumps(stored.document))
            reaches = {r["id"]: r for r in doc.get("reaches", [])}
            structures = {s["id"]: s for s in doc.get("structures", [])}
            bad = [(f"reach_flows[{i}].reach_id", f"unknown reach {f.reach_id!r}") for i, f in enumerate(request.reach_flows)
                   if f.reach_id not in reaches]
            bad += [(f"reach_flows[{i}].discharge_m3s", f"must be positive, got {f.discharge_m3s}")
                    for i, f in enumerate(request.reach_flows) if not f.discharge_m3s > 0]
            bad += [(f"structure_releases[{i}].structure_id", f"unknown structure {s.structure_id!r}")
                    for i, s in enumerate(request.structure_releases) if s.structure_id not in structures]
            bad += [(f"structure_releases[{i}].release_m3s", f"must not be negative, got {s.release_m3s}")
                    for i, s in enumerate(request.structure_releases) if not s.release_m3s >= 0]
            if bad:
                raise bad_request(f"{len(bad)} bad flow update(s); first: {bad[0][0]}: {bad[0][1]}", bad)
            for f in request.reach_flows:
                reaches[f.reach_id]["discharge_m3s"] = f.discharge_m3s
            for s in request.structure_releases:  # a release changes the flow of the structure's reach
                st = structures[s.structure_id]
                reach = reaches[st["reach"]]
                _v, net = self.networks.get(request.name)
                base = net.steady_discharge[st["reach"]]
                normal = float(st.get("normal_release_m3s") or 0.0)
                reach["discharge_m3s"] = base + s.release_m3s - normal
                st["current_release_m3s"] = s.release_m3s
            return self._put(request.name, doc, context, "UpdateFlows")
        except Exception as exc:  # noqa: BLE001
            abort(context, exc)

    def ListFeatures(self, request: network_pb2.ListFeaturesRequest, context: grpc.ServicerContext) -> Any:
        try:
            _v, net = self.networks.get(request.name, request.version)
            return network_pb2.ListFeaturesResponse(features=convert.features(net, request.kind))
        except Exception as exc:  # noqa: BLE001
            abort(context, exc)


class MonitoringServicer(monitoring_pb2_grpc.MonitoringServiceServicer):
    def __init__(self, config: Config, store: Store, networks: Networks, on_readings: Any = None) -> None:
        self.config, self.store, self.networks = config, store, networks
        self.on_readings = on_readings  # callback(network, stations touched): the automatic pipeline

    def IngestReadings(self, request_iterator: Iterator[monitoring_pb2.ReadingBatch],
                       context: grpc.ServicerContext) -> Iterator[monitoring_pb2.IngestAck]:
        who, role = _who(self.config, context)
        try:
            for batch in request_iterator:
                if not batch.network:
                    raise bad_request("network is required", [("network", "missing")])
                if len(batch.readings) > MAX_BATCH:
                    raise bad_request(f"batch of {len(batch.readings)} readings exceeds {MAX_BATCH}", [("readings", "too many")])
                _v, net = self.networks.get(batch.network)
                result = convert.readings_batch(batch, set(net.stations))
                rows = convert.reading_rows(result)
                stored, dup = self.store.add_readings(batch.network, rows)  # durable before the ack
                yield monitoring_pb2.IngestAck(batch_id=batch.batch_id, stored=stored, duplicates=dup,
                                               rejected=convert.rejected_problems(result))
                self.store.audit(who, role, "IngestReadings", f"{batch.network} batch {batch.batch_id}: {stored} stored")
                if stored and self.on_readings is not None:
                    self.on_readings(batch.network, {r[0] for r in rows})
        except Exception as exc:  # noqa: BLE001
            abort(context, exc)

    def ReportOperations(self, request: monitoring_pb2.ReportOperationsRequest, context: grpc.ServicerContext) -> Any:
        try:
            _v, net = self.networks.get(request.network)
            rows, rejected = [], []
            for i, s in enumerate(request.states):
                if s.discharger_id not in net.dischargers:
                    rejected.append(common_pb2.Problem(severity="error", element="states", id=f"#{i}",
                                                               field="discharger_id", message=f"unknown discharger {s.discharger_id!r}"))
                elif not s.HasField("time"):
                    rejected.append(common_pb2.Problem(severity="error", element="states", id=f"#{i}",
                                                               field="time", message="missing time"))
                else:
                    rows.append((s.discharger_id, s.time.ToNanoseconds(), s.production_on, s.treatment_on, s.effluent_exceedance))
            stored = self.store.add_operations(request.network, rows) if rows else 0
            who, role = _who(self.config, context)
            self.store.audit(who, role, "ReportOperations", f"{request.network}: {stored} states")
            return monitoring_pb2.ReportOperationsResponse(stored=stored, rejected=rejected)
        except Exception as exc:  # noqa: BLE001
            abort(context, exc)

    def ListReadings(self, request: monitoring_pb2.ListReadingsRequest, context: grpc.ServicerContext) -> Any:
        try:
            start = request.window.start.ToNanoseconds() if request.window.HasField("start") else None
            end = request.window.end.ToNanoseconds() if request.window.HasField("end") else None
            rows = self.store.readings(request.network, request.station_id or None, request.parameter or None, start, end)
            if not rows and request.network not in self.store.network_names():
                raise ServiceError(grpc.StatusCode.NOT_FOUND, f"network {request.network!r} is not stored")
            return monitoring_pb2.ListReadingsResponse(readings=[
                monitoring_pb2.Reading(station_id=s, parameter=p, time=convert.timestamp(t), value=v,
                                       unit=internal_unit(p), flag=f or "")
                for s, p, t, v, f in rows])
        except Exception as exc:  # noqa: BLE001
            abort(context, exc)

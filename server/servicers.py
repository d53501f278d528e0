"""Thin servicers for the network and monitoring services: validate, convert, call, convert back.

Every state-changing call is audited. Errors go through :func:`server.errors.abort` (one table).
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
import threading
import time
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
from .streams import IdleReaper

log = logging.getLogger("rivertrace.server")
MAX_BATCH = 50_000
#: deepest nesting of a network document (the format itself needs 4 levels) [-]
MAX_JSON_DEPTH = 32
#: longest network name [characters]
MAX_NAME = 128
#: a UpdateFlows discharge or release above this is implausible (above the Amazon's mean flow) [m3/s]
MAX_FLOW_M3S = 3e5


class Networks:
    """Parsed, validated networks by (name, version), cached with everything derived from them.

    Parsing a big network takes seconds and the derived tables (station neighbourhoods for
    detection) longer, so both are computed once per network version: PutNetwork hands over the
    network it has just validated (:meth:`put`), and :meth:`derived` computes a table on first use
    and keeps it with the version it belongs to.
    """

    def __init__(self, store: Store, size: int = 8) -> None:
        self.store = store
        self._cache: OrderedDict[tuple[str, int], tuple[RiverNetwork, dict[str, Any]]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()
        self._key_locks: dict[tuple[str, int, str], threading.Lock] = {}
        #: called with (name, version) after a new version is cached (the pipeline prepares its screening)
        self.on_put: Any = None

    def _remember(self, key: tuple[str, int], net: RiverNetwork) -> tuple[RiverNetwork, dict[str, Any]]:
        with self._lock:
            entry = self._cache.get(key)
            if entry is None or entry[0] is not net:
                entry = self._cache[key] = (net, {})
            self._cache.move_to_end(key)
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
            return entry

    def put(self, name: str, version: int, net: RiverNetwork) -> None:
        """Cache a network just stored and validated (the first use does not parse it again).

        Older versions of the same name leave the cache (a big network holds hundreds of MB; an
        old version still asked for is parsed again from the store)."""
        with self._lock:
            for key in [k for k in self._cache if k[0] == name and k[1] < version]:
                del self._cache[key]
        self._remember((name, version), net)
        if self.on_put is not None:
            self.on_put(name, version)

    def _entry(self, name: str, version: int = 0) -> tuple[int, tuple[RiverNetwork, dict[str, Any]]]:
        v = self.store.network_version(name, version)  # cheap: the document is read only on a miss
        key = (name, v)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return v, self._cache[key]
        stored = self.store.get_network(name, v)
        net = require_valid(network_from_document(stored.document))
        return v, self._remember(key, net)

    def get(self, name: str, version: int = 0) -> tuple[int, RiverNetwork]:
        v, (net, _derived) = self._entry(name, version)
        return v, net

    def derived(self, name: str, version: int, what: str, compute: Any) -> Any:
        """``compute(net)`` for this network version, computed once (concurrent callers wait)."""
        v, (net, table) = self._entry(name, version)
        if what in table:
            return table[what]
        with self._lock:
            lock = self._key_locks.setdefault((name, v, what), threading.Lock())
        with lock:
            if what not in table:
                table[what] = compute(net)
            return table[what]


def check_name(name: str, field: str) -> None:
    """A required network name of at most :data:`MAX_NAME` characters (INVALID_ARGUMENT otherwise)."""
    if not name:
        raise bad_request(f"{field} is required", [(field, "missing")])
    if len(name) > MAX_NAME:
        raise bad_request(f"{field} is longer than {MAX_NAME} characters", [(field, f"{len(name)} characters")])


def _clamp_ns(ts: Any) -> int:
    """A Timestamp as ns since the epoch, clamped to what a 64-bit column holds."""
    return max(-(2**63) + 1, min(2**63 - 1, ts.seconds * 1_000_000_000 + ts.nanos))


def _who(config: Config, context: grpc.ServicerContext) -> tuple[str | None, str | None]:
    c = client_of(config, context.invocation_metadata())
    return (c.name, c.role) if c else (None, None)


class _Finiteness:
    """JSON number hooks that note whether any number is not finite (NaN, Infinity, 1e999, or an
    integer beyond 1e308), so the document is walked for its path only when one is."""

    def __init__(self) -> None:
        self.bad = False

    def parse_int(self, text: str) -> int | float:
        """Integers beyond 18 digits become floats (inf beyond 1e308) instead of Python integers
        no float can hold; validation then refuses them by field."""
        if len(text) <= 18:
            return int(text)
        v = float(text)
        self.bad = self.bad or not math.isfinite(v)
        return v

    def parse_float(self, text: str) -> float:
        v = float(text)
        if v - v != 0.0:
            self.bad = True
        return v

    def parse_constant(self, text: str) -> float:
        self.bad = True
        return float(text)


def _too_deep(doc: Any, limit: int) -> bool:
    """Whether a parsed JSON value nests more than ``limit`` levels (level by level, no recursion,
    looking only at containers)."""
    level, depth = [doc], 1
    while level:
        if depth > limit:
            return True
        nxt: list[Any] = []
        for v in level:
            nxt.extend([x for x in (v.values() if type(v) is dict else v) if type(x) is dict or type(x) is list])
        level, depth = nxt, depth + 1
    return False


def _json_problem(doc: Any, limit: int) -> tuple[str, str] | None:
    """The first (path, problem) of a parsed JSON value: nesting beyond ``limit`` levels, or a
    number that is not finite (NaN, Infinity, or an integer beyond 1e308); None if it has none.
    Walks without recursion, so a hostile nesting cannot exhaust the stack."""
    stack: list[tuple[Any, int, str]] = [(doc, 1, "")]
    while stack:
        v, d, path = stack.pop()
        if d > limit:
            return path or "document_json", f"nests deeper than {limit} levels"
        if isinstance(v, dict):
            stack.extend((x, d + 1, f"{path}.{str(k)[:40]}" if path else str(k)[:40]) for k, x in v.items())
        elif isinstance(v, list):
            stack.extend((x, d + 1, f"{path}[{i}]") for i, x in enumerate(v))
        elif isinstance(v, float) and not math.isfinite(v):
            return path, f"is not a finite number ({v})"
    return None


def parse_document_json(text: str, field: str = "document_json") -> dict[str, Any]:
    """A JSON network document from a request, every failure an INVALID_ARGUMENT naming ``field``."""
    hooks = _Finiteness()
    try:
        doc = json.loads(text, parse_int=hooks.parse_int, parse_float=hooks.parse_float, parse_constant=hooks.parse_constant)
    except json.JSONDecodeError as err:
        raise bad_request(f"{field} is not JSON: {err.msg} at line {err.lineno} column {err.colno}",
                          [(field, err.msg)]) from err
    except RecursionError as err:
        raise bad_request(f"{field} nests deeper than {MAX_JSON_DEPTH} levels", [(field, "nested too deeply")]) from err
    except ValueError as err:  # e.g. an integer literal beyond Python's digit limit
        raise bad_request(f"{field} is not usable JSON: {str(err)[:200]}", [(field, str(err)[:200])]) from err
    if not isinstance(doc, dict):
        raise bad_request(f"{field} must be a JSON object", [(field, "not an object")])
    if hooks.bad or _too_deep(doc, MAX_JSON_DEPTH):  # rare: walk again to name the place
        problem = _json_problem(doc, MAX_JSON_DEPTH) or (field, "is not usable JSON")
        raise bad_request(f"{field}: {problem[0]} {problem[1]}", [problem])
    return doc


def _document(request: network_pb2.PutNetworkRequest) -> dict[str, Any]:
    which = request.WhichOneof("source")
    if which == "document_json":
        return parse_document_json(request.document_json)
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

    def _put(self, name: str, doc: dict[str, Any], context: grpc.ServicerContext, what: str,
             text: str | None = None) -> network_pb2.PutNetworkResponse:
        """Validate, store (``text``: the document as the client sent it, stored as is) and cache."""
        check_name(name, "name")
        net, problems = validate_document(doc)
        errors = [p for p in problems if p.severity == "error"]
        if errors or net is None:
            raise bad_request(f"network has {len(errors)} error(s); first: {errors[0] if errors else 'unparseable'}",
                              [(f"{p.element}[{p.id}].{p.field}" if p.id else f"{p.element}.{p.field}", p.message)
                               for p in errors])
        who, role = _who(self.config, context)
        stored = self.store.put_network(name, doc, who, audit=(who, role, what, name), text=text)
        self.networks.put(name, stored.version, net)  # validated once: the first use does not parse again
        return network_pb2.PutNetworkResponse(name=name, version=stored.version, stored_at=convert.timestamp(stored.stored_at_ns),
                                              warnings=[convert.problem(p) for p in problems if p.severity == "warning"])

    def PutNetwork(self, request: network_pb2.PutNetworkRequest, context: grpc.ServicerContext) -> Any:
        try:
            text = request.document_json if request.WhichOneof("source") == "document_json" else None
            return self._put(request.name, _document(request), context, "PutNetwork", text)
        except Exception as exc:  # noqa: BLE001 - mapped to a status by the one table
            abort(context, exc)

    def GetNetwork(self, request: network_pb2.GetNetworkRequest, context: grpc.ServicerContext) -> Any:
        try:
            check_name(request.name, "name")
            version, text, stored_at = self.store.get_network_text(request.name, request.version)  # served as stored
            return network_pb2.GetNetworkResponse(name=request.name, version=version, stored_at=convert.timestamp(stored_at),
                                                  document_json=text)
        except Exception as exc:  # noqa: BLE001
            abort(context, exc)

    def ValidateNetwork(self, request: network_pb2.ValidateNetworkRequest, context: grpc.ServicerContext) -> Any:
        try:
            doc = parse_document_json(request.document_json)
            _net, problems = validate_document(doc)
            errs = [convert.problem(p) for p in problems if p.severity == "error"]
            return network_pb2.ValidateNetworkResponse(valid=not errs, errors=errs,
                                                       warnings=[convert.problem(p) for p in problems if p.severity == "warning"])
        except Exception as exc:  # noqa: BLE001
            abort(context, exc)

    def UpdateFlows(self, request: network_pb2.UpdateFlowsRequest, context: grpc.ServicerContext) -> Any:
        try:
            check_name(request.name, "name")
            stored = self.store.get_network(request.name)
            doc = stored.document  # a fresh parse of the stored text: ours to change
            reaches = {r["id"]: r for r in doc.get("reaches", [])}
            structures = {s["id"]: s for s in doc.get("structures", [])}
            bad = [(f"reach_flows[{i}].reach_id", f"unknown reach {f.reach_id!r}") for i, f in enumerate(request.reach_flows)
                   if f.reach_id not in reaches]
            bad += [(f"reach_flows[{i}].discharge_m3s", f"must be in (0, {MAX_FLOW_M3S:g}] m3/s, got {f.discharge_m3s:g}")
                    for i, f in enumerate(request.reach_flows) if not 0 < f.discharge_m3s <= MAX_FLOW_M3S]
            bad += [(f"structure_releases[{i}].structure_id", f"unknown structure {s.structure_id!r}")
                    for i, s in enumerate(request.structure_releases) if s.structure_id not in structures]
            bad += [(f"structure_releases[{i}].release_m3s", f"must be in [0, {MAX_FLOW_M3S:g}] m3/s, got {s.release_m3s:g}")
                    for i, s in enumerate(request.structure_releases) if not 0 <= s.release_m3s <= MAX_FLOW_M3S]
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
            if request.kind not in convert.FEATURE_KIND_NAME and request.kind != common_pb2.FEATURE_KIND_UNSPECIFIED:
                raise bad_request(f"kind {request.kind} is not a FeatureKind", [("kind", f"unknown value {request.kind}")])
            check_name(request.name, "name")
            _v, net = self.networks.get(request.name, request.version)
            return network_pb2.ListFeaturesResponse(features=convert.features(net, request.kind))
        except Exception as exc:  # noqa: BLE001
            abort(context, exc)


class MonitoringServicer(monitoring_pb2_grpc.MonitoringServiceServicer):
    def __init__(self, config: Config, store: Store, networks: Networks, on_readings: Any = None,
                 reaper: IdleReaper | None = None) -> None:
        self.config, self.store, self.networks = config, store, networks
        self.on_readings = on_readings  # callback(network, stations touched): the automatic pipeline
        self.reaper = reaper  # closes a stream silent for config.idle_ingest_s

    def _window_s(self) -> tuple[float, float]:
        """Accepted reading times now [s since the epoch]: config reading_past_days before, reading_future_s after."""
        now = time.time()
        return now - self.config.reading_past_days * 86400.0, now + self.config.reading_future_s

    def IngestReadings(self, request_iterator: Iterator[monitoring_pb2.ReadingBatch],
                       context: grpc.ServicerContext) -> Iterator[monitoring_pb2.IngestAck]:
        who, role = _who(self.config, context)
        touch = self.reaper.register(context, f"IngestReadings stream of {who}") if self.reaper else (lambda: None)
        try:
            for batch in request_iterator:
                touch()
                check_name(batch.network, "network")
                if len(batch.readings) > MAX_BATCH:
                    raise bad_request(f"batch of {len(batch.readings)} readings exceeds {MAX_BATCH}", [("readings", "too many")])
                _v, net = self.networks.get(batch.network)
                result = convert.readings_batch(batch, set(net.stations), self._window_s())
                rows = convert.reading_rows(result)
                # durable before the ack, with its audit row in the same transaction
                stored, dup = self.store.add_readings(batch.network, rows, audit=(
                    who, role, "IngestReadings", f"{batch.network} batch {batch.batch_id}"))
                yield monitoring_pb2.IngestAck(batch_id=batch.batch_id, stored=stored, duplicates=dup,
                                               rejected=convert.rejected_problems(result))
                touch()
                if stored and self.on_readings is not None:
                    self.on_readings(batch.network, {r[0] for r in rows})
        except Exception as exc:  # noqa: BLE001
            if context.is_active():
                abort(context, exc)
        finally:
            if self.reaper is not None:
                self.reaper.unregister(context)

    def ReportOperations(self, request: monitoring_pb2.ReportOperationsRequest, context: grpc.ServicerContext) -> Any:
        try:
            check_name(request.network, "network")
            _v, net = self.networks.get(request.network)
            rows, rejected = [], []
            lo, hi = self._window_s()
            for i, s in enumerate(request.states):
                if s.discharger_id not in net.dischargers:
                    rejected.append(common_pb2.Problem(severity="error", element="states", id=f"#{i}",
                                                               field="discharger_id", message=f"unknown discharger {s.discharger_id!r}"))
                elif not s.HasField("time"):
                    rejected.append(common_pb2.Problem(severity="error", element="states", id=f"#{i}",
                                                               field="time", message="missing time"))
                elif not lo <= s.time.seconds <= hi:
                    rejected.append(common_pb2.Problem(severity="error", element="states", id=f"#{i}", field="time",
                                                       message=f"time {s.time.seconds} s since 1970 is outside the accepted "
                                                       "window (config [limits])"))
                else:
                    rows.append((s.discharger_id, s.time.ToNanoseconds(), s.production_on, s.treatment_on, s.effluent_exceedance))
            who, role = _who(self.config, context)
            stored = self.store.add_operations(request.network, rows, audit=(who, role, "ReportOperations", request.network))
            return monitoring_pb2.ReportOperationsResponse(stored=stored, rejected=rejected)
        except Exception as exc:  # noqa: BLE001
            abort(context, exc)

    def ListReadings(self, request: monitoring_pb2.ListReadingsRequest, context: grpc.ServicerContext) -> Any:
        try:
            check_name(request.network, "network")
            start = _clamp_ns(request.window.start) if request.window.HasField("start") else None
            end = _clamp_ns(request.window.end) if request.window.HasField("end") else None
            rows = self.store.readings(request.network, request.station_id or None, request.parameter or None, start, end)
            if not rows and request.network not in self.store.network_names():
                raise ServiceError(grpc.StatusCode.NOT_FOUND, f"network {request.network!r} is not stored")
            return monitoring_pb2.ListReadingsResponse(readings=[
                monitoring_pb2.Reading(station_id=s, parameter=p, time=convert.timestamp(t), value=v,
                                       unit=internal_unit(p), flag=f or "")
                for s, p, t, v, f in rows])
        except Exception as exc:  # noqa: BLE001
            abort(context, exc)

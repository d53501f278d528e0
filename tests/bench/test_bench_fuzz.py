"""Seeded fuzz of every rivertrace method over loopback (issue 13): no INTERNAL, no hang.

Not in CI: ``python -m pytest -m bench -s tests/bench/test_bench_fuzz.py`` (about 2-3 minutes).
Each call starts from a valid request and is mutated either field by field (extreme floats, ints and
strings, recursively into sub-messages) or byte by byte (flips, truncation, splices) and sent raw.
The run is bounded by a call count and a wall-clock budget and stops by itself; the seed makes it
reproducible (``RIVERTRACE_FUZZ_SEED``). Results: ``tests/bench/results/fuzz.json``.
"""

import json
import math
import os
import random
import time
from collections import Counter

import grpc
import pytest
from bench_util import write_results
from google.protobuf.descriptor import FieldDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server.app import create_server
from server.cli import demo_basin_path
from server.client import RivertraceClient
from server.config import Client, Config
from server.convert import timestamp
from server.generated.rivertrace.v1 import alerts_pb2, common_pb2, incidents_pb2, monitoring_pb2, network_pb2
from tracer.scenarios import ruxi_replay

pytestmark = pytest.mark.bench
SEED = int(os.environ.get("RIVERTRACE_FUZZ_SEED", "13"))
MAX_CALLS = 50_000
BUDGET_S = 180.0
#: a call slower than this is a hang [s]; the slowest valid call here (a trace on the demo basin) takes < 1 s
HANG_S = 15.0
RUXI = demo_basin_path("ruxi").read_text(encoding="utf-8")
T0 = timestamp(1752540000 * 10**9)

FLOATS = [0.0, -0.0, 1.0, -1.0, 1e308, -1e308, math.nan, math.inf, -math.inf, 5e-324, 1e6, 3e5, 86400.0]
INTS = [0, 1, -1, 99, 2**31 - 1, -(2**31), 2**63 - 1, -(2**63)]
STRINGS = ["", "ruxi", "RX-UP", "RX-OILSPOT", "RX-FOOD-1", "petroleum", "mg/L", "x" * 10_000, "\u0000", "河" * 3000,
           "../../etc/passwd", "%s%n{}", "http://192.0.2.1/", "127.0.0.1:1", "\ud7ff\ue000", "NaN"]

UNARY = {
    "/rivertrace.v1.NetworkService/PutNetwork": network_pb2.PutNetworkRequest(name="fuzz", document_json=RUXI),
    "/rivertrace.v1.NetworkService/ValidateNetwork": network_pb2.ValidateNetworkRequest(document_json=RUXI),
    "/rivertrace.v1.NetworkService/GetNetwork": network_pb2.GetNetworkRequest(name="ruxi"),
    "/rivertrace.v1.NetworkService/ListFeatures": network_pb2.ListFeaturesRequest(name="ruxi", kind=1),
    "/rivertrace.v1.NetworkService/UpdateFlows": network_pb2.UpdateFlowsRequest(
        name="ruxi", reach_flows=[network_pb2.ReachFlow(reach_id="RX-R03", discharge_m3s=5.0)],
        structure_releases=[network_pb2.StructureRelease(structure_id="RX-RES", release_m3s=4.0)]),
    "/rivertrace.v1.MonitoringService/ReportOperations": monitoring_pb2.ReportOperationsRequest(
        network="ruxi", states=[monitoring_pb2.OperationsState(discharger_id="RX-FOOD-1", time=T0, production_on=True)]),
    "/rivertrace.v1.MonitoringService/ListReadings": monitoring_pb2.ListReadingsRequest(
        network="ruxi", station_id="RX-UP", window=common_pb2.TimeWindow(start=T0, end=T0)),
    "/rivertrace.v1.IncidentService/ListIncidents": incidents_pb2.ListIncidentsRequest(network="ruxi"),
    "/rivertrace.v1.IncidentService/GetIncident": incidents_pb2.GetIncidentRequest(id="x"),
    "/rivertrace.v1.IncidentService/Trace": incidents_pb2.TraceRequest(network="ruxi", station_id="RX-OILSPOT",
                                                                       parameter="petroleum"),
    "/rivertrace.v1.IncidentService/Forecast": incidents_pb2.ForecastRequest(network="ruxi", discharger_id="RX-FOOD-1",
                                                                             mass_kg=10.0, pollutant="COD"),
    "/rivertrace.v1.IncidentService/Plan": incidents_pb2.PlanRequest(incident_id="x"),
    "/rivertrace.v1.IncidentService/UpdateAction": incidents_pb2.UpdateActionRequest(incident_id="x", action_id="a", status=2),
    "/rivertrace.v1.IncidentService/CloseIncident": incidents_pb2.CloseIncidentRequest(id="x"),
    "/rivertrace.v1.AlertService/RegisterTarget": alerts_pb2.RegisterTargetRequest(id="fz", grpc_address="127.0.0.1:1",
                                                                                    network="ruxi"),
    "/rivertrace.v1.AlertService/RemoveTarget": alerts_pb2.RemoveTargetRequest(id="fz"),
    "/rivertrace.v1.AlertService/ListTargets": alerts_pb2.ListTargetsRequest(),
    "/rivertrace.v1.AlertService/ListDeliveries": alerts_pb2.ListDeliveriesRequest(),
    "/rivertrace.v1.AlertService/ReplayDeliveries": alerts_pb2.ReplayDeliveriesRequest(),
}
INGEST = monitoring_pb2.ReadingBatch(network="ruxi", batch_id=1, readings=[monitoring_pb2.Reading(
    station_id="RX-UP", parameter="petroleum", time=T0, value=0.02, unit="mg/L")])


def _repeated(f):
    return f.is_repeated if hasattr(f, "is_repeated") else f.label == FieldDescriptor.LABEL_REPEATED


def mutate_fields(msg, rng, depth=0):
    """Set a few fields of ``msg`` (recursively) to extreme values."""
    fields = list(msg.DESCRIPTOR.fields)
    for f in rng.sample(fields, k=min(len(fields), rng.randint(1, 3))):
        if f.type == FieldDescriptor.TYPE_MESSAGE:
            if _repeated(f):
                for _ in range(rng.randint(0, 3)):
                    sub = getattr(msg, f.name).add() if f.message_type.GetOptions().map_entry is False else None
                    if sub is not None and depth < 3:
                        mutate_fields(sub, rng, depth + 1)
            elif depth < 3:
                mutate_fields(getattr(msg, f.name), rng, depth + 1)
            continue
        if f.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            v = rng.choice(FLOATS)
        elif f.type in (FieldDescriptor.TYPE_STRING,):
            v = rng.choice(STRINGS)
        elif f.type == FieldDescriptor.TYPE_BOOL:
            v = rng.random() < 0.5
        elif f.type == FieldDescriptor.TYPE_BYTES:
            v = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64)))
        elif f.type == FieldDescriptor.TYPE_ENUM:
            v = rng.choice([0, 1, 2, 3, 4, 99, -1])
        else:
            v = rng.choice(INTS)
        try:
            if _repeated(f):
                getattr(msg, f.name).append(v)
            else:
                setattr(msg, f.name, v)
        except (ValueError, TypeError):  # a value the field cannot hold: the byte mutations cover those
            pass
    return msg


def mutate_json(text, rng):
    """A network document with one value somewhere replaced by something absurd."""
    doc = json.loads(text)
    key = rng.choice(["reaches", "nodes", "stations", "dischargers", "intakes", "structures", "sites", "inflows"])
    items = doc.get(key) or []
    if items:
        item = rng.choice(items)
        field = rng.choice(list(item))
        item[field] = rng.choice([1e308, -1.0, 0, None, "x", True, [], {}, "河" * 100, 10**30])
    else:
        doc[key] = rng.choice([1, "x", None, {}])
    return json.dumps(doc, ensure_ascii=False)


def mutate_bytes(data, rng):
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.random()
        if op < 0.5 and b:
            b[rng.randrange(len(b))] = rng.getrandbits(8)
        elif op < 0.7 and b:
            del b[rng.randrange(len(b)):]
        else:
            i = rng.randrange(len(b) + 1)
            b[i:i] = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 16)))
    return bytes(b)


def test_seeded_fuzz_gets_no_internal_and_no_hang(tmp_path):
    tokens = {"t-admin": Client("ops", "admin")}
    running = create_server(Config(db=tmp_path / "fuzz.db", port=0, tokens=tokens, max_message_mb=8), deliver=False)
    running.server.start()
    rng = random.Random(SEED)
    codes: Counter = Counter()
    internal, hangs, slowest = [], [], 0.0
    t_start = time.monotonic()
    try:
        with RivertraceClient(f"127.0.0.1:{running.port}", token="t-admin", max_message_mb=8) as c:
            c.put_network("ruxi", json.loads(RUXI))
            c.ingest("ruxi", ruxi_replay().readings.frame.assign(unit="mg/L"))
            running.pipeline.wait_idle(60)
            md = c.metadata
            n = 0
            while n < MAX_CALLS and time.monotonic() - t_start < BUDGET_S:
                n += 1
                method = rng.choice([*UNARY, "ingest"])
                base = INGEST if method == "ingest" else UNARY[method]
                how = rng.random()
                msg = type(base)()
                msg.CopyFrom(base)
                if how < 0.45:
                    payload = mutate_fields(msg, rng).SerializeToString()
                elif how < 0.55 and hasattr(msg, "document_json"):
                    msg.document_json = mutate_json(RUXI, rng)
                    payload = msg.SerializeToString()
                else:
                    payload = mutate_bytes(msg.SerializeToString(), rng)
                t = time.monotonic()
                try:
                    if method == "ingest":
                        call = c.channel.stream_stream("/rivertrace.v1.MonitoringService/IngestReadings")
                        list(call(iter([payload, payload]), timeout=HANG_S, metadata=md))
                    else:
                        c.channel.unary_unary(method)(payload, timeout=HANG_S, metadata=md)
                    codes["OK"] += 1
                except grpc.RpcError as err:
                    codes[err.code().name] += 1
                    if err.code() == grpc.StatusCode.INTERNAL:
                        internal.append((method, payload[:200].hex(), err.details()))
                    elif err.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                        hangs.append((method, payload[:200].hex()))
                slowest = max(slowest, time.monotonic() - t)
            health = health_pb2_grpc.HealthStub(c.channel).Check(health_pb2.HealthCheckRequest(), timeout=10).status
    finally:
        running.stop(grace=2.0)
    elapsed = time.monotonic() - t_start
    figures = {"seed": SEED, "calls": n, "seconds": round(elapsed, 1), "status_counts": dict(codes.most_common()),
               "internal": len(internal), "hangs": len(hangs), "slowest_call_s": round(slowest, 2),
               "healthy_after": health == health_pb2.HealthCheckResponse.SERVING, "first_internal": internal[:5],
               "note": "issue 13 baseline: 401 INTERNAL of 8,670 fuzzed calls"}
    write_results("fuzz", figures)
    assert not internal, internal[:5]
    assert not hangs, hangs[:5]
    assert figures["healthy_after"]

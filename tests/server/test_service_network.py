"""Network and monitoring services over a real loopback channel, real SQLite file."""

import json

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from service_util import TOKENS, make_server, put, stubs

from server.convert import timestamp
from server.generated.rivertrace.v1 import common_pb2, monitoring_pb2, network_pb2
from tracer.scenarios import ruxi_replay


def violations(err: grpc.RpcError) -> list[tuple[str, str]]:
    st = rpc_status.from_call(err)
    out = []
    for d in st.details if st else []:
        br = error_details_pb2.BadRequest()
        if d.Unpack(br):
            out += [(v.field, v.description) for v in br.field_violations]
    return out


def test_put_get_list_and_versions(service, ruxi_doc):
    _running, ch = service
    net, _mon = stubs(ch)
    r1 = put(ch, ruxi_doc)
    assert (r1.name, r1.version) == ("ruxi", 1)
    ruxi_doc["reaches"][0]["manning_n"] = 0.05
    assert put(ch, ruxi_doc).version == 2
    got = net.GetNetwork(network_pb2.GetNetworkRequest(name="ruxi", version=1), timeout=10)
    assert json.loads(got.document_json)["reaches"][0]["manning_n"] != 0.05 and got.version == 1
    assert net.GetNetwork(network_pb2.GetNetworkRequest(name="ruxi"), timeout=10).version == 2
    feats = net.ListFeatures(network_pb2.ListFeaturesRequest(name="ruxi", kind=common_pb2.FEATURE_KIND_INTAKE), timeout=10)
    assert [f.id for f in feats.features] == ["RX-INTAKE"]
    assert json.loads(feats.features[0].attributes_json)["population"] == 120000


def test_bad_network_is_refused_with_field_violations(service, ruxi_doc):
    _running, ch = service
    ruxi_doc["reaches"][2]["length_m"] = -5
    with pytest.raises(grpc.RpcError) as info:
        put(ch, ruxi_doc)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    rid = ruxi_doc["reaches"][2]["id"]
    assert (f"reaches[{rid}].length_m", "must be in (0, 1e+06] m, got -5") in violations(info.value)
    with pytest.raises(grpc.RpcError) as info:
        stubs(ch)[0].GetNetwork(network_pb2.GetNetworkRequest(name="ruxi"), timeout=10)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND  # nothing was stored


def _batches(readings, size=200, network="ruxi"):
    f = readings.frame
    for i in range(0, len(f), size):
        part = f.iloc[i:i + size]
        yield monitoring_pb2.ReadingBatch(network=network, batch_id=i // size, readings=[
            monitoring_pb2.Reading(station_id=s, parameter=p, time=timestamp(t), value=v, unit="mg/L")
            for s, p, t, v in zip(part["station_id"], part["parameter"], part["time"], part["value"])])


def test_ingest_is_acknowledged_durable_and_idempotent(service, ruxi_doc):
    running, ch = service
    put(ch, ruxi_doc)
    _net, mon = stubs(ch)
    readings = ruxi_replay().readings
    acks = list(mon.IngestReadings(_batches(readings), timeout=60))
    assert sum(a.stored for a in acks) == len(readings.frame) == running.store.count_readings("ruxi")
    again = list(mon.IngestReadings(_batches(readings), timeout=60))  # a client re-sending after a crash
    assert sum(a.stored for a in again) == 0 and sum(a.duplicates for a in again) == len(readings.frame)
    assert running.store.count_readings("ruxi") == len(readings.frame)
    got = mon.ListReadings(monitoring_pb2.ListReadingsRequest(network="ruxi", station_id="RX-OILSPOT", parameter="petroleum"), timeout=10)
    assert len(got.readings) == (readings.frame["station_id"] == "RX-OILSPOT").sum()


def test_bad_rows_are_rejected_and_the_rest_kept(service, ruxi_doc):
    running, ch = service
    put(ch, ruxi_doc)
    _net, mon = stubs(ch)
    t = timestamp(1752540000 * 10**9)
    batch = monitoring_pb2.ReadingBatch(network="ruxi", batch_id=7, readings=[
        monitoring_pb2.Reading(station_id="RX-UP", parameter="petroleum", time=t, value=0.02, unit="mg/L"),
        monitoring_pb2.Reading(station_id="NOPE", parameter="petroleum", time=t, value=0.02, unit="mg/L"),
        monitoring_pb2.Reading(station_id="RX-UP", parameter="petroleum", time=t, value=-1.0, unit="mg/L"),
        monitoring_pb2.Reading(station_id="RX-UP", parameter="unobtainium", time=t, value=1.0, unit="mg/L"),
        monitoring_pb2.Reading(station_id="RX-UP", parameter="COD", time=t, value=1.0, unit="furlongs"),
        monitoring_pb2.Reading(station_id="RX-UP", parameter="COD", value=1.0, unit="mg/L"),  # no time
        monitoring_pb2.Reading(station_id="RX-UP", parameter="DO", time=t, value=6.5, unit="mg/L"),
    ])
    (ack,) = list(mon.IngestReadings(iter([batch]), timeout=30))
    assert ack.batch_id == 7 and ack.stored == 2
    assert {p.id for p in ack.rejected} == {"#1", "#2", "#3", "#4", "#5"}
    assert running.store.count_readings("ruxi") == 2


def test_unknown_network_in_stream_is_not_found(service):
    _running, ch = service
    _net, mon = stubs(ch)
    with pytest.raises(grpc.RpcError) as info:
        list(mon.IngestReadings(iter([monitoring_pb2.ReadingBatch(network="atlantis")]), timeout=10))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_health_and_reflection(service):
    _running, ch = service
    h = health_pb2_grpc.HealthStub(ch)
    assert h.Check(health_pb2.HealthCheckRequest(service="rivertrace.v1.NetworkService"), timeout=5).status == \
        health_pb2.HealthCheckResponse.SERVING
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    stub = reflection_pb2_grpc.ServerReflectionStub(ch)
    (resp,) = list(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5))
    names = {s.name for s in resp.list_services_response.service}
    assert {"rivertrace.v1.NetworkService", "rivertrace.v1.MonitoringService", "grpc.health.v1.Health"} <= names


def test_tokens_and_roles(tmp_path, ruxi_doc):
    running = make_server(tmp_path, TOKENS)
    ch = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    try:
        with pytest.raises(grpc.RpcError) as info:
            put(ch, ruxi_doc)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as info:
            put(ch, ruxi_doc, metadata=[("authorization", "Bearer t-hub")])
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED  # the hub may not change the network
        assert put(ch, ruxi_doc, metadata=[("authorization", "Bearer t-bureau")]).version == 1
        got = stubs(ch)[0].GetNetwork(network_pb2.GetNetworkRequest(name="ruxi"), timeout=10,
                                      metadata=[("authorization", "Bearer t-hub")])
        assert got.version == 1
        # audited: who, when, what
        (t_ns, client, role, method, detail), *_ = running.store.audit_log()
        assert (client, role, method, detail) == ("duty-app", "bureau", "PutNetwork", "ruxi v1") and t_ns > 0
    finally:
        ch.close()
        running.stop(grace=1.0)

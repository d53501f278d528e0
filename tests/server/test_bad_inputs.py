"""A catalogue of bad inputs: each gets the right status and a message naming the field; afterwards
the server is healthy and its state unchanged (no half-applied write)."""

import copy
import json

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from service_util import TOKENS, make_server

from server.cli import demo_basin_path
from server.client import RivertraceClient, field_violations
from server.convert import timestamp
from server.generated.rivertrace.v1 import alerts_pb2, common_pb2, incidents_pb2, monitoring_pb2, network_pb2
from tracer.scenarios import ruxi_replay

RUXI = json.loads(demo_basin_path("ruxi").read_text(encoding="utf-8"))
T0 = timestamp(1752540000 * 10**9)
C = grpc.StatusCode


def doc_with(mutate):
    d = copy.deepcopy(RUXI)
    mutate(d)
    return json.dumps(d)


def put_doc(text):
    return lambda c: c.networks.PutNetwork(network_pb2.PutNetworkRequest(name="ruxi", document_json=text), **c._kw())


def _reach(d, i, **kw):
    d["reaches"][i].update(kw)


NETWORK_CASES = {
    "cycle": (put_doc(doc_with(lambda d: d["reaches"].append({**d["reaches"][-1], "id": "back", "from_node": d["reaches"][-1]["to_node"], "to_node": d["reaches"][-1]["from_node"]}))), C.INVALID_ARGUMENT, "cycle"),
    "dangling node": (put_doc(doc_with(lambda d: _reach(d, 0, to_node="ghost"))), C.INVALID_ARGUMENT, "to_node"),
    "duplicate reach id": (put_doc(doc_with(lambda d: d["reaches"].append(copy.deepcopy(d["reaches"][0])))), C.INVALID_ARGUMENT, "duplicate"),
    "negative length": (put_doc(doc_with(lambda d: _reach(d, 1, length_m=-3))), C.INVALID_ARGUMENT, "length_m"),
    "NaN length": (put_doc(doc_with(lambda d: _reach(d, 1, length_m=float("nan")))), C.INVALID_ARGUMENT, "length_m"),
    "string length": (put_doc(doc_with(lambda d: _reach(d, 1, length_m="3 km"))), C.INVALID_ARGUMENT, "length_m"),
    "missing length": (put_doc(doc_with(lambda d: d["reaches"][1].pop("length_m"))), C.INVALID_ARGUMENT, "length_m"),
    "zero slope": (put_doc(doc_with(lambda d: _reach(d, 2, slope=0))), C.INVALID_ARGUMENT, "slope"),
    "station off its reach": (put_doc(doc_with(lambda d: d["stations"][0].update(chainage_m=1e6))), C.INVALID_ARGUMENT, "chainage_m"),
    "station on unknown reach": (put_doc(doc_with(lambda d: d["stations"][0].update(reach="nope"))), C.INVALID_ARGUMENT, "reach"),
    "bad target class": (put_doc(doc_with(lambda d: d["stations"][0].update(target_class="VII"))), C.INVALID_ARGUMENT, "target_class"),
    "negative population": (put_doc(doc_with(lambda d: d["intakes"][0].update(population=-1))), C.INVALID_ARGUMENT, "population"),
    "no discharge anywhere": (put_doc(doc_with(lambda d: d.update(inflows=[]))), C.INVALID_ARGUMENT, "discharge_m3s"),
    "wrong format version": (put_doc(doc_with(lambda d: d.update(version=9))), C.INVALID_ARGUMENT, "version"),
    "not JSON": (put_doc("{nodes: ["), C.INVALID_ARGUMENT, "document_json"),
    "JSON array": (put_doc("[1, 2]"), C.INVALID_ARGUMENT, "document_json"),
    "empty name": (lambda c: c.networks.PutNetwork(network_pb2.PutNetworkRequest(name="", document_json=json.dumps(RUXI)), **c._kw()), C.INVALID_ARGUMENT, "name"),
    "no source": (lambda c: c.networks.PutNetwork(network_pb2.PutNetworkRequest(name="x"), **c._kw()), C.INVALID_ARGUMENT, "source"),
    "bad geopackage": (lambda c: c.networks.PutNetwork(network_pb2.PutNetworkRequest(name="x", geopackage=b"not sqlite"), **c._kw()), C.INVALID_ARGUMENT, "geopackage"),
    "unknown network": (lambda c: c.networks.GetNetwork(network_pb2.GetNetworkRequest(name="atlantis"), **c._kw()), C.NOT_FOUND, "atlantis"),
    "unknown version": (lambda c: c.networks.GetNetwork(network_pb2.GetNetworkRequest(name="ruxi", version=99), **c._kw()), C.NOT_FOUND, "version 99"),
    "features of unknown network": (lambda c: c.networks.ListFeatures(network_pb2.ListFeaturesRequest(name="atlantis"), **c._kw()), C.NOT_FOUND, "atlantis"),
    "flows: unknown reach": (lambda c: c.networks.UpdateFlows(network_pb2.UpdateFlowsRequest(name="ruxi", reach_flows=[network_pb2.ReachFlow(reach_id="nope", discharge_m3s=3)]), **c._kw()), C.INVALID_ARGUMENT, "reach_flows[0].reach_id"),
    "flows: negative": (lambda c: c.networks.UpdateFlows(network_pb2.UpdateFlowsRequest(name="ruxi", reach_flows=[network_pb2.ReachFlow(reach_id="RX-R03", discharge_m3s=-2)]), **c._kw()), C.INVALID_ARGUMENT, "reach_flows[0].discharge_m3s"),
    "flows: unknown structure": (lambda c: c.networks.UpdateFlows(network_pb2.UpdateFlowsRequest(name="ruxi", structure_releases=[network_pb2.StructureRelease(structure_id="nope", release_m3s=3)]), **c._kw()), C.INVALID_ARGUMENT, "structure_releases[0].structure_id"),
    "flows: unknown network": (lambda c: c.networks.UpdateFlows(network_pb2.UpdateFlowsRequest(name="atlantis"), **c._kw()), C.NOT_FOUND, "atlantis"),
}


def ingest_one(network="ruxi", **reading):
    r = {"station_id": "RX-UP", "parameter": "petroleum", "time": T0, "value": 0.02, "unit": "mg/L", **reading}
    r = {k: v for k, v in r.items() if v is not None}
    return lambda c: list(c.monitoring.IngestReadings(iter([monitoring_pb2.ReadingBatch(
        network=network, batch_id=1, readings=[monitoring_pb2.Reading(**r)])]), **c._kw()))


STREAM_CASES = {
    "ingest: unknown network": (ingest_one(network="atlantis"), C.NOT_FOUND, "atlantis"),
    "ingest: no network": (ingest_one(network=""), C.INVALID_ARGUMENT, "network"),
    "readings of unknown network": (lambda c: c.monitoring.ListReadings(monitoring_pb2.ListReadingsRequest(network="atlantis"), **c._kw()), C.NOT_FOUND, "atlantis"),
}
# rows refused inside an acknowledged batch: (reading fields, field named in the rejection)
ROW_CASES = {
    "unknown station": ({"station_id": "NOPE"}, "station_id"),
    "unknown parameter": ({"parameter": "unobtainium"}, "parameter"),
    "unparseable unit": ({"unit": "furlongs"}, "unit"),
    "wrong unit for the item": ({"unit": "degC"}, "unit"),
    "negative concentration": ({"value": -0.5}, "value"),
    "DO above 25 mg/L": ({"parameter": "DO", "value": 40.0}, "value"),
    "NaN value": ({"value": float("nan")}, "value"),
    "missing time": ({"time": None}, "time"),
}
INCIDENT_CASES = {
    "unknown incident": (lambda c: c.incident("nope"), C.NOT_FOUND, "nope"),
    "trace: unknown station": (lambda c: c.trace("ruxi", "NOPE", "petroleum"), C.NOT_FOUND, "NOPE"),
    "trace: nothing seen": (lambda c: c.trace("ruxi", "RX-UP", "petroleum"), C.FAILED_PRECONDITION, "nothing to trace"),
    "trace: unknown parameter": (lambda c: c.trace("ruxi", "RX-OILSPOT", "unobtainium"), C.INVALID_ARGUMENT, "unobtainium"),
    "trace: unknown network": (lambda c: c.trace("atlantis", "RX-OILSPOT", "petroleum"), C.NOT_FOUND, "atlantis"),
    "forecast: unknown discharger": (lambda c: c.forecast("ruxi", "nope", 1.0, "COD"), C.NOT_FOUND, "nope"),
    "forecast: negative mass": (lambda c: c.forecast("ruxi", "RX-FOOD-1", -1.0, "COD"), C.INVALID_ARGUMENT, "mass_kg"),
    "forecast: no pollutant": (lambda c: c.forecast("ruxi", "RX-FOOD-1", 1.0, ""), C.INVALID_ARGUMENT, "pollutant"),
    "forecast: unknown pollutant": (lambda c: c.forecast("ruxi", "RX-FOOD-1", 1.0, "unobtainium"), C.INVALID_ARGUMENT, "unobtainium"),
    "forecast: off its reach": (lambda c: c.incident_service.Forecast(incidents_pb2.ForecastRequest(network="ruxi", location=common_pb2.Location(reach_id="RX-R03", chainage_m=1e6), mass_kg=1, pollutant="COD"), **c._kw()), C.INVALID_ARGUMENT, "outside reach"),
    "forecast: unknown reach": (lambda c: c.incident_service.Forecast(incidents_pb2.ForecastRequest(network="ruxi", location=common_pb2.Location(reach_id="nope"), mass_kg=1, pollutant="COD"), **c._kw()), C.NOT_FOUND, "nope"),
    "forecast: no location": (lambda c: c.incident_service.Forecast(incidents_pb2.ForecastRequest(network="ruxi", mass_kg=1, pollutant="COD"), **c._kw()), C.INVALID_ARGUMENT, "where"),
    "plan: unknown incident": (lambda c: c.incident_service.Plan(incidents_pb2.PlanRequest(incident_id="nope"), **c._kw()), C.NOT_FOUND, "nope"),
    "action: unknown incident": (lambda c: c.update_action("nope", "a", "done"), C.NOT_FOUND, "nope"),
    "action: no status": (lambda c: c.incident_service.UpdateAction(incidents_pb2.UpdateActionRequest(incident_id="x", action_id="a"), **c._kw()), C.INVALID_ARGUMENT, "status"),
    "close: unknown incident": (lambda c: c.close_incident("nope"), C.NOT_FOUND, "nope"),
    "target: bad address": (lambda c: c.register_hub("h", grpc_address="not an address"), C.INVALID_ARGUMENT, "grpc_address"),
    "target: bad url": (lambda c: c.register_hub("h", webhook_url="ftp://hub"), C.INVALID_ARGUMENT, "webhook_url"),
    "target: no endpoint": (lambda c: c.register_hub("h"), C.INVALID_ARGUMENT, "endpoint"),
    "target: no id": (lambda c: c.register_hub("", grpc_address="127.0.0.1:1"), C.INVALID_ARGUMENT, "id"),
    "remove unknown target": (lambda c: c.alerts.RemoveTarget(alerts_pb2.RemoveTargetRequest(id="nope"), **c._kw()), C.NOT_FOUND, "nope"),
}
AUTH_CASES = {  # (token, call, code)
    "no token": (None, lambda c: c.get_network("ruxi"), C.UNAUTHENTICATED),
    "unknown token": ("guess", lambda c: c.get_network("ruxi"), C.UNAUTHENTICATED),
    "hub changes the network": ("t-hub", lambda c: c.put_network("ruxi", RUXI), C.PERMISSION_DENIED),
    "hub ingests readings": ("t-hub", ingest_one(), C.PERMISSION_DENIED),
    "hub traces": ("t-hub", lambda c: c.trace("ruxi", "RX-OILSPOT", "petroleum"), C.PERMISSION_DENIED),
    "bureau registers a hub": ("t-bureau", lambda c: c.register_hub("h", grpc_address="127.0.0.1:1"), C.PERMISSION_DENIED),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = make_server(tmp_path_factory.mktemp("bad"), TOKENS)
    with RivertraceClient(f"127.0.0.1:{running.port}", token="t-admin", max_message_mb=8) as admin:
        admin.put_network("ruxi", RUXI)
        frame = ruxi_replay().readings.frame.assign(unit="mg/L")
        admin.ingest("ruxi", frame)
        running.pipeline.wait_idle(60)
        yield running, admin
    running.stop(grace=1.0)


def _state(running):
    st = running.store
    return (st._reader().execute("SELECT COUNT(*), MAX(version) FROM networks").fetchone(), st.count_readings(),
            len(running.outbox.targets()), len(running.outbox.incidents()))


ALL = {**NETWORK_CASES, **STREAM_CASES, **INCIDENT_CASES}


def test_catalogue_size():
    assert len(ALL) + len(ROW_CASES) + len(AUTH_CASES) + 2 >= 50  # + oversize + deadline


@pytest.mark.parametrize("name", list(ALL))
def test_bad_request_gets_the_right_status_and_names_the_field(server, name):
    running, admin = server
    before = _state(running)
    call, code, text = ALL[name]
    with pytest.raises(grpc.RpcError) as info:
        call(admin)
    err = info.value
    assert err.code() == code, (err.code(), err.details())
    named = err.details() + " " + " ".join(f"{f} {d}" for f, d in field_violations(err))
    assert text in named, named
    assert _state(running) == before  # nothing half-applied
    assert err.code() != C.INTERNAL


@pytest.mark.parametrize("name", list(ROW_CASES))
def test_bad_row_is_rejected_by_field_and_the_rest_kept(server, name):
    running, admin = server
    fields, field = ROW_CASES[name]
    before = running.store.count_readings()
    good = {"station_id": "RX-UP", "parameter": "petroleum", "value": 0.02, "unit": "mg/L"}
    bad = {**good, "time": timestamp(1752540000 * 10**9 + 7), **fields}
    batch = monitoring_pb2.ReadingBatch(network="ruxi", batch_id=3, readings=[
        monitoring_pb2.Reading(**{k: v for k, v in bad.items() if v is not None}),
        monitoring_pb2.Reading(**good, time=timestamp(1752540000 * 10**9 + hash(name) % 10**6 * 1000 + 11))])
    (ack,) = list(admin.monitoring.IngestReadings(iter([batch]), **admin._kw()))
    assert [(p.id, p.field) for p in ack.rejected] == [("#0", field)]
    assert ack.stored == 1 and running.store.count_readings() == before + 1


@pytest.mark.parametrize("name", list(AUTH_CASES))
def test_unauthenticated_and_wrong_roles(server, name):
    running, _admin = server
    token, call, code = AUTH_CASES[name]
    before = _state(running)
    with RivertraceClient(f"127.0.0.1:{running.port}", token=token) as c, pytest.raises(grpc.RpcError) as info:
        call(c)
    assert info.value.code() == code
    assert _state(running) == before


def test_oversize_message_and_deadline(server):
    _running, admin = server
    huge = copy.deepcopy(RUXI)
    huge["notes"] = "x" * (5 << 20)  # the test server accepts 4 MB
    with pytest.raises(grpc.RpcError) as info:
        admin.put_network("ruxi", huge)
    assert info.value.code() == C.RESOURCE_EXHAUSTED
    with pytest.raises(grpc.RpcError) as info:
        admin.incident_service.Trace(incidents_pb2.TraceRequest(network="ruxi", station_id="RX-OILSPOT", parameter="petroleum"),
                                     timeout=0.0001, metadata=admin.metadata)
    assert info.value.code() == C.DEADLINE_EXCEEDED


def test_still_healthy_afterwards(server):
    _running, admin = server
    h = health_pb2_grpc.HealthStub(admin.channel)
    assert h.Check(health_pb2.HealthCheckRequest(), timeout=5).status == health_pb2.HealthCheckResponse.SERVING
    assert admin.get_network("ruxi")["name"].startswith("Ruxi")

"""Faults of the store and oversized errors (issue 13): a full disk is RESOURCE_EXHAUSTED, a store
that cannot write is UNAVAILABLE and turns health NOT_SERVING until it can write again; an error
listing hundreds of problems always fits the gRPC trailer and names the first fields."""

import copy
import json

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from service_util import wait_for

from server import app as app_module
from server.app import create_server
from server.cli import demo_basin_path
from server.client import RivertraceClient, field_violations
from server.config import Config
from server.convert import timestamp
from server.errors import MAX_DETAILS_BYTES, capped_details
from server.generated.rivertrace.v1 import monitoring_pb2

RUXI = json.loads(demo_basin_path("ruxi").read_text(encoding="utf-8"))
#: the health probe period in these tests [s] (5 s in service); health follows within two periods
PROBE_S = 0.2


@pytest.fixture
def running(tmp_path, monkeypatch):
    monkeypatch.setattr(app_module, "HEALTH_PROBE_S", PROBE_S)
    r = create_server(Config(db=tmp_path / "rt.db", port=0), deliver=False)
    r.server.start()
    with RivertraceClient(f"127.0.0.1:{r.port}") as c:
        c.put_network("ruxi", RUXI)
    yield r
    r.stop(grace=1.0)


def health(r):
    with grpc.insecure_channel(f"127.0.0.1:{r.port}") as ch:
        return health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5).status




def batch(i, n=2000):
    return monitoring_pb2.ReadingBatch(network="ruxi", batch_id=i, readings=[monitoring_pb2.Reading(
        station_id="RX-UP", parameter="COD", time=timestamp((1752540000 + i * 100000 + k) * 10**9), value=3.0, unit="mg/L")
        for k in range(n)])


def test_a_full_disk_is_resource_exhausted_and_health_recovers(running):
    writer = running.store._writer
    pages = writer.execute("PRAGMA page_count").fetchone()[0]
    with running.store._lock:
        writer.execute(f"PRAGMA max_page_count = {pages}")  # the file cannot grow: SQLite reports SQLITE_FULL
    with RivertraceClient(f"127.0.0.1:{running.port}") as c:
        with pytest.raises(grpc.RpcError) as info:
            list(c.monitoring.IngestReadings(iter([batch(1)]), **c._kw()))
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "disk full" in info.value.details()
        assert health(running) == health_pb2.HealthCheckResponse.NOT_SERVING
        assert c.get_network("ruxi")["name"]  # reads still answer
        with running.store._lock:
            writer.execute("PRAGMA max_page_count = 1073741823")
        assert wait_for(lambda: health(running) == health_pb2.HealthCheckResponse.SERVING, 20 * PROBE_S + 5)
        (ack,) = list(c.monitoring.IngestReadings(iter([batch(2)]), **c._kw()))
        assert ack.stored == 2000


def test_a_store_that_cannot_write_is_unavailable_and_not_serving(running):
    with running.store._lock:
        running.store._writer.execute("PRAGMA query_only = 1")  # every write now fails as on a read-only file
    # the probe notices without any client write
    assert wait_for(lambda: health(running) == health_pb2.HealthCheckResponse.NOT_SERVING, 20 * PROBE_S + 5)
    with RivertraceClient(f"127.0.0.1:{running.port}") as c:
        with pytest.raises(grpc.RpcError) as info:
            c.put_network("ruxi", RUXI)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE and "read-only" in info.value.details()
        with running.store._lock:
            running.store._writer.execute("PRAGMA query_only = 0")
        assert wait_for(lambda: health(running) == health_pb2.HealthCheckResponse.SERVING, 20 * PROBE_S + 5)
        assert c.put_network("ruxi", RUXI).version == 2


@pytest.mark.parametrize("n_errors,id_chars", [(200, 8), (600, 60), (1200, 120)])
def test_hundreds_of_errors_fit_the_trailer_and_name_the_first_fields(running, n_errors, id_chars):
    """The testers saw RESOURCE_EXHAUSTED on 10-23 % of calls once a document had 200+ errors.
    Reach ids in Chinese make each violation 3 bytes per character (and 9 when percent-encoded)."""
    doc = copy.deepcopy(RUXI)
    template = doc["reaches"][0]
    doc["reaches"] += [{**template, "id": f"{'河段' * (id_chars // 2)}{i}", "length_m": -1.0} for i in range(n_errors)]
    with RivertraceClient(f"127.0.0.1:{running.port}") as c:
        for _ in range(3):  # the failure was intermittent (10-23 %); every try must pass
            with pytest.raises(grpc.RpcError) as info:
                c.put_network("big-errors", doc)
            err = info.value
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.code()
            v = field_violations(err)
            assert v[0][0].endswith("].length_m") and v[-1][0] == "(more)" and "more violation" in v[-1][1]
            assert "length_m" in err.details()


def test_capped_details_keep_the_first_fields_within_budget():
    viol = [(f"reaches[{'x' * 500}{i}].length_m", "y" * 5000) for i in range(1000)]
    br = capped_details(viol)
    assert br.ByteSize() <= MAX_DETAILS_BYTES
    assert br.field_violations[0].field.startswith("reaches[xxx") and br.field_violations[-1].field == "(more)"
    assert "of 1000" in br.field_violations[-1].description

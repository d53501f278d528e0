"""Trace and Forecast in worker processes (server.compute), over gRPC on loopback with a real SQLite file.

Reference: the same computation in the test's own process (server.compute.trace_call / forecast_call on
the same file), which shares no process, cache or pickling with the server's workers: the answers must be
identical. A worker killed with SIGKILL fails at most the call it was running, with UNAVAILABLE (never
INTERNAL), and the next call is served by fresh workers.
"""

import os
import signal

import grpc
import pytest
from service_util import put
from test_pipeline_alerts import ingest

from server.app import create_server
from server.compute import forecast_call, trace_call
from server.config import Config
from server.generated.rivertrace.v1 import incidents_pb2, incidents_pb2_grpc
from server.servicers import Networks
from server.storage import Store
from tracer.scenarios import ruxi_replay


@pytest.fixture(scope="module")
def pooled(tmp_path_factory, ruxi_doc_module):
    db = tmp_path_factory.mktemp("pool") / "rt.db"
    running = create_server(Config(db=db, port=0, compute_processes=True), deliver=False)
    running.server.start()
    ch = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    put(ch, ruxi_doc_module)
    ingest(ch, ruxi_replay(), "ruxi")
    assert running.pipeline.wait_idle(120)
    yield running, incidents_pb2_grpc.IncidentServiceStub(ch), db
    ch.close()
    running.stop(grace=1.0)


@pytest.fixture(scope="module")
def ruxi_doc_module():
    import json

    from server.cli import demo_basin_path

    return json.loads(demo_basin_path("ruxi").read_text(encoding="utf-8"))


def test_a_trace_in_a_worker_process_equals_the_trace_in_this_process(pooled):
    running, stub, db = pooled
    got = stub.Trace(incidents_pb2.TraceRequest(network="ruxi", station_id="RX-OILSPOT", parameter="petroleum"), timeout=120)
    store = Store(db)
    try:
        res, _sep = trace_call(store, Networks(store), "ruxi", 0, "RX-OILSPOT", "petroleum", 72 * 3600.0, 25.0)
    finally:
        store.close()
    assert [c.id for c in got.candidates] == [c.id for c in res.candidates][:len(got.candidates)]
    for g, r in zip(got.candidates, res.candidates, strict=False):
        assert g.probability == pytest.approx(r.probability, rel=1e-12, abs=1e-15)
    assert running.extras["compute"]._pool is not None  # it ran in the pool, not in the servicer's thread


def test_a_forecast_in_a_worker_process_equals_the_forecast_in_this_process(pooled):
    from hydrology.pollutants import pollutant
    from hydrology.transport.analytic import Release
    from server.convert import to_datetime

    _running, stub, db = pooled
    req = incidents_pb2.ForecastRequest(network="ruxi", discharger_id="RX-FOOD-1", mass_kg=80.0, pollutant="petroleum",
                                        bands=True)
    req.start.FromSeconds(1752541200)
    got = {r.id: r for r in stub.Forecast(req, timeout=120).receptors}
    store = Store(db)
    try:
        nets = Networks(store)
        plant = nets.get("ruxi")[1].dischargers["RX-FOOD-1"]
        rel = Release(plant.reach, plant.chainage_m, pollutant("petroleum"), mass_kg=80.0, start=to_datetime(req.start))
        fc, bands = forecast_call(nets, "ruxi", 0, rel, None, True)
    finally:
        store.close()
    assert set(got) == {r.id for r in fc.receptors}
    for r in fc.receptors:
        assert got[r.id].peak_mg_l == pytest.approx(r.peak_g_m3, rel=1e-12)
        assert got[r.id].HasField("band") == (r.id in bands.receptors)


def test_a_killed_worker_fails_at_most_one_call_with_unavailable_and_the_next_is_served(pooled):
    running, stub, _db = pooled
    req = incidents_pb2.TraceRequest(network="ruxi", station_id="RX-OILSPOT", parameter="petroleum")
    stub.Trace(req, timeout=120)  # workers up
    pool = running.extras["compute"]._pool
    for pid in list(pool._processes):
        os.kill(pid, signal.SIGKILL)
    codes = []
    for _ in range(3):
        try:
            stub.Trace(req, timeout=120)
            codes.append(grpc.StatusCode.OK)
            break
        except grpc.RpcError as err:
            codes.append(err.code())
    assert codes[-1] == grpc.StatusCode.OK, codes
    assert set(codes[:-1]) <= {grpc.StatusCode.UNAVAILABLE}, codes
    assert len(codes) <= 2, codes

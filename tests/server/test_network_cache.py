"""Everything derived from a network is computed once per version (issue 13): PutNetwork hands its
validated network to the cache, screening reuses the station neighbourhoods until a new version
is stored, and GetNetwork serves the stored text."""

import json

import pytest
from service_util import make_server

from server import pipeline as pipeline_module
from server import servicers as servicers_module
from server.cli import demo_basin_path
from server.client import RivertraceClient
from server.generated.rivertrace.v1 import network_pb2

RUXI_TEXT = demo_basin_path("ruxi").read_text(encoding="utf-8")


@pytest.fixture
def counted(monkeypatch):
    calls = {"station_contexts": 0, "parse": 0}
    real_contexts, real_parse = pipeline_module.station_contexts, servicers_module.network_from_document

    def contexts(net):
        calls["station_contexts"] += 1
        return real_contexts(net)

    def parse(doc):
        calls["parse"] += 1
        return real_parse(doc)

    monkeypatch.setattr(pipeline_module, "station_contexts", contexts)
    monkeypatch.setattr(servicers_module, "network_from_document", parse)
    return calls


def test_derived_tables_once_per_version_and_no_second_parse(tmp_path, counted):
    running = make_server(tmp_path)
    try:
        with RivertraceClient(f"127.0.0.1:{running.port}") as c:
            c.put_network("ruxi", json.loads(RUXI_TEXT))
            assert running.pipeline.wait_prepared()  # the background preparation after the put is done
            for _ in range(3):
                running.pipeline.run_once("ruxi")
            assert counted == {"station_contexts": 1, "parse": 0}  # put's own network is used; tables kept
            c.put_network("ruxi", json.loads(RUXI_TEXT))  # a new version: its own tables
            assert running.pipeline.wait_prepared()  # else it may still be parsing when the cache is cleared below
            for _ in range(2):
                running.pipeline.run_once("ruxi")
            assert counted["station_contexts"] == 2
            running.networks._cache.clear()  # e.g. after a restart: parsed once from the store
            running.pipeline.run_once("ruxi")
            running.pipeline.run_once("ruxi")
            assert counted == {"station_contexts": 3, "parse": 1}
    finally:
        running.stop(grace=1.0)


def test_get_network_serves_the_stored_text(tmp_path):
    running = make_server(tmp_path)
    try:
        with RivertraceClient(f"127.0.0.1:{running.port}") as c:
            c.networks.PutNetwork(network_pb2.PutNetworkRequest(name="ruxi", document_json=RUXI_TEXT), **c._kw())
            got = c.networks.GetNetwork(network_pb2.GetNetworkRequest(name="ruxi"), **c._kw())
            assert got.document_json == RUXI_TEXT and got.version == 1
    finally:
        running.stop(grace=1.0)


def test_put_network_prepares_screening_in_the_background(tmp_path, counted):
    """The first ingest after PutNetwork should not pay for the station neighbourhoods (1.7 CPU-s at 100k
    reaches, issue 13): PutNetwork starts computing them for the new version, with no reading stored."""
    from service_util import wait_for

    running = make_server(tmp_path)
    try:
        with RivertraceClient(f"127.0.0.1:{running.port}") as c:
            version = c.put_network("ruxi", json.loads(RUXI_TEXT)).version
            assert wait_for(lambda: "station_contexts" in running.networks._cache[("ruxi", version)][1], timeout=30)
            assert counted["station_contexts"] == 1
            running.pipeline.run_once("ruxi")
            assert counted["station_contexts"] == 1
    finally:
        running.stop(grace=1.0)


def test_readings_stored_but_never_screened_are_screened_at_the_next_start(tmp_path):
    """Issue 12: after SIGKILL right after an ingest acknowledgement, the acknowledged readings were never
    screened (the trigger lived in memory). Here the readings go into the store with no trigger at all, as a
    crash between the commit and the screening leaves them; the next start screens them."""
    from server.storage import Store
    from tracer.scenarios import ruxi_replay

    running = make_server(tmp_path)
    try:
        with RivertraceClient(f"127.0.0.1:{running.port}") as c:
            c.put_network("ruxi", json.loads(RUXI_TEXT))
            assert running.pipeline.wait_idle(60)
    finally:
        running.stop(grace=1.0)
    f = ruxi_replay().readings.frame
    store = Store(tmp_path / "rt.db")
    store.add_readings("ruxi", [(s, p, int(t.value), float(v), None)
                                for s, p, t, v in zip(f["station_id"], f["parameter"], f["time"], f["value"])])
    store.close()
    running = make_server(tmp_path)
    try:
        assert running.pipeline.wait_idle(60)
        with RivertraceClient(f"127.0.0.1:{running.port}") as c:
            ids = [i.id for i in c.incidents("ruxi")]
            assert len(ids) == 1 and ids[0].startswith("ruxi:RX-OILSPOT/petroleum/")
    finally:
        running.stop(grace=1.0)

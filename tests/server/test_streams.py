"""Open streams never starve unary calls (issue 13): many watchers and idle ingest streams are open
over real loopback channels while Health and GetNetwork are probed; streams beyond a role's share
are refused at once; idle ingest streams and silent connections are closed."""

import json
import queue
import socket
import statistics
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server import app as app_module
from server.app import create_server
from server.cli import demo_basin_path
from server.config import Client, Config
from server.convert import timestamp
from server.generated.rivertrace.v1 import (
    incidents_pb2,
    incidents_pb2_grpc,
    monitoring_pb2,
    monitoring_pb2_grpc,
    network_pb2,
    network_pb2_grpc,
)

TOKENS = {"t-admin": Client("ops", "admin"), "t-bureau": Client("duty-app", "bureau"), "t-hub": Client("city-hub", "hub")}
RUXI = demo_basin_path("ruxi").read_text(encoding="utf-8")
#: a probe answers within this long while the streams are open [s]. The old server answered 0 of 8
#: probes in 20 s with 16 streams; on an idle machine a probe takes a few ms, so 2 s leaves room for
#: a CI box whose 2 cores are shared with other jobs and still fails at once if probes queue behind streams.
PROBE_BUDGET_S = 2.0


def _md(token):
    return [("authorization", f"Bearer {token}")]


def _wait(pred, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def open_streams(running, n_watch, n_ingest, n_channels=8):
    """Open watchers (hub token) and idle ingest streams (bureau token) over several channels."""
    channels = [grpc.insecure_channel(f"127.0.0.1:{running.port}") for _ in range(n_channels)]
    calls, feeds = [], []
    for i in range(n_watch):
        stub = incidents_pb2_grpc.IncidentServiceStub(channels[i % n_channels])
        calls.append(stub.WatchIncidents(incidents_pb2.WatchIncidentsRequest(network="ruxi"), metadata=_md("t-hub"), timeout=600))
    for i in range(n_ingest):
        feed: queue.Queue = queue.Queue()
        feeds.append(feed)
        stub = monitoring_pb2_grpc.MonitoringServiceStub(channels[i % n_channels])
        calls.append(stub.IngestReadings(iter(feed.get, None), metadata=_md("t-bureau"), timeout=600))
    return channels, calls, feeds


def close_streams(channels, calls, feeds):
    for f in feeds:
        f.put(None)
    for c in calls:
        c.cancel()
    for ch in channels:
        ch.close()


def probe(port, n, ingest=False):
    """n Health checks and n GetNetwork calls (and with ``ingest`` n one-reading ingest streams) on a
    fresh channel; their latencies [s] (raises on any failure)."""
    lat = []
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        health = health_pb2_grpc.HealthStub(ch)
        nets = network_pb2_grpc.NetworkServiceStub(ch)
        mon = monitoring_pb2_grpc.MonitoringServiceStub(ch)
        for i in range(n):
            if ingest:
                batch = monitoring_pb2.ReadingBatch(network="ruxi", batch_id=i, readings=[monitoring_pb2.Reading(
                    station_id="RX-UP", parameter="COD", time=timestamp((1752540000 + 60 * i) * 10**9), value=3.0, unit="mg/L")])
                t = time.perf_counter()
                (ack,) = list(mon.IngestReadings(iter([batch]), metadata=_md("t-bureau"), timeout=10))
                assert ack.stored == 1
                lat.append(time.perf_counter() - t)
            t = time.perf_counter()
            assert health.Check(health_pb2.HealthCheckRequest(), timeout=10).status == health_pb2.HealthCheckResponse.SERVING
            lat.append(time.perf_counter() - t)
            t = time.perf_counter()
            assert nets.GetNetwork(network_pb2.GetNetworkRequest(name="ruxi"), metadata=_md("t-bureau"), timeout=10).version == 1
            lat.append(time.perf_counter() - t)
    return lat


def serve(tmp_path, **kw):
    cfg = Config(db=tmp_path / "rt.db", port=0, tokens=TOKENS, **kw)
    running = create_server(cfg, deliver=False)
    running.server.start()
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as ch:
        network_pb2_grpc.NetworkServiceStub(ch).PutNetwork(network_pb2.PutNetworkRequest(name="ruxi", document_json=RUXI),
                                                           metadata=_md("t-admin"), timeout=30)
    return running


def run_with_streams(tmp_path, n_watch, n_ingest, n_probes=8):
    """Open the streams, check the server holds them all, probe (Health, GetNetwork, ingest); returns figures."""
    running = serve(tmp_path)
    channels, calls, feeds = open_streams(running, n_watch, n_ingest)
    try:
        slots = running.extras["slots"]
        # every stream has reached its handler and holds a slot: the probes really run beside them
        assert _wait(lambda: slots.open_count() == n_watch + n_ingest, 120), slots.open_count()
        lat = probe(running.port, n_probes, ingest=True)
        # nothing was dropped to make room (the probes' own ingest streams have ended)
        assert _wait(lambda: slots.open_count() == n_watch + n_ingest, 10)
    finally:
        close_streams(channels, calls, feeds)
        running.stop(grace=1.0)
    return {"watchers": n_watch, "idle_ingest_streams": n_ingest, "probes": len(lat),
            "probe_median_ms": round(statistics.median(lat) * 1e3, 1), "probe_max_ms": round(max(lat) * 1e3, 1)}


def test_unary_calls_answer_while_100_watchers_and_30_idle_ingest_streams_are_open(tmp_path):
    figures = run_with_streams(tmp_path, 100, 30)
    print(figures)
    assert figures["probe_max_ms"] <= PROBE_BUDGET_S * 1e3, figures


def test_streams_beyond_a_roles_share_are_refused_and_unary_calls_still_answer(tmp_path):
    running = serve(tmp_path, stream_roles={"admin": 10, "bureau": 10, "hub": 5, "modeller": 0})
    channels, calls, feeds = open_streams(running, 5, 0)
    try:
        assert _wait(lambda: running.extras["slots"].open_count() == 5, 30)
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as ch:
            extra = incidents_pb2_grpc.IncidentServiceStub(ch).WatchIncidents(
                incidents_pb2.WatchIncidentsRequest(), metadata=_md("t-hub"), timeout=10)
            with pytest.raises(grpc.RpcError) as info:
                next(iter(extra))
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "role 'hub'" in info.value.details()
            # another role still has its own share
            other = incidents_pb2_grpc.IncidentServiceStub(ch).WatchIncidents(
                incidents_pb2.WatchIncidentsRequest(), metadata=_md("t-bureau"), timeout=10)
            assert _wait(lambda: running.extras["slots"].open_count() == 6, 30)
            other.cancel()
        assert max(probe(running.port, 4)) <= PROBE_BUDGET_S
    finally:
        close_streams(channels, calls, feeds)
        running.stop(grace=1.0)


def test_a_silent_ingest_stream_is_closed_and_its_slot_freed(tmp_path):
    running = serve(tmp_path, idle_ingest_s=1.0)
    channels, calls, feeds = open_streams(running, 0, 2)
    try:
        slots = running.extras["slots"]
        assert _wait(lambda: slots.open_count() == 2, 30)
        # idle for 1 s, checked every 1 s by the reaper: closed within ~2 s; 15 s is for a loaded CI box
        assert _wait(lambda: slots.open_count() == 0, 15), slots.open_count()
        with pytest.raises(grpc.RpcError) as info:
            list(calls[0])
        assert info.value.code() == grpc.StatusCode.CANCELLED
    finally:
        close_streams(channels, calls, feeds)
        running.stop(grace=1.0)


def test_a_connection_that_never_speaks_http2_is_closed(tmp_path, monkeypatch):
    monkeypatch.setattr(app_module, "HANDSHAKE_TIMEOUT_MS", 1000)
    running = serve(tmp_path)
    try:
        with socket.create_connection(("127.0.0.1", running.port), timeout=15) as s:
            s.sendall(b"PRI * HTTP/2.0\r\n")  # a slow-loris client: half a preface, then silence
            t = time.monotonic()
            # the server closes the socket after the 1 s handshake timeout; recv returns b"" (closed)
            # or raises a reset. Without the option gRPC waits 120 s (our default is 10 s), so < 8 s
            # shows the option is applied, with 7 s of slack for a loaded machine.
            try:
                while s.recv(1024):
                    pass
            except ConnectionResetError:
                pass
            assert time.monotonic() - t < 8
        assert max(probe(running.port, 2)) <= PROBE_BUDGET_S
    finally:
        running.stop(grace=1.0)


def test_stream_capacity_is_part_of_the_config():
    with pytest.raises(Exception) as info:
        Config(max_streams=0).check()
    assert "max_streams" in str(info.value)
    assert json.loads(RUXI)["reaches"]  # the fixture network used above is the demo basin


def test_heavy_calls_wait_for_a_compute_slot_and_reads_do_not(tmp_path, monkeypatch):
    import threading

    from server import compute

    release, started = threading.Event(), threading.Event()
    real = compute.forecast

    def slow_forecast(*a, **kw):
        started.set()
        release.wait(30)
        return real(*a, **kw)

    monkeypatch.setattr(compute, "forecast", slow_forecast)
    running = serve(tmp_path, heavy_calls=1, compute_processes=False)  # in-process: the patch must reach it
    req = incidents_pb2.ForecastRequest(network="ruxi", discharger_id="RX-FOOD-1", mass_kg=10.0, pollutant="COD")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as ch:
            stub = incidents_pb2_grpc.IncidentServiceStub(ch)
            first = stub.Forecast.future(req, metadata=_md("t-bureau"), timeout=30)
            assert started.wait(10)  # the first forecast holds the only compute slot
            with pytest.raises(grpc.RpcError) as info:
                stub.Forecast(req, metadata=_md("t-bureau"), timeout=1.0)  # waits for the slot until its deadline
            assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert max(probe(running.port, 2)) <= PROBE_BUDGET_S  # reads do not wait for compute slots
            release.set()
            assert len(first.result().receptors) > 0
            assert len(stub.Forecast(req, metadata=_md("t-bureau"), timeout=30).receptors) > 0  # the slot is free again
    finally:
        release.set()
        running.stop(grace=1.0)

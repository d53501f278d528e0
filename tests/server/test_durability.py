"""Kill the server (SIGKILL) during a readings stream, restart it: every acknowledged reading is
there, nothing is duplicated, and a client re-sending everything is told which were duplicates."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from service_util import put, stubs

from server.convert import timestamp
from server.generated.rivertrace.v1 import monitoring_pb2
from server.storage import Store

ROOT = Path(__file__).resolve().parents[2]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(db, port):
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--db", str(db), "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
    ch = grpc.insecure_channel(f"127.0.0.1:{port}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                return proc, ch
        except grpc.RpcError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("server did not become healthy in 30 s")


def _batches(n_batches, per=500, pause=0.02):
    t0 = 1752540000 * 10**9
    for b in range(n_batches):
        yield monitoring_pb2.ReadingBatch(network="ruxi", batch_id=b, readings=[
            monitoring_pb2.Reading(station_id="RX-MID", parameter="petroleum", time=timestamp(t0 + (b * per + i) * 10**9),
                                   value=0.01 + i * 1e-6, unit="mg/L") for i in range(per)])
        time.sleep(pause)


def test_sigkill_during_ingest_loses_no_acknowledged_reading(tmp_path, ruxi_doc):
    db, port = tmp_path / "rt.db", _free_port()
    proc, ch = _start(db, port)
    put(ch, ruxi_doc)
    acked = []

    def stream():
        try:
            for ack in stubs(ch)[1].IngestReadings(_batches(400), timeout=60):
                acked.append(ack)  # noqa: PERF402 - must hold the acks received before the kill
        except grpc.RpcError:
            pass  # the server died under us: expected

    th = threading.Thread(target=stream)
    th.start()
    while len(acked) < 20 and th.is_alive():
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    th.join(30)
    ch.close()
    assert 20 <= len(acked) < 400, "the kill must land mid-stream"
    n_acked = sum(a.stored for a in acked)

    proc, ch = _start(db, port)
    try:
        store = Store(db)
        have = store.count_readings("ruxi")
        assert have >= n_acked  # every acknowledged reading survived (a batch in flight may also have landed)
        assert have % 500 == 0  # batches are all-or-nothing
        acked_ids = {a.batch_id for a in acked}
        rows = store.readings("ruxi", "RX-MID", "petroleum")
        assert len({r[2] for r in rows}) == len(rows)  # no duplicates
        t_max = 1752540000 * 10**9 + (max(acked_ids) * 500 + 499) * 10**9
        assert sum(1 for r in rows if r[2] <= t_max) == (max(acked_ids) + 1) * 500
        resent = list(stubs(ch)[1].IngestReadings(_batches(400, pause=0), timeout=120))
        assert sum(a.duplicates for a in resent) == have and sum(a.stored for a in resent) == 400 * 500 - have
        store.close()
    finally:
        ch.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0  # graceful shutdown on SIGTERM

"""Kill the server (SIGKILL) while a monitor uploads over HJ 212, restart it: every packet the gateway
acknowledged (CN 9014) is on disk, nothing is stored twice, and the monitor's resend of everything is
answered again and stored once."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import grpc
import pandas as pd
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hj212_encoder import Monitor, frame, parse_answer, segment, values_cp

from server.cli import demo_basin_path
from server.storage import Store

ROOT = Path(__file__).resolve().parents[2]
MN = "010000A8900016F000169DC0"
N_PACKETS = 400


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(db, port, hj_port):
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--db", str(db), "--port", str(port),
                             "--hj212-port", str(hj_port)], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
    ch = grpc.insecure_channel(f"127.0.0.1:{port}")
    deadline = time.monotonic() + 30   # 30 s: importing the science stack on a busy 2-core machine
    while time.monotonic() < deadline:
        try:
            if health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                ch.close()
                return proc
        except grpc.RpcError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("server did not become healthy in 30 s")


def _packet(i):
    """Packet i: DO at 08:00 + i minutes (China Standard Time), value 5 + i/1000 mg/L."""
    t = pd.Timestamp("2025-07-15 08:00") + pd.Timedelta(minutes=i)
    return frame(segment("2011", MN, values_cp(t.strftime("%Y%m%d%H%M%S"), {"w01009": (f"{5 + i / 1000:.3f}", "N")}),
                         qn=t.strftime("%Y%m%d%H%M%S") + f"{i % 1000:03d}"))


def _utc_ns(i):
    t = datetime(2025, 7, 15, 8, 0) + pd.Timedelta(minutes=i)
    return int(pd.Timestamp(t).tz_localize("Asia/Shanghai").value)


def test_sigkill_during_hj212_upload_loses_no_acknowledged_packet(tmp_path):
    db, port, hj_port = tmp_path / "rt.db", _free_port(), _free_port()
    doc = json.loads(demo_basin_path("ruxi").read_text(encoding="utf-8"))
    next(s for s in doc["stations"] if s["id"] == "RX-MID")["hj212_mn"] = MN
    store = Store(db)
    store.put_network("ruxi", doc)   # before the server starts: the gateway reads it from the file
    store.close()
    proc = _start(db, port, hj_port)
    acked: list[int] = []

    def upload():
        m = Monitor(hj_port)
        try:
            for i in range(N_PACKETS):
                m.send(_packet(i))
                reply = m.recv_packet()
                if reply is None:
                    return               # the server died under us: expected
                assert parse_answer(reply)["CN"] == "9014"
                acked.append(i)
        except OSError:
            pass                         # connection reset by the kill
        finally:
            m.close()

    th = threading.Thread(target=upload)
    th.start()
    while len(acked) < 30 and th.is_alive():
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    th.join(30)
    assert 30 <= len(acked) < N_PACKETS, "the kill must land mid-upload"

    store = Store(db)
    rows = store.readings("ruxi", "RX-MID", "DO")
    times = {r[2] for r in rows}
    assert len(times) == len(rows)                                  # no duplicates
    assert all(_utc_ns(i) in times for i in acked)                  # every acknowledged packet survived
    assert len(rows) in (len(acked), len(acked) + 1)                # at most the one in flight besides
    assert {r[2]: r[3] for r in rows}[_utc_ns(acked[-1])] == 5 + acked[-1] / 1000
    have = len(rows)
    store.close()

    proc = _start(db, port, hj_port)
    try:
        m = Monitor(hj_port)
        try:
            for i in range(N_PACKETS):   # the data logger resends everything
                m.send(_packet(i))
                assert parse_answer(m.recv_packet())["CN"] == "9014"
        finally:
            m.close()
        store = Store(db)
        assert store.count_readings("ruxi") == N_PACKETS
        audit = [r for r in store.audit_log(10 * N_PACKETS) if r[3] == "HJ212/CN2011"]
        assert len(audit) == have + N_PACKETS                        # every stored packet was audited
        store.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0   # graceful shutdown on SIGTERM, gateway included

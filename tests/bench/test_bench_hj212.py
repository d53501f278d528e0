"""HJ 212 gateway throughput (issue 14). Not in CI: `python -m pytest -m bench -s tests/bench/test_bench_hj212.py`.

The real service (create_server with the gateway and the automatic pipeline) on 127.0.0.1, the Ruxi
demo basin with an MN on each of its 4 stations. Each packet is a CN 2011 real-time upload of 7
parameters (DO, NH3-N, COD, CODMn, TP, water temperature, pH) with Flag 5, and each monitor waits for
the 9014 answer (given only once the packet is committed and fsync'd) before sending the next, as a
data logger does. Reported: packets and readings per second, median of 3 runs, for 1 monitor and
for 16 monitors on parallel connections. Writes tests/bench/results/hj212.json.
"""

import json
import os
import platform
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from hj212_encoder import Monitor, frame, parse_answer, segment, values_cp

from server.app import create_server
from server.cli import demo_basin_path
from server.config import Config

pytestmark = pytest.mark.bench
RESULTS = Path(__file__).parent / "results"
STATIONS = ("RX-UP", "RX-OILSPOT", "RX-MID", "RX-DOWN")
RUNS = 3


def _mn(station):
    return f"BENCH{STATIONS.index(station):019d}"


def _packets(station, first, n):
    out = []
    for i in range(first, first + n):
        t = pd.Timestamp("2025-01-01 00:00") + pd.Timedelta(seconds=30 * i)
        values = {"w01009": ("7.12", "N"), "w21003": ("0.412", "N"), "w01018": ("14.8", "N"), "w01019": ("3.9", "N"),
                  "w21011": ("0.081", "N"), "w01010": ("21.4", "N"), "w01001": ("7.45", "N")}
        out.append(frame(segment("2011", _mn(station), values_cp(t.strftime("%Y%m%d%H%M%S"), values),
                                 qn=t.strftime("%Y%m%d%H%M%S") + "000")))
    return out


def _run(port, n_monitors, per_monitor, offset):
    work = [_packets(STATIONS[k % 4], offset + k * per_monitor, per_monitor) for k in range(n_monitors)]
    errors = []

    def monitor(packets):
        m = Monitor(port)
        try:
            for p in packets:
                m.send(p)
                if parse_answer(m.recv_packet())["CN"] != "9014":
                    errors.append(p)
        finally:
            m.close()

    threads = [threading.Thread(target=monitor, args=(w,)) for w in work]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t0
    assert not errors
    return n_monitors * per_monitor / elapsed


def test_hj212_gateway_throughput(tmp_path):
    doc = json.loads(demo_basin_path("ruxi").read_text(encoding="utf-8"))
    for s in doc["stations"]:
        s["hj212_mn"] = _mn(s["id"])
    running = create_server(Config(db=tmp_path / "hj212.db", port=0, hj212_port=0))
    running.server.start()
    try:
        running.store.put_network("ruxi", doc)
        gw = running.extras["hj212"]
        figures = {}
        offset = 0
        for n_monitors, per_monitor in ((1, 400), (16, 50)):
            rates = []
            commits0 = gw.stats().get("commits", 0)
            for _ in range(RUNS):
                rates.append(_run(gw.port, n_monitors, per_monitor, offset))
                offset += n_monitors * per_monitor
            figures[f"{n_monitors}_monitors"] = {
                "packets": n_monitors * per_monitor, "runs": RUNS,
                "packets_per_s_median": round(float(np.median(rates)), 1),
                "packets_per_s_runs": [round(r, 1) for r in rates],
                "readings_per_s_median": round(float(np.median(rates)) * 7, 1),
                "packets_per_commit": round(RUNS * n_monitors * per_monitor / (gw.stats()["commits"] - commits0), 2)}
        stats = gw.stats()
        assert stats.get("refused", 0) == 0
        assert running.store.count_readings("ruxi") == offset * 7   # every acknowledged packet stored
    finally:
        running.stop(grace=5.0)
    record = {"benchmark": "hj212", "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
              "setup": "create_server with the gateway and the pipeline on 127.0.0.1; Ruxi demo basin, 4 station MNs; "
                       "CN 2011 packets of 7 parameters, Flag 5, each monitor waits for the 9014 answer",
              **figures}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "hj212.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print("\nhj212: " + json.dumps(figures, indent=1))

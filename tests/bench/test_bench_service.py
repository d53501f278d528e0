"""Service benchmarks (DESIGN.md section 6, issue 5). Not in CI: `python -m pytest -m bench -s tests/bench/test_bench_service.py`.

- ingest: >= 20,000 readings/s over one gRPC stream, each batch acknowledged only once committed
  (SQLite WAL, synchronous=FULL);
- trace over gRPC on the 100,000-reach network: median <= 300 ms;
- 50 concurrent clients for 60 s mixing reads, ingest and traces against a server in its own process:
  zero errors, p50/p99 per operation.
Everything runs on 127.0.0.1 and stops by itself.
"""

import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bench_util import write_results
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hydrology.document import network_to_document
from hydrology.pollutants import Pollutant
from hydrology.transport.analytic import Release, forecast
from server.app import create_server
from server.cli import demo_basin_path
from server.client import RivertraceClient
from server.config import Config
from tracer.scenarios import ruxi_replay

pytestmark = pytest.mark.bench
ROOT = Path(__file__).resolve().parents[2]


def test_ingest_throughput(tmp_path):
    running = create_server(Config(db=tmp_path / "ingest.db", port=0))
    running.server.start()
    try:
        with RivertraceClient(f"127.0.0.1:{running.port}") as c:
            c.put_network("ruxi", json.loads(demo_basin_path("ruxi").read_text(encoding="utf-8")))
            n = 200_000
            st = np.array(["RX-UP", "RX-OILSPOT", "RX-MID", "RX-DOWN"])
            t = pd.Timestamp("2025-01-01", tz="UTC") + pd.to_timedelta(np.arange(n) // 4 * 60, unit="s")
            df = pd.DataFrame({"station_id": st[np.arange(n) % 4], "parameter": "petroleum", "time": t,
                               "value": 0.01 + np.random.default_rng(0).random(n) * 1e-3, "unit": "mg/L"})
            rates = {}
            for batch in (1000, 5000):
                part = df.iloc[: n // 2] if batch == 1000 else df.iloc[n // 2:]
                t0 = time.perf_counter()
                acks = c.ingest("ruxi", part, batch=batch, timeout=600)
                rates[batch] = len(part) / (time.perf_counter() - t0)
                assert sum(a.stored for a in acks) == len(part)
        assert running.store.count_readings("ruxi") == n
    finally:
        running.stop(grace=5.0)
    figures = {"readings": n, "readings_per_s_batch_1000": round(rates[1000]), "readings_per_s_batch_5000": round(rates[5000]),
               "budget_readings_per_s": 20000, "ratio_batch_1000": round(rates[1000] / 20000, 2),
               "durability": "SQLite WAL, synchronous=FULL, one commit per acknowledged batch",
               "note": "client and server in one process (one GIL): a conservative figure"}
    write_results("service_ingest", figures)
    assert rates[1000] >= 20000


def _pulse_readings(net, discharger, station_ids, rng, start):
    rel = Release(discharger.reach, discharger.chainage_m, Pollutant("tracer"), mass_kg=float(rng.uniform(20, 200)),
                  start=start.to_pydatetime())
    fc = forecast(net, rel, kinds=("station",))
    times = pd.date_range(start, periods=24 * 12, freq="5min")
    rows = []
    seen = {r.id for r in fc.receptors}
    curves = fc.curves(times_s=(times - start).total_seconds().to_numpy())
    for sid in station_ids:
        c = curves["concentration"].sel(receptor=sid).values if sid in seen else np.zeros(len(times))
        v = (2.0 + c) * (1 + 0.1 * rng.standard_normal(len(times)))
        rows += [(sid, "COD", int(t.value), float(x), None) for t, x in zip(times, v)]
    return rows


def test_trace_over_grpc_on_the_100k_network(tmp_path, big_network):
    net, _timings = big_network
    running = create_server(Config(db=tmp_path / "big.db", port=0, max_message_mb=64))
    running.server.start()
    rng = np.random.default_rng(7)
    try:
        running.store.put_network("big", network_to_document(net))
        incidents = []
        ids = list(net.dischargers)
        start = pd.Timestamp("2025-07-01", tz="UTC")
        while len(incidents) < 15:
            d = net.dischargers[ids[rng.integers(len(ids))]]
            below, above = net.all_downstream(d.reach), net.all_upstream(d.reach)  # once per draw, not per station
            down = [f.id for f in net.stations.values()
                    if f.reach in below or (f.reach == d.reach and f.chainage_m > d.chainage_m)][:2]
            if not down:
                continue
            probe = forecast(net, Release(d.reach, d.chainage_m, Pollutant("tracer"), mass_kg=20.0), kinds=("station",))
            if probe.receptor(down[0]).peak_g_m3 < 2.0:  # keep incidents the first station clearly sees
                continue
            up = [f.id for f in net.stations.values() if f.reach in above][:3]
            t0 = start + pd.Timedelta(days=3 * len(incidents))
            running.store.add_readings("big", _pulse_readings(net, d, down + up, rng, t0))
            incidents.append((d.id, down[0]))
        with RivertraceClient(f"127.0.0.1:{running.port}", timeout=120, max_message_mb=64) as c:
            c.trace("big", incidents[0][1], "COD")  # warm-up: parse and cache the network
            lat, top1 = [], 0
            for did, sid in incidents:
                t0 = time.perf_counter()
                res = c.trace("big", sid, "COD")
                lat.append(time.perf_counter() - t0)
                top1 += res.candidates[0].id == did
    finally:
        running.stop(grace=5.0)
    med = float(np.median(lat)) * 1e3
    figures = {"traces": len(lat), "trace_grpc_median_ms": round(med, 1), "trace_grpc_p90_ms": round(float(np.percentile(lat, 90)) * 1e3, 1),
               "budget_ms": 300, "median_over_budget": round(med / 300, 3), "top1_unscreened": f"{top1}/{len(lat)}",
               "note": "latency benchmark: readings from the analytic engine with 10% noise; incidents not screened for identifiability (several share a 4-reach stretch with other dischargers), so top1_unscreened is not an accuracy figure: see attribution.json"}
    write_results("service_trace", figures)
    assert med <= 300


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: client processes for the load test, and threads in each: 50 clients in all. The clients are spread over
#: processes because 50 threads in one interpreter measure the client's own GIL queue (pandas frames for every
#: ingest): with one process the ingest p99 was 696 ms, with five 260 ms, against the same server.
CLIENT_PROCESSES, CLIENT_THREADS = 5, 10


def _clients(first: int, address: str, stop_at: float, out) -> None:
    """One client process: CLIENT_THREADS clients mixing reads, ingest and traces until ``stop_at`` (time.time())."""
    results: dict[str, list[float]] = {"read": [], "ingest": [], "trace": []}
    errors: list[str] = []
    lock = threading.Lock()

    def worker(k):
        rnd = random.Random(k)
        t_base = int(pd.Timestamp("2025-07-16T02:00Z").value) + k * 2000 * 10**9
        n = 0
        with RivertraceClient(address, timeout=30) as cl:
            while time.time() < stop_at:
                op = rnd.choices(["read", "ingest", "trace"], weights=[5, 3, 2])[0]
                t0 = time.perf_counter()
                try:
                    if op == "read":
                        rnd.choice([lambda: cl.features("ruxi"), lambda: cl.get_network("ruxi"), lambda: cl.incidents("ruxi")])()
                    elif op == "ingest":  # new readings at RX-UP, 0.1 s apart, after the replayed day
                        times = pd.to_datetime([t_base + (n + i) * 10**8 for i in range(10)], utc=True)
                        n += 10
                        cl.ingest("ruxi", pd.DataFrame({"station_id": "RX-UP", "parameter": "petroleum", "time": times,
                                                        "value": 0.01, "unit": "mg/L"}))
                    else:
                        cl.trace("ruxi", "RX-OILSPOT", "petroleum")
                except Exception as exc:  # noqa: BLE001 - counted
                    with lock:
                        errors.append(f"{op}: {exc}")
                    continue
                with lock:
                    results[op].append(time.perf_counter() - t0)

    threads = [threading.Thread(target=worker, args=(first + i,)) for i in range(CLIENT_THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    out.put((results, errors))


def test_fifty_concurrent_clients_for_sixty_seconds(tmp_path):
    import multiprocessing

    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--db", str(tmp_path / "load.db"), "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    address = f"127.0.0.1:{port}"
    results: dict[str, list[float]] = {"read": [], "ingest": [], "trace": []}
    errors: list[str] = []
    try:
        with RivertraceClient(address) as c:
            deadline = time.monotonic() + 30
            while True:
                try:
                    health_pb2_grpc.HealthStub(c.channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            c.put_network("ruxi", json.loads(demo_basin_path("ruxi").read_text(encoding="utf-8")))
            c.ingest("ruxi", ruxi_replay().readings.frame.assign(unit="mg/L"))
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        stop_at = time.time() + 5.0 + 60.0  # the client processes take a few s to import
        procs = [ctx.Process(target=_clients, args=(i * CLIENT_THREADS, address, stop_at, out))
                 for i in range(CLIENT_PROCESSES)]
        for p in procs:
            p.start()
        for _ in procs:
            part, errs = out.get(timeout=300)
            errors += errs
            for op, lat in part.items():
                results[op] += lat
        for p in procs:
            p.join(60)
    finally:
        proc.terminate()
        proc.wait(60)
    figures = {"clients": CLIENT_PROCESSES * CLIENT_THREADS, "client_processes": CLIENT_PROCESSES, "duration_s": 60,
               "errors": len(errors), "first_errors": errors[:5]}
    for op, lat in results.items():
        a = np.array(lat) * 1e3
        figures[op] = {"calls": len(a), "p50_ms": round(float(np.percentile(a, 50)), 1), "p99_ms": round(float(np.percentile(a, 99)), 1)}
    figures["calls_per_s"] = round(sum(len(v) for v in results.values()) / 60.0, 1)
    figures["budget_p99_ms"] = {"read": 200, "ingest": 500}
    figures["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    write_results("service_load", figures)
    assert not errors

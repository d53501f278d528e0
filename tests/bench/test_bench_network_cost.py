"""What a big network costs the service (issue 13): PutNetwork and GetNetwork of the 100,000-reach
network over gRPC, the first use after PutNetwork, and screening an ingest with the network's
derived tables computed once per version. Not in CI:
``python -m pytest -m bench -s tests/bench/test_bench_network_cost.py``. Results:
``tests/bench/results/network_cost.json`` and ``screening.json``.

Client and server share one process (one GIL), so wall times are conservative; CPU times are
``time.process_time`` (whole process) or ``time.thread_time`` (the screening thread alone).
"""

import json
import os
import statistics
import time

import numpy as np
import pytest
from bench_util import write_results

from hydrology.document import network_to_document
from server.app import create_server
from server.client import RivertraceClient
from server.config import Config
from tracer.trace import station_contexts

pytestmark = pytest.mark.bench
#: issue 13 budgets [s]
PUT_BUDGET_S = 5.0
SCREEN_BUDGET_CPU_S = 1.0


def _p99(xs):
    return float(np.percentile(xs, 99))


def test_put_and_get_the_100k_network(tmp_path, big_network):
    net, _timings = big_network
    text = json.dumps(network_to_document(net), ensure_ascii=False)
    running = create_server(Config(db=tmp_path / "big.db", port=0, max_message_mb=256), deliver=False)
    running.server.start()
    put_wall, put_cpu, get_wall, first_use = [], [], [], []
    try:
        from server.generated.rivertrace.v1 import network_pb2

        with RivertraceClient(f"127.0.0.1:{running.port}", timeout=600, max_message_mb=256) as c:
            for _ in range(3):
                req = network_pb2.PutNetworkRequest(name="big", document_json=text)
                t, cpu = time.perf_counter(), time.process_time()
                v = c.networks.PutNetwork(req, **c._kw()).version
                put_wall.append(time.perf_counter() - t)
                put_cpu.append(time.process_time() - cpu)
                t = time.perf_counter()
                assert running.networks.get("big")[0] == v  # the first use: no second parse
                first_use.append(time.perf_counter() - t)
            for _ in range(5):
                t = time.perf_counter()
                got = c.networks.GetNetwork(network_pb2.GetNetworkRequest(name="big"), **c._kw())
                get_wall.append(time.perf_counter() - t)
            assert got.document_json == text  # served as stored
    finally:
        running.stop(grace=5.0)
    figures = {"document_mb": round(len(text.encode()) / 1e6, 1),
               "put_wall_s": {"median": round(statistics.median(put_wall), 2), "max": round(max(put_wall), 2), "n": 3},
               "put_process_cpu_s": {"median": round(statistics.median(put_cpu), 2)},
               "first_use_after_put_s": {"median": round(statistics.median(first_use), 4)},
               "get_wall_s": {"median": round(statistics.median(get_wall), 3), "p99": round(_p99(get_wall), 3), "n": 5},
               "budget_put_s": PUT_BUDGET_S, "load_average_1min_at_end": round(os.getloadavg()[0], 2),
               "baseline": "issue 13: PutNetwork 7.4 s + first use 5.0 s; GetNetwork 3.0 s (re-serialised every call)",
               "note": "the budget is checked on CPU seconds: wall time on this shared 2-core machine follows the "
                       "load of other jobs (see load_average_1min_at_end) and includes the fsync of the 57 MB row"}
    write_results("network_cost", figures)
    assert statistics.median(put_cpu) <= PUT_BUDGET_S


def test_screening_computes_derived_tables_once_per_version(tmp_path, big_network):
    """On the 100,000-reach budget network (issue 13: the station neighbourhoods alone took 228 s
    before tracer.neighbours; tests/bench/results/station_contexts.json): the derived tables are
    prepared once per version after PutNetwork, and every screening, the first included, stays within
    the budget of process CPU."""
    net0, _timings = big_network
    n = len(net0.reaches)
    doc = network_to_document(net0)
    running = create_server(Config(db=tmp_path / "n100k.db", port=0, max_message_mb=256), deliver=False)
    running.server.start()
    try:
        # process CPU (every thread of this process: the servicer, the background preparation after PutNetwork,
        # the pipeline); thread CPU of the screening thread alone would miss the preparation it waits for
        t_put = time.process_time()
        with RivertraceClient(f"127.0.0.1:{running.port}", timeout=600, max_message_mb=256) as c:
            c.put_network("n100k", doc)
        assert running.pipeline.wait_prepared(600)
        put_and_prepare_cpu = time.process_time() - t_put
        stations = [s["id"] for s in doc["stations"]][:12]
        t0 = 1752540000 * 10**9
        running.store.add_readings("n100k", [(s, "COD", t0 + i * 300 * 10**9, 3.0, None) for i, s in enumerate(stations)])
        _version, net = running.networks.get("n100k")
        cpu = []
        for _ in range(6):  # the derived tables were prepared after PutNetwork: every screening reuses them
            t = time.process_time()
            running.pipeline.run_once("n100k")
            cpu.append(time.process_time() - t)
        t = time.thread_time()
        station_contexts(net)  # again, alone (the hydraulic state and routing caches are warm by now)
        contexts_cpu = time.thread_time() - t
    finally:
        running.stop(grace=5.0)
    later = cpu[1:]
    figures = {"n_reaches": n, "n_stations": len(net.stations), "readings": 12, "station_contexts_cpu_s": round(contexts_cpu, 3),
               "put_network_and_preparation_process_cpu_s": round(put_and_prepare_cpu, 3),
               "first_screening_cpu_s": round(cpu[0], 3),
               "later_screening_cpu_s": {"median": round(statistics.median(later), 4), "max": round(max(later), 4),
                                         "n": len(later)},
               "budget_cpu_s": SCREEN_BUDGET_CPU_S,
               "before": "every trigger recomputed station_contexts on top of detection: 228 s at 100k (issue 13); "
                         "station_contexts_cpu_s is the new tracer.neighbours version, rerun after screening (warm caches)"}
    write_results("screening", figures)
    assert max(cpu) <= SCREEN_BUDGET_CPU_S  # every screening, the first included, within the budget


@pytest.mark.xfail(strict=True, reason="issue 13, open: every screening runs detection over every recent series "
                                       "(4.7 CPU-s with a week of hourly readings at 2,000 stations); detection "
                                       "needs to be incremental")
def test_screening_with_a_week_of_hourly_readings_at_every_station(tmp_path, big_network):
    """The realistic case of the "any ingest screened within 1 s of server CPU" budget: every one of the
    2,000 stations of the 100,000-reach network has reported COD hourly for 7 days (336,000 readings, all
    normal); then 50 stations report one more reading, and the screening that follows is measured
    (process CPU; 3 times). The 12-reading case above does not show the cost of detection itself."""
    net0, _timings = big_network
    doc = network_to_document(net0)
    running = create_server(Config(db=tmp_path / "week.db", port=0, max_message_mb=256), deliver=False)
    running.server.start()
    try:
        with RivertraceClient(f"127.0.0.1:{running.port}", timeout=600, max_message_mb=256) as c:
            c.put_network("n100k", doc)
        assert running.pipeline.wait_prepared(600)
        stations = [s["id"] for s in doc["stations"]]
        t0 = 1752540000 * 10**9
        rng = np.random.default_rng(0)
        for day in range(7):
            running.store.add_readings("n100k", [(s, "COD", t0 + (day * 24 + h) * 3600 * 10**9, float(10 + rng.normal()), None)
                                                 for s in stations for h in range(24)])
        assert running.pipeline.wait_idle(600)
        cpu = []
        for k in range(3):
            running.store.add_readings("n100k", [(s, "COD", t0 + (7 * 24 + k) * 3600 * 10**9, 10.0, None) for s in stations[:50]])
            t = time.process_time()
            running.pipeline.run_once("n100k")
            cpu.append(time.process_time() - t)
        n_readings = running.store.count_readings("n100k")
    finally:
        running.stop(grace=5.0)
    write_results("screening_week", {"n_stations": len(stations), "readings": n_readings,
                                     "screening_cpu_s": [round(c, 3) for c in cpu], "budget_cpu_s": SCREEN_BUDGET_CPU_S})
    assert max(cpu) <= SCREEN_BUDGET_CPU_S

"""Forecast latency on the 100,000-reach network (DESIGN.md budget: median <= 20 ms in process).

The forecast is the exact transport kernel (hydrology.transport.kernel): Laplace-domain transfer
functions routed down the network and inverted per receptor. Wall time and process CPU time are both
reported: on a shared 2-core machine the CPU time is the steadier figure.

Run with `python -m pytest -m bench -s tests/bench/test_bench_forecast.py`; figures go to
tests/bench/results/forecast.json. Medians and ratios are reported because the machine is noisy.
"""

import time

import numpy as np
import pytest
from bench_util import write_results

from hydrology.pollutants import Pollutant, pollutant
from hydrology.transport.analytic import Release, forecast
from hydrology.validate import validate_network

pytestmark = pytest.mark.bench
BUDGET_MS = 20.0
N_SOURCES = 300


def test_forecast_latency_budget(big_network):
    net, timings = big_network
    t = time.perf_counter()
    problems = [p for p in validate_network(net) if p.severity == "error"]
    timings["validate_s"] = time.perf_counter() - t
    assert not problems
    t = time.perf_counter()
    net.reach_state()
    timings["reach_state_s"] = time.perf_counter() - t

    rng = np.random.default_rng(2024)
    ids = list(net.dischargers)
    sources = [net.dischargers[ids[i]] for i in rng.integers(len(ids), size=N_SOURCES)]
    forecast(net, Release(sources[0].reach, sources[0].chainage_m, Pollutant("tracer"), mass_kg=1.0))  # warm-up
    lat, cpu, lat_oil, receptors = [], [], [], []
    for d in sources:
        t, c = time.perf_counter(), time.process_time()
        fc = forecast(net, Release(d.reach, d.chainage_m, Pollutant("tracer"), mass_kg=100.0))
        lat.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        receptors.append(len(fc.receptors))
        t = time.perf_counter()
        forecast(net, Release(d.reach, d.chainage_m, pollutant("petroleum"), rate_kg_s=0.01, duration_s=3600.0))
        lat_oil.append(time.perf_counter() - t)
    med = float(np.median(lat)) * 1e3
    figures = {
        **{k: round(v, 3) for k, v in timings.items()},
        "sources": N_SOURCES,
        "forecast_median_ms": round(med, 2),
        "forecast_p90_ms": round(float(np.percentile(lat, 90)) * 1e3, 2),
        "forecast_p99_ms": round(float(np.percentile(lat, 99)) * 1e3, 2),
        "forecast_cpu_median_ms": round(float(np.median(cpu)) * 1e3, 2),
        "forecast_cpu_p99_ms": round(float(np.percentile(cpu, 99)) * 1e3, 2),
        "continuous_oil_forecast_median_ms": round(float(np.median(lat_oil)) * 1e3, 2),
        "continuous_oil_forecast_p99_ms": round(float(np.percentile(lat_oil, 99)) * 1e3, 2),
        "receptors_per_forecast_median": float(np.median(receptors)),
        "receptors_per_forecast_max": int(np.max(receptors)),
        "budget_ms": BUDGET_MS,
        "median_over_budget": round(med / BUDGET_MS, 3),
    }
    write_results("forecast", figures)
    assert med <= BUDGET_MS

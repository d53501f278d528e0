"""Vulnerability sweep and Monte Carlo ensemble on the benchmark networks.

DESIGN.md section 6: all dischargers x all intakes (20,000 x 500 on the 100,000-reach network) in
<= 60 s on 2 cores, and faster with more Dask workers; since issue 10 every pair from the exact
transport kernel (hydrology.transport.batched). The brief for the ensemble: 1,000 members for
one source on a 1,000-reach basin in <= 2 s.

Run with `python -m pytest -m bench -s tests/bench/test_bench_sweep.py`; figures go to
tests/bench/results/sweep.json and ensemble.json. Times are medians of repeated runs (the machine is
shared and noisy); worker counts are compared on a ``distributed.LocalCluster`` of processes with one
thread each, once with distributed's default worker environment and once without its
``MALLOC_TRIM_THRESHOLD_`` (which makes glibc map and fault in every large temporary array afresh).
"""

import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from bench_util import write_results
from numpy.testing import assert_allclose

from hydrology.pollutants import Pollutant, pollutant
from hydrology.transport.analytic import Release, forecast

pytestmark = pytest.mark.bench
BUDGET_S = 60.0
ENSEMBLE_BUDGET_S = 2.0
REPEATS = 3
N_PAIRS = 30
ITEM = "NH3-N"
ROOT = str(Path(__file__).resolve().parents[2])


def _timed(fn, repeats=REPEATS):
    times, out = [], None
    for _ in range(repeats):
        out = None  # free the previous matrix before the next run
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times, out


def _cluster_runs(net, trim, ref):
    """Median times on LocalClusters of 1 and 2 workers, run alternately so that load from other
    processes on the shared machine falls on both alike."""
    import dask
    from distributed import Client, LocalCluster

    from hydrology.sweep import vulnerability_matrix

    # None unsets the variable (distributed.nanny._get_env_variables); the nanny also copies it into
    # this process's environment, so the runs without it must come first
    unset = {} if trim else {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
    kw = {"threads_per_worker": 1, "processes": True, "dashboard_address": ":0", "env": {"PYTHONPATH": ROOT}}
    with dask.config.set(unset), LocalCluster(n_workers=1, **kw) as one, LocalCluster(n_workers=2, **kw) as two, \
            Client(one) as c1, Client(two) as c2:
        times: dict[int, list[float]] = {1: [], 2: []}
        for n, client in ((1, c1), (2, c2)):
            seen = set(client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_")).values())
            assert seen == ({"65536"} if trim else {None}), seen
            dist = vulnerability_matrix(net, pollutant=ITEM, scheduler=client, progress=False)  # warm-up
            assert_allclose(dist["peak_g_m3"].values, ref, rtol=0, equal_nan=True)  # same arithmetic on workers
            dist = None
        for _ in range(REPEATS):
            for n, client in ((1, c1), (2, c2)):
                t = time.perf_counter()
                vulnerability_matrix(net, pollutant=ITEM, scheduler=client, progress=False)
                times[n].append(time.perf_counter() - t)
    return times


def _check_pairs(net, ds, n=N_PAIRS):
    """Sampled pairs equal single forecasts (tolerances of tests/hydrology/test_sweep.py); unit-release
    edges against the root of the kernel's own curve (brentq), as there."""
    from scipy.optimize import brentq

    from hydrology.transport.kernel import SourceHistory, point_source_responses

    pol = pollutant(ITEM)
    i, j = np.nonzero(ds["mass_fraction"].values > 0)
    over = np.flatnonzero(np.isfinite(ds["worst_duration_s"].values[i, j]))
    rng = np.random.default_rng(11)
    pick = np.r_[rng.choice(over, min(10, over.size), replace=False), rng.choice(i.size, n - min(10, over.size), replace=False)]
    for k in pick:
        src, rid = ds["source"].values[i[k]], ds["receptor"].values[j[k]]
        d = net.dischargers[src]
        row = ds.isel(source=i[k], receptor=j[k])
        unit = forecast(net, Release(d.reach, d.chainage_m, Pollutant("tracer"), mass_kg=1.0), kinds=("intake",)).receptor(rid)
        assert_allclose(float(row.peak_g_m3), unit.peak_g_m3, rtol=5e-3)
        assert_allclose(float(row.peak_s), unit.peak_s, rtol=1e-2)
        resp = point_source_responses(net, net.reach_state(), d.reach, d.chainage_m, Pollutant("tracer"), ("intake",))
        r = [f.id for f in resp.features].index(rid)

        def level(t, r=r, resp=resp, cut=0.01 * unit.peak_g_m3):
            return float(resp.concentration(SourceHistory.pulse(1.0), np.array([[t]]), np.array([r]))[0, 0]) - cut

        assert_allclose(float(row.arrival_s), brentq(level, 0.5 * unit.arrival_s, unit.peak_s, xtol=1e-3), rtol=1e-2)
        rate = float(ds["worst_rate_kg_s"].values[i[k]])
        if np.isfinite(rate):
            w = forecast(net, Release(d.reach, d.chainage_m, pol, rate_kg_s=rate, duration_s=3600.0), kinds=("intake",)).receptor(rid)
            assert_allclose(float(row.worst_peak_g_m3), w.peak_g_m3, rtol=5e-3)
            assert_allclose(float(row.worst_arrival_s), np.nan if w.arrival_s is None else w.arrival_s, rtol=1e-2, equal_nan=True)
    return int(pick.size), int(min(10, over.size))


def test_sweep_budget_and_dask_scaling(big_network):
    from hydrology.sweep import (
        DEFAULT_CHUNK,
        _blocks,
        _catchment_size,
        build_problem,
        class_jobs,
        sweep_block,
        sweep_class,
        vulnerability_matrix,
        write_matrix,
    )

    net, timings = big_network
    t = time.perf_counter()
    net.reach_state()
    timings["reach_state_s"] = time.perf_counter() - t
    figures = {**{k: round(v, 3) for k, v in timings.items()}, "pollutant": ITEM, "repeats": REPEATS}
    runs: dict[str, list[float]] = {"threads": [], "synchronous": []}  # alternated, as the clusters below
    for _ in range(REPEATS):
        for name, values in runs.items():
            ds = None
            t = time.perf_counter()
            ds = vulnerability_matrix(net, pollutant=ITEM, scheduler=name, progress=False)
            values.append(time.perf_counter() - t)
    med, med_sync = statistics.median(runs["threads"]), statistics.median(runs["synchronous"])
    for name, values in runs.items():
        figures[f"in_process_{name}_s"] = round(statistics.median(values), 2)
        figures[f"in_process_{name}_runs_s"] = [round(r, 2) for r in values]
    # the tasks alone, one after the other: the rest of a run (building the problem, filling the
    # matrix) stays in the client, which bounds what more workers can gain (Amdahl). First stage:
    # moments and windows per block of receptors; second: the kernel's curves per window class
    problem = build_problem(net, pollutant=pollutant(ITEM))[0]
    blocks = _blocks(_catchment_size(problem), DEFAULT_CHUNK)
    t = time.perf_counter()
    found = [sweep_block(problem, block) for block in blocks]
    figures.update(moment_tasks=len(blocks), moment_tasks_serial_s=round(time.perf_counter() - t, 2))
    jobs = class_jobs({key: np.concatenate([f[key] for f in found]) for key in found[0] if key != "columns"})
    found = None
    t = time.perf_counter()
    for job in jobs:
        sweep_class(problem, job)
    figures.update(curve_tasks=len(jobs), curve_tasks_serial_s=round(time.perf_counter() - t, 2),
                   pairs_by_per_source_kernel=int(ds.attrs["pairs_by_per_source_kernel"]))
    figures["tasks_serial_s"] = round(figures["moment_tasks_serial_s"] + figures["curve_tasks_serial_s"], 2)
    figures["tasks_share_of_synchronous_run"] = round(figures["tasks_serial_s"] / med_sync, 2)
    down = ds["mass_fraction"].values > 0
    figures.update(sources=ds.sizes["source"], receptors=ds.sizes["receptor"], downstream_pairs=int(down.sum()),
                   pairs_above_standard=int(np.isfinite(ds["worst_duration_s"].values).sum()))
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        write_matrix(ds, os.path.join(tmp, "matrix.nc"))
        figures["write_netcdf_s"] = round(time.perf_counter() - t, 2)
        figures["netcdf_mb"] = round(os.path.getsize(os.path.join(tmp, "matrix.nc")) / 1e6, 1)
    figures["pairs_checked_against_forecast"], figures["of_which_above_standard"] = _check_pairs(net, ds)
    # the cluster comparison runs 16 more sweeps; RIVERTRACE_BENCH_CLUSTERS=0 skips it on a shared machine
    for trim in (False, True) if os.environ.get("RIVERTRACE_BENCH_CLUSTERS", "1") != "0" else ():
        tag = "default_env" if trim else "no_malloc_trim"
        times = _cluster_runs(net, trim, ds["peak_g_m3"].values)
        for n, values in times.items():
            figures[f"cluster_{tag}_{n}_workers_s"] = round(statistics.median(values), 2)
            figures[f"cluster_{tag}_{n}_workers_runs_s"] = [round(r, 2) for r in values]
        figures[f"cluster_{tag}_speedup_1_to_2_workers"] = round(
            statistics.median(times[1]) / statistics.median(times[2]), 2)
    figures.update(budget_s=BUDGET_S, in_process_over_budget=round(med / BUDGET_S, 3))
    write_results("sweep", figures)
    assert med <= BUDGET_S


def test_ensemble_speed(big_network):
    from hydrology.document import network_from_document
    from hydrology.ensemble import ensemble_forecast
    from hydrology.synthetic import generate_network

    doc = generate_network(1000, n_dischargers=50, n_stations=40, n_intakes=10, seed=3, split_fraction_share=0.1)
    net = network_from_document(doc)
    src = max(net.dischargers.values(), key=lambda d: len(net.all_downstream(d.reach)))
    figures = {"basin": {"n_reaches": 1000, "n_dischargers": 50, "n_stations": 40, "n_intakes": 10, "seed": 3,
                         "split_fraction_share": 0.1},
               "note": "'network' is the 100,000-reach network of the big_network_* figures",
               "reaches_below_source": len(net.all_downstream(src.reach)) + 1, "members": 1000}
    for name, rel in (("instantaneous", Release(src.reach, src.chainage_m, pollutant(ITEM), mass_kg=500.0)),
                      ("continuous_1h", Release(src.reach, src.chainage_m, pollutant(ITEM), rate_kg_s=0.1, duration_s=3600.0))):
        ensemble_forecast(net, rel, members=10)  # warm the reach-state cache
        med, runs, ds = _timed(lambda rel=rel: ensemble_forecast(net, rel, members=1000), repeats=5)
        figures[f"{name}_s"] = round(med, 3)
        figures[f"{name}_runs_s"] = [round(r, 3) for r in runs]
        figures["receptors"] = ds.sizes["receptor"]
    # one source on the 100,000-reach network: only the reaches below it are routed
    big, _ = big_network
    big.reach_state()
    src = max(list(big.dischargers.values())[:2000], key=lambda d: len(big.all_downstream(d.reach)))
    rel = Release(src.reach, src.chainage_m, pollutant(ITEM), mass_kg=500.0)
    ensemble_forecast(big, rel, members=10)
    med, runs, ds = _timed(lambda: ensemble_forecast(big, rel, members=1000), repeats=3)
    figures.update(big_network_instantaneous_s=round(med, 3), big_network_runs_s=[round(r, 3) for r in runs],
                   big_network_reaches_below_source=len(big.all_downstream(src.reach)) + 1,
                   big_network_receptors=ds.sizes["receptor"], budget_s=ENSEMBLE_BUDGET_S)
    write_results("ensemble", figures)
    assert figures["instantaneous_s"] <= ENSEMBLE_BUDGET_S and figures["continuous_1h_s"] <= ENSEMBLE_BUDGET_S

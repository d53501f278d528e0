"""Vulnerability sweep: every pair equals a single forecast (closed forms: test_response.py).

References are independent of the code under test: :func:`hydrology.transport.analytic.forecast` routes moments
forwards with a Python walk and reads peaks and edges off a 400-point time grid, while the sweep solves
sparse triangular systems backwards and summarises curves in closed form; split fractions come from
the documents.
"""

import argparse
import copy
import json
from importlib import resources

import numpy as np
import pytest
import xarray as xr
from net_cases import chain_doc, channel_forecast, confluence_doc
from numpy.testing import assert_allclose

from hydrology.document import load_network, network_from_document
from hydrology.exceptions import UnknownModelError
from hydrology.pollutants import Pollutant, pollutant
from hydrology.sweep import (
    SweepError,
    matrix_frame,
    vulnerability_matrix,
    write_matrix,
)
from hydrology.synthetic import generate_network
from hydrology.transport.analytic import Release, forecast
from server.cli.batch import add_sweep_parser

N_PAIRS = 30
# The sweep summarises each pair in closed form on the equivalent channel (hydrology.transport.response),
# so pairs are checked against that model evaluated one release at a time (net_cases.channel_forecast):
# the backward sparse moment solve and the blocked matrix fill are under test (closed forms against
# each other: round-off and Newton tolerances; the old 0.5 % / 1 % stand).
RTOL_PEAK, RTOL_TIME = 5e-3, 1e-2
# The equivalent channel is not the exact kernel that forecast() now uses. Measured on these networks
# (no storage, no lakes): peaks differ by up to 11 % (the Puhe outlet below its weir pool; the kernel
# agrees there with the finite-volume engine to 1.1 %) and peak times by up to 7.9 % (the kernel: 0.9 %
# from the finite-volume engine). Moving the sweep
# onto the kernel is open work (issue 10); this bound only keeps the gap from growing unseen.
RTOL_KERNEL_PEAK, RTOL_KERNEL_TIME = 0.12, 0.09
# the same moments by two algorithms (forward walk, backward sparse solve): round-off only
RTOL_MOMENTS = 1e-9


def _demo(name):
    return load_network(str(resources.files("hydrology") / "data" / "demo" / f"{name}.json"))


def _synthetic():
    doc = generate_network(400, n_dischargers=40, n_stations=20, n_intakes=8, seed=7, split_fraction_share=0.1)
    return network_from_document(doc)


# network -> (builder, pollutant): each has a standard (worst-case edges), decay, and worst cases that
# exceed it somewhere; petroleum floats (surface velocity, no storage)
NETWORKS = {"synthetic-400-braided": (_synthetic, "NH3-N"), "ruxi": (lambda: _demo("ruxi"), "petroleum"),
            "puhe": (lambda: _demo("puhe"), "COD")}


@pytest.fixture(scope="module", params=sorted(NETWORKS))
def matrix(request):
    build, item = NETWORKS[request.param]
    net = build()
    pol = pollutant(item, decay_per_s=2e-6)
    ds = vulnerability_matrix(net, receptors="all", pollutant=pol, progress=False, scheduler="synchronous")
    return net, pol, ds


def _sampled_pairs(ds, n=N_PAIRS, seed=0):
    """Up to 10 pairs whose worst case exceeds the threshold, then random downstream pairs, n in all."""
    rng = np.random.default_rng(seed)
    down = ds["mass_fraction"].values > 0
    over = np.flatnonzero(np.isfinite(ds["worst_duration_s"].values.ravel()))
    rest = np.setdiff1d(np.flatnonzero(down.ravel()), over)
    first = rng.choice(over, size=min(10, over.size), replace=False)
    pick = np.r_[first, rng.choice(rest, size=min(n - first.size, rest.size), replace=False)]
    i, j = np.unravel_index(pick, down.shape)
    return [(ds["source"].values[a], ds["receptor"].values[b]) for a, b in zip(i, j)]


def test_pairs_equal_single_forecasts(matrix):
    net, pol, ds = matrix
    pairs = _sampled_pairs(ds)
    assert len(pairs) >= 10, "the network gives too few downstream pairs to test"  # puhe has 11 in all
    tracer = Pollutant("tracer", pol.behaviour, pol.decay_per_s)  # same transport, no standard
    for src, rid in pairs:
        d = net.dischargers[src]
        row = ds.sel(source=src, receptor=rid)
        # unit release: the sweep's edges are at 1 % of the peak, as forecast() uses for a tracer
        unit_rel = Release(d.reach, d.chainage_m, tracer, mass_kg=1.0)
        unit = forecast(net, unit_rel).receptor(rid)
        ref = channel_forecast(net, unit_rel, ("station", "intake", "structure", "site"))[rid]
        assert_allclose(float(row.mass_fraction), unit.mass_fraction, rtol=RTOL_MOMENTS)
        assert_allclose(float(row.distance_m), unit.distance_m, rtol=RTOL_MOMENTS)
        assert_allclose(float(row.mean_travel_time_s), unit.mean_travel_time_s, rtol=RTOL_MOMENTS)
        assert_allclose(float(row.peak_g_m3), ref["peak_g_m3"], rtol=RTOL_PEAK)
        assert_allclose([float(row.peak_s), float(row.arrival_s), float(row.end_s)],
                        [ref["peak_s"], ref["arrival_s"], ref["end_s"]], rtol=RTOL_TIME)
        assert_allclose(float(row.peak_g_m3), unit.peak_g_m3, rtol=RTOL_KERNEL_PEAK)
        assert_allclose(float(row.peak_s), unit.peak_s, rtol=RTOL_KERNEL_TIME)
        rate = float(ds["worst_rate_kg_s"].sel(source=src))
        if not np.isfinite(rate):
            assert np.isnan(float(row.worst_peak_g_m3))
            continue
        worst_rel = Release(d.reach, d.chainage_m, pol, rate_kg_s=rate, duration_s=ds.attrs["worst_release_s"])
        worst = forecast(net, worst_rel).receptor(rid)
        wref = channel_forecast(net, worst_rel, ("station", "intake", "structure", "site"))[rid]
        assert_allclose(float(row.worst_peak_g_m3), wref["peak_g_m3"], rtol=RTOL_PEAK)
        assert_allclose(float(row.worst_peak_s), wref["peak_s"], rtol=RTOL_TIME)
        assert_allclose([float(row.worst_arrival_s), float(row.worst_end_s), float(row.worst_duration_s)],
                        [wref["arrival_s"], wref["end_s"], wref["end_s"] - wref["arrival_s"]],
                        rtol=RTOL_TIME, equal_nan=True)
        assert_allclose(float(row.worst_peak_g_m3), worst.peak_g_m3, rtol=RTOL_KERNEL_PEAK)
        assert_allclose(float(ds["threshold_g_m3"].sel(receptor=rid)), worst.threshold_g_m3)


def test_some_worst_cases_exceed_the_standard(matrix):
    """Guard against a vacuous comparison of worst-case edges: some pairs do exceed, some do not."""
    _, _, ds = matrix
    duration = ds["worst_duration_s"].values
    assert np.isfinite(duration).any() and np.nanmin(duration) > 0
    assert (np.isnan(duration) & np.isfinite(ds["worst_peak_g_m3"].values)).any()


def test_not_downstream_is_nan_everywhere(matrix):
    net, _, ds = matrix
    down = np.zeros(ds["mass_fraction"].shape, bool)
    for a, src in enumerate(ds["source"].values):
        d = net.dischargers[src]
        reached = {r.id for r in forecast(net, Release(d.reach, d.chainage_m, Pollutant("tracer"), mass_kg=1.0)).receptors}
        down[a] = [rid in reached for rid in ds["receptor"].values]
    assert (~down).any() and down.any()
    for name in ("mass_fraction", "distance_m", "arrival_s", "peak_s", "peak_g_m3", "end_s", "worst_peak_g_m3"):
        values = ds[name].values
        assert np.isnan(values[~down]).all(), name
    assert np.isfinite(ds["peak_g_m3"].values[down]).all()


def test_reach_sources_on_a_braided_confluence():
    """Split fractions from the document: 70 % of m1's mass passes b1; tributary mass never reaches S-up."""
    net = network_from_document(confluence_doc())
    ds = vulnerability_matrix(net, sources="reaches", receptors="all", progress=False)
    assert_allclose(float(ds.mass_fraction.sel(source="m1", receptor="S-b1")), 0.7, rtol=1e-12)  # flow_fraction 0.7
    assert_allclose(float(ds.mass_fraction.sel(source="m1", receptor="I-1")), 1.0, rtol=1e-12)  # branches rejoin
    assert np.isnan(float(ds.peak_s.sel(source="t1", receptor="S-up")))
    assert np.isnan(float(ds.peak_s.sel(source="m2", receptor="S-m1")))
    for src in ds["source"].values:
        rel = Release(src, 0.0, Pollutant("tracer"), mass_kg=1.0)
        fc = forecast(net, rel)
        ref = channel_forecast(net, rel, ("station", "intake", "structure", "site"))
        for r in fc.receptors:
            assert_allclose(float(ds.peak_g_m3.sel(source=src, receptor=r.id)), ref[r.id]["peak_g_m3"], rtol=RTOL_PEAK)
            assert_allclose(float(ds.peak_g_m3.sel(source=src, receptor=r.id)), r.peak_g_m3, rtol=RTOL_KERNEL_PEAK)
            assert_allclose(float(ds.mean_travel_time_s.sel(source=src, receptor=r.id)), r.mean_travel_time_s,
                            rtol=RTOL_MOMENTS)


def test_uniform_channel_is_the_gaussian_puff():
    """One uniform reach: t* = (sqrt(D^2 + U^2 x^2) - D)/U^2 and C(t*) (Fischer et al. 1979, eq. 2.17)."""
    doc = chain_doc(n=1, length=30000.0)
    doc["intakes"] = [{"id": f"i{k}", "reach": "r0", "chainage_m": x} for k, x in enumerate((2000.0, 12000.0, 29000.0))]
    net = network_from_document(doc)
    st = net.reach_state()
    U, D, A = st.velocity_ms[0], st.dispersion_m2s[0], st.area_m2[0]
    ds = vulnerability_matrix(net, sources="reaches", progress=False)
    x = ds["receptor_chainage_m"].values
    t_star = (np.sqrt(D * D + U * U * x * x) - D) / U**2
    c_star = 1000.0 / (A * np.sqrt(4 * np.pi * D * t_star)) * np.exp(-((x - U * t_star) ** 2) / (4 * D * t_star))
    # the moments reproduce U and D of the reach; only round-off separates the two evaluations
    assert_allclose(ds["peak_s"].values[0], t_star, rtol=1e-9)
    assert_allclose(ds["peak_g_m3"].values[0], c_star, rtol=1e-9)


def test_worst_case_definitions_read_the_discharger():
    net = _demo("ruxi")
    doc = json.loads((resources.files("hydrology") / "data" / "demo" / "ruxi.json").read_text(encoding="utf-8"))
    by_id = {d["id"]: d for d in doc["dischargers"]}
    for case in ("max_load", "permit"):
        ds = vulnerability_matrix(net, pollutant="COD", worst_case=case, progress=False)
        for src in ds["source"].values:
            d = by_id[src]
            if case == "max_load":
                expected = d.get("max_load_kg_s", {}).get("COD", np.nan)
            else:
                lim = d.get("permit_limits_mg_l", {}).get("COD")
                expected = np.nan if lim is None else d["effluent_discharge_m3s"] * lim / 1000.0
            assert_allclose(float(ds["worst_rate_kg_s"].sel(source=src)), expected, equal_nan=True)
    ds = vulnerability_matrix(net, pollutant="TP", worst_case="max_load", progress=False)
    no_tp = [s for s in ds["source"].values if "TP" not in by_id[s].get("max_load_kg_s", {})]
    assert no_tp and np.isnan(ds["worst_peak_g_m3"].sel(source=no_tp).values).all()


def test_netcdf_and_csv_round_trip(tmp_path):
    net = _demo("ruxi")
    ds = vulnerability_matrix(net, receptors="all", pollutant="petroleum", progress=False)
    nc, csv = tmp_path / "m.nc", tmp_path / "m.csv"
    write_matrix(ds, str(nc), csv=str(csv))
    back = xr.open_dataset(nc, engine="h5netcdf")
    assert back.attrs["Conventions"].startswith("CF-")
    for name, var in ds.data_vars.items():
        if var.dtype.kind == "f":
            assert back[name].attrs["units"] == var.attrs["units"], name
            assert_allclose(back[name].values, var.values, equal_nan=True)
    assert list(back["source"].values) == list(ds["source"].values)
    assert list(back["receptor_kind"].values) == list(ds["receptor_kind"].values)
    back.close()
    import pandas as pd

    table = pd.read_csv(csv)
    assert len(table) == int((ds["mass_fraction"].values > 0).sum()) == len(matrix_frame(ds))
    row = table.iloc[0]
    assert_allclose(row["peak_g_m3"], float(ds.peak_g_m3.sel(source=row["source"], receptor=row["receptor"])), rtol=1e-5)


def test_schedulers_agree_and_show_progress(capsys):
    from distributed import Client

    net = _synthetic()
    ref = vulnerability_matrix(net, receptors="all", chunk_size=3, progress=False, scheduler="synchronous")
    threads = vulnerability_matrix(net, receptors="all", chunk_size=3, progress=True, scheduler="threads")
    assert "sweep" in capsys.readouterr().err  # the tqdm bar
    with Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0") as client:
        dist = vulnerability_matrix(net, receptors="all", chunk_size=3, progress=True, scheduler=client)
        assert "sweep" in capsys.readouterr().err
        by_address = vulnerability_matrix(net, receptors="all", progress=False, scheduler=client.scheduler.address)
    for other in (threads, dist, by_address):
        for name in ("peak_g_m3", "arrival_s", "worst_duration_s"):
            assert_allclose(other[name].values, ref[name].values, rtol=0, equal_nan=True)  # same arithmetic


def test_unreachable_scheduler_is_a_clear_error():
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}), \
            pytest.raises(SweepError, match="tcp://127.0.0.1:9"):
        vulnerability_matrix(network_from_document(confluence_doc()), sources="reaches", progress=False,
                             scheduler="tcp://127.0.0.1:9")


def _no_intakes():
    doc = copy.deepcopy(confluence_doc())
    doc.pop("intakes")
    doc["dischargers"] = [{"id": "d", "reach": "m1", "chainage_m": 10.0, "kind": "outfall"}]
    return network_from_document(doc)


@pytest.mark.parametrize("kwargs,error,match", [
    ({"sources": "nodes"}, SweepError, "'nodes'"),
    ({"receptors": "wells"}, SweepError, "'wells'"),
    ({"chunk_size": 0}, SweepError, "chunk_size"),
    ({"worst_case": "apocalypse"}, UnknownModelError, "'apocalypse'"),
    ({"worst_release_s": -5.0}, SweepError, "-5.0"),
    ({"scheduler": 42}, SweepError, "42"),
    ({"pollutant": "unobtainium"}, UnknownModelError, "unobtainium"),
])
def test_bad_arguments_are_refused(kwargs, error, match):
    net = network_from_document(confluence_doc())
    with pytest.raises(error, match=match):
        vulnerability_matrix(net, **{"sources": "reaches", "progress": False, **kwargs})


def test_nothing_to_sweep_is_an_error():
    with pytest.raises(SweepError, match="0 intakes"):
        vulnerability_matrix(_no_intakes(), progress=False)


def test_cli_writes_netcdf_and_csv(tmp_path):
    doc = json.loads((resources.files("hydrology") / "data" / "demo" / "puhe.json").read_text(encoding="utf-8"))
    path = tmp_path / "puhe.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    parser = argparse.ArgumentParser(prog="rivertrace")
    add_sweep_parser(parser.add_subparsers(dest="command"))
    out, csv = tmp_path / "matrix.nc", tmp_path / "matrix.csv"
    args = parser.parse_args(["sweep", str(path), "--receptors", "all", "--pollutant", "NH3-N", "--no-progress",
                              "--decay-per-day", "0.1", "-o", str(out), "--csv", str(csv)])
    assert args.func(args) == 0
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert ds.sizes["source"] == len(doc["dischargers"])
        assert_allclose(ds.attrs["decay_per_s"], 0.1 / 86400.0)  # 1/day converted at the edge
    assert csv.read_text(encoding="utf-8").startswith("source,source_kind,receptor")
    bad = parser.parse_args(["sweep", str(path), "--decay-per-day", "-1", "-o", str(out)])
    with pytest.raises(SweepError, match="-1"):
        bad.func(bad)

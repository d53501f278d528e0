"""Vulnerability sweep: every pair equals the exact kernel's curve, reached by another call path.

The sweep forms each pair's transform from path sums over the whole network, inverts it by one FFT on
a uniform grid and refines peaks and crossings on cubic Hermite interpolants
(:mod:`hydrology.transport.batched`). The references come one source at a time:
:func:`hydrology.transport.analytic.forecast` (a forward walk from the source, de Hoog inversion,
peaks on its own grid) and, for the edges, a root of the kernel's de Hoog curve found by
``scipy.optimize.brentq``, independent of forecast's own root refinement (three fixed regula-falsi
steps once left 5 % in the arrival of a low-Peclet near-field curve on the braided network below;
forecast now iterates to a tolerance: tests/hydrology/test_near_field_roots.py).
Split fractions come from the documents.
"""

import argparse
import copy
import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from net_cases import chain_doc, confluence_doc
from numpy.testing import assert_allclose
from scipy.optimize import brentq

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
from hydrology.transport.kernel import SourceHistory, point_source_responses
from server.cli.batch import add_sweep_parser

# Against the kernel one source at a time. Peaks: the FFT series' truncation (K = 48 terms on windows
# of 16-23 sd) and the Hermite refinement on a grid of T/48 measured to 4e-4 of the peak at most on
# these networks; 0.5 % bounds it with room for other curves. Times: the brief's 1 %, against the
# measured 0.2 % (peak times; a box's flat top makes its peak time the least sharp figure) and 1e-4
# (edges against the brentq roots).
RTOL_PEAK, RTOL_TIME = 5e-3, 1e-2
# the same moments by two algorithms (forward walk, backward sparse solve): round-off only
RTOL_MOMENTS = 1e-9
DATA = Path(__file__).resolve().parents[1] / "data"


def _demo(name):
    return load_network(str(resources.files("hydrology") / "data" / "demo" / f"{name}.json"))


def _synthetic():
    doc = generate_network(400, n_dischargers=40, n_stations=20, n_intakes=8, seed=7, split_fraction_share=0.1)
    return network_from_document(doc)


def _storage():
    """The Ruxi demo with OTIS storage on every reach (beta 0.3, alpha 1e-4 /s; within the Clackamas
    study's range, tests/data/tracer_studies): tails that a Gaussian cannot make."""
    doc = json.loads((resources.files("hydrology") / "data" / "demo" / "ruxi.json").read_text(encoding="utf-8"))
    for r in doc["reaches"]:
        r["storage_ratio"], r["storage_exchange_per_s"] = 0.3, 1e-4
    return network_from_document(doc)


def _walker():
    """NHDPlus Walker (six fully mixed lakes), every reach's head as a source, gauges as receptors."""
    from hydrology.nhdplus import import_nhdplus

    return network_from_document(import_nhdplus(DATA / "nhdplus" / "walker.gpkg")[0])


# network -> (builder, pollutant, sources, receptors, threshold): each has a threshold (worst-case
# edges), decay, and worst cases that exceed it somewhere; petroleum floats (surface velocity, no
# storage); storage lowers the peaks below COD's 20 mg/L, so there a threshold of 0.5 mg/L is given
NETWORKS = {"synthetic-400-braided": (_synthetic, "NH3-N", "dischargers", "all", None),
            "ruxi": (lambda: _demo("ruxi"), "petroleum", "dischargers", "all", None),
            "puhe": (lambda: _demo("puhe"), "COD", "dischargers", "all", None),
            "ruxi-storage": (_storage, "COD", "dischargers", "all", 0.5),
            "walker-lakes": (_walker, "tracer", "reaches", "stations", None)}


@pytest.fixture(scope="module", params=sorted(NETWORKS))
def matrix(request):
    build, item, sources, receptors, threshold = NETWORKS[request.param]
    net = build()
    pol = pollutant(item, decay_per_s=2e-6)
    ds = vulnerability_matrix(net, sources=sources, receptors=receptors, pollutant=pol, progress=False,
                              scheduler="synchronous", threshold_g_m3=threshold)
    return net, pol, ds, threshold


def _edge_roots(resp, row, history, t_lo, t_hi, cut, n=4000):
    """First and last time the kernel's curve (de Hoog) of ``row`` is at ``cut``: brackets from n
    samples on [t_lo, t_hi], roots by brentq (xtol 1e-6 of the time)."""
    t = np.linspace(t_lo, t_hi, n)
    c = resp.concentration(history, t[None, :], np.array([row]))[0]
    above = np.flatnonzero(c >= cut)
    if not above.size:
        return np.nan, np.nan

    def f(x):
        return float(resp.concentration(history, np.array([[x]]), np.array([row]))[0, 0]) - cut

    first, last = above[0], above[-1]
    a = brentq(f, t[first - 1], t[first], xtol=1e-6 * t[first]) if first > 0 else t[0]
    e = brentq(f, t[last], t[last + 1], xtol=1e-6 * t[last]) if last < n - 1 else np.nan
    return a, e


def _check_source(net, pol, ds, src, reach, chainage, kinds, threshold=None):
    """Every receptor of one source: the sweep's row against forecast() and the kernel's roots."""
    tracer = Pollutant("tracer", pol.behaviour, pol.decay_per_s)  # same transport, no standard
    unit_rel = Release(reach, chainage, tracer, mass_kg=1.0)
    unit = forecast(net, unit_rel, kinds=kinds)
    st = net.reach_state()
    resp = point_source_responses(net, st, reach, chainage, tracer, kinds)
    rows = {f.id: i for i, f in enumerate(resp.features)}
    rate = float(ds["worst_rate_kg_s"].sel(source=src))
    worst = None
    if np.isfinite(rate):
        worst = forecast(net, Release(reach, chainage, pol, rate_kg_s=rate, duration_s=ds.attrs["worst_release_s"]),
                         kinds=kinds, threshold_g_m3=threshold)
    seen = 0
    for r in unit.receptors:
        row = ds.sel(source=src, receptor=r.id)
        seen += 1
        assert_allclose(float(row.mass_fraction), r.mass_fraction, rtol=RTOL_MOMENTS)
        assert_allclose(float(row.distance_m), r.distance_m, rtol=RTOL_MOMENTS)
        assert_allclose(float(row.mean_travel_time_s), r.mean_travel_time_s, rtol=RTOL_MOMENTS)
        assert_allclose(float(row.peak_g_m3), r.peak_g_m3, rtol=RTOL_PEAK)
        assert_allclose(float(row.peak_s), r.peak_s, rtol=RTOL_TIME)
        k = rows[r.id]
        t_hi = resp.mean_s[k] + 12.0 * resp.sd_s[k]
        edges = _edge_roots(resp, k, SourceHistory.pulse(1.0), 0.0, t_hi, 0.01 * r.peak_g_m3)
        assert_allclose([float(row.arrival_s), float(row.end_s)], edges, rtol=RTOL_TIME)
        if worst is None:
            assert np.isnan(float(row.worst_peak_g_m3))
            continue
        w = worst.receptor(r.id)
        assert_allclose(float(row.worst_peak_g_m3), w.peak_g_m3, rtol=RTOL_PEAK)
        assert_allclose(float(row.worst_peak_s), w.peak_s, rtol=RTOL_TIME)
        assert_allclose(float(ds["threshold_g_m3"].sel(receptor=r.id)), np.nan if w.threshold_g_m3 is None
                        else w.threshold_g_m3)
        if w.threshold_g_m3 is None or w.peak_g_m3 < w.threshold_g_m3:
            assert np.isnan(float(row.worst_arrival_s)) and np.isnan(float(row.worst_end_s))
            continue
        box = SourceHistory.box(rate, ds.attrs["worst_release_s"])
        edges = _edge_roots(resp, k, box, 0.0, t_hi + ds.attrs["worst_release_s"], w.threshold_g_m3)
        assert_allclose([float(row.worst_arrival_s), float(row.worst_end_s), float(row.worst_duration_s)],
                        [edges[0], edges[1], edges[1] - edges[0]], rtol=RTOL_TIME)
    return seen


def test_every_pair_equals_the_kernel(matrix):
    net, pol, ds, threshold = matrix
    kinds = {"all": ("station", "intake"), "stations": ("station",)}[
        "stations" if set(ds["receptor_kind"].values) == {"station"} else "all"]
    n = 0
    for i, src in enumerate(ds["source"].values):
        reach, chainage = str(ds["source_reach"].values[i]), float(ds["source_chainage_m"].values[i])
        n += _check_source(net, pol, ds, src, reach, chainage, kinds, threshold)
    assert n == int((ds["mass_fraction"].values > 0).sum()) >= 10  # every downstream pair was checked


def test_pairs_by_the_batched_kernel_and_by_the_per_source_kernel(matrix):
    """Lakes and braids go to the per-source kernel; everything else is batched (guards the test above
    against checking only forecast against itself)."""
    net, _, ds, _ = matrix
    pairs = int((ds["mass_fraction"].values > 0).sum())
    other = ds.attrs["pairs_by_per_source_kernel"]
    lakes = net.reach_state().lake_mask().any()
    braided = any(sum(1 for r in net.reaches.values() if r.from_node == n) > 1 for n in net.nodes)
    assert other < pairs
    assert (other > 0) == bool(lakes or braided)


def test_some_worst_cases_exceed_the_standard(matrix):
    """Guard against a vacuous comparison of worst-case edges: some pairs do exceed, some do not."""
    _, pol, ds, threshold = matrix
    if pol.standard_item is None and threshold is None:
        pytest.skip("a tracer has no standard")
    duration = ds["worst_duration_s"].values
    assert np.isfinite(duration).any() and np.nanmin(duration) > 0
    assert (np.isnan(duration) & np.isfinite(ds["worst_peak_g_m3"].values)).any()


def test_not_downstream_is_nan_everywhere(matrix):
    net, _, ds, _ = matrix
    down = np.zeros(ds["mass_fraction"].shape, bool)
    for a, src in enumerate(ds["source"].values):
        reach, chainage = str(ds["source_reach"].values[a]), float(ds["source_chainage_m"].values[a])
        reached = {r.id for r in forecast(net, Release(reach, chainage, Pollutant("tracer"), mass_kg=1.0)).receptors}
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
        n = _check_source(net, Pollutant("tracer"), ds, src, src, 0.0, ("station", "intake"))
        assert n == int((ds.mass_fraction.sel(source=src).values > 0).sum())


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
    # a point injection on a uniform reach is the infinite-domain puff (the kernel's source term). The
    # peak is read off a cubic Hermite interpolant on a grid of T/48 (up to 0.47 sd): its error
    # (h/sd)^4/384 x 3 ~ 4e-4 is what was measured here (3.4e-4 of the peak at 29 km); times 1e-4
    assert_allclose(ds["peak_s"].values[0], t_star, rtol=1e-3)
    assert_allclose(ds["peak_g_m3"].values[0], c_star, rtol=1e-3)


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


def test_reach_graph_from_the_columns_equals_the_per_reach_walk():
    """The whole network's graph comes from the reach table's node columns (fast path); the same graph
    asked for by an explicit list of every reach is built reach by reach, with each split's share from
    routing.node_outflow_divisor (another route to the same numbering and shares)."""
    from hydrology.sweep import reach_graph

    net = _synthetic()  # braided: splits and rejoins
    st = net.reach_state()
    a, b = reach_graph(net, st), reach_graph(net, st, np.arange(len(st.ids)))
    assert a.n_nodes == b.n_nodes
    assert np.array_equal(a.from_node, b.from_node) and np.array_equal(a.to_node, b.to_node)
    assert (a.share < 1).any()  # some splits, so the shares are tested
    assert_allclose(a.share, b.share, rtol=1e-12)  # the same divisions in another order: round-off

"""The attribution benchmark's machinery on small basins (the >= 500-incident run is tests/bench).

Reference values are independent of tracer.benchmark: travel times of a hand-built channel with
stated velocities (x / U), discharges of the true network times the drawn factor, and simulations on
the full network against those on the extracted sub-network.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from hydrology.document import network_from_document
from hydrology.pollutants import pollutant
from hydrology.synthetic import generate_network
from hydrology.transport.analytic import Release, route_moments
from hydrology.transport.numerical import simulate
from tracer import benchmark as bm
from tracer.scenarios import demo_network


@pytest.fixture(scope="module")
def synthetic():
    return network_from_document(generate_network(2000, n_dischargers=400, n_stations=120, seed=7))


def _channel(stations):
    """Three 10 km reaches at a stated 0.5 m/s (20,000 s each), no storage; dischargers T, B, C."""
    trap = {"slope": 5e-4, "manning_n": 0.03, "bottom_width_m": 20.0, "side_slope": 2.0,
            "velocity_ms": 0.5, "dispersion_m2s": 10.0}
    return network_from_document({
        "nodes": [{"id": f"n{i}"} for i in range(4)],
        "reaches": [{"id": f"r{i}", "from_node": f"n{i}", "to_node": f"n{i + 1}", "length_m": 10_000.0, **trap}
                    for i in range(3)],
        "inflows": [{"node": "n0", "discharge_m3s": 10.0}],
        "stations": stations,
        "dischargers": [{"id": "T", "reach": "r1", "chainage_m": 5000.0, "kind": "outfall"},
                        {"id": "B", "reach": "r1", "chainage_m": 3000.0, "kind": "outfall"},
                        {"id": "C", "reach": "r0", "chainage_m": 5000.0, "kind": "outfall"}],
    })


def test_identifiability_same_stretch_competitor():
    # T is 20,000 s above the anomaly station S, B 24,000 s (+20 %: within 25 %), C 40,000 s (+100 %)
    net = _channel([{"id": "S", "reach": "r2", "chainage_m": 5000.0}])
    st = net.reach_state()
    ok, reason, gap, confusers = bm.identifiability(net, st, net.stations["S"], "T", pollutant("tracer"),
                                                    [net.stations["S"]])
    assert (ok, reason, confusers) == (False, bm.SAME_STRETCH, ("B",))
    assert_allclose(gap, 24_000.0 / 20_000.0 - 1.0, rtol=1e-9)  # x / U exactly; rtol covers round-off


def test_identifiability_station_between_separates():
    # a station M between B (3,000 m) and T (5,000 m): B and C have M below them, T does not
    stations = [{"id": "S", "reach": "r2", "chainage_m": 5000.0}, {"id": "M", "reach": "r1", "chainage_m": 4000.0}]
    net = _channel(stations)
    ok, reason, gap, confusers = bm.identifiability(net, net.reach_state(), net.stations["S"], "T",
                                                    pollutant("tracer"), list(net.stations.values()))
    assert (ok, reason, gap, confusers) == (True, "", math.inf, ())
    # seen from B, C shares the stretch (M and S below both) at 40,000 / 24,000 - 1 = 67 %: separable
    ok, _, gap, _ = bm.identifiability(net, net.reach_state(), net.stations["S"], "B", pollutant("tracer"),
                                       list(net.stations.values()))
    assert ok
    assert_allclose(gap, 40_000.0 / 24_000.0 - 1.0, rtol=1e-9)


@pytest.mark.parametrize("name", ["ruxi", "synthetic"])
def test_global_flow_error_scales_every_discharge(name, synthetic):
    net = demo_network("ruxi") if name == "ruxi" else synthetic  # flows from inflows / stated on reaches
    wrong, f = bm.FLOW_ERRORS["global"](net, np.random.default_rng(3))
    assert 1 - bm.FLOW_ERROR <= f <= 1 + bm.FLOW_ERROR
    true_q, told_q = net.steady_discharge, wrong.steady_discharge
    assert_allclose([told_q[r] for r in net.reaches], [f * true_q[r] for r in net.reaches], rtol=1e-12)  # round-off


def test_per_reach_flow_error_bounds_and_unknown_mode(synthetic):
    wrong, _ = bm.FLOW_ERRORS["per_reach"](synthetic, np.random.default_rng(4))
    ratio = np.array([wrong.steady_discharge[r] / synthetic.steady_discharge[r] for r in synthetic.reaches])
    assert ratio.min() >= 1 - bm.FLOW_ERROR and ratio.max() <= 1 + bm.FLOW_ERROR
    assert ratio.std() > 0.05  # independent factors, not one (uniform on +-0.2 has sd 0.115)
    with pytest.raises(bm.BenchmarkError, match="unknown flow-error mode"):
        bm.Basin("x", synthetic, flow_error="nonsense")  # type: ignore[arg-type]


def test_downstream_document_keeps_the_full_network_hydraulics(synthetic):
    net, st = synthetic, synthetic.reach_state()
    pol = pollutant("tracer")
    d = next(d for d in net.dischargers.values()
             if sum(r[3] < 86400.0 for r in route_moments(net, st, d.reach, d.chainage_m, pol, ("station",))) >= 2)
    routed = [r for r in route_moments(net, st, d.reach, d.chainage_m, pol, ("station",)) if r[3] < 86400.0]
    t_end = max(m + 6 * math.sqrt(v) for *_, m, v in routed)
    sub = network_from_document(bm.downstream_document(net, st, d.reach, d.chainage_m, t_end, pol,
                                                       [r[0] for r in routed]))
    sst = sub.reach_state()
    assert len(sub.reaches) < len(net.reaches) / 10
    idx = [st.index[r] for r in sst.ids]
    for name in ("discharge_m3s", "velocity_ms", "area_m2", "dispersion_m2s"):
        # same inputs, same formulas: equal to round-off
        assert_allclose(getattr(sst, name), getattr(st, name)[idx], rtol=1e-12, err_msg=name)
    # water arriving at every inner node of the sub-network is the full network's
    for node in {sub.reaches[r].from_node for r in sub.reaches} - {net.reaches[d.reach].from_node}:
        arriving = sub.inflows.get(node, 0.0) + sum(sst.discharge_m3s[sst.index[r]] for r in sub.reaches_into(node))
        full = net.inflows.get(node, 0.0) + sum(st.discharge_m3s[st.index[r]] for r in net.reaches_into(node))
        assert_allclose(arriving, full, rtol=1e-12)
    # the plume at the stations: the full network's run (its domain reaches the outlet, so its grid
    # differs) against the sub-network's; mean arrival within 0.5 %, peak within 2 %
    rel = Release(d.reach, d.chainage_m, pol, mass_kg=100.0)
    curves = [simulate(n, rel, t_end_s=t_end, kinds=("station",), record_every_s=300.0) for n in (net, sub)]
    t = curves[0]["time"].values
    for s, *_ in routed:
        full_c, sub_c = (c["concentration"].sel(receptor=s.id).values for c in curves)
        assert_allclose(np.trapezoid(sub_c * t, t) / np.trapezoid(sub_c, t),
                        np.trapezoid(full_c * t, t) / np.trapezoid(full_c, t), rtol=5e-3)
        assert_allclose(sub_c.max(), full_c.max(), rtol=2e-2)


@pytest.fixture(scope="module")
def outcomes(synthetic):
    out = []
    for basin, seed in ((bm.Basin("ruxi", demo_network("ruxi"), seed=1), 2024),
                        (bm.Basin("synthetic-2000", synthetic, seed=2), 2025)):
        rng = np.random.default_rng(seed)
        out += [bm.attribute_incident(bm.make_incident(basin, rng)) for _ in range(10)]
    return out


def test_incidents_and_readings_are_shaped_as_specified(outcomes):
    for o in outcomes:
        inc = o.incident
        frame = inc.readings.frame
        stations = set(frame["station_id"])
        assert stations == set(inc.stations_downstream) | set(inc.stations_upstream)
        counts = frame.groupby("station_id").size()
        assert counts.nunique() == 1  # every station on the same time grid
        dt = np.diff(np.sort(frame["time"].unique())).astype("timedelta64[s]").astype(float)
        assert np.all(dt == bm.RECORD_EVERY_S)
        lead = (inc.release_start - frame["time"].min()).total_seconds()
        assert bm.LEAD_STEPS[0] * bm.RECORD_EVERY_S <= lead <= bm.LEAD_STEPS[1] * bm.RECORD_EVERY_S
        assert bm.MASS_RANGE_KG[0] <= inc.mass_kg <= bm.MASS_RANGE_KG[1]
        assert 1 - bm.FLOW_ERROR <= inc.flow_factor <= 1 + bm.FLOW_ERROR
        net = inc.attribution_net
        src = net.dischargers[inc.discharger]
        assert all(net.is_upstream(src, net.stations[s]) for s in inc.stations_downstream)
        assert not any(net.is_upstream(src, net.stations[s]) for s in inc.stations_upstream)
        assert len(inc.stations_upstream) <= bm.MAX_UPSTREAM_STATIONS
        if inc.anomaly_station is not None:
            assert inc.anomaly_station in inc.stations_downstream
            # background-only stations: median at the background, 10 % multiplicative noise
            quiet = frame[frame["station_id"].isin(inc.stations_upstream)]["value"].to_numpy()
            bg = bm.BACKGROUND_G_M3[inc.parameter]
            if quiet.size:
                assert_allclose(np.median(quiet), bg, rtol=0.05)  # median of >= 500 samples: sd ~0.6 %
                assert_allclose(np.std(quiet / bg - 1), bm.SENSOR_NOISE, rtol=0.15)  # sample sd, n >= 500


def test_small_benchmark_accuracy(outcomes):
    figures = bm.summarize(outcomes)
    assert figures["incidents"] == 20
    assert figures["detected"] >= 18  # draws are redrawn until the frozen-cloud peak is detectable
    ident = figures["identifiable"]
    assert ident["n"] >= 5
    assert ident["top3"] >= 0.9
    assert figures["attribution_median_ms"] < 200.0


@pytest.fixture(scope="module")
def continuous_outcomes():
    basin = bm.Basin("ruxi", demo_network("ruxi"), seed=3)
    rng = np.random.default_rng(2026)
    return [bm.attribute_incident(bm.make_incident(basin, rng, release="continuous")) for _ in range(6)]


def test_continuous_incidents(continuous_outcomes):
    """Still going on at the end of a mostly-background record; attribution picks the continuous model."""
    for o in continuous_outcomes:
        inc = o.incident
        assert inc.release == "continuous" and np.isnan(inc.mass_kg)
        assert bm.RATE_RANGE_KG_S[0] <= inc.rate_kg_s <= bm.RATE_RANGE_KG_S[1]
        frame = inc.readings.frame
        before = (frame["time"] < inc.release_start).mean()
        assert before > 0.5  # each station's median is its background
        if inc.anomaly_station is not None:
            assert o.model == "continuous"
    figures = bm.summarize(continuous_outcomes)
    assert figures["detected"] >= 5
    assert figures["all_detected"]["top3"] >= 0.8
    assert set(figures["model_chosen"]) == {"continuous -> continuous"}
    assert figures["median_mass_error"] < 0.25  # the rate, within its 10 % noise and 20 % flow error


def test_calibration_figures_by_hand():
    """ECE and Brier of the first choice on outcomes whose values are worked out by hand: four stated
    at 0.95 (three right), two at 0.35 (one right). Bins [0.9, 1.0] and [0.3, 0.4]:
    ECE = 4/6 |0.75 - 0.95| + 2/6 |0.5 - 0.35| = 0.1333 + 0.05 = 0.1833;
    Brier = (3 x 0.05^2 + 0.95^2 + 0.65^2 + 0.35^2) / 6 = 0.2446."""
    from types import SimpleNamespace

    outs = [SimpleNamespace(top_probability=p, top1=r) for p, r in
            [(0.95, True), (0.95, True), (0.95, True), (0.95, False), (0.35, True), (0.35, False)]]
    cal = bm.calibration(outs)
    assert cal["n"] == 6
    assert cal["ece"] == pytest.approx(0.1833, abs=1e-4)
    assert cal["brier"] == pytest.approx((3 * 0.05**2 + 0.95**2 + 0.65**2 + 0.35**2) / 6, abs=1e-4)
    assert [b["n"] for b in cal["bins"]] == [2, 4]


def test_box_release_incident_has_its_duration_and_lost_readings(synthetic):
    """A finite release: its duration is drawn in the stated range, and with faults about 5 % of the
    readings are missing (seeded draw: between 2 % and 9 %, binomial on >= 500 readings)."""
    basin = bm.Basin("synthetic-2000", synthetic, seed=2)
    rng = np.random.default_rng(11)
    inc = bm.make_incident(basin, rng, release="box", sample_every_s=900.0, faults=True)
    assert bm.DURATION_RANGE_S[0] <= inc.duration_s <= bm.DURATION_RANGE_S[1]
    assert inc.rate_kg_s == pytest.approx(inc.mass_kg / inc.duration_s)
    frame = inc.readings.frame
    per_station = frame.groupby("station_id").size()
    expected = per_station.max()  # a complete record: every 900 s over the same span
    lost = 1 - per_station[per_station > 0.5 * expected].sum() / (expected * (per_station > 0.5 * expected).sum())
    assert 0.02 <= lost <= 0.09
    steps = np.diff(np.sort(frame[frame["station_id"] == per_station.idxmax()]["time"].unique())).astype("timedelta64[s]")
    assert (steps.astype(float) % 900 == 0).all()


def test_ece_of_a_calibrated_first_choice_matches_the_binomial():
    """All 40 first choices stated at 0.5 fall in one bin, so the ECE of a calibrated draw is
    |K/40 - 0.5| with K ~ Binomial(40, 0.5): its exact mean sum_k P(k) |k/40 - 0.5| = 0.0627. The Monte
    Carlo mean of 4,000 draws must agree within 4 of its standard errors (sd ~0.047 / sqrt(4000))."""
    from scipy.stats import binom

    k = np.arange(41)
    exact = float(np.sum(binom.pmf(k, 40, 0.5) * np.abs(k / 40 - 0.5)))
    null = bm.ece_if_calibrated(np.full(40, 0.5), draws=4000, seed=3)
    assert abs(null.mean() - exact) < 4 * null.std() / np.sqrt(null.size)
    # and the calibration figures carry it: a measured ECE of 0 is never above a calibrated draw's
    from types import SimpleNamespace

    cal = bm.calibration([SimpleNamespace(top_probability=0.5, top1=i % 2 == 0) for i in range(40)])
    assert cal["ece"] == 0.0 and cal["ece_calibrated_share_above"] == 1.0


def test_identifiability_with_a_free_release_duration():
    """With durations fitted, a same-stretch discharger explains the readings when its own curve is no
    wider than the observed one. Channel: U = 0.5 m/s, D = 10 m2/s, so var = 2 D x / U^3 (Fischer et al.
    1979, eq. 5.16 at the station): T (10 km) 1.6e6 s2, B (12 km) 1.92e6 s2, C (20 km) 3.2e6 s2."""
    net = _channel([{"id": "S", "reach": "r2", "chainage_m": 5000.0}])
    st, s = net.reach_state(), net.stations["S"]
    # truth B, a pulse: T is nearer (narrower curve) and within 25 % of travel time: a confuser either way
    ok, reason, _, confusers = bm.identifiability(net, st, s, "B", pollutant("tracer"), [s], release_duration_s=0.0)
    assert not ok and confusers == ("T",) and reason == bm.SAME_STRETCH
    # truth T, a pulse: C (farther, wider) cannot be narrowed by a release: only B (within 25 % time)
    ok, _, _, confusers = bm.identifiability(net, st, s, "T", pollutant("tracer"), [s], release_duration_s=0.0)
    assert confusers == ("B",)
    # truth T released over 2 h: var_T + T^2/12 = 1.6e6 + 4.32e6 >= 3.2e6, so C explains it too
    ok, _, _, confusers = bm.identifiability(net, st, s, "T", pollutant("tracer"), [s], release_duration_s=7200.0)
    assert set(confusers) == {"B", "C"}
    # over 1 h: 1.6e6 + 1.08e6 = 2.68e6 < 3.2e6, C still too wide
    ok, _, _, confusers = bm.identifiability(net, st, s, "T", pollutant("tracer"), [s], release_duration_s=3600.0)
    assert confusers == ("B",)

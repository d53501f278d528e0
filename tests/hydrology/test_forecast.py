"""Analytic forecast engine: exact on a uniform channel, mass-consistent on a network."""

import math

import numpy as np
import pytest
from net_cases import chain_doc, confluence_doc
from numpy.testing import assert_allclose

from hydrology.document import network_from_document
from hydrology.pollutants import SURFACE_VELOCITY_INDEX, Pollutant, pollutant
from hydrology.transport.analytic import ForecastError, Release, forecast, route_moments

TRACER = Pollutant("tracer")


def _single_reach_params(net):
    st = net.reach_state()
    return st.velocity_ms[0], st.dispersion_m2s[0], st.area_m2[0]


def test_uniform_channel_peak_matches_closed_form():
    """Peak time t* = (sqrt(D^2 + U^2 x^2) - D)/U^2 and C(t*) of the Gaussian puff (DESIGN: 0.5 %)."""
    doc = chain_doc(n=1, length=30000.0)
    doc["stations"] = [{"id": f"s{i}", "reach": "r0", "chainage_m": x} for i, x in enumerate((2000.0, 10000.0, 25000.0))]
    net = network_from_document(doc)
    U, D, A = _single_reach_params(net)
    fc = forecast(net, Release("r0", 500.0, TRACER, mass_kg=100.0))
    for rec in fc.receptors:
        x = rec.distance_m
        t_star = (math.sqrt(D * D + U * U * x * x) - D) / U**2
        c_star = 1e5 / (A * math.sqrt(4 * math.pi * D * t_star)) * math.exp(-((x - U * t_star) ** 2) / (4 * D * t_star))
        # DESIGN.md budget: Gaussian solutions reproduced to 0.5 %; the parabola refinement does ~1e-4
        assert_allclose(rec.peak_s, t_star, rtol=5e-3)
        assert_allclose(rec.peak_g_m3, c_star, rtol=5e-3)


def test_continuous_release_reaches_plateau_r_over_q():
    doc = chain_doc(n=1, length=20000.0)
    doc["stations"] = [{"id": "s", "reach": "r0", "chainage_m": 5000.0}]
    net = network_from_document(doc)
    rate = 0.02  # kg/s for 10 h: long enough to reach the plateau 5 km down
    fc = forecast(net, Release("r0", 0.0, TRACER, rate_kg_s=rate, duration_s=36000.0))
    assert_allclose(fc.receptors[0].peak_g_m3, rate * 1000.0 / 10.0, rtol=5e-3)  # R/Q, Ogata-Banks plateau


def _flux_integral(fc, rid, n=20000):
    ds = fc.curves(n_times=n)
    rec = fc.receptor(rid)
    c = ds["concentration"].sel(receptor=rid).values
    return np.trapezoid(rec.discharge_m3s * c, ds["time"].values) / 1000.0  # kg


def test_mass_through_each_receptor_on_a_network():
    """int Q C dt at a receptor = M x (share of flow that passes it): dilution, split, rejoin."""
    net = network_from_document(confluence_doc())
    fc = forecast(net, Release("m1", 2000.0, TRACER, mass_kg=50.0))
    expected = {"S-m1": 50.0, "S-m2": 50.0, "S-b1": 50.0 * 0.7, "S-m3": 50.0, "I-1": 50.0}
    got = {r.id for r in fc.receptors}
    assert got == set(expected), "tributary and upstream stations are not downstream"
    for rid, mass in expected.items():
        # trapezoid rule on 20,000 samples over ~16 sigma; the kernel integrates to 1/U exactly
        assert_allclose(_flux_integral(fc, rid), mass, rtol=2e-3)
        assert_allclose(fc.receptor(rid).mass_fraction, mass / 50.0, rtol=1e-12)


def test_dilution_at_confluence_lowers_peak():
    net = network_from_document(confluence_doc())
    fc = forecast(net, Release("m1", 0.0, TRACER, mass_kg=50.0))
    assert fc.receptor("S-m2").discharge_m3s == pytest.approx(12.0)  # 8 + 4 m3/s
    assert fc.receptor("S-m2").peak_g_m3 < fc.receptor("S-m1").peak_g_m3


def test_moments_add_along_the_path():
    net = network_from_document(confluence_doc())
    st = net.reach_state()
    i = st.index
    routed = {f.id: (fr, x, m, v) for f, fr, x, m, v in route_moments(net, st, "m1", 2000.0, TRACER, ("station",))}
    u, d = st.velocity_ms, st.dispersion_m2s
    mean = 4000 / u[i["m1"]] + 2000 / u[i["m2"]]
    var = 2 * d[i["m1"]] * 4000 / u[i["m1"]] ** 3 + 2 * d[i["m2"]] * 2000 / u[i["m2"]] ** 3
    _, x, m, v = routed["S-m2"]
    assert x == 6000.0
    assert_allclose([m, v], [mean, var], rtol=1e-12)
    # below the braid: mixture of the two branch arrivals, weighted 0.7 / 0.3 by flow
    t_in = 4000 / u[i["m1"]] + 4000 / u[i["m2"]]
    tb1, tb2 = t_in + 3000 / u[i["b1"]], t_in + 3500 / u[i["b2"]]
    _, _, m3, _ = routed["S-m3"]
    assert_allclose(m3, 0.7 * tb1 + 0.3 * tb2 + 6000 / u[i["m3"]], rtol=1e-12)


def test_decay_reduces_mass_as_exp_minus_k_t():
    doc = chain_doc(n=1, length=20000.0)
    doc["stations"] = [{"id": "s", "reach": "r0", "chainage_m": 15000.0}]
    net = network_from_document(doc)
    k = 1e-5
    U, D, _A = _single_reach_params(net)
    fc = forecast(net, Release("r0", 0.0, Pollutant("x", decay_per_s=k), mass_kg=10.0))
    r = math.sqrt(U * U + 4 * k * D)
    expected = 10.0 * U / r * math.exp(15000.0 * (U - r) / (2 * D))  # Laplace transform, as in test_transport
    assert_allclose(_flux_integral(fc, "s"), expected, rtol=2e-3)


def test_floating_oil_moves_at_surface_velocity():
    doc = chain_doc(n=1, length=20000.0, storage_ratio=0.3, storage_exchange_per_s=1e-4)
    doc["stations"] = [{"id": "s", "reach": "r0", "chainage_m": 12000.0}]
    net = network_from_document(doc)
    U, _D, _A = _single_reach_params(net)
    oil = forecast(net, Release("r0", 0.0, pollutant("petroleum"), mass_kg=1.0)).receptors[0]
    dissolved = forecast(net, Release("r0", 0.0, TRACER, mass_kg=1.0)).receptors[0]
    assert_allclose(oil.mean_travel_time_s, 12000.0 * SURFACE_VELOCITY_INDEX / U, rtol=1e-12)  # no storage for oil
    assert_allclose(dissolved.mean_travel_time_s, 12000.0 / U * 1.3, rtol=1e-12)  # (1 + beta)
    wind = forecast(net, Release("r0", 0.0, pollutant("petroleum"), mass_kg=1.0), wind_ms=5.0).receptors[0]
    assert wind.mean_travel_time_s < oil.mean_travel_time_s


def test_threshold_from_standard_and_edges():
    net = network_from_document(confluence_doc())
    fc = forecast(net, Release("m1", 0.0, pollutant("NH3-N"), mass_kg=200.0))
    intake = fc.receptor("I-1")
    assert intake.threshold_g_m3 == 1.0 and "class III" in intake.threshold_basis  # GB 3838 NH3-N class III
    assert intake.arrival_s < intake.peak_s < intake.end_s
    # arrival and end are where the curve crosses the threshold
    ds = fc.curves(n_times=20001)
    c = ds["concentration"].sel(receptor="I-1").values
    t = ds["time"].values
    above = t[c >= 1.0]
    assert_allclose([intake.arrival_s, intake.end_s], [above[0], above[-1]], atol=2 * (t[1] - t[0]) + 1.0)
    small = forecast(net, Release("m1", 0.0, pollutant("NH3-N"), mass_kg=0.001)).receptor("I-1")
    assert small.arrival_s is None and small.end_s is None  # never above the standard


def test_release_at_the_downstream_end_sees_nothing_upstream():
    net = network_from_document(confluence_doc())
    fc = forecast(net, Release("m3", 7500.0, TRACER, mass_kg=1.0))
    assert fc.receptors == ()


@pytest.mark.parametrize("kw,msg", [
    ({"mass_kg": -1.0}, "positive"),
    ({"mass_kg": float("nan")}, "positive"),
    ({"rate_kg_s": 1.0}, "exactly one of"),
    ({"mass_kg": 1.0, "rate_kg_s": 1.0, "duration_s": 5.0}, "exactly one of"),
])
def test_bad_release_is_refused(kw, msg):
    with pytest.raises(ForecastError, match=msg):
        Release("m1", 0.0, TRACER, **kw)


def test_release_off_its_reach_is_refused():
    net = network_from_document(confluence_doc())
    with pytest.raises(ForecastError, match="outside reach 'm1'"):
        forecast(net, Release("m1", 7000.0, TRACER, mass_kg=1.0))


def test_withdrawal_takes_its_share_of_the_mass():
    """Regression (found by the numerical engine): below a withdrawal the plume keeps Q_out/Q_in of its mass."""
    doc = {"nodes": [{"id": "N1"}, {"id": "N2"}, {"id": "N3"}],
           "reaches": [{"id": "R1", "from_node": "N1", "to_node": "N2", "length_m": 8000.0, "velocity_ms": 0.5, "dispersion_m2s": 10.0},
                       {"id": "R2", "from_node": "N2", "to_node": "N3", "length_m": 8000.0, "velocity_ms": 0.5, "dispersion_m2s": 10.0,
                        "discharge_m3s": 3.0}],
           "inflows": [{"node": "N1", "discharge_m3s": 5.0}],
           "stations": [{"id": "above", "reach": "R1", "chainage_m": 7900.0}, {"id": "below", "reach": "R2", "chainage_m": 100.0}]}
    fc = forecast(network_from_document(doc), Release("R1", 1000.0, TRACER, mass_kg=10.0))
    assert fc.receptor("below").mass_fraction == pytest.approx(0.6)  # 3 of the 5 m3/s go on
    # concentration continuous across the withdrawal (200 m apart, nearly the same curve)
    assert fc.receptor("below").peak_g_m3 == pytest.approx(fc.receptor("above").peak_g_m3, rel=0.02)

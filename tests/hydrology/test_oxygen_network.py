"""Network DO chaining checked against a direct ODE integration of the same river (solve_ivp)."""

import numpy as np
import pytest
from net_cases import confluence_doc
from numpy.testing import assert_allclose
from scipy.integrate import solve_ivp

from hydrology.document import network_from_document
from hydrology.oxygen import arrhenius, cbod_ultimate_from_bod5, do_saturation, reaeration_rate
from hydrology.oxygen_network import DOConditions, Effluent, OxygenScenarioError, predict_do

COND = DOConditions(temperature_c=26.0)


def _rates(u, h, cond):
    kd = arrhenius(cond.kd20_per_s, cond.temperature_c, 1.047)
    kn = arrhenius(cond.kn20_per_s, cond.temperature_c, 1.07)
    ka = arrhenius(reaeration_rate(u, h), cond.temperature_c, 1.024)
    return float(kd), float(kn), float(ka)


def _integrate(state, t, kd, kn, ka, cs):
    """dL/dt = -kd L, dN/dt = -kn N, dDO/dt = -kd L - 4.57 kn N + ka (cs - DO): the textbook ODEs."""
    def rhs(_t, y):
        L, N, O = y
        return [-kd * L, -kn * N, -kd * L - 4.57 * kn * N + ka * (cs - O)]
    return solve_ivp(rhs, (0, t), state, rtol=1e-10, atol=1e-12).y[:, -1]


def _mix(*parts):
    q = np.array([p[0] for p in parts])
    c = np.array([p[1:] for p in parts])
    return q.sum(), (q @ c) / q.sum()


def test_effluent_then_confluence_matches_direct_integration():
    eff = Effluent(discharge_m3s=0.5, bod5_g_m3=80.0, nh3n_g_m3=20.0, do_g_m3=1.0)
    doc = confluence_doc()
    doc["dischargers"] = [{"id": "D1", "reach": "m1", "chainage_m": 1500.0, "kind": "sewage_plant", "effluent_discharge_m3s": 0.5}]
    net = network_from_document(doc)
    st = net.reach_state()
    res = predict_do(net, {"D1": eff}, COND)
    cs = float(do_saturation(COND.temperature_c))
    bg = [COND.background_cbod_g_m3, COND.background_nh3n_g_m3, COND.background_do_fraction * cs]
    i = st.index
    # m1: background water (8 m3/s; unchanged above the outfall, the documented model) mixes with the
    # effluent at 1500 m and travels on to S-m1 at 5000 m
    u, h = st.velocity_ms[i["m1"]], st.depth_m[i["m1"]]
    kd, kn, ka = _rates(u, h, COND)
    s = bg
    l_eff = float(cbod_ultimate_from_bod5(80.0, COND.bottle_k1_per_s))
    _q, c = _mix((8.0, *s), (0.5, l_eff, 20.0, 1.0))
    at_s_m1 = _integrate(c, 3500.0 / u, kd, kn, ka, cs)
    # rtol: solve_ivp at rtol 1e-10 vs the closed form: agreement to ~1e-8
    assert_allclose(res.stations["S-m1"].do_g_m3, at_s_m1[2], rtol=1e-7)
    assert_allclose(res.stations["S-m1"].nh3n_g_m3, at_s_m1[1], rtol=1e-7)
    # end of m1, confluence with the clean tributary (background water), then 2000 m of m2
    end_m1 = _integrate(c, 4500.0 / u, kd, kn, ka, cs)  # outfall at 1500 m to the reach end at 6000 m
    _q2, c2 = _mix((8.5, *end_m1), (4.0, *bg))
    u2, h2 = st.velocity_ms[i["m2"]], st.depth_m[i["m2"]]
    at_s_m2 = _integrate(c2, 2000.0 / u2, *_rates(u2, h2, COND), cs)
    assert_allclose(res.stations["S-m2"].do_g_m3, at_s_m2[2], rtol=1e-7)
    assert res.stations["S-m2"].discharge_m3s == pytest.approx(12.5)  # 8 + 0.5 effluent + 4 tributary
    # stations no effluent reaches carry the background water
    assert not res.stations["S-trib"].affected and not res.stations["S-up"].affected
    assert res.stations["S-up"].do_g_m3 == pytest.approx(bg[2])  # S-up is above the outfall on m1
    assert res.stations["S-trib"].do_g_m3 == pytest.approx(bg[2])


def test_more_flow_and_cooler_water_raise_do():
    doc = confluence_doc()
    doc["dischargers"] = [{"id": "D1", "reach": "m1", "chainage_m": 100.0, "kind": "sewage_plant"}]
    net = network_from_document(doc)
    eff = {"D1": Effluent(1.0, 120.0, 30.0, 0.5)}
    base = predict_do(net, eff, COND).stations["S-m3"].do_g_m3
    diluted = predict_do(net.with_discharges({"m1": 20.0}), eff, COND).stations["S-m3"].do_g_m3
    cooler = predict_do(net, eff, DOConditions(temperature_c=15.0)).stations["S-m3"].do_g_m3
    assert diluted > base and cooler > base


def test_unknown_discharger_and_bad_effluent():
    net = network_from_document(confluence_doc())
    with pytest.raises(KeyError, match="discharger 'nope'"):
        predict_do(net, {"nope": Effluent(1.0, 10.0, 1.0)})
    with pytest.raises(OxygenScenarioError, match="bod5_g_m3"):
        Effluent(1.0, -3.0, 1.0)

"""Tests of hydrology.oxygen and hydrology.oxygen_path against published values and independent solutions."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.integrate import solve_ivp

from hydrology.exceptions import HydraulicsError, UnknownModelError
from hydrology.oxygen import (
    NBOD_RATIO,
    REAERATION_FORMULAS,
    THETA_CBOD,
    THETA_NITRIFICATION,
    THETA_REAERATION,
    OxygenModelError,
    arrhenius,
    cbod_ultimate_from_bod5,
    critical_point,
    do_sag,
    do_saturation,
    reaeration_rate,
    streeter_phelps_deficit,
)
from hydrology.oxygen_path import PathSegments, PointInflow, WaterState, do_profile_along_path
from hydrology.units import DAY, per_day_to_per_s

# Tolerances of the reference ODE integrations: far below every rtol asserted against them.
ODE_TOL = {"rtol": 1e-11, "atol": 1e-12, "method": "DOP853"}


def integrate(t_end: float, l0: float, n0: float, d0: float, kd: float, kn: float, ka: float,
              t_eval: np.ndarray | None = None, **kw):
    """Numerical solution of dL/dt = -kd L, dN/dt = -kn N, dD/dt = kd L + 4.57 kn N - ka D."""

    def rhs(_t, y):
        lc, n, d = y
        return [-kd * lc, -kn * n, kd * lc + NBOD_RATIO * kn * n - ka * d]

    return solve_ivp(rhs, (0.0, t_end), [l0, n0, d0], t_eval=t_eval, **ODE_TOL, **kw)


# ------------------------------------------------------------------------------------ saturation
@pytest.mark.parametrize(
    ("temperature_c", "expected"),
    [
        (20.0, 9.092),  # DESIGN.md section 4
        (10.0, 11.288),  # DESIGN.md section 4
        (0.0, 14.621),  # APHA 4500-O table, as tabulated in Chapra & Canale, Numerical Methods
        (8.0, 11.843),  # for Engineers (DO-saturation interpolation problem, 0..40 C by 8 C)
        (16.0, 9.870),
        (24.0, 8.418),
        (30.0, 7.559),  # APHA 4500-O table (task brief)
        (32.0, 7.305),
        (40.0, 6.413),
    ],
)
def test_saturation_matches_apha_table(temperature_c, expected):
    # The tables print three decimals: the formula must agree to half a unit in the last place.
    assert_allclose(do_saturation(temperature_c), expected, rtol=0, atol=5e-4)


def test_saturation_is_vectorised():
    t = np.array([0.0, 10.0, 20.0])
    # Elementwise evaluation is the same arithmetic; ln C* cancels terms of size ~1e3, so round-off
    # is amplified to ~1e-13.
    assert_allclose(do_saturation(t), [do_saturation(x) for x in t], rtol=1e-12)


def weiss_1970_ml_per_l(t_c: float, s: float) -> float:
    """Weiss (1970, Deep-Sea Res. 17, 721-735) air-solubility equation: O2 [ml/L] from moist air, 1 atm."""
    tk = t_c + 273.15
    return np.exp(-173.4292 + 249.6339 * 100 / tk + 143.3483 * np.log(tk / 100) - 21.8492 * tk / 100
                  + s * (-0.033096 + 0.014259 * tk / 100 - 0.0017000 * (tk / 100) ** 2))


@pytest.mark.parametrize("temperature_c", [0.0, 10.0, 20.0, 30.0])
@pytest.mark.parametrize("salinity", [10.0, 20.0, 35.0])
def test_salinity_factor_agrees_with_weiss_1970(temperature_c, salinity):
    ours = do_saturation(temperature_c, salinity) / do_saturation(temperature_c)
    theirs = weiss_1970_ml_per_l(temperature_c, salinity) / weiss_1970_ml_per_l(temperature_c, 0.0)
    # Two fits to different data sets (Weiss 1970 vs Benson & Krause 1984): they agree within
    # 0.6 % over 0-30 C, 0-35 g/kg; 1 % would catch a sign or coefficient error (>= 5 %).
    assert_allclose(ours, theirs, rtol=1e-2)


@pytest.mark.parametrize("temperature_c", [0.0, 12.0, 25.0])
@pytest.mark.parametrize("pressure_mmhg", [625.0, 700.0, 775.0])
def test_pressure_correction_follows_henry_law(temperature_c, pressure_mmhg):
    p = pressure_mmhg / 760.0
    # Independent: Henry's law on the O2 partial pressure, C_P = C_1 (P - p_wv)/(1 - p_wv), with
    # the vapour pressure from the Antoine equation for water (8.07131, 1730.63, 233.426; mmHg).
    p_wv = 10 ** (8.07131 - 1730.63 / (233.426 + temperature_c)) / 760.0
    expected = do_saturation(temperature_c) * (p - p_wv) / (1.0 - p_wv)
    # APHA adds the second-virial term theta (~1e-3 P) that Henry's law ignores: 5e-4 covers it.
    assert_allclose(do_saturation(temperature_c, 0.0, p), expected, rtol=5e-4)


@pytest.mark.parametrize(
    "kwargs",
    [{"temperature_c": 45.0}, {"temperature_c": -1.0}, {"temperature_c": 10.0, "salinity_ppt": -1.0},
     {"temperature_c": 30.0, "pressure_atm": 0.0}, {"temperature_c": 30.0, "pressure_atm": 0.03},
     {"temperature_c": float("nan")}],
)
def test_saturation_rejects_out_of_range(kwargs):
    with pytest.raises(OxygenModelError):
        do_saturation(**kwargs)


# ------------------------------------------------------------------------------------ reaeration
@pytest.mark.parametrize(
    ("method", "velocity", "depth", "per_day"),
    [
        ("oconnor-dobbins", 1.0, 1.0, 3.93),
        ("oconnor-dobbins", 0.25, 4.0, 3.93 * 0.5 / 8.0),  # U^0.5 = 0.5, H^1.5 = 8
        ("churchill", 1.0, 1.0, 5.026),
        ("churchill", 2.0, 1.0, 10.052),  # linear in U
        ("owens-gibbs", 1.0, 1.0, 5.32),
        ("owens-gibbs", 1.0, 0.5, 5.32 * 2**1.85),
    ],
)
def test_reaeration_formulas(method, velocity, depth, per_day):
    # Hand-evaluated QUAL2K-manual formulas; the only arithmetic is a power: round-off only.
    assert_allclose(reaeration_rate(velocity, depth, method), per_day / DAY, rtol=1e-12)


@pytest.mark.parametrize(
    ("velocity", "depth", "chosen"),
    [
        (0.5, 0.5, "owens-gibbs"),  # H < 0.61 m
        (3.0, 0.6, "owens-gibbs"),  # shallow wins even when fast
        (0.1, 2.0, "oconnor-dobbins"),  # H = 2 > 3.45 * 0.1^2.5 = 0.011
        (0.2, 0.61, "oconnor-dobbins"),  # H at the bound is not "shallow"; 0.61 > 3.45*0.2^2.5=0.062
        (1.0, 1.0, "churchill"),  # 3.45 * 1^2.5 = 3.45 > 1
        (0.8, 1.5, "churchill"),  # 3.45 * 0.8^2.5 = 1.975 > 1.5
    ],
)
def test_qual2k_selection(velocity, depth, chosen):
    # Same formula, same inputs: identical up to round-off.
    assert_allclose(reaeration_rate(velocity, depth), reaeration_rate(velocity, depth, chosen), rtol=1e-14)


def test_qual2k_selection_vectorised():
    u = np.array([0.5, 0.1, 1.0, 0.8])
    h = np.array([0.5, 2.0, 1.0, 1.5])
    # Vector and scalar paths do the same arithmetic.
    assert_allclose(reaeration_rate(u, h), [reaeration_rate(a, b) for a, b in zip(u, h)], rtol=1e-14)


def test_reaeration_errors():
    with pytest.raises(UnknownModelError, match="no-such"):
        reaeration_rate(1.0, 1.0, "no-such")
    with pytest.raises(HydraulicsError, match="velocity"):
        reaeration_rate(-0.1, 1.0)
    with pytest.raises(HydraulicsError, match="depth"):
        reaeration_rate(0.5, 0.0)
    assert set(REAERATION_FORMULAS) == {"qual2k", "oconnor-dobbins", "churchill", "owens-gibbs"}


def test_arrhenius():
    assert THETA_REAERATION == 1.024 and THETA_CBOD == 1.047 and THETA_NITRIFICATION == 1.07
    # 1.024^10 = 1.26765 and 1.047^-5 = 1/1.258153 = 0.794816 (calculator values, 6 figures).
    assert_allclose(arrhenius(1.0, 30.0, THETA_REAERATION), 1.26765, rtol=1e-5)
    assert_allclose(arrhenius([2.0, 2.0], [20.0, 15.0], THETA_CBOD), [2.0, 2 * 0.794816], rtol=1e-5)


# ------------------------------------------------------------------------------- Streeter-Phelps
KD, KA = per_day_to_per_s(0.3), per_day_to_per_s(0.7)


def test_critical_point_design_values():
    tc, dc = critical_point(10.0, 1.0, KD, KA)
    # DESIGN.md gives 5 significant figures (1.7605 d, 2.5273 mg/L).
    assert_allclose(tc / DAY, 1.7605, rtol=5e-5)
    assert_allclose(dc, 2.5273, rtol=5e-5)


@pytest.mark.parametrize(
    ("l0", "d0", "kd_day", "ka_day"),
    [(10.0, 1.0, 0.3, 0.7), (20.0, 0.0, 0.5, 0.5), (15.0, 2.0, 0.8, 0.4), (30.0, 3.0, 0.35, 0.35000001)],
)
def test_critical_point_against_ode(l0, d0, kd_day, ka_day):
    kd, ka = per_day_to_per_s(kd_day), per_day_to_per_s(ka_day)

    def slope(_t, y):  # dD/dt = kd L - ka D crosses zero at the critical point
        return kd * y[0] - ka * y[2]

    slope.direction = -1
    sol = integrate(30 * DAY, l0, 0.0, d0, kd, 0.0, ka, events=slope)
    t_num, d_num = sol.t_events[0][0], sol.y_events[0][0][2]
    tc, dc = critical_point(l0, d0, kd, ka)
    # Independent numerical solution integrated to 1e-11: agreement to 1e-6 as the brief asks.
    assert_allclose([tc, dc], [t_num, d_num], rtol=1e-6)


def test_critical_point_when_deficit_only_falls():
    # kd L0 = 0.3*2 < ka D0 = 0.7*4: the sag bottom is at the outfall.
    tc, dc = critical_point(2.0, 4.0, KD, KA)
    assert tc == 0.0 and dc == 4.0
    sol = integrate(DAY, 2.0, 0.0, 4.0, KD, 0.0, KA, t_eval=np.linspace(0, DAY, 50))
    assert np.all(np.diff(sol.y[2]) < 0)


@pytest.mark.parametrize(("l0", "d0", "kd_day", "ka_day"), [(2.0, -5.0, 1.0, 0.1), (0.0, -1.0, 0.3, 0.7)])
def test_critical_point_when_deficit_rises_without_maximum(l0, d0, kd_day, ka_day):
    # Supersaturated start: D(t) climbs toward 0 from below and never turns (checked on the ODE).
    kd, ka = per_day_to_per_s(kd_day), per_day_to_per_s(ka_day)
    t_end = 10.0 / ka  # ten e-folds: D stays far above the integrator's 1e-12 noise floor
    sol = integrate(t_end, l0, 0.0, d0, kd, 0.0, ka, t_eval=np.linspace(0, t_end, 200))
    assert np.all(np.diff(sol.y[2]) > 0) and np.all(sol.y[2] < 0)
    tc, dc = critical_point(l0, d0, kd, ka)
    assert tc == np.inf and dc == 0.0


@pytest.mark.parametrize(("kd_day", "ka_day"), [(0.3, 0.7), (0.6, 0.6), (0.9, 0.2), (0.0, 0.5)])
def test_deficit_against_ode(kd_day, ka_day):
    kd, ka = per_day_to_per_s(kd_day), per_day_to_per_s(ka_day)
    t = np.linspace(0.0, 10 * DAY, 41)
    sol = integrate(t[-1], 12.0, 0.0, 1.5, kd, 0.0, ka, t_eval=t)
    # ODE integrated to 1e-11; closed form (with the ka == kd limit) must agree to 1e-6.
    assert_allclose(streeter_phelps_deficit(t, 12.0, 1.5, kd, ka), sol.y[2], rtol=1e-6)


def test_equal_rate_limit_is_continuous():
    t = np.linspace(0.0, 5 * DAY, 11)
    k = per_day_to_per_s(0.4)
    exact = (k * 10.0 * t + 1.0) * np.exp(-k * t)  # Chapra (1997) lecture 21, ka = kd case
    near = streeter_phelps_deficit(t, 10.0, 1.0, k, k * (1 + 1e-9))
    # Equal rates: the limit formula exactly (round-off); ka/kd - 1 = 1e-9 perturbs D by ~1e-9.
    assert_allclose(streeter_phelps_deficit(t, 10.0, 1.0, k, k), exact, rtol=1e-13)
    assert_allclose(near, exact, rtol=1e-8)


@pytest.mark.parametrize(("kn_day", "ka_day"), [(0.1, 0.7), (0.7, 0.7), (1.2, 0.4)])
def test_do_sag_with_nitrification_against_ode(kn_day, ka_day):
    kd, kn, ka = KD, per_day_to_per_s(kn_day), per_day_to_per_s(ka_day)
    t = np.linspace(0.0, 8 * DAY, 33)
    sol = integrate(t[-1], 10.0, 3.0, 0.5, kd, kn, ka, t_eval=t)
    # ODE integrated to 1e-11; the closed form must agree to 1e-6.
    assert_allclose(do_sag(t, 10.0, 3.0, 0.5, kd, kn, ka), sol.y[2], rtol=1e-6)


def test_cbod_ultimate_from_bod5():
    # Textbook example (Metcalf & Eddy, Wastewater Engineering): BOD5 200 mg/L, k = 0.23/d ->
    # UBOD 293 mg/L, printed to 3 figures.
    assert_allclose(cbod_ultimate_from_bod5(200.0, per_day_to_per_s(0.23)), 293.0, rtol=2e-3)


# --------------------------------------------------------------------------------------- profile
def river(n: int, travel_day: float = 1.0, q: float | list[float] = 10.0, temperature=20.0, **kw):
    return PathSegments(travel_time_s=np.full(n, travel_day * DAY), discharge_m3s=q, velocity_ms=0.3,
                        depth_m=1.5, temperature_c=temperature, kd20_per_s=per_day_to_per_s(0.3),
                        kn20_per_s=per_day_to_per_s(0.2), **kw)


UPSTREAM = WaterState(discharge_m3s=10.0, cbod_g_m3=8.0, nh3n_g_m3=1.0, do_g_m3=7.0)


def test_single_segment_equals_closed_form():
    seg = river(1, travel_day=2.0, temperature=15.0)
    prof = do_profile_along_path(seg, UPSTREAM)
    kd = arrhenius(per_day_to_per_s(0.3), 15.0, THETA_CBOD)
    kn = arrhenius(per_day_to_per_s(0.2), 15.0, THETA_NITRIFICATION)
    ka = arrhenius(reaeration_rate(0.3, 1.5), 15.0, THETA_REAERATION)
    cs = do_saturation(15.0)
    d = do_sag(2 * DAY, 8.0, 1.0, cs - 7.0, kd, kn, ka)
    # Same closed form evaluated directly: agreement to round-off.
    assert_allclose(prof.deficit_g_m3, [d], rtol=1e-12)
    assert_allclose(prof.do_g_m3, [cs - d], rtol=1e-12)
    assert_allclose(prof.cbod_g_m3, [8.0 * np.exp(-kd * 2 * DAY)], rtol=1e-12)
    assert_allclose(prof.nh3n_g_m3, [1.0 * np.exp(-kn * 2 * DAY)], rtol=1e-12)
    assert not prof.anoxic[0]


def test_two_segments_in_series_equal_one_long_segment():
    two = do_profile_along_path(river(2, travel_day=1.5), UPSTREAM)
    one = do_profile_along_path(river(1, travel_day=3.0), UPSTREAM)
    # Linear first-order kinetics compose exactly; differences are round-off.
    for name in ("cbod_g_m3", "nh3n_g_m3", "do_g_m3", "deficit_g_m3"):
        assert_allclose(getattr(two, name)[-1], getattr(one, name)[0], rtol=1e-12)


def test_mixing_at_an_input_is_flow_weighted():
    effluent = WaterState(discharge_m3s=2.0, cbod_g_m3=50.0, nh3n_g_m3=20.0, do_g_m3=2.0)
    loads = [PointInflow("plant", 1, effluent, "discharger")]
    prof = do_profile_along_path(river(2, q=[10.0, 12.0]), UPSTREAM, loads)
    up = (prof.cbod_g_m3[0], prof.nh3n_g_m3[0], prof.do_g_m3[0])
    # Hand mass balance: (10 C_river + 2 C_effluent) / 12.
    expected = [(10 * up[0] + 2 * 50.0) / 12, (10 * up[1] + 2 * 20.0) / 12, (10 * up[2] + 2 * 2.0) / 12]
    got = [prof.cbod_start_g_m3[1], prof.nh3n_start_g_m3[1], prof.do_start_g_m3[1]]
    assert_allclose(got, expected, rtol=1e-12)  # the same arithmetic: round-off only


def test_profile_with_inflows_against_ode():
    seg = river(3, travel_day=0.8, q=[10.5, 10.5, 13.0], temperature=[22.0, 20.0, 18.0])
    loads = [PointInflow("plant", 0, WaterState(0.5, 80.0, 25.0, 1.0)),
             PointInflow("creek", 2, WaterState(2.5, 2.0, 0.1, 9.5), "tributary")]
    prof = do_profile_along_path(seg, UPSTREAM, loads)
    # Independent: integrate DO itself (dC/dt = -kd L - 4.57 kn N + ka (Cs - C)) with mixing by hand.
    state = np.array([UPSTREAM.cbod_g_m3, UPSTREAM.nh3n_g_m3, UPSTREAM.do_g_m3])
    q = UPSTREAM.discharge_m3s
    for i in range(3):
        for f in loads:
            if f.segment == i:
                s = f.state
                state = (q * state + s.discharge_m3s * np.array([s.cbod_g_m3, s.nh3n_g_m3, s.do_g_m3])) / (
                    q + s.discharge_m3s)
                q += s.discharge_m3s
        t = seg.temperature_c[i]
        kd = per_day_to_per_s(0.3) * 1.047 ** (t - 20)
        kn = per_day_to_per_s(0.2) * 1.07 ** (t - 20)
        # O'Connor-Dobbins: H = 1.5 m > 0.61 m and > 3.45 * 0.3^2.5 = 0.17 m.
        ka = 3.93 * 0.3**0.5 / 1.5**1.5 / DAY * 1.024 ** (t - 20)
        cs = do_saturation(t)

        def rhs(_t, y, kd=kd, kn=kn, ka=ka, cs=cs):
            return [-kd * y[0], -kn * y[1], -kd * y[0] - 4.57 * kn * y[1] + ka * (cs - y[2])]

        state = solve_ivp(rhs, (0, seg.travel_time_s[i]), state, **ODE_TOL).y[:, -1]
        # ODE to 1e-11, compounded over 3 segments: 1e-6 is the brief's agreement level.
        assert_allclose([prof.cbod_g_m3[i], prof.nh3n_g_m3[i], prof.do_g_m3[i]], state, rtol=1e-6)


def test_do_never_negative_and_anoxic_flag():
    sewage = WaterState(discharge_m3s=5.0, cbod_g_m3=400.0, nh3n_g_m3=40.0, do_g_m3=0.0)
    seg = river(3, travel_day=1.0, q=[15.0, 15.0, 15.0], temperature=25.0)
    prof = do_profile_along_path(seg, UPSTREAM, [PointInflow("raw sewage", 0, sewage)])
    assert prof.anoxic[0]
    assert np.all(prof.do_g_m3 >= 0.0)
    assert prof.do_g_m3[0] == 0.0
    assert_allclose(prof.deficit_g_m3[0], prof.saturation_g_m3[0], rtol=1e-14)  # clipped exactly


def test_anoxic_flag_off_for_clean_river():
    prof = do_profile_along_path(river(3), UPSTREAM)
    assert not prof.anoxic.any()


def test_stated_ka_is_used():
    ka20 = per_day_to_per_s(2.0)
    prof = do_profile_along_path(river(1, ka20_per_s=ka20), UPSTREAM)
    assert_allclose(prof.ka_per_s, [ka20], rtol=1e-14)  # 20 C: no temperature correction


def test_withdrawal_keeps_concentrations():
    prof = do_profile_along_path(river(2, q=[10.0, 6.0]), UPSTREAM)
    assert_allclose(prof.cbod_start_g_m3[1], prof.cbod_g_m3[0], rtol=1e-14)
    assert prof.discharge_m3s[1] == 6.0


def test_undeclared_inflow_is_an_error():
    with pytest.raises(OxygenModelError, match="segment 1: discharge 14.0"):
        do_profile_along_path(river(2, q=[10.0, 14.0]), UPSTREAM)


def test_inflow_outside_path_is_an_error():
    with pytest.raises(OxygenModelError, match="'late'"):
        do_profile_along_path(river(2), UPSTREAM, [PointInflow("late", 2, UPSTREAM)])


def test_bad_path_fields():
    with pytest.raises(OxygenModelError, match="travel_time_s"):
        river(2, travel_day=-1.0)
    with pytest.raises(OxygenModelError, match="3 values for 2 segments"):
        PathSegments(travel_time_s=[1.0, 2.0], discharge_m3s=[1.0, 1.0, 1.0], velocity_ms=0.3,
                     depth_m=1.0, temperature_c=20.0, kd20_per_s=0.0, kn20_per_s=0.0)
    with pytest.raises(OxygenModelError, match="cbod_g_m3"):
        WaterState(1.0, -2.0, 0.0, 8.0)

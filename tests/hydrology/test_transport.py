"""Closed-form transport solutions checked against independent references.

References: the ADE itself (finite-difference residual), exact integrals of the Gaussian kernel,
the steady-state decay profile, and a direct (naive) evaluation of the Ogata-Banks formula where it
does not overflow. None of them call the code under test.
"""

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.integrate import quad

from hydrology.transport import finite_release, gaussian_puff, ogata_banks, reach_moments

U, D, A = 0.6, 30.0, 15.0  # m/s, m2/s, m2: a mid-sized river


def _ade_residual(c, x, t, k, h_x=0.5, h_t=0.5):
    """Residual of dC/dt + U dC/dx - D d2C/dx2 + k C by central differences (independent of form)."""
    dcdt = (c(x, t + h_t) - c(x, t - h_t)) / (2 * h_t)
    dcdx = (c(x + h_x, t) - c(x - h_x, t)) / (2 * h_x)
    d2 = (c(x + h_x, t) - 2 * c(x, t) + c(x - h_x, t)) / h_x**2
    return dcdt + U * dcdx - D * d2 + k * c(x, t), dcdt


@pytest.mark.parametrize("k", [0.0, 2e-5])
def test_gaussian_puff_satisfies_the_ade(k):
    c = lambda x, t: gaussian_puff(x, t, 10.0, A, U, D, k)
    res, dcdt = _ade_residual(c, 2000.0, 3600.0, k)
    # second-order differences with h = 0.5 m/s: truncation ~1e-6 of the time derivative
    assert abs(res) < 1e-5 * abs(dcdt)


@pytest.mark.parametrize("k", [0.0, 1e-5])
def test_gaussian_puff_time_integral_is_exact(k):
    """int_0^inf Q C dt at fixed x = M U/r exp(x (U - r) / (2 D)), r = sqrt(U^2 + 4 k D).

    This is the Laplace transform of the Gaussian kernel at s = k (e.g. Abramowitz & Stegun 29.3.84).
    """
    x, mass = 5000.0, 10.0
    val, _ = quad(lambda t: U * A * gaussian_puff(x, t, mass, A, U, D, k), 0, 2e5, points=[x / U], limit=200)
    r = math.sqrt(U * U + 4 * k * D)
    expected = 1000.0 * mass * U / r * math.exp(x * (U - r) / (2 * D))
    assert_allclose(val, expected, rtol=1e-7)  # quadrature accuracy


def test_gaussian_puff_peak_time_closed_form():
    """dC/dt = 0 gives U^2 t^2 + 2 D t - x^2 = 0 (k = 0): t* = (sqrt(D^2 + U^2 x^2) - D) / U^2."""
    x = 3000.0
    t = np.linspace(1000, 10000, 200001)
    c = gaussian_puff(x, t, 1.0, A, U, D)
    t_star = (math.sqrt(D * D + U * U * x * x) - D) / U**2
    assert_allclose(t[np.argmax(c)], t_star, atol=0.05)  # grid step 0.045 s


def test_puff_zero_before_release():
    assert gaussian_puff(100.0, [-5.0, 0.0], 1.0, A, U, D).tolist() == [0.0, 0.0]


def _ogata_banks_naive(x, t, c0, u, d, k):
    """Direct van Genuchten & Alves (1982) A4 evaluation with math.exp/erfc (fine at low Peclet)."""
    w = u * math.sqrt(1 + 4 * k * d / u**2)
    s = 2 * math.sqrt(d * t)
    return 0.5 * c0 * (math.exp((u - w) * x / (2 * d)) * math.erfc((x - w * t) / s)
                       + math.exp((u + w) * x / (2 * d)) * math.erfc((x + w * t) / s))


@pytest.mark.parametrize("x,t,k", [(200.0, 300.0, 0.0), (500.0, 1000.0, 1e-4), (50.0, 60.0, 5e-4), (900.0, 1400.0, 0.0)])
def test_ogata_banks_matches_naive_formula(x, t, k):
    # Peclet U x / D <= 18 here, so the naive exp() does not overflow; agreement to round-off
    assert_allclose(ogata_banks(x, t, 2.0, U, D, k), _ogata_banks_naive(x, t, 2.0, U, D, k), rtol=1e-12)


def test_ogata_banks_large_peclet_does_not_overflow():
    # U x / D = 2000: exp(U x / D) overflows double precision; erfcx keeps it finite
    c = ogata_banks(1e5, [1e5 / U * 0.7, 1e5 / U, 1e5 / U * 1.3], 1.0, U, D)
    assert np.all(np.isfinite(c))
    assert_allclose(c[1], 0.5, atol=0.01)  # at the advective front C ~ c0/2 (+ O(1/sqrt(Pe)))
    assert c[0] < 1e-20 and c[2] > 0.999999  # 8 diffusion lengths either side of the front


@pytest.mark.parametrize("k", [0.0, 1e-4])
def test_ogata_banks_satisfies_ade_and_boundary(k):
    c = lambda x, t: ogata_banks(x, t, 3.0, U, D, k)
    res, dcdt = _ade_residual(c, 400.0, 900.0, k)
    assert abs(res) < 1e-5 * max(abs(dcdt), 1e-6)
    assert_allclose(ogata_banks(1e-9, 100.0, 3.0, U, D, k), 3.0, rtol=1e-6)  # C(0, t) = c0


def test_ogata_banks_steady_state_with_decay():
    """At t -> inf: C = c0 exp((U - sqrt(U^2 + 4 k D)) x / (2 D)), the steady decay profile."""
    k, x = 2e-4, 1500.0
    expected = math.exp((U - math.sqrt(U * U + 4 * k * D)) * x / (2 * D))
    assert_allclose(ogata_banks(x, 1e6, 1.0, U, D, k), expected, rtol=1e-9)


def test_finite_release_is_superposition_and_conserves_mass():
    x, T, rate_g_s, Q = 4000.0, 1800.0, 50.0, U * A
    c0 = rate_g_s / Q
    t = np.linspace(1, 40000, 4001)
    c = finite_release(x, t, c0, T, U, D)
    assert_allclose(c, ogata_banks(x, t, c0, U, D) - ogata_banks(x, t - T, c0, U, D), rtol=0, atol=1e-15)
    # Dirichlet boundary (Ogata-Banks) vs flux injection differ by O(D/(U x)) = 1.25 % in mass here
    mass = np.trapezoid(Q * c, t)
    assert_allclose(mass, rate_g_s * T, rtol=0.02)


def test_reach_moments_storage():
    L, u, d, beta, alpha = 2000.0, 0.5, 10.0, 0.2, 1e-4
    m, v = reach_moments(L, u, d, beta, alpha)
    assert_allclose(m, L / u * 1.2, rtol=1e-15)
    assert_allclose(v, 2 * d * L * 1.44 / u**3 + 2 * 0.04 * L / (alpha * u), rtol=1e-15)
    m0, v0 = reach_moments(L, u, d)
    assert m0 == L / u and v0 == 2 * d * L / u**3


@pytest.mark.parametrize("x,u,d", [(1025.0, 0.261, 3.5), (2216.0, 0.229, 1.67), (800.0, 0.2, 40.0)])
def test_step_rising_edge_has_mean_x_over_u(x, u, d):
    """The time derivative of the Ogata-Banks step response is the first-passage distribution, whose
    mean is x/U (Kreft and Zuber 1978): what tracer.attribution dates a continuous release by. Peclet
    numbers 4 to 304; reference by quadrature of t dC/dt = C(inf) - C(t) integrated (no differencing)."""
    # int_0^inf t dC/dt dt = int_0^inf (1 - C(t)) dt for C rising from 0 to 1
    mean, _err = quad(lambda t: 1.0 - float(ogata_banks(x, t, 1.0, u, d)), 0.0, 50 * x / u, limit=500)
    assert mean == pytest.approx(x / u, rel=1e-6)

"""The release hypothesis's error budget (tracer.error_budget) against independent references:
adaptive quadrature (scipy.integrate.quad) of the duration integral, the Laplace approximation in its
limit, and the variance of a uniform rounding error."""

import itertools
import math

import numpy as np
import pytest
from scipy.integrate import quad

from tracer import error_budget as eb


def _reference_log_occam(u: float, s: float) -> float:
    """ln int_0^Tmax L(T) p(T) dT - ln L(T_hat) by adaptive quadrature (QUADPACK), split where L peaks."""
    t0, tmax = eb.DURATION_PRIOR_T0_S, eb.DURATION_MAX_S
    norm = math.log((tmax + t0) / t0)  # int_0^Tmax dT / (T + T0)

    def f(t: float) -> float:
        return math.exp(-0.5 * ((t * t - u) / s) ** 2) / ((t + t0) * norm)

    peak = math.sqrt(max(u, 0.0))
    width = s / max(2.0 * peak, math.sqrt(s))
    cuts = sorted({0.0, *(min(max(peak + k * width, 0.0), tmax) for k in (-8, -2, 0, 2, 8)), tmax})
    total = sum(quad(f, a, b, limit=200, epsabs=0.0, epsrel=1e-10)[0] for a, b in itertools.pairwise(cuts) if b > a)
    return math.log(total) + 0.5 * (min(u, 0.0) / s) ** 2


@pytest.mark.parametrize(("u", "s"), [
    (10800.0**2, 12 * 0.6 * 1800.0**2),  # a 3-h release against a 30-min curve's spread error
    (600.0**2, 12 * 0.6 * 1800.0**2),  # a short release the spread error cannot resolve
    (-(900.0**2), 12 * 0.6 * 1800.0**2),  # a curve narrower than the hypothesis's own
    (3600.0**2, 12 * 300.0**2),  # a sharply determined hour
    (0.0, 1.0e4),
])
def test_duration_integral_matches_adaptive_quadrature(u, s):
    # tolerance 2e-3 in ln: the module's trapezoid rule on 400 geometric nodes against QUADPACK at 1e-10
    got = float(eb.duration_log_occam(np.array([u]), np.array([s]))[0])
    assert got == pytest.approx(_reference_log_occam(u, s), abs=2e-3)


def test_sharp_duration_has_the_laplace_occam_factor():
    # far from T = 0 and sharp, L(T) ~ exp(-(T - T^)^2 / (2 sd^2)) with sd = s / (2 T^) (u = T^2 linearised),
    # so the integral is p(T^) sqrt(2 pi) sd (MacKay 2003, eq. 28.10): within 0.1 % for sd/T^ = 0.4 %
    t_hat, s = 7200.0, 1.2e5
    sd = s / (2 * t_hat)
    prior = 1.0 / ((t_hat + eb.DURATION_PRIOR_T0_S) * math.log((eb.DURATION_MAX_S + eb.DURATION_PRIOR_T0_S)
                                                              / eb.DURATION_PRIOR_T0_S))
    laplace = math.log(prior * math.sqrt(2 * math.pi) * sd)
    got = float(eb.duration_log_occam(np.array([t_hat**2]), np.array([s]))[0])
    assert got == pytest.approx(laplace, abs=1e-3)


def test_a_long_release_pays_for_its_flexibility():
    # same spread error; the hypothesis that needs a 4-h release to explain a wide curve has less evidence
    # than one whose own dispersion explains it (u_hat ~ 0): the flat likelihood near T = 0 keeps prior mass
    s = 12 * 0.6 * 1500.0**2
    long_, short = eb.duration_log_occam(np.array([14400.0**2, 0.0]), np.array([s, s]))
    assert long_ < short - 1.0


def test_timing_error_of_sampling_is_a_uniform_rounding():
    # a time known only to within one sampling interval dt: uniform error, sd dt / sqrt(12)
    assert eb.timing_sd(3600.0, np.array([0.0]))[0] == pytest.approx(3600.0 / math.sqrt(12.0), rel=1e-12)
    both = eb.timing_sd(300.0, np.array([1000.0]))[0]
    assert both == pytest.approx(math.hypot(300.0 / math.sqrt(12.0), eb.SPREAD_ERROR * 1000.0), rel=1e-12)

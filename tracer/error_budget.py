"""The error budget of a release hypothesis: what the likelihood of the exact pass allows for.

A hypothesis's modelled curve at a station differs from the truth for reasons other than the sensor:

* **timing**: the curve's spread comes from a dispersion coefficient known to a factor of about two
  (DESIGN.md's measured factor-of-2 shares), so its standard deviation is uncertain by
  :data:`SPREAD_ERROR`; and a record sampled every dt only places the event to within dt / sqrt(12)
  (the variance of a uniform rounding error). A timing error sigma_t turns into a concentration error
  that grows with the curve's slope; it enters the variance of each sample as
  ((C(t + sigma_t) - C(t - sigma_t)) / 2)^2 (the central difference, which stays bounded when the
  sampling interval is longer than the curve: at hourly sampling of a 20-minute plume the slope is not
  defined, the spread of the curve over the timing error is) (:func:`timing_sd`);
* **level**: flow error and dilution scale the curve; this is the relative model error
  :data:`tracer.attribution.CURVE_RELATIVE_ERROR`, and the noise floor of the sensor adds to it;
* **correlation**: a curve that is off is off at neighbouring samples alike, so a record counts as
  fewer independent samples than it has (:func:`independent_samples`);
* **coarse sampling**: where dt/sqrt(12) exceeds the spread error, the fitted start is integrated
  over its sampling error instead of smeared into every sample (:func:`start_nodes`).

Constants were chosen on tuning incidents of the releases benchmark's protocol drawn with seeds the
reported benchmark never uses (tests/bench/test_bench_attribution_releases.py, module doc), by the
mean log probability given to the true source.

The release duration is a free parameter of every pulse hypothesis (a box of start, duration and
mass). A flexible history must pay for its flexibility (issue 11): the evidence of a hypothesis is
its likelihood integrated over the duration, not its likelihood at the best duration. The duration
enters the curve mostly through its variance, var_obs = var_h + T^2/12 (variances of independent
delays add), so the likelihood of T is taken as Gaussian in u = T^2 about
u_hat = 12 (var_obs - var_h - dt^2/12) with standard deviation sigma_u = 12 sigma_var, where
sigma_var combines the model's spread error (2 x :data:`SPREAD_ERROR` relative on var_h) and the
sampling rounding (dt^2/12). The log Occam factor is

    ln [ int_0^T_max L(T) p(T) dT / L(T_hat) ],

computed by the trapezoid rule on :data:`_T_GRID` and nodes across the peak of L (the Laplace approximation of the marginal likelihood is
the limit of this integral for a sharp L away from T = 0; near T = 0, where a short release and a
pulse look alike, the likelihood is flat in T and the Laplace approximation fails, the quadrature
does not). The prior p(T) is proportional to 1 / (T + :data:`DURATION_PRIOR_T0_S`) on
[0, :data:`DURATION_MAX_S`]: releases from minutes to a day with no preferred scale (a spill lasts
minutes, a batch discharge hours), i.e. log-uniform above a few minutes. A hypothesis that needs a
precisely determined long release to explain a wide curve thus pays ln(width / T) against one that
explains it with a short release and its own dispersion.

Units: s, s2.

References
----------
MacKay, D.J.C. (2003) Information Theory, Inference, and Learning Algorithms, Cambridge University
Press, ch. 28 (Occam factors, the Laplace approximation of the evidence).
"""

from __future__ import annotations

import math

import numpy as np

#: relative error of a modelled curve's standard deviation [-]: dispersion coefficient uncertain by
#: a factor of about 2 (DESIGN.md), spread ~ sqrt(D) in the dispersive regime, so ~ +-40 %; 0.3 is
#: taken because the exact kernel's storage and junction terms carry part of the spread exactly
SPREAD_ERROR = 0.3
#: model errors of neighbouring samples are correlated over this share of the observed curve's
#: standard deviation [-]: a record sampled every dt counts as n min(1, dt / (share x sd)) independent
#: samples (:func:`independent_samples`)
CORRELATION_SHARE = 0.5
#: Gauss-Hermite nodes of the start offset where sampling is coarser than the curve (:func:`start_nodes`)
START_NODES = 5
#: the duration prior: p(T) ~ 1 / (T + T0) on [0, T_MAX] [s]
DURATION_PRIOR_T0_S = 300.0
DURATION_MAX_S = 86400.0
#: quadrature nodes of the duration integral [s]: 0, then geometric from 1 s to T_MAX
_T_GRID = np.concatenate([[0.0], np.geomspace(1.0, DURATION_MAX_S, 400)])
#: and this many nodes across +-_PEAK_SPAN widths of the likelihood's peak (a sharp peak falls between
#: the fixed nodes: found by the Laplace-limit test) [-]
_PEAK_NODES, _PEAK_SPAN = 97, 8.0


def timing_sd(dt_s: float, curve_sd_s: np.ndarray) -> np.ndarray:
    """Timing error [s] of a modelled curve: sampling rounding and the curve's spread error.

    Parameters
    ----------
    dt_s : float
        The station's sampling interval [s] (0: a continuous record).
    curve_sd_s : ndarray
        Standard deviation of each hypothesis's curve at the station [s].

    Returns
    -------
    ndarray
        sqrt(dt^2/12 + (SPREAD_ERROR sd)^2) [s].
    """
    sd = np.asarray(curve_sd_s, float)
    return np.sqrt(dt_s**2 / 12.0 + (SPREAD_ERROR * np.nan_to_num(sd)) ** 2)


def independent_samples(n: int, dt_s: float, curve_sd_s: float) -> float:
    """How many independent samples a record of ``n`` samples every ``dt_s`` [s] counts as [-].

    A modelled curve that is off (a shape or timing error) is off at neighbouring samples alike: the
    errors are correlated over a time of about :data:`CORRELATION_SHARE` times the curve's standard
    deviation ``curve_sd_s`` [s], and samples closer than that repeat the same information. At
    hourly sampling of a 30-minute plume every sample is independent; at 5 minutes about one in
    three is. At least 1.
    """
    tau = CORRELATION_SHARE * max(curve_sd_s, 0.0)
    return max(1.0, n * (1.0 if tau <= dt_s else dt_s / tau))


def start_nodes(dt_s: float, spread_sd_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Offsets [s] and weights [-] over which a station's fitted release start is integrated.

    A record sampled every dt places the event's centroid only to within dt / sqrt(12). Where that
    exceeds the curve's own spread error ``spread_sd_s`` [s] (hourly sampling of a plume of an hour or
    less), the likelihood is averaged over start offsets N(0, dt^2/12) by :data:`START_NODES`-point
    Gauss-Hermite quadrature (probabilists' nodes and weights); elsewhere a single node (offset 0,
    weight 1) and the sampling error stays in :func:`timing_sd`.
    """
    sd = dt_s / math.sqrt(12.0)
    if sd <= spread_sd_s:
        return np.zeros(1), np.ones(1)
    x, w = np.polynomial.hermite_e.hermegauss(START_NODES)
    return sd * x, w / w.sum()


def duration_sd_u(var_model_s2: np.ndarray, dt_s: float) -> np.ndarray:
    """Standard deviation [s2] of u = T^2 implied by the error of var_obs - var_h (module doc)."""
    v = np.nan_to_num(np.asarray(var_model_s2, float))
    return 12.0 * np.hypot(2.0 * SPREAD_ERROR * v, dt_s**2 / 12.0) + 1.0  # +1 s2: never zero


def duration_log_occam(u_hat_s2: np.ndarray, sigma_u_s2: np.ndarray) -> np.ndarray:
    """ln of the Occam factor of the release duration, per hypothesis [-] (<= ~0; module doc).

    Parameters
    ----------
    u_hat_s2 : ndarray
        12 (var_obs - var_h - dt^2/12) [s2]; negative when the curve is narrower than the
        hypothesis's own response (the best duration is then 0).
    sigma_u_s2 : ndarray
        Its standard deviation [s2] (> 0).

    Returns
    -------
    ndarray
        ln int L(T) p(T) dT - ln L(T_hat), L(T) = exp(-(T^2 - u_hat)^2 / (2 sigma_u^2)).
    """
    u = np.asarray(u_hat_s2, float)[:, None]
    s = np.asarray(sigma_u_s2, float)[:, None]
    # nodes: the fixed grid, and _PEAK_NODES across the peak of L (width s / (2 T_hat), or sqrt(s) near 0)
    peak = np.sqrt(np.maximum(u, 0.0))
    width = s / (2.0 * peak + np.sqrt(s))
    local = np.clip(peak + width * np.linspace(-_PEAK_SPAN, _PEAK_SPAN, _PEAK_NODES)[None, :], 0.0, DURATION_MAX_S)
    t = np.sort(np.concatenate([np.broadcast_to(_T_GRID, (u.shape[0], _T_GRID.size)), local], axis=1), axis=1)
    prior = 1.0 / ((t + DURATION_PRIOR_T0_S) * math.log((DURATION_MAX_S + DURATION_PRIOR_T0_S) / DURATION_PRIOR_T0_S))
    log_l = -0.5 * ((t**2 - u) / s) ** 2
    log_best = -0.5 * (np.minimum(u[:, 0], 0.0) / s[:, 0]) ** 2  # at T_hat = sqrt(max(u_hat, 0))
    top = log_l.max(axis=1)
    integral = np.trapezoid(np.exp(log_l - top[:, None]) * prior, t, axis=1)
    return np.log(np.maximum(integral, 1e-300)) + top - log_best

"""The exact pass of source attribution: the best-screened hypotheses scored again with the exact
transport kernel (:func:`hydrology.transport.kernel.point_source_responses`: storage tails, lakes,
branches that rejoin, decay) and the error budget of :mod:`tracer.error_budget`; see
:mod:`tracer.attribution`.

Units: s, m, kg, kg/s, g/m3.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from hydrology.pollutants import Pollutant
from hydrology.transport.kernel import point_source_responses

from . import error_budget
from .attribution_signals import (
    _logsumexp_rows,
    _plateau,
    _run_moments,
    _station_term,
    _window,
    event_run,
    release_kind,
    silence_error,
)
from .attribution_types import EXACT_INDEPENDENT_SAMPLES, FLOW_ERROR, MASS_SIGMA_LN, Hypothesis, ReleaseKind
from .signals import StationSignal

if TYPE_CHECKING:
    from hydrology.network import RiverNetwork
    from hydrology.reach_state import ReachState


def _exact_terms(net: RiverNetwork, st: ReachState, hyps: list[Hypothesis], model: ReleaseKind,
                 saw: list[StationSignal], silent: list[StationSignal], discharge, pol: Pollutant,
                 within: frozenset[int], finite: bool = True) -> dict[str, np.ndarray]:
    """Release start and size, consistency, shape and silence of ``hyps`` with the exact kernel.

    Each hypothesis's curve at a station is its kernel response (:mod:`hydrology.transport.kernel`:
    storage tails, lakes, mixing at confluences, decay); the release start follows from the exact
    mean of that curve, t0 = centroid - mean (pulse; for a release still going on, the centroid of
    the rise), and the size from its integral, M = int(excess) dt / int(h) dt (rate = plateau /
    S(inf)), so no equivalent channel is involved.

    A release that is not a pulse lasts: a mass released evenly over T has the curve's variance plus
    T^2/12 (variances of independent delays add), so T = sqrt(12 (var_obs - var_h - dt^2/12)) where
    the observed variance exceeds the hypothesis's own (dt: the sampling interval, whose rounding adds
    dt^2/12), averaged over the stations; the start is then centroid - mean - T/2 and the curve
    (M/T)[S(t - t0) - S(t - t0 - T)]. A near source explains a wide curve only through a long release,
    a far one through dispersion, and the shapes then differ (a box's flat top and steep flanks).
    """
    n = len(hyps)
    resp = [point_source_responses(net, st, h.reach, h.chainage_m, pol, ("station",), within=within) for h in hyps]
    rows = [{f.id: k for k, f in enumerate(r.features)} for r in resp]
    T0 = np.full((len(saw), n), np.nan)
    LM = np.full((len(saw), n), np.nan)
    W = np.zeros((len(saw), n))
    VT = np.ones((len(saw), n))
    DUR = np.zeros((len(saw), n))
    U_HAT = np.zeros((len(saw), n))  # 12 (var_obs - var_h - dt^2/12) [s2] (tracer.error_budget)
    SIG_U = np.ones((len(saw), n))
    CURVE_SD = np.zeros((len(saw), n))
    MEAN = np.zeros((len(saw), n))
    DT, V_OBS = np.zeros(len(saw)), np.zeros(len(saw))
    for si, s in enumerate(saw):
        a, b = event_run(s)
        t_run, _pos, integral, centroid, v_obs = _run_moments(s)
        dt = float(np.median(np.diff(s.t_s))) if s.t_s.size > 1 else 0.0
        DT[si], V_OBS[si] = dt, np.nan_to_num(v_obs)
        cont = model == "continuous"
        if cont and release_kind(s) != "continuous":
            continue
        plateau = float(np.median(s.excess[_plateau(s, a, b)])) if cont else 0.0
        for j, r in enumerate(resp):
            k = rows[j].get(s.station)
            if k is None or integral <= 0:
                continue
            mean, final = float(r.mean_s[k]), float(r.step_final[k])
            CURVE_SD[si, j], MEAN[si, j] = math.sqrt(max(float(r.variance_s2[k]), 0.0)), mean
            if cont:
                T0[si, j] = t_run[-1] - integral / plateau - mean
                LM[si, j] = math.log(plateau / final)
            else:
                if finite:
                    U_HAT[si, j] = 12.0 * (v_obs - float(r.variance_s2[k]) - dt**2 / 12.0)
                    SIG_U[si, j] = float(error_budget.duration_sd_u(np.array([float(r.variance_s2[k])]), dt)[0])
                    DUR[si, j] = math.sqrt(max(U_HAT[si, j], 0.0))
                T0[si, j] = centroid - mean  # the release's centroid; the start follows with the duration
                LM[si, j] = math.log(integral / final)
            W[si, j] = integral
            VT[si, j] = float(r.variance_s2[k]) + (FLOW_ERROR * mean) ** 2
    wsum = W.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        dur_hat = np.where(wsum > 0, (W * DUR).sum(axis=0) / wsum, 0.0)
        T0 = T0 - dur_hat[None, :] / 2.0  # from the release's centroid to its start
        t0_hat = np.nansum(W * np.nan_to_num(T0), axis=0) / wsum
        lm_hat = np.nansum(W * np.nan_to_num(LM), axis=0) / wsum
        consistency = -0.5 * np.nansum(np.where(W > 0, (T0 - t0_hat) ** 2 / VT + (LM - lm_hat) ** 2 / MASS_SIGMA_LN**2, 0.0),
                                       axis=0)
        u_comb = np.where(wsum > 0, (W * U_HAT).sum(axis=0) / wsum, 0.0)
        sig_comb = np.where(wsum > 0, (W * SIG_U).sum(axis=0) / wsum, 1.0)
    consistency = np.where(wsum > 0, consistency, 0.0)
    dur_hat = np.nan_to_num(dur_hat)
    # the duration integrated out (a flexible history pays for its flexibility: tracer.error_budget)
    occam = (np.where(wsum > 0, error_budget.duration_log_occam(np.nan_to_num(u_comb), np.nan_to_num(sig_comb, nan=1.0)), 0.0)
             if finite and model == "pulse" else np.zeros(n))

    def modelled(s: StationSignal, idx: np.ndarray, t0: np.ndarray, lm: np.ndarray) -> np.ndarray:
        yhat = np.zeros((n, idx.size))
        for j, r in enumerate(resp):
            k = rows[j].get(s.station)
            if k is None or not np.isfinite(t0[j]):
                continue
            tt = s.t_s[idx] - t0[j]
            one = np.array([k])
            if model == "continuous":
                curve = r.step(tt[None, :], rows=one)
            elif dur_hat[j] > 0:  # the mass spread evenly over the duration
                curve = (r.step(tt[None, :], rows=one) - r.step(tt[None, :] - dur_hat[j], rows=one)) / dur_hat[j]
            else:
                curve = r.impulse(tt[None, :], rows=one)
            yhat[j] = math.exp(lm[j]) * curve[0]
        return yhat

    shape = np.zeros(n)
    for si, s in enumerate(saw):
        idx = _window(s)
        own = W[si] > 0
        t0_s, lm_s = np.where(own, T0[si], t0_hat), np.where(own, LM[si], lm_hat)
        # timing error: sampling, the curve's spread and, without a fit of its own, the flow error
        sd = np.sqrt(CURVE_SD[si] ** 2 + dur_hat**2 / 12.0)
        sd_obs = math.sqrt(max(V_OBS[si], 0.0) + DT[si] ** 2 / 12.0)
        n_ind = min(error_budget.independent_samples(idx.size, DT[si], sd_obs), EXACT_INDEPENDENT_SAMPLES)
        # a record sampled more coarsely than the curve's spread error dates the release only to within
        # dt/sqrt(12): that start error is integrated out (Gauss-Hermite), not smeared into every sample
        nodes, weights = error_budget.start_nodes(DT[si], error_budget.SPREAD_ERROR * sd_obs)
        dt_smear = 0.0 if nodes.size > 1 else DT[si]
        sig_t = np.hypot(error_budget.timing_sd(dt_smear, sd), np.where(own, 0.0, FLOW_ERROR * MEAN[si]))
        terms = []
        for off in nodes:
            timing = 0.5 * (modelled(s, idx, t0_s + off - sig_t, lm_s) - modelled(s, idx, t0_s + off + sig_t, lm_s))
            terms.append(_station_term(s, modelled(s, idx, t0_s + off, lm_s), idx, timing=timing, samples=n_ind))
        shape += _logsumexp_rows(np.array(terms), weights)
    silence = np.zeros(n)
    for s in silent:
        idx = _window(s)
        rel = silence_error(s)
        base = _station_term(s, np.zeros((1, idx.size)), idx, rel)[0]
        silence += _station_term(s, modelled(s, idx, t0_hat, lm_hat), idx, rel) - base
    return {"t0": t0_hat, "lm": lm_hat, "consistency": consistency, "shape": shape, "silence": silence,
            "vt": VT, "w": W, "duration": dur_hat, "occam": occam}

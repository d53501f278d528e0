"""What a station's record says about an event: its run, moments, plateau, release kind, and the
Gaussian log-likelihood the attribution scores a modelled curve against it with.

Units: s, g/m3.
"""

from __future__ import annotations

import math

import numpy as np

from .attribution_types import (
    CURVE_RELATIVE_ERROR,
    MAX_INDEPENDENT_SAMPLES,
    PLATEAU_LEVEL,
    PLATEAU_MIN_SAMPLES,
    PLATEAU_SHARE,
    RUN_GAP,
    RUN_SIGMAS,
    SILENCE_RELATIVE_ERROR,
    ReleaseKind,
)
from .signals import SAW_SIGMAS, StationSignal


def _station_term(sig: StationSignal, yhat: np.ndarray, idx: np.ndarray,
                  relative_error: float = CURVE_RELATIVE_ERROR, timing: np.ndarray | None = None,
                  samples: float | None = None) -> np.ndarray:
    """Gaussian log-likelihood of a station's (decimated) record, per hypothesis row of ``yhat``.

    Variance: the station's noise floor plus ``relative_error`` times the larger of the modelled and
    the observed excess. Sensor noise and model error both scale with the true concentration, which
    the observation estimates as well as the model does; scaling by the model alone (Pearson's
    chi-square) makes a plume's tail, where a Gaussian curve falls faster than a real one, count
    thousands of noise scales against every hypothesis, so the ranking follows who has the widest
    curve (found by the attribution benchmark: two top-3 misses on NHDPlus New Hope, tail
    residuals of 0.3 g/m3 scored against a 0.001 g/m3 floor).

    ``timing``: the concentration error [g/m3] of each modelled sample from the curve's timing
    error (:mod:`tracer.error_budget`), added in quadrature. ``samples``: the record counts as at
    most this many independent samples (default :data:`MAX_INDEPENDENT_SAMPLES`).
    """
    y = sig.excess[idx][None, :]
    s2 = sig.noise**2 + (relative_error * np.maximum(yhat, np.clip(y, 0.0, None))) ** 2
    if timing is not None:
        s2 = s2 + timing**2
    ll = -0.5 * np.sum((y - yhat) ** 2 / s2 + np.log(s2 / sig.noise**2), axis=1)
    cap = MAX_INDEPENDENT_SAMPLES if samples is None else samples
    return ll * min(1.0, cap / max(len(idx), 1))


def silence_error(sig: StationSignal) -> float:
    """Relative model error [-] a station that did not see the event is scored with.

    :data:`SILENCE_RELATIVE_ERROR` when its record has no sample above
    :data:`tracer.signals.SAW_SIGMAS` noise scales (it saw nothing: no timing or shape error applies);
    :data:`CURVE_RELATIVE_ERROR` when one sample is (a station sampled hourly sees a plume shorter
    than an hour in one sample only, and :mod:`tracer.signals` asks for two to call it seen: scored
    with 5 % error, that one sample decided the ranking by +-100 nats; found on the hourly tuning
    incidents).
    """
    hit = sig.excess.size and float(np.max(sig.excess)) > SAW_SIGMAS * sig.noise
    return CURVE_RELATIVE_ERROR if hit else SILENCE_RELATIVE_ERROR


def event_run(sig: StationSignal) -> tuple[int, int]:
    """First and last sample index of the event: the run around the largest excess, extended while the
    excess stays above :data:`RUN_SIGMAS` noise scales (gaps of up to :data:`RUN_GAP` samples bridged).

    Centroid and flux integral are taken over this run only: stray noise spikes elsewhere in a long
    record would otherwise bias the release time (found by the attribution benchmark).
    """
    above = sig.excess > RUN_SIGMAS * sig.noise
    i_max = int(np.argmax(sig.excess))
    lo = hi = i_max
    gap = 0
    while lo > 0 and gap <= RUN_GAP:
        lo -= 1
        gap = 0 if above[lo] else gap + 1
    lo += gap
    gap = 0
    while hi < len(above) - 1 and gap <= RUN_GAP:
        hi += 1
        gap = 0 if above[hi] else gap + 1
    return lo, hi - gap


def _window(sig: StationSignal, max_points: int = 400) -> np.ndarray:
    """Sample indices to score: around the event for a station that saw it, decimated otherwise."""
    n = len(sig.t_s)
    if sig.saw:
        a, b = event_run(sig)
        span = sig.t_s[b] - sig.t_s[a]
        lo = np.searchsorted(sig.t_s, sig.t_s[a] - 2 * span - 3600.0)
        hi = np.searchsorted(sig.t_s, sig.t_s[b] + 2 * span + 3600.0)
        idx = np.arange(lo, hi)
    else:
        idx = np.arange(n)
    if idx.size > max_points:
        idx = idx[np.linspace(0, idx.size - 1, max_points).astype(int)]
    return idx


def _plateau(sig: StationSignal, a: int, b: int) -> np.ndarray:
    """Sample indices of the last :data:`PLATEAU_SHARE` of the event run ``a..b`` (at least
    :data:`PLATEAU_MIN_SAMPLES`)."""
    k = max(PLATEAU_MIN_SAMPLES, math.ceil(PLATEAU_SHARE * (b - a + 1)))
    return np.arange(max(a, b - k + 1), b + 1)


def release_kind(sig: StationSignal) -> ReleaseKind:
    """``"continuous"`` when the event at a station is still going on: its run lasts to the last
    sample and ends on a plateau (median excess over :func:`_plateau` at least :data:`PLATEAU_LEVEL`
    times the run's 95th percentile); ``"pulse"`` otherwise (the excess came and went)."""
    a, b = event_run(sig)
    if b < len(sig.t_s) - 1 or b - a + 1 < 2 * PLATEAU_MIN_SAMPLES:
        return "pulse"
    level = float(np.median(sig.excess[_plateau(sig, a, b)]))
    return "continuous" if level >= PLATEAU_LEVEL * float(np.percentile(sig.excess[a:b + 1], 95)) else "pulse"


def _run_moments(s: StationSignal) -> tuple[np.ndarray, np.ndarray, float, float, float]:
    """The event run's times [s] and positive excess [g/m3], its integral [g s/m3], centroid [s] and
    variance [s2]. Each sample stands for one sampling interval (the median spacing): a run of one
    hourly sample still has an integral (the trapezoid rule gives it none) and a variance of 0."""
    a, b = event_run(s)
    t_run = s.t_s[a:b + 1]
    pos = np.clip(s.excess[a:b + 1], 0.0, None)
    dt = float(np.median(np.diff(s.t_s))) if s.t_s.size > 1 else 0.0
    total = float(pos.sum())
    if total <= 0.0:
        return t_run, pos, 0.0, math.nan, math.nan
    centroid = float((pos * t_run).sum()) / total
    return t_run, pos, total * dt, centroid, float((pos * (t_run - centroid) ** 2).sum()) / total



def _logsumexp_rows(terms: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ln sum_k w_k exp(terms[k]) per column (terms: (nodes, hypotheses))."""
    top = terms.max(axis=0)
    return top + np.log(weights @ np.exp(terms - top))



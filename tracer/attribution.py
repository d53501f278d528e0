"""Upstream source attribution: rank every hypothesis for an anomaly, with its evidence.

Hypotheses are the registered dischargers upstream of the anomaly station, and "an unregistered
source on reach r" (placed mid-reach) for every upstream reach, within a travel-time horizon.

Pulse model (a release of unknown time and mass; oil films, spills, most concentration events): for
each hypothesis and each station that saw the event, the release time follows from the observed
centroid (for the Gaussian puff the concentration-weighted mean time at distance x is
x/U + 2D/U^2 in the equivalent channel of :mod:`hydrology.transport.analytic`) and the mass from the flux
integral M = Q int(excess) dt / fraction. The likelihood has four parts, each reported:

* ``shape``: the modelled curve against every station's record (stations not downstream of the
  hypothesis are modelled as zero: seeing something there is evidence against it);
* ``consistency``: release times and masses implied by different stations must agree, within the
  spread of the plume and a flow error of :data:`FLOW_ERROR`;
* ``silence``: stations downstream that saw nothing, given the fitted release;
* priors: ``signature``, ``feasibility``, ``operations`` (:mod:`tracer.priors`).

Continuous model (a release of unknown start and constant rate that is still going on: the excess
at the anomaly station rises to a plateau that lasts to the end of the record, see
:func:`release_kind`). The step response of the equivalent channel is Ogata-Banks
(:func:`hydrology.transport.ogata_banks`, as the forecast engine uses for continuous releases); its
rising edge is the first-passage distribution, whose mean is x/U (Kreft and Zuber 1978), so the
start follows from the centroid of the rise, t_c = t_end - int(excess) dt / plateau, as
t0 = t_c - x/U, and the rate from the plateau, R = Q plateau exp(k x/U) / f. The same four terms
follow, with log rate in place of log mass.

Two passes. The screen above scores every hypothesis on the equivalent channel (closed forms,
microseconds each). The best-screened hypotheses (at most :data:`EXACT_RESCORE`, within
:data:`EXACT_RESCORE_GAP` of the best) are then scored again with the
exact transport kernel (:func:`_exact_terms`: storage tails, lakes, branches that rejoin, decay):
their release start from the exact mean of each station's curve, their size from its integral, and
shape, consistency, silence and feasibility from the kernel's curves. The rest keep the screen's
order below the weakest hypothesis scored exactly.

Dissolved oxygen events use the steady model of :mod:`tracer.attribution_do`. Units: s, m, kg, kg/s, g/m3.

References
----------
Fischer, H.B., List, E.J., Koh, R.C.Y., Imberger, J. and Brooks, N.H. (1979) Mixing in Inland and
Coastal Waters, Academic Press, sec. 5.1 (frozen-cloud approximation).
Kreft, A. and Zuber, A. (1978) On the physical meaning of the dispersion equation and its solutions
for different initial and boundary conditions, Chem. Eng. Sci. 33, 1471-1480.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from scipy.special import ndtr

from hydrology.pollutants import Pollutant
from hydrology.pollutants import pollutant as make_pollutant
from hydrology.transport import GRAMS_PER_KG, gaussian_puff, ogata_banks
from hydrology.transport.kernel import point_source_responses

from . import error_budget, priors
from .exceptions import TracerError
from .readings import Readings
from .separation import group_candidates
from .signals import SAW_SIGMAS, StationSignal, station_signals
from .upstream import UpstreamMoments, upstream_moments

if TYPE_CHECKING:
    from hydrology.network import Feature, RiverNetwork
    from hydrology.reach_state import ReachState


#: relative error of the modelled flows (DESIGN.md: attribution must tolerate +-20 %) [-]
FLOW_ERROR = 0.2
#: spread of the masses implied by different stations (flow error and 10 % sensor noise) [-, ln]
MASS_SIGMA_LN = 0.35
#: model error of the concentration curve, relative to the modelled value [-]
CURVE_RELATIVE_ERROR = 0.25
#: a station's record counts as at most this many independent samples (model errors are
#: correlated over a curve, and a 5-minute record would otherwise swamp every other term) [-]
MAX_INDEPENDENT_SAMPLES = 20.0
#: the same in the exact pass, whose likelihood carries the timing error of tracer.error_budget [-]
EXACT_INDEPENDENT_SAMPLES = 20.0
#: a silent station's record is scored with only this much relative model error: it saw nothing
#: for the whole record, so the timing and shape errors the 25 % allows for do not apply [-]
SILENCE_RELATIVE_ERROR = 0.05
#: the event run at a station: samples above this many noise scales, gaps of a few samples bridged
RUN_SIGMAS = 1.0
RUN_GAP = 2
#: default travel-time horizon of the upstream search [s]
DEFAULT_HORIZON_S = 3 * 86400.0
#: continuous release: the plateau is the median excess over the last PLATEAU_SHARE of the event run
#: (at least PLATEAU_MIN_SAMPLES samples), and the run must stay at or above PLATEAU_LEVEL x its
#: 95th percentile there [-]
PLATEAU_SHARE = 0.25
PLATEAU_MIN_SAMPLES = 3
PLATEAU_LEVEL = 0.5
#: hypotheses that the moment screen ranks highest and that are then scored again with the exact
#: transport kernel (their curves, release times and sizes), at most [-] ...
EXACT_RESCORE = 20
#: ... of those within this log-posterior of the screen's best [-] (e^-40: no probability to move,
#: unless the exact curves shift a hypothesis by more than the whole screen's model error)
EXACT_RESCORE_GAP = 40.0
#: the exact pass fits a release duration (False: every pulse is an instant; kept to measure the
#: difference in the benchmark)
FINITE_RELEASES = True
ReleaseKind = Literal["pulse", "continuous"]
Z90 = 1.6449


class AttributionError(TracerError, ValueError):
    """Attribution cannot run (no readings at the station, parameter not measured...)."""


@dataclass(frozen=True, slots=True)
class Hypothesis:
    """Where a source might be: a registered discharger, or an unregistered source on a reach."""

    id: str
    kind: Literal["discharger", "unregistered"]
    reach: str
    chainage_m: float
    feature: Feature | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    """One ranked hypothesis with its fitted release and evidence (log factors, and why)."""

    id: str
    kind: str
    probability: float
    distance_m: float
    travel_time_s: float
    release_start: datetime | None
    release_start_interval: tuple[datetime, datetime] | None
    mass_kg: float | None
    mass_kg_interval: tuple[float, float] | None
    rate_kg_s: float | None
    rate_kg_s_interval: tuple[float, float] | None
    log_posterior: float
    evidence: dict[str, float]
    explanation: dict[str, str]
    #: release duration [s] of the finite-release model (None: an instant, or not fitted)
    duration_s: float | None = None


@dataclass(frozen=True, slots=True)
class AttributionResult:
    """Ranked candidates for one anomaly, and what the ranking used."""

    station: str
    parameter: str
    model: str
    candidates: tuple[Candidate, ...]
    stations_saw: tuple[str, ...]
    stations_silent: tuple[str, ...]
    nearest_upstream_discharger: str | None
    notes: tuple[str, ...] = field(default=())

    @property
    def groups(self) -> tuple[tuple[Candidate, ...], ...]:
        """The candidates in groups that cannot be told apart: Bayes factor within
        :data:`tracer.separation.GROUP_BAYES_FACTOR` (10) of the group's best (:func:`tracer.separation.groups`)."""
        return group_candidates(self.candidates)

    def rank_of(self, candidate_id: str) -> int | None:
        """1-based rank of a candidate id (None if absent)."""
        for i, c in enumerate(self.candidates, 1):
            if c.id == candidate_id:
                return i
        return None


def build_hypotheses(net: RiverNetwork, state: ReachState, um: UpstreamMoments) -> list[Hypothesis]:
    """Registered dischargers and one unregistered source per reach, upstream of the station."""
    station = net.feature(um.station, "station")
    reaches = {state.ids[i] for i in um.reach_index}
    hyps: list[Hypothesis] = []
    for d in net.dischargers.values():
        if d.reach in reaches and not (d.reach == station.reach and d.chainage_m >= station.chainage_m):
            hyps.append(Hypothesis(d.id, "discharger", d.reach, d.chainage_m, d))
    for rid in sorted(reaches, key=lambda r: state.index[r]):
        top = station.chainage_m if rid == station.reach else state.length_m[state.index[rid]]
        if top > 0:
            hyps.append(Hypothesis(f"reach:{rid}", "unregistered", rid, top / 2.0))
    return hyps


def _log_priors(hyps: list[Hypothesis], state: ReachState, parameter: str) -> tuple[np.ndarray, list[str]]:
    """Signature-weighted prior over registered dischargers; length-weighted over unregistered reaches."""
    sig = np.zeros(len(hyps))
    notes = [""] * len(hyps)
    reg = [i for i, h in enumerate(hyps) if h.kind == "discharger"]
    unreg = [i for i, h in enumerate(hyps) if h.kind == "unregistered"]
    for i in reg:
        sig[i], notes[i] = priors.log_signature(hyps[i].feature, parameter)  # type: ignore[arg-type]
    logp = np.full(len(hyps), -np.inf)
    if reg:
        w = np.exp(sig[reg])
        logp[reg] = np.log((1 - priors.UNREGISTERED_SHARE if unreg else 1.0) * w / w.sum())
    if unreg:
        L = np.array([state.length_m[state.index[hyps[i].reach]] for i in unreg])
        logp[unreg] = np.log((priors.UNREGISTERED_SHARE if reg else 1.0) * L / L.sum())
        for i in unreg:
            notes[i] = "unregistered source: prior by reach length"
    return logp, notes


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


def _equivalent_channel(x: np.ndarray, m: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """U = x / mean [m/s], D = var U^3 / (2 x) [m2/s] (as :mod:`hydrology.transport.analytic`)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        u = x / m
        return u, v * u**3 / (2 * x)


def _curve(kind: ReleaseKind, x: np.ndarray, tt: np.ndarray, size: np.ndarray, q: float, u: np.ndarray,
           d: np.ndarray, decay_per_s: float, duration: np.ndarray | None = None) -> np.ndarray:
    """Modelled excess [g/m3] at distance ``x`` [m], ``tt`` [s] after the release started: a puff of
    ``size`` [kg] reaching the station, or a step of ``size`` [kg/s] reaching it, into discharge ``q``.

    ``duration`` [s] (pulse only, rows where it is > 0): the mass released evenly over that time, on
    the frozen cloud (Fischer et al. 1979, sec. 5.1: a Gaussian in time of mean x/U and variance
    2Dx/U^3 at the station) convolved with the box, (M/T)(Phi((t - m)/sd) - Phi((t - T - m)/sd)) f/Q.
    A long release is a flat-topped curve, not a puff of larger dispersion (whose skew puts its mean
    2D/U^2 late: hours for a 12-hour release)."""
    if kind == "pulse":
        out = gaussian_puff(x, tt, size, q / u, u, d, decay_per_s)
        if duration is not None and np.any(duration > 0):
            with np.errstate(invalid="ignore", divide="ignore"):
                m = x / u
                sd = np.sqrt(2.0 * d * x / u**3)
                T = np.maximum(duration, 1e-9)
                box = (GRAMS_PER_KG * size / (q * T)) * np.exp(-decay_per_s * m) * (
                    ndtr((tt - m) / sd) - ndtr((tt - T - m) / sd))
            out = np.where(duration > 0, np.nan_to_num(box), out)
        return out
    return (GRAMS_PER_KG * size / q) * ogata_banks(x, tt, 1.0, u, d, decay_per_s)


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


def _station_fit(kind: ReleaseKind, s: StationSignal, geo: tuple[np.ndarray, ...], q: float,
                 decay_per_s: float, duration: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Release start [s], ln size (mass [kg] or rate [kg/s]) and weight [-] each hypothesis needs to
    explain a station that saw the event (see the module doc); weight 0 where it cannot tell.

    ``geo``: (fraction, distance [m], mean [s], variance [s2]) from each hypothesis to the station;
    ``duration`` [s]: a pulse's release duration (where > 0 the start is the centroid less x/U and
    half the duration: the frozen-cloud box of :func:`_curve`).
    """
    f, x, m, v = geo
    down = f > 0
    a, b = event_run(s)
    t_run, _pos, integral, centroid, _var = _run_moments(s)
    u, d = _equivalent_channel(x, m, v)
    with np.errstate(invalid="ignore", divide="ignore"):
        if kind == "pulse":
            t0 = centroid - (m + 2 * d / u**2)
            if duration is not None:
                t0 = np.where(duration > 0, centroid - m - duration / 2.0, t0)
            t0 = np.where(down, t0, np.nan)
            size = np.where(down, q * integral / (f * GRAMS_PER_KG), np.nan)
        elif release_kind(s) == "continuous":
            plateau = float(np.median(s.excess[_plateau(s, a, b)]))
            t0 = np.where(down, t_run[-1] - integral / plateau - m, np.nan)  # rise centroid - x/U
            size = np.where(down, q * plateau * np.exp(decay_per_s * m) / (f * GRAMS_PER_KG), np.nan)
        else:  # a station whose excess came and went cannot date a release that is still going on
            return np.full(f.size, np.nan), np.full(f.size, np.nan), np.zeros(f.size)
        return t0, np.log(size), np.where(down, integral, 0.0)


def _logsumexp_rows(terms: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ln sum_k w_k exp(terms[k]) per column (terms: (nodes, hypotheses))."""
    top = terms.max(axis=0)
    return top + np.log(weights @ np.exp(terms - top))


def _screen_durations(saw: list[StationSignal], geo: dict[str, tuple[np.ndarray, ...]]) -> np.ndarray:
    """The release duration [s] each hypothesis needs in the screen (0: a pulse).

    A mass released evenly over T adds T^2/12 to the variance of every curve it makes (variances of
    independent delays add); T^2 = 12 (var_obs - var_h - dt^2/12) where the observed variance exceeds
    the hypothesis's own, averaged over the stations that saw the event (weights: their integrals).
    With it the screen's curve (:func:`_curve`) has the observed width, so a long release close to a
    station is not ranked out of the exact pass for a curve too narrow (found by the calibration
    tuning set: a true source at rank 40 whose instant curve missed by 110 nats while its box fitted).
    """
    any_geo = next(iter(geo.values()))
    num, den = np.zeros(any_geo[0].size), np.zeros(any_geo[0].size)
    for s in saw:
        f, _x, _m, v = geo[s.station]
        _t, _p, integral, _c, v_obs = _run_moments(s)
        if integral <= 0:
            continue
        dt = float(np.median(np.diff(s.t_s))) if s.t_s.size > 1 else 0.0
        down = f > 0
        num += np.where(down, integral * 12.0 * np.clip(v_obs - np.nan_to_num(v) - dt**2 / 12.0, 0.0, None), 0.0)
        den += np.where(down, integral, 0.0)
    return np.sqrt(np.divide(num, den, out=np.zeros_like(num), where=den > 0))


def _exact_terms(net: RiverNetwork, st: ReachState, hyps: list[Hypothesis], model: ReleaseKind,
                 saw: list[StationSignal], silent: list[StationSignal], discharge, pol: Pollutant,
                 within: frozenset[int]) -> dict[str, np.ndarray]:
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
                if FINITE_RELEASES:
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
             if FINITE_RELEASES and model == "pulse" else np.zeros(n))

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


def attribute_release(net: RiverNetwork, readings: Readings, station: str, parameter: str, *,
                      kind: ReleaseKind | None = None, pollutant: Pollutant | None = None,
                      horizon_s: float = DEFAULT_HORIZON_S,
                      operations: Mapping[str, priors.OperationsEvidence] | None = None,
                      state: ReachState | None = None) -> AttributionResult:
    """Rank the sources of a concentration anomaly at ``station`` in ``parameter`` (see module doc).

    ``kind``: ``"pulse"`` (fit start and mass) or ``"continuous"`` (fit start and rate); default
    :func:`release_kind` of the anomaly station's record.
    """
    st = state if state is not None else net.reach_state()
    anomaly = net.feature(station, "station")
    pol = pollutant or make_pollutant(parameter)
    if kind not in (None, "pulse", "continuous"):
        raise AttributionError(f"unknown release kind {kind!r}; choose 'pulse' or 'continuous'")
    frame = readings.frame[readings.frame["parameter"] == parameter]
    if frame.empty or station not in set(frame["station_id"]):
        raise AttributionError(f"no {parameter} readings at station {station!r}")
    t_ref = pd.Timestamp(frame["time"].min())
    own = station_signals(readings, parameter, [station], t_ref)[station]
    if not own.saw:
        raise AttributionError(f"station {station!r} shows no {parameter} excess above its noise: nothing to trace")
    um_anomaly = upstream_moments(net, st, anomaly, pol, horizon_s)
    # only what can tell the hypotheses apart: stations on the river through the anomaly station (the
    # others see none of their plumes), and readings within the horizon around the event there (other
    # events in a long record are not this one)
    a, b = event_run(own)
    t_lo = t_ref + pd.Timedelta(seconds=float(own.t_s[a]) - horizon_s)
    t_hi = t_ref + pd.Timedelta(seconds=float(own.t_s[b]) + horizon_s)
    connected = {state_id for state_id in (st.ids[i] for i in um_anomaly.reach_index)} | net.all_downstream(anomaly.reach)
    near = frame[(frame["time"] >= t_lo) & (frame["time"] <= t_hi)]
    use = sorted(s_id for s_id in set(near["station_id"]) & set(net.stations) if net.stations[s_id].reach in connected)
    readings = Readings(near[near["station_id"].isin(use)].reset_index(drop=True))
    t_ref = pd.Timestamp(readings.frame["time"].min())
    signals = station_signals(readings, parameter, use, t_ref)
    if not signals[station].saw:  # the event is still there within its own window
        raise AttributionError(f"station {station!r} shows no {parameter} excess near its event: nothing to trace")
    model: ReleaseKind = kind or release_kind(signals[station])
    hyps = build_hypotheses(net, st, um_anomaly)
    H = len(hyps)
    r_idx = np.array([st.index[h.reach] for h in hyps])
    chain = np.array([h.chainage_m for h in hyps])
    length = st.length_m
    logp, sig_notes = _log_priors(hyps, st, parameter)

    saw = [s for s in signals.values() if s.saw]
    silent = [s for s in signals.values() if not s.saw]
    geo: dict[str, tuple[np.ndarray, ...]] = {}
    region = {int(i) for i in um_anomaly.reach_index} | {st.index[r] for r in net.all_downstream(anomaly.reach)}
    above_stations: set[int] = set()  # reaches from which a plume can reach a station in use
    for s in signals.values():
        um = um_anomaly if s.station == station else upstream_moments(net, st, net.feature(s.station), pol, horizon_s * 2,
                                                                      within=region)
        geo[s.station] = um.at(r_idx, chain, length[r_idx])
        above_stations |= {int(i) for i in um.reach_index}

    def discharge(s: StationSignal) -> float:
        return float(st.discharge_m3s[st.index[net.feature(s.station).reach]])

    # a release that lasts, in the screen too
    dur_screen = _screen_durations(saw, geo) if model == "pulse" and FINITE_RELEASES else np.zeros(H)
    # per saw station: release start and size each hypothesis needs
    fits = [_station_fit(model, s, geo[s.station], discharge(s), pol.decay_per_s, dur_screen) for s in saw]
    T0, LM, W = (np.array([fit[k] for fit in fits]) for k in range(3))  # (saw stations, H)
    VT = np.array([geo[s.station][3] + (FLOW_ERROR * geo[s.station][2]) ** 2 for s in saw])
    wsum = W.sum(axis=0)
    seen_by = wsum > 0
    if model == "continuous" and not seen_by.any():
        raise AttributionError(f"no station's {parameter} excess rises to a plateau that lasts to the end of the record: "
                               "a continuous release cannot be dated; use the pulse model")
    with np.errstate(invalid="ignore", divide="ignore"):
        t0_hat = np.nansum(W * np.nan_to_num(T0), axis=0) / wsum
        lm_hat = np.nansum(W * np.nan_to_num(LM), axis=0) / wsum
        consistency = -0.5 * np.nansum(np.where(W > 0, (T0 - t0_hat) ** 2 / VT + (LM - lm_hat) ** 2 / MASS_SIGMA_LN**2, 0.0), axis=0)
    consistency = np.where(seen_by, consistency, 0.0)

    def modelled(s: StationSignal, idx: np.ndarray, t0: np.ndarray, lm: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """(H, len(idx)) modelled excess at ``s`` for the hypotheses ``rows`` (zero elsewhere)."""
        f, x, m, v = geo[s.station]
        u, d = _equivalent_channel(x[rows], m[rows], v[rows])
        yhat = np.zeros((H, idx.size))
        if rows.any():
            tt = s.t_s[idx][None, :] - t0[rows][:, None]
            yhat[rows] = _curve(model, x[rows][:, None], tt, (f[rows] * np.exp(lm[rows]))[:, None], discharge(s),
                                u[:, None], d[:, None], pol.decay_per_s, dur_screen[rows][:, None])
        return yhat

    # shape: each station against its own fit where it has one, else against the combined one
    shape = np.zeros(H)
    for s, t0, lm, w in zip(saw, T0, LM, W):
        idx = _window(s)
        own_fit = w > 0
        shape += _station_term(s, modelled(s, idx, np.where(own_fit, t0, t0_hat), np.where(own_fit, lm, lm_hat),
                                           (geo[s.station][0] > 0) & seen_by), idx)

    silence = np.zeros(H)
    for s in silent:
        down = (geo[s.station][0] > 0) & seen_by
        if not down.any():
            continue
        idx = _window(s)
        rel = silence_error(s)
        base = _station_term(s, np.zeros((1, idx.size)), idx, rel)[0]
        silence += _station_term(s, modelled(s, idx, t0_hat, lm_hat, down), idx, rel) - base

    pulse = model == "pulse"
    needed = [float(np.exp(lm_hat[i])) if seen_by[i] else math.nan for i in range(H)]
    f_list, o_list, feas_notes, ops_notes = priors.discharger_terms(
        [h.feature for h in hyps], parameter, needed, pulse=pulse, operations=operations)
    feas, ops = np.array(f_list), np.array(o_list)
    feas_notes, ops_notes = list(feas_notes), list(ops_notes)
    logpost = logp + shape + consistency + silence + feas + ops
    screen = np.argsort(-logpost, kind="stable")
    duration = np.full(H, np.nan)  # fitted by the exact pass only
    occam = np.zeros(H)  # ln Occam factor of the duration, exact pass only
    top = screen[seen_by[screen]][:EXACT_RESCORE]
    top = top[logpost[top] >= logpost[screen[0]] - EXACT_RESCORE_GAP]
    if top.size:
        ex = _exact_terms(net, st, [hyps[i] for i in top], model, saw, silent, discharge, pol,
                          frozenset(above_stations))
        t0_hat[top], lm_hat[top] = ex["t0"], ex["lm"]
        duration[top] = ex["duration"]
        shape[top], consistency[top], silence[top] = ex["shape"], ex["consistency"], ex["silence"]
        VT[:, top] = ex["vt"]
        W[:, top] = ex["w"]
        needed_top = [float(np.exp(v)) for v in ex["lm"]]
        f_top, o_top, fn_top, on_top = priors.discharger_terms(
            [hyps[i].feature for i in top], parameter, needed_top, pulse=model == "pulse", operations=operations)
        feas[top], ops[top] = f_top, o_top
        for j, i in enumerate(top):
            feas_notes[i], ops_notes[i] = fn_top[j], on_top[j]
        occam[top] = ex["occam"]
        exact_post = logp[top] + shape[top] + consistency[top] + silence[top] + feas[top] + ops[top] + occam[top]
        # the rest keep the screen's ordering, anchored below the weakest hypothesis scored exactly
        rest = np.setdiff1d(np.arange(H), top)
        if rest.size:
            cut = logpost[top].min()
            logpost[rest] = exact_post.min() - 1.0 + (logpost[rest] - cut)
        logpost[top] = exact_post
    prob = np.exp(logpost - np.max(logpost))
    prob /= prob.sum()

    _fa, xa, ma, _va = geo[station]
    n_fit = (W > 0).sum(axis=0)
    order = np.argsort(-logpost, kind="stable")
    cands = []
    for i in order:
        h = hyps[i]
        start: datetime | None = None
        start_iv: tuple[datetime, datetime] | None = None
        size: float | None = None
        size_iv: tuple[float, float] | None = None
        if seen_by[i]:
            start = (t_ref + pd.Timedelta(seconds=round(float(t0_hat[i])))).floor("s").to_pydatetime()
            half = Z90 * math.sqrt(float(np.nanmean(VT[:, i][W[:, i] > 0])) / n_fit[i])
            start_iv = (start - timedelta(seconds=half), start + timedelta(seconds=half))
            size = float(np.exp(lm_hat[i]))
            k = math.exp(Z90 * MASS_SIGMA_LN / math.sqrt(n_fit[i]))
            size_iv = (size / k, size * k)
        cands.append(Candidate(
            id=h.id, kind=h.feature.get("kind", "discharger") if h.feature is not None else "unregistered",
            probability=float(prob[i]), distance_m=float(xa[i]), travel_time_s=float(ma[i]),
            release_start=start, release_start_interval=start_iv,
            mass_kg=size if pulse else None, mass_kg_interval=size_iv if pulse else None,
            rate_kg_s=None if pulse else size, rate_kg_s_interval=None if pulse else size_iv,
            log_posterior=float(logpost[i]),
            evidence={"prior": float(logp[i]), "shape": float(shape[i]), "consistency": float(consistency[i]),
                      "silence": float(silence[i]), "feasibility": float(feas[i]), "operations": float(ops[i]),
                      "duration": float(occam[i])},
            explanation={"signature": sig_notes[i], "feasibility": feas_notes[i], "operations": ops_notes[i]},
            duration_s=float(duration[i]) if pulse and seen_by[i] and np.isfinite(duration[i]) else None,
        ))
    nearest = min((c for c in cands if c.kind != "unregistered"), key=lambda c: c.distance_m, default=None)
    notes = () if kind is not None else (f"{model} release: " + (
        "the excess rose to a plateau that lasts to the end of the record" if model == "continuous"
        else "the excess came and went"),)
    return AttributionResult(station, parameter, model, tuple(cands), tuple(s.station for s in saw),
                             tuple(s.station for s in silent), nearest.id if nearest else None, notes)

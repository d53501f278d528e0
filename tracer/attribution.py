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

The code is split by concern: :mod:`tracer.attribution_types` (hypotheses, candidates, constants),
:mod:`tracer.attribution_signals` (a station's event run and the likelihood of a curve),
:mod:`tracer.attribution_screen` (the moment screen), :mod:`tracer.attribution_exact` (the exact pass).
This module runs them; the names are re-exported here.

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
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hydrology.pollutants import Pollutant
from hydrology.pollutants import pollutant as make_pollutant

from . import priors
from .attribution_exact import _exact_terms
from .attribution_screen import (
    _curve,
    _equivalent_channel,
    _log_priors,
    _screen_durations,
    _station_fit,
    build_hypotheses,
)
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
from .attribution_types import (
    CURVE_RELATIVE_ERROR,
    DEFAULT_HORIZON_S,
    EXACT_INDEPENDENT_SAMPLES,
    EXACT_RESCORE,
    EXACT_RESCORE_GAP,
    FLOW_ERROR,
    MASS_SIGMA_LN,
    MAX_INDEPENDENT_SAMPLES,
    PLATEAU_LEVEL,
    PLATEAU_MIN_SAMPLES,
    PLATEAU_SHARE,
    RUN_GAP,
    RUN_SIGMAS,
    SILENCE_RELATIVE_ERROR,
    Z90,
    AttributionError,
    AttributionResult,
    Candidate,
    Hypothesis,
    ReleaseKind,
)
from .readings import Readings
from .signals import StationSignal, station_signals
from .upstream import upstream_moments

if TYPE_CHECKING:
    from hydrology.network import RiverNetwork
    from hydrology.reach_state import ReachState

__all__ = [
    "CURVE_RELATIVE_ERROR", "DEFAULT_HORIZON_S", "EXACT_INDEPENDENT_SAMPLES", "EXACT_RESCORE", "EXACT_RESCORE_GAP",
    "FINITE_RELEASES", "FLOW_ERROR", "MASS_SIGMA_LN", "MAX_INDEPENDENT_SAMPLES", "PLATEAU_LEVEL", "PLATEAU_MIN_SAMPLES",
    "PLATEAU_SHARE", "RUN_GAP", "RUN_SIGMAS", "SILENCE_RELATIVE_ERROR", "Z90", "AttributionError", "AttributionResult",
    "Candidate", "Hypothesis", "ReleaseKind", "_curve", "_equivalent_channel", "_logsumexp_rows", "_plateau",
    "_run_moments", "_station_term", "_window", "attribute_release", "build_hypotheses", "event_run", "release_kind",
    "silence_error",
]

#: the exact pass fits a release duration (False: every pulse is an instant; kept to measure the
#: difference in the benchmark)
FINITE_RELEASES = True


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
                          frozenset(above_stations), finite=FINITE_RELEASES)
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

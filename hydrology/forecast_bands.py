"""Forecast bands: P10/P50/P90 of arrival, peak and end at every receptor from a deterministic
grid of kernel forecasts, and their narrowing by observed arrivals (data assimilation).

Uncertain inputs (one factor each on the whole network; errors correlated along the river are
what move a forecast, as in :mod:`hydrology.ensemble`):

- discharge: Q -> exp(s_q z_q) Q on every reach, z_q standard normal. Velocity, depth, width and
  dispersion follow from each reach's own hydraulics (:func:`hydrology.reach_state.compute_reach_state`,
  the same perturbation as :func:`hydrology.ensemble._hydraulics`, here recomputed per node).
  Default ``flow_sd_ln`` = 0.25 (a coefficient of variation of about 25 %). Even gauged
  rating-curve discharges carry 6-43 % (mean about 26 %) at 95 % confidence (Di Baldassarre &
  Montanari 2009, HESS 13:913); the demo basins' discharges are ungauged assumptions (area shares,
  regional scaling), whose errors are larger still, commonly put at 20-30 % or more. A judgment,
  not a fit to any basin.
- dispersion: D -> exp(s_d z_d) D on every reach (after the flow factor). Default
  ``dispersion_sd_ln`` = ln 2 = 0.69: on the 71-row field compilation of DESIGN.md section 4 the
  share of predictions within a factor of 2 of the measured coefficient is 63 % (Seo & Cheong 1998,
  J. Hydraul. Eng. 124:25), 65 % (Deng et al. 2001, J. Hydraul. Eng. 127:919), 72 % (Disley 2015),
  38 % (Fischer 1975); a lognormal error with sd ln 2 puts 68 % within a factor of 2.

Method (no Monte Carlo): the exact kernel (:func:`hydrology.transport.analytic.forecast`) is run
at the tensor grid of :data:`NODES` = 5 values of z in [-2.5, 2.5] for each factor with a nonzero
spread (25 runs; 1 when both spreads are 0). Each output (log of arrival, peak time, peak
concentration, end) is interpolated over the grid with a tensor cubic spline and evaluated on a
fine grid of :data:`FINE` equal-probability points per factor (z = Phi^-1((i + 1/2)/FINE)), each
carrying equal prior weight; quantiles are read from the weighted fine points. This assumes the
response is smooth in the two log-factors over +-2.5 sd (travel times are power laws of Q through
Manning / hydraulic geometry, and crossings move smoothly with D; on Ruxi the spline matches direct
kernel runs to 0.09 % in time, 7.4 % in peak concentration at the far corner), and that
the two factors are independent. Where a node never crosses the threshold (arrival or end None)
that output is not smooth; it is taken from the nearest node instead, with a missing arrival read
as +inf (never arrives: a quantile that falls there is None) and the end of a plume that never
exceeds read as 0 (its exceedance is over from the start, so P90 end is the time by which the
exceedance is over with probability 0.9, counting the chance that there is none).

:func:`assimilate` reweights the fine points by a Gaussian likelihood of the observed arrival at
stations the plume has passed; the observation error is max(sampling interval, 3 % of the observed
travel time): a crossing is known to one sampling interval, and 3 % stands for the model's own
error at a station (a judgment, not measured: the analytic and finite-volume engines agree to
about 0.3 % on Ruxi, real rivers less well).

Release-start error (``start_sd_s``). When the release start is itself an estimate (a trace fitted it
from the first station's rising limb), every time at every receptor carries the same unknown offset
d ~ N(0, start_sd_s^2), independent of the two factors. It is integrated out analytically: given the
factors (a fine point f) and observations t_j = pred_j(f) + d + e_j, e_j ~ N(0, s_j^2) (arrivals and
peaks alike: the offset moves every time), the residuals r_j = t_j - pred_j(f) give

    P = 1/start_sd_s^2 + sum_j 1/s_j^2,  mu(f) = (sum_j r_j/s_j^2) / P,
    log L(f) = -1/2 (sum_j r_j^2/s_j^2 - P mu(f)^2)   (+ a constant),

and the offset given f is N(mu(f), 1/P) (conjugate Gaussian; e.g. Gelman et al., Bayesian Data
Analysis, 3rd ed., section 2.5). The time fields of a receptor are then the mixture over f of
N(pred(f) + mu(f), 1/P), evaluated on :data:`START_POINTS` equal-probability points of the normal.
With one observed station this reads "the plume is where the station saw it": the receptor's time is
the observed arrival plus the travel time between them, whatever start the trace fitted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.special import ndtri

from .exceptions import HydrologyError
from .network import RiverNetwork
from .reach_state import ReachState, state_at_flow
from .transport.analytic import Release, forecast

#: kernel runs per factor with a nonzero spread [-]
NODES = 5
#: node span in standard deviations [-]
NODE_SPAN_SD = 2.5
#: fine equal-probability points per factor [-]
FINE = 64
#: default spread of ln(discharge factor) [-] (module docstring)
FLOW_SD_LN = 0.25
#: default spread of ln(dispersion factor) [-] (module docstring)
DISPERSION_SD_LN = float(np.log(2.0))
#: default relative arrival-time observation error [-] (module docstring)
OBS_REL_ERROR = 0.03
#: default station sampling interval [s]: 10 min, the minute-data interval of HJ 212 online monitors
#: (stations that report hourly: pass 3600). Used whole as a standard error, which is conservative
#: (a crossing uniform within one interval has a standard deviation of interval / sqrt(12)).
SAMPLING_INTERVAL_S = 600.0
FIELDS = ("arrival_s", "peak_s", "peak_g_m3", "end_s")
#: the time fields (they move with the release-start offset)
TIME_FIELDS = ("arrival_s", "peak_s", "end_s")
#: equal-probability points of the release-start offset's normal in a band [-]
START_POINTS = 7


class BandsError(HydrologyError, ValueError):
    """Bad input to the forecast bands."""


def scaled_state(net: RiverNetwork, flow_factor: float, dispersion_factor: float,
                 reaches: np.ndarray | None = None) -> ReachState:
    """Reach state with every discharge times ``flow_factor`` (hydraulics of ``reaches``, default all,
    recomputed: :func:`hydrology.reach_state.state_at_flow`) and every dispersion coefficient times
    ``dispersion_factor`` [-]."""
    st = state_at_flow(net, net.reach_state(), flow_factor, reaches)
    return replace(st, dispersion_m2s=st.dispersion_m2s * dispersion_factor) if dispersion_factor != 1.0 else st


@dataclass(frozen=True)
class ReceptorBand:
    """Quantiles at one receptor: each field maps quantile -> value ([s] after release start,
    peak [g/m3]). Quantile q of a time is the time by which it has happened with probability q:
    arrival None where that quantile never crosses the threshold; end None where it is still above
    the threshold at the end of the forecast (an ongoing release), 0 where it never exceeded."""

    id: str
    kind: str
    quantiles: tuple[float, ...]
    arrival_s: dict[float, float | None]
    peak_s: dict[float, float | None]
    peak_g_m3: dict[float, float | None]
    end_s: dict[float, float | None]
    #: probability that the plume crosses the threshold here at all [-]
    p_arrival: float = 1.0

    def width_s(self, field: str = "arrival_s") -> float:
        """Outer quantile spread of a time field [s] (inf when a quantile is None)."""
        lo, hi = getattr(self, field)[self.quantiles[0]], getattr(self, field)[self.quantiles[-1]]
        return float("inf") if lo is None or hi is None else hi - lo


@dataclass(frozen=True)
class Bands:
    """Bands at every receptor, with what :func:`assimilate` needs to reweight them."""

    receptors: dict[str, ReceptorBand]
    quantiles: tuple[float, ...]
    flow_sd_ln: float
    dispersion_sd_ln: float
    #: receptor id -> field -> value at each fine point (flattened), [s] or [g/m3], inf = never
    fine: dict[str, dict[str, np.ndarray]]
    #: weight of each fine point [-], summing to 1
    weights: np.ndarray
    #: ln flow factor and ln dispersion factor at each fine point [-]
    ln_flow: np.ndarray
    ln_dispersion: np.ndarray
    #: station id (arrival) or "id:peak" -> (observed time [s], observation error [s]) used so far
    observed: dict[str, tuple[float, float]]
    #: prior standard deviation of the release-start offset [s] (module docstring); 0 = start known
    start_sd_s: float = 0.0
    #: posterior mean of the offset at each fine point [s] (None: zero)
    start_shift_s: np.ndarray | None = None
    #: posterior standard deviation of the offset, the same at every fine point [s]
    start_post_sd_s: float = 0.0

    def factor_quantiles(self, q: float = 0.5) -> tuple[float, float]:
        """Weighted quantile of the flow and dispersion factors [-] (to report what assimilation learnt)."""
        return (float(np.exp(_wquantile(self.ln_flow, self.weights, q))),
                float(np.exp(_wquantile(self.ln_dispersion, self.weights, q))))


def _z_nodes(sd: float) -> np.ndarray:
    return np.linspace(-NODE_SPAN_SD, NODE_SPAN_SD, NODES) if sd > 0 else np.zeros(1)


def _z_fine(sd: float) -> np.ndarray:
    return ndtri((np.arange(FINE) + 0.5) / FINE) if sd > 0 else np.zeros(1)


def _surface(vals: np.ndarray, zq: np.ndarray, zd: np.ndarray, fq: np.ndarray, fd: np.ndarray) -> np.ndarray:
    """Values on the node grid (nq, nd) -> the fine grid (Fq, Fd): tensor cubic spline in log space
    where all are positive and finite, else the nearest node."""
    if np.all(np.isfinite(vals)) and np.all(vals > 0):
        out = np.log(vals)
        if zq.size > 1:
            out = CubicSpline(zq, out, axis=0)(fq)
        if zd.size > 1:
            out = CubicSpline(zd, out, axis=1)(fd)
        return np.exp(np.broadcast_to(out, (fq.size, fd.size)))
    iq = np.abs(fq[:, None] - zq[None, :]).argmin(axis=1)
    idd = np.abs(fd[:, None] - zd[None, :]).argmin(axis=1)
    return vals[np.ix_(iq, idd)]


def _wquantile(x: np.ndarray, w: np.ndarray, q: float) -> float:
    """Quantile q of values x with weights w (mid-point cumulative weights, linear between)."""
    order = np.argsort(x, kind="stable")
    xs, ws = x[order], w[order]
    keep = ws > 0
    xs, ws = xs[keep], ws[keep]
    cdf = (np.cumsum(ws) - 0.5 * ws) / ws.sum()
    if np.any(~np.isfinite(xs)):
        i = int(np.searchsorted(cdf, q))
        if xs[min(i, xs.size - 1)] == np.inf or (i > 0 and xs[i - 1] == np.inf):
            return float("inf")
    return float(np.interp(q, cdf, xs))


def _with_offset(x: np.ndarray, w: np.ndarray, shift: np.ndarray | None, sd: float) -> tuple[np.ndarray, np.ndarray]:
    """Values and weights of the mixture over fine points of N(x + shift, sd^2), on START_POINTS
    equal-probability points of each normal (x, w unchanged when sd is 0 and there is no shift).
    An infinite value (never) stays infinite."""
    if shift is not None:
        x = x + shift
    if sd <= 0:
        return x, w
    z = ndtri((np.arange(START_POINTS) + 0.5) / START_POINTS) * sd
    return (x[:, None] + z[None, :]).ravel(), np.repeat(w / START_POINTS, START_POINTS)


def _band(rid: str, kind: str, fine: dict[str, np.ndarray], w: np.ndarray, qs: tuple[float, ...],
          shift: np.ndarray | None = None, sd: float = 0.0) -> ReceptorBand:
    vals: dict[str, dict[float, float | None]] = {}
    for f in FIELDS:
        vals[f] = {}
        x, wx = _with_offset(fine[f], w, shift, sd) if f in TIME_FIELDS else (fine[f], w)
        if f == "end_s" and (shift is not None or sd > 0):
            x = np.where(np.repeat(fine[f], x.size // fine[f].size) == 0.0, 0.0, x)  # "never exceeded" stays 0
        for q in qs:
            v = _wquantile(x, wx, q)
            vals[f][q] = None if not np.isfinite(v) else v
    p = float(w[np.isfinite(fine["arrival_s"])].sum())
    return ReceptorBand(rid, kind, qs, vals["arrival_s"], vals["peak_s"], vals["peak_g_m3"], vals["end_s"], p)


def receptor_bands(net: RiverNetwork, release: Release, *, flow_sd_ln: float = FLOW_SD_LN,
                   dispersion_sd_ln: float = DISPERSION_SD_LN, quantiles: Sequence[float] = (0.1, 0.5, 0.9),
                   threshold_g_m3: float | None = None, start_sd_s: float = 0.0) -> Bands:
    """Quantiles of arrival, peak time, peak concentration and end at every downstream receptor.

    Parameters
    ----------
    net : RiverNetwork
        A valid network.
    release : Release
        Where, what and how much.
    flow_sd_ln, dispersion_sd_ln : float
        Standard deviations of ln(discharge factor) and ln(dispersion factor) [-] (module docstring).
    quantiles : sequence of float
        Probabilities in (0, 1), ascending.
    threshold_g_m3 : float, optional
        Arrival/end threshold [g/m3], as in :func:`hydrology.transport.analytic.forecast`.
    start_sd_s : float
        Standard deviation of the error of ``release.start`` [s] (module docstring); 0 when the start
        is known.

    Returns
    -------
    Bands
    """
    qs = tuple(float(q) for q in quantiles)
    if not qs or any(not 0.0 < q < 1.0 for q in qs) or list(qs) != sorted(qs):
        raise BandsError(f"quantiles must be ascending in (0, 1), got {quantiles}")
    for name, sd in (("flow_sd_ln", flow_sd_ln), ("dispersion_sd_ln", dispersion_sd_ln), ("start_sd_s", start_sd_s)):
        if not (np.isfinite(sd) and sd >= 0.0):
            raise BandsError(f"{name} must be finite and >= 0, got {sd}")
    zq, zd = _z_nodes(flow_sd_ln), _z_nodes(dispersion_sd_ln)
    base = net.reach_state()
    # only the reaches the plume can reach need their hydraulics at each flow (41.7 -> 4.3 CPU-s for one source on the
    # 100,000-reach network, 284 receptors); an unknown release reach is left for forecast() to report
    below = (np.array(sorted({base.index[release.reach], *(base.index[r] for r in net.all_downstream(release.reach))}))
             if release.reach in base.index else None)
    at_flow = {a: state_at_flow(net, base, float(np.exp(flow_sd_ln * a)), below) for a in zq}
    runs = [[forecast(net, release, threshold_g_m3=threshold_g_m3,
                      state=replace(at_flow[a], dispersion_m2s=at_flow[a].dispersion_m2s * float(np.exp(dispersion_sd_ln * b))))
             for b in zd] for a in zq]
    first = runs[0][0].receptors
    ids = [r.id for r in first]
    fq, fd = _z_fine(flow_sd_ln), _z_fine(dispersion_sd_ln)
    n = fq.size * fd.size
    weights = np.full(n, 1.0 / n)
    ln_flow = np.repeat(flow_sd_ln * fq, fd.size)
    ln_disp = np.tile(dispersion_sd_ln * fd, fq.size)
    fine: dict[str, dict[str, np.ndarray]] = {}
    for rid in ids:
        fine[rid] = {}
        for f in FIELDS:
            node = np.empty((zq.size, zd.size))
            for i in range(zq.size):
                for j in range(zd.size):
                    rec = {r.id: r for r in runs[i][j].receptors}.get(rid)
                    v = None if rec is None else getattr(rec, f)
                    if f == "end_s" and (rec is None or rec.arrival_s is None):
                        v = 0.0  # no exceedance: over from the start (an ongoing one is None: +inf)
                    node[i, j] = np.inf if v is None else v
            fine[rid][f] = _surface(node, zq, zd, fq, fd).ravel()
    receptors = {r.id: _band(r.id, r.kind, fine[r.id], weights, qs, None, start_sd_s) for r in first}
    return Bands(receptors, qs, flow_sd_ln, dispersion_sd_ln, fine, weights, ln_flow, ln_disp, {},
                 float(start_sd_s), None, float(start_sd_s))


def observation_error_s(observed_arrival_s: float, sampling_interval_s: float = SAMPLING_INTERVAL_S,
                        rel_error: float = OBS_REL_ERROR) -> float:
    """Standard error of an observed arrival [s]: max(sampling interval, rel_error x travel time)."""
    return max(float(sampling_interval_s), rel_error * float(observed_arrival_s))


def assimilate(bands: Bands, observed_arrivals: Mapping[str, float], *,
               observed_peaks: Mapping[str, float] | None = None,
               sampling_interval_s: float = SAMPLING_INTERVAL_S, rel_error: float = OBS_REL_ERROR) -> Bands:
    """Narrow the bands with observed arrivals [s after the release start] at passed stations.

    Each fine point's weight is multiplied by exp(-((obs - predicted) / sigma)^2 / 2), sigma from
    :func:`observation_error_s`; a point that predicts no arrival there gets weight 0. With a
    release-start error (``bands.start_sd_s`` > 0) the offset is integrated out instead (module
    docstring), over every observation so far, from the prior's equal weights. An arrival
    alone mostly fixes the flow (travel-time) factor: a low flow with high dispersion arrives as
    early as a higher flow with low dispersion. ``observed_peaks`` (peak times [s] at passed
    stations, same error model) separate the two.

    Raises
    ------
    BandsError
        A station that is not a receptor of these bands, a non-finite or negative time, or
        observations that no point of the prior can explain (all weights 0).
    """
    obs = [(sid, t, "arrival_s") for sid, t in observed_arrivals.items()]
    obs += [(sid, t, "peak_s") for sid, t in (observed_peaks or {}).items()]
    if not obs:
        return bands
    logw = np.log(bands.weights)
    observed = dict(bands.observed)
    for sid, t_obs, field in obs:
        what = "observed_arrivals" if field == "arrival_s" else "observed_peaks"
        if sid not in bands.fine:
            raise BandsError(f"{what}: {sid!r} is not a receptor downstream of the release")
        if not (np.isfinite(t_obs) and t_obs >= 0):
            raise BandsError(f"{what}[{sid!r}] must be a finite time >= 0 [s], got {t_obs}")
        sigma = observation_error_s(t_obs, sampling_interval_s, rel_error)
        if bands.start_sd_s == 0:  # else the offset's marginal below weighs all observations at once
            pred = bands.fine[sid][field]
            with np.errstate(invalid="ignore"):
                logw = logw - 0.5 * np.where(np.isfinite(pred), ((t_obs - pred) / sigma) ** 2, np.inf)
        observed[sid if field == "arrival_s" else f"{sid}:peak"] = (float(t_obs), sigma)
    shift, post_sd = None, bands.start_sd_s
    if bands.start_sd_s > 0:
        logw, shift, post_sd = _offset_marginal(bands, observed)
    if not np.any(np.isfinite(logw)):
        raise BandsError("observed_arrivals: no combination of flow and dispersion factors explains them")
    w = np.exp(logw - np.max(logw))
    w /= w.sum()
    receptors = {rid: _band(rid, b.kind, bands.fine[rid], w, bands.quantiles, shift, post_sd)
                 for rid, b in bands.receptors.items()}
    return replace(bands, receptors=receptors, weights=w, observed=observed, start_shift_s=shift,
                   start_post_sd_s=post_sd)


def _offset_marginal(bands: Bands, observed: Mapping[str, tuple[float, float]]) -> tuple[np.ndarray, np.ndarray, float]:
    """(log weight, posterior mean offset [s], posterior sd [s]) at each fine point, the release-start
    offset integrated out over all ``observed`` (module docstring), from the prior's equal weights."""
    n = bands.weights.size
    precision = 1.0 / bands.start_sd_s ** 2
    sum_r = np.zeros(n)  # sum r_j / s_j^2
    sum_rr = np.zeros(n)  # sum r_j^2 / s_j^2
    never = np.zeros(n, dtype=bool)
    for key, (t_obs, sigma) in observed.items():
        sid, field = (key[:-5], "peak_s") if key.endswith(":peak") else (key, "arrival_s")
        pred = bands.fine[sid][field]
        ok = np.isfinite(pred)
        never |= ~ok
        r = np.where(ok, t_obs - np.where(ok, pred, 0.0), 0.0)
        precision += 1.0 / sigma ** 2
        sum_r += r / sigma ** 2
        sum_rr += r * r / sigma ** 2
    mu = sum_r / precision
    logw = np.where(never, -np.inf, -0.5 * (sum_rr - precision * mu * mu)) - np.log(n)
    return logw, mu, float(1.0 / np.sqrt(precision))


def suspension_window(band: ReceptorBand, margin_s: float = 1800.0) -> tuple[float, float | None] | None:
    """Intake suspension window [s after the release start]: from the lowest-quantile arrival minus
    ``margin_s`` (default 30 min: time to close a gate and confirm, an operating judgment) to the
    highest-quantile end. None when even the highest quantile never arrives; end None when the
    highest-quantile plume never falls back below the threshold within the forecast."""
    if margin_s < 0 or not np.isfinite(margin_s):
        raise BandsError(f"margin_s must be finite and >= 0, got {margin_s}")
    lo_q, hi_q = band.quantiles[0], band.quantiles[-1]
    start = band.arrival_s[lo_q]
    if start is None:
        start = band.arrival_s[hi_q]
        if start is None:
            return None
    return max(0.0, start - margin_s), band.end_s[hi_q]

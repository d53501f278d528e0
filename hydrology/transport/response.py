"""Closed-form response curves of a uniform channel: peak and threshold crossings without a time grid.

A travel path is replaced by its equivalent channel (:func:`equivalent_channel`, the one with the
same travel-time moments, as :mod:`hydrology.transport.analytic` does), and its curve is summarised in closed
form: for an instantaneous release (:func:`puff_response`) the peak time is exact; for a release of
constant rate and finite duration (:func:`pulse_response`) the peak and, for both, every threshold
crossing come from a bracketed Newton iteration vectorised over rows. The vulnerability sweep and
the ensemble used these shapes until issue 10; both now take their curves from the exact transport
kernel (:mod:`hydrology.transport.batched`, :mod:`hydrology.transport.kernel`), and these closed forms
remain as references for a uniform channel. Units: m, s, m/s, m2/s, kg, kg/s, m3/s, g/m3.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .analytic import EDGE_FRACTION_OF_PEAK
from .closed_form import GRAMS_PER_KG, ogata_banks


def equivalent_channel(distance_m: np.ndarray, mean_s: np.ndarray, var_s2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Velocity [m/s] and dispersion [m2/s] of the uniform channel with the same travel-time moments.

    U_e = x / mean, D_e = variance U_e^3 / (2 x): the large-Peclet moments of the 1-D
    advection-dispersion equation (Levenspiel & Smith 1957), as :func:`hydrology.transport.analytic.forecast`
    uses them (Nordin, C.F. and Troutman, B.M. 1980, Water Resour. Res. 16(1), 123-128).
    """
    x = np.asarray(distance_m, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = x / np.asarray(mean_s, float)
        return u, np.asarray(var_s2, float) * u**3 / (2.0 * x)


Fun = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _newton(fun: Fun, lo: np.ndarray, hi: np.ndarray, guess: np.ndarray, rising: bool,
            tol: float = 1e-12, max_iter: int = 200) -> np.ndarray:
    """Root in [lo, hi] of each row of ``fun(s, rows) -> (value, slope)``: safeguarded Newton.

    ``rising``: value < 0 left of the root (else > 0). A Newton step that leaves the bracket or is
    not finite is replaced by bisection, so every row converges (Press, W.H. et al. 2007, Numerical
    Recipes, 3rd ed., sec. 9.4, ``rtsafe``), vectorised over rows with an active set.
    """
    out = guess.astype(float)
    idx, s, lo, hi = np.arange(out.size), out.copy(), lo.astype(float), hi.astype(float)
    for _ in range(max_iter):
        if not idx.size:
            break
        val, slope = fun(s, idx)
        left = (val < 0) if rising else (val > 0)
        lo, hi = np.where(left, s, lo), np.where(left, hi, s)
        with np.errstate(all="ignore"):
            step = val / slope
        new = s - step
        newton = np.isfinite(new) & (new >= lo) & (new <= hi)
        new = np.where(newton, new, 0.5 * (lo + hi))
        scale = tol * (1.0 + np.abs(s))
        done = (val == 0) | (newton & (np.abs(step) <= scale)) | (hi - lo <= scale)
        out[idx] = np.where(val == 0, s, new)
        keep = ~done
        idx, s, lo, hi = idx[keep], new[keep], lo[keep], hi[keep]
    return out


def _crossings(fun: Fun, t_peak: np.ndarray, spread: np.ndarray, ln_thr: np.ndarray,
               rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Times [s] before and after ``t_peak`` where ln C = ``ln_thr``, for ``rows`` (NaN elsewhere).

    ``fun(s, rows)`` gives ln C and d ln C / d ln t at t = exp(s); C rises to its peak and then falls.
    """
    arrival, end = np.full(t_peak.size, np.nan), np.full(t_peak.size, np.nan)
    if not rows.size:
        return arrival, end
    target = ln_thr[rows]

    def sub(s: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        val, slope = fun(s, rows[idx])
        return val - target[idx], slope

    tp, sp = t_peak[rows], spread[rows]
    s_pk = np.log(tp)
    guess = np.log(np.maximum(tp - 2.0 * sp, 0.5 * tp))
    arrival[rows] = np.exp(_newton(sub, s_pk - 40.0, s_pk, guess, rising=True))
    hi = np.log(tp + 4.0 * sp)
    grow = np.arange(rows.size)
    for _ in range(100):  # push the upper bracket out (e-folds) until C is below the threshold
        grow = grow[sub(hi[grow], grow)[0] >= 0]
        if not grow.size:
            break
        hi[grow] += 1.0
    ok = np.ones(rows.size, bool)
    ok[grow] = False
    s_end = _newton(sub, s_pk, hi, np.minimum(np.log(tp + 2.0 * sp), 0.5 * (s_pk + hi)), rising=False)
    end[rows] = np.where(ok, np.exp(s_end), np.nan)
    return arrival, end


def _thresholds(threshold: np.ndarray | float | None, peak: np.ndarray, edge_fraction: float | None) -> np.ndarray:
    thr = np.full(peak.shape, np.nan) if threshold is None else np.broadcast_to(np.asarray(threshold, float), peak.shape)
    if edge_fraction is not None:
        thr = np.where(np.isnan(thr), edge_fraction * peak, thr)
    return thr


def puff_response(distance_m: np.ndarray, velocity_ms: np.ndarray, dispersion_m2s: np.ndarray,
                  decay_per_s: float | np.ndarray, mass_kg: np.ndarray, discharge_m3s: np.ndarray,
                  threshold_g_m3: np.ndarray | float | None = None,
                  edge_fraction: float | None = EDGE_FRACTION_OF_PEAK) -> dict[str, np.ndarray]:
    """Peak and threshold crossings of an instantaneous release in a uniform channel, in closed form.

    C(t) = M U / (Q sqrt(4 pi D t)) exp(-(x - U t)^2 / (4 D t) - k t) (the Gaussian puff of
    :func:`hydrology.transport.gaussian_puff` with A = Q / U; Fischer et al. 1979, eq. 2.17) peaks
    where d ln C / dt = 0, at t* = (sqrt(D^2 + (U^2 + 4 D k) x^2) - D) / (U^2 + 4 D k).
    Crossings of the threshold are solved in ln t (:func:`_newton`).

    Parameters
    ----------
    distance_m, velocity_ms, dispersion_m2s : ndarray
        Distance [m], equivalent velocity [m/s] and dispersion [m2/s].
    decay_per_s : float or ndarray
        First-order decay rate [1/s].
    mass_kg : ndarray
        Mass that reaches the receptor (release x mass fraction) [kg].
    discharge_m3s : ndarray
        Discharge at the receptor [m3/s].
    threshold_g_m3 : ndarray or float, optional
        Concentration defining arrival and end [g/m3]; NaN where none applies.
    edge_fraction : float or None
        Where no threshold applies, edges at this share of the peak [-]; None leaves them NaN.

    Returns
    -------
    dict of ndarray
        ``arrival_s`` [s], ``peak_s`` [s], ``peak_g_m3`` [g/m3], ``end_s`` [s]; arrival and end are
        NaN where the peak stays below the threshold.
    """
    x, u, d, m, q = np.broadcast_arrays(*(np.asarray(a, float) for a in (
        distance_m, velocity_ms, dispersion_m2s, mass_kg, discharge_m3s)))
    k = np.broadcast_to(np.asarray(decay_per_s, float), x.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        a2 = u * u + 4.0 * d * k
        t_pk = (np.sqrt(d * d + a2 * x * x) - d) / a2
        ln_amp = np.log(GRAMS_PER_KG * m * u / (q * np.sqrt(4.0 * np.pi * d)))
        peak = np.exp(ln_amp - 0.5 * np.log(t_pk) - (x - u * t_pk) ** 2 / (4.0 * d * t_pk) - k * t_pk)

    def fun(s: np.ndarray, i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = np.exp(s)
        val = ln_amp[i] - 0.5 * s - (x[i] - u[i] * t) ** 2 / (4.0 * d[i] * t) - k[i] * t
        return val, -0.5 + x[i] ** 2 / (4.0 * d[i] * t) - u[i] ** 2 * t / (4.0 * d[i]) - k[i] * t

    thr = _thresholds(threshold_g_m3, peak, edge_fraction)
    rows = np.flatnonzero((thr > 0) & (peak >= thr))
    with np.errstate(divide="ignore", invalid="ignore"):
        arrival, end = _crossings(fun, t_pk, np.sqrt(2.0 * d * x / u**3), np.log(thr), rows)
    return {"arrival_s": arrival, "peak_s": t_pk, "peak_g_m3": peak, "end_s": end}


def _ln_first_passage(t: np.ndarray, x: np.ndarray, u: np.ndarray, d: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ln g and d ln g / dt of g(t) = x / sqrt(4 pi D t^3) exp(-(x - U t)^2 / (4 D t) - k t) (-inf for t <= 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        tp = np.where(t > 0, t, np.nan)
        ln_g = np.log(x / np.sqrt(4.0 * np.pi * d * tp**3)) - (x - u * tp) ** 2 / (4.0 * d * tp) - k * tp
        slope = -1.5 / tp + x * x / (4.0 * d * tp * tp) - u * u / (4.0 * d) - k
    return np.where(t > 0, ln_g, -np.inf), slope


def pulse_response(distance_m: np.ndarray, velocity_ms: np.ndarray, dispersion_m2s: np.ndarray,
                   decay_per_s: float | np.ndarray, rate_kg_s: np.ndarray, duration_s: float,
                   discharge_m3s: np.ndarray, threshold_g_m3: np.ndarray | float | None = None,
                   edge_fraction: float | None = EDGE_FRACTION_OF_PEAK) -> dict[str, np.ndarray]:
    """Peak and threshold crossings of a release of constant rate R lasting T, in a uniform channel.

    C(t) = c0 [F(t) - F(t - T)], c0 = R / Q, F the Ogata-Banks step response with decay
    (:func:`hydrology.transport.ogata_banks`, c0 = 1), as :func:`hydrology.transport.finite_release`.
    dF/dt = g(t) = x / sqrt(4 pi D t^3) exp(-(x - U t)^2 / (4 D t) - k t), the flux-averaged pulse
    response (Kreft, A. and Zuber, A. 1978, Chem. Eng. Sci. 33, 1471-1480, eq. 13). C peaks where
    g(t) = g(t - T); g rises up to its mode t_g = (sqrt(9 D^2 + (U^2 + 4 D k) x^2) - 3 D) /
    (U^2 + 4 D k) and falls after it, so the root is unique in [t_g, t_g + T].

    Parameters and returns as :func:`puff_response`, with ``rate_kg_s`` the rate that reaches the
    receptor (release rate x mass fraction) [kg/s] and ``duration_s`` the release duration T [s].
    """
    x, u, d, r, q = np.broadcast_arrays(*(np.asarray(a, float) for a in (
        distance_m, velocity_ms, dispersion_m2s, rate_kg_s, discharge_m3s)))
    k = np.broadcast_to(np.asarray(decay_per_s, float), x.shape)
    T = float(duration_s)
    c0 = GRAMS_PER_KG * r / q
    a2 = u * u + 4.0 * d * k
    t_g = (np.sqrt(9.0 * d * d + a2 * x * x) - 3.0 * d) / a2

    def balance(s: np.ndarray, i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = np.exp(s)
        a, da = _ln_first_passage(t, x[i], u[i], d[i], k[i])
        b, db = _ln_first_passage(t - T, x[i], u[i], d[i], k[i])
        return a - b, t * (da - db)

    lo, hi = np.log(np.maximum(t_g, T)), np.log(t_g + T)  # C rises while t < T: the peak is later
    t_pk = np.exp(_newton(balance, lo, hi, 0.5 * (lo + hi), rising=False))

    def step(t: np.ndarray, i: np.ndarray) -> np.ndarray:
        return ogata_banks(x[i], t, 1.0, u[i], d[i], k[i]) - ogata_banks(x[i], t - T, 1.0, u[i], d[i], k[i])

    every = np.arange(x.size)
    peak = c0 * step(t_pk, every)

    def fun(s: np.ndarray, i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = np.exp(s)
        df = step(t, i)
        g = np.exp(_ln_first_passage(t, x[i], u[i], d[i], k[i])[0]) - np.exp(_ln_first_passage(t - T, x[i], u[i], d[i], k[i])[0])
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(df > 0, np.log(c0[i] * df), -np.inf), t * g / df

    thr = _thresholds(threshold_g_m3, peak, edge_fraction)
    rows = np.flatnonzero((thr > 0) & (peak >= thr))
    with np.errstate(divide="ignore", invalid="ignore"):
        arrival, end = _crossings(fun, t_pk, np.sqrt(2.0 * d * x / u**3) + T, np.log(thr), rows)
    return {"arrival_s": arrival, "peak_s": t_pk, "peak_g_m3": peak, "end_s": end}

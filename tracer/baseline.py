"""Daily-cycle baseline and temperature compensation of DO for the sudden-change rule.

A reading is compared with the readings at the same local time of day on the previous days, so the
daily cycle of DO (photosynthesis by day, respiration by night) and of temperature is no event; DO is
first rescaled to a common temperature so that a warm night is no event either. The rule that uses
these is described in :mod:`tracer.detection`. Times are int64 nanoseconds since the epoch, UTC.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

if TYPE_CHECKING:
    from .detection import DetectionRules

NS = 1_000_000_000
DAY_NS = 86_400 * NS
#: 1 / Phi^-1(3/4): MAD -> standard deviation for Gaussian data
MAD_TO_SIGMA = 1.4826


def _local_ns(t: np.ndarray, tz: str) -> np.ndarray:
    """Local wall-clock time [ns since 1970-01-01 local] of UTC times t [ns]."""
    return pd.DatetimeIndex(t.astype("M8[ns]")).tz_localize("UTC").tz_convert(tz).tz_localize(None).asi8


def _local_midnight(day: int, tz: str) -> pd.Timestamp:
    """UTC instant of local midnight starting local day ``day`` (days since 1970-01-01)."""
    return pd.Timestamp(day * DAY_NS).tz_localize(tz, ambiguous=False, nonexistent="shift_forward").tz_convert("UTC")

def _nanmedian_last(a: np.ndarray) -> np.ndarray:
    """Median over the last axis ignoring NaN (NaN where all are NaN), vectorised by sorting."""
    srt = np.sort(a, axis=-1)
    cnt = np.sum(~np.isnan(a), axis=-1)
    lo = np.take_along_axis(srt, np.maximum((cnt - 1) // 2, 0)[..., None], axis=-1)[..., 0]
    hi = np.take_along_axis(srt, np.maximum(cnt // 2, 0)[..., None], axis=-1)[..., 0]
    hi = np.where(cnt % 2 == 1, lo, hi)
    return np.where(cnt > 0, 0.5 * (lo + hi), np.nan)


def daily_cycle_baseline(t: np.ndarray, x: np.ndarray, rules: DetectionRules) -> tuple[np.ndarray, np.ndarray]:
    """Baseline median and robust scale for each reading, from the same time of day on previous days.

    For a reading on local day d in time-of-day bin b, the baseline is the median of the readings in
    bin b on days d-W..d-1 (W = ``baseline_days``) and the scale 1.4826 x their median absolute
    deviation, floored at ``scale_floor`` and ``scale_floor_relative`` x |median|. NaN where fewer
    than ``baseline_min_days`` of those days have readings in the bin.

    Parameters
    ----------
    t : ndarray of int64
        Times [ns since epoch, UTC], ascending.
    x : ndarray
        Values [internal unit].
    rules : DetectionRules
        Settings of the series.

    Returns
    -------
    median, scale : ndarray
        Per reading [internal unit].
    """
    w = rules.baseline_days
    local = _local_ns(t, rules.day_timezone)
    bin_ns = int(rules.baseline_bin_s * NS)
    nbins = math.ceil(DAY_NS / bin_ns)
    day = local // DAY_NS
    day -= day[0]
    b = (local % DAY_NS) // bin_ns
    cell = day * nbins + b
    rank = pd.Series(cell).groupby(cell).cumcount().to_numpy()
    cap = int(min(max(1, 512 // w), rank.max() + 1))  # readings per cell kept (<= 512 per window)
    keep = rank < cap
    ndays = int(day[-1]) + 1
    grid = np.full((ndays + w, nbins, cap), np.nan)
    grid[day[keep] + w, b[keep], rank[keep]] = x[keep]
    win = sliding_window_view(grid, w, axis=0)[:ndays]  # (ndays, nbins, cap, w): days d-w..d-1
    win = win.reshape(ndays, nbins, cap * w)
    med = _nanmedian_last(win)
    mad = _nanmedian_last(np.abs(win - med[..., None]))
    days_seen = (~np.isnan(sliding_window_view(grid, w, axis=0)[:ndays])).any(axis=2).sum(axis=-1)
    floor = max(rules.scale_floor or 0.0, 0.0)
    scale = np.maximum(np.maximum(MAD_TO_SIGMA * mad, floor), rules.scale_floor_relative * np.abs(med))
    ok = days_seen >= rules.baseline_min_days
    med = np.where(ok, med, np.nan)
    return med[day, b], np.where(ok, scale, np.nan)[day, b]


def compensate_do_for_temperature(t: np.ndarray, do: np.ndarray, t_temp: np.ndarray, temp: np.ndarray,
                                  max_pair_s: float) -> np.ndarray:
    """DO rescaled to the series' median temperature: ``DO x C*(T_ref) / C*(T)``.

    Warmer water holds less oxygen; a warm night lowers DO without any pollution. Rescaling by the
    saturation ratio keeps DO in g/m3 while removing that effect, so the baseline compares like with
    like (percent saturation is preserved). Readings without a temperature within ``max_pair_s`` are
    left as they are; temperatures are clipped to 0..40 degC, the range of the saturation fit.

    Parameters
    ----------
    t : ndarray of int64
        DO times [ns, UTC], ascending.
    do : ndarray
        Dissolved oxygen [g/m3].
    t_temp : ndarray of int64
        Temperature times [ns, UTC], ascending.
    temp : ndarray
        Water temperature [degC].
    max_pair_s : float
        Largest time difference for pairing a DO reading with a temperature [s].

    Returns
    -------
    ndarray
        Compensated DO [g/m3].

    References
    ----------
    Saturation C*(T) from :func:`hydrology.oxygen.do_saturation` (Benson and Krause 1984; APHA
    Standard Methods 4500-O).
    """
    from hydrology.oxygen import do_saturation

    if t_temp.size == 0 or t.size == 0:
        return do
    j = np.clip(np.searchsorted(t_temp, t), 1, t_temp.size - 1) if t_temp.size > 1 else np.zeros(t.size, int)
    if t_temp.size > 1:
        j = np.where(np.abs(t_temp[j - 1] - t) <= np.abs(t_temp[j] - t), j - 1, j)
    paired = np.abs(t_temp[j] - t) <= max_pair_s * NS
    tc = np.clip(temp[j], 0.0, 40.0)
    ref = float(np.clip(np.median(temp), 0.0, 40.0))
    factor = np.where(paired, float(do_saturation(ref)) / np.asarray(do_saturation(tc)), 1.0)
    return do * factor

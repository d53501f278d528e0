"""Sensor-fault screens: readings that are an instrument problem, not a water event.

Out-of-range values, spikes, flat-lines (stuck or interpolated) and isolated jumps, screened in this
order by :func:`tracer.detection.detect` before its water-event rules; what each screen calls a fault
is described in the :mod:`tracer.detection` module docstring (:data:`tracer.detection.FaultKind`).
Labelled readings are masked in their series (``_Series.fault`` in :mod:`tracer.detection`) and
reported as :class:`SensorFault`. Times are int64 nanoseconds since the epoch, UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from .baseline import DAY_NS, NS

if TYPE_CHECKING:
    from .detection import StationContext, _Series


@dataclass(frozen=True, slots=True)
class SensorFault:
    """Readings labelled as a sensor problem, not a water event; they are kept out of the rules."""

    station_id: str
    parameter: str
    kind: str
    start: pd.Timestamp
    end: pd.Timestamp
    message: str
    readings: int


def _ts(ns: int | np.integer) -> pd.Timestamp:
    return pd.Timestamp(int(ns), tz="UTC")


def _runs(mask: np.ndarray, t: np.ndarray, max_gap_ns: int) -> list[tuple[int, int]]:
    """Inclusive index ranges of consecutive True entries, broken where the time gap exceeds max_gap_ns."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return []
    brk = (np.diff(idx) != 1) | (np.diff(t[idx]) > max_gap_ns)
    return list(zip(np.r_[idx[0], idx[1:][brk]].tolist(), np.r_[idx[:-1][brk], idx[-1]].tolist()))


def _noise_scale(t: np.ndarray, x: np.ndarray, floor: float) -> np.ndarray:
    """Robust scale of reading-to-reading noise [unit]: median |dx| / 0.6745 over the UTC day, floored.

    For zero-mean Gaussian differences median |dx| = 0.6745 sigma. Days with fewer than 12
    differences take the whole series' median.
    """
    if x.size < 2:
        return np.full(x.size, max(floor, 0.0))
    d = np.abs(np.diff(x))
    day = t[1:] // DAY_NS
    grouped = pd.Series(d).groupby(day)
    med = grouped.median().where(grouped.count() >= 12).reindex(day).to_numpy()
    med = np.where(np.isnan(med), np.median(d), med) / 0.6745
    return np.maximum(np.r_[med[0], med], floor)


def _out_of_range(s: _Series) -> list[SensorFault]:
    if s.rules.valid_range is None:
        return []
    lo, hi = s.rules.valid_range
    bad = (s.x < lo) | (s.x > hi)
    return [s.fault("out_of_range", i0, i1, f"{s.parameter} {s.x[i0]:.4g}..{s.x[i1]:.4g} {s.unit()} "
                    f"outside the instrument range [{lo:g}, {hi:g}] {s.unit()} ({i1 - i0 + 1} readings)")
            for i0, i1 in _runs(bad, s.t, s.gap_ns)]


def _spikes(s: _Series) -> list[SensorFault]:
    r = s.rules
    pos = np.flatnonzero(s.good)
    t, x = s.t[pos], s.x[pos]
    noise = s.noise[pos]
    n = x.size
    hit = np.zeros(n, dtype=bool)
    for length in range(1, r.spike_max_readings + 1):
        if n < length + 2:
            break
        m = n - length - 3  # excursions start at i = 2 .. n - length - 2
        if m <= 0:
            break
        before, after = x[1:1 + m], x[2 + length:2 + length + m]
        seg = sliding_window_view(x, length)[2:2 + m]
        smin, smax = seg.min(axis=1), seg.max(axis=1)
        thr = r.spike_k * noise[1:1 + m]
        up = smin - np.maximum(before, after) > thr
        down = np.minimum(before, after) - smax > thr
        cand = np.flatnonzero(up | down)
        if cand.size == 0:
            continue
        i = cand + 2
        before, after = x[i - 1], x[i + length]
        departure = np.abs(seg[cand].mean(axis=1) - 0.5 * (before + after))
        # the signal around the excursion is quiet and returns to where it was: a plume's sharp
        # peak sits on moving flanks, a dropout interrupts a steady signal
        tol = r.spike_return_fraction * departure
        back = ((np.abs(after - before) <= tol) & (np.abs(x[i - 1] - x[i - 2]) <= tol)
                & (np.abs(x[i + length + 1] - x[i + length]) <= tol))
        short = t[i + length] - t[i - 1] <= r.spike_max_span_s * NS
        for k in i[back & short]:
            hit[k:k + length] = True
    out = []
    for a, b in _runs(hit, np.arange(n), 1):
        ctx = x[max(a - 1, 0)], x[min(b + 1, n - 1)]
        out.append(s.fault("spike", int(pos[a]), int(pos[b]),
                           f"{s.parameter} spike of {b - a + 1} reading(s) at {x[a]:.4g} {s.unit()} between "
                           f"{ctx[0]:.4g} and {ctx[1]:.4g}"))
    return out


def _flatlines(s: _Series) -> list[SensorFault]:
    r = s.rules
    pos = np.flatnonzero(s.good)
    t, x = s.t[pos], s.x[pos]
    if x.size < 3:
        return []
    dt = np.diff(t)
    ok = dt <= s.gap_ns
    slope = np.diff(x) / np.maximum(dt, 1)
    const = ok & (np.abs(np.diff(x)) <= r.flatline_tolerance)
    dslope = np.abs(np.diff(slope))
    linear = ok[1:] & ok[:-1] & ~const[1:] & ~const[:-1] & (
        dslope <= r.linear_tolerance_relative * np.maximum(np.abs(slope[1:]), np.abs(slope[:-1])))
    out = []
    for mask, extra, what in ((const, 1, "constant"), (linear, 2, "exactly linear (interpolated fill?)")):
        for a, b in _runs(mask, np.arange(mask.size), 1):
            a2, b2 = a, b + extra
            if b2 - a2 + 1 >= r.flatline_min_readings and t[b2] - t[a2] >= r.flatline_min_duration_s * NS \
                    and s.good[pos[a2]:pos[b2] + 1].all():
                hours = (t[b2] - t[a2]) / (3600 * NS)
                out.append(s.fault("flatline", int(pos[a2]), int(pos[b2]),
                                   f"{s.parameter} {what} for {b2 - a2 + 1} readings ({hours:.1f} h) "
                                   f"from {x[a2]:.4g} to {x[b2]:.4g} {s.unit()}"))
    return out


#: per-series fault screens, run in this order; isolated jumps need all series and run after them
FAULT_SCREENS: dict[str, Callable[[_Series], list[SensorFault]]] = {
    "out_of_range": _out_of_range, "spike": _spikes, "flatline": _flatlines}


def _abrupt_times(s: _Series) -> np.ndarray:
    """Times [ns] of the clean readings whose change from the previous clean one exceeds
    ``corroboration_k`` noise scales: the abrupt changes a witness can show."""
    pos = np.flatnonzero(s.good)
    if pos.size < 2:
        return np.empty(0, dtype=np.int64)
    z = np.abs(np.diff(s.x[pos])) / np.maximum(s.noise[pos[1:]], 1e-300)
    return s.t[pos[1:]][z > s.rules.corroboration_k]


def _has_any(times: np.ndarray, lo: int, hi: int) -> bool:
    return bool(np.searchsorted(times, hi, side="right") > np.searchsorted(times, lo, side="left"))


def _isolated_jumps(series: Mapping[tuple[str, str], _Series],
                    stations: Mapping[str, StationContext]) -> list[SensorFault]:
    abrupt = {key: _abrupt_times(s) for key, s in series.items()}
    clean_t = {key: s.t[s.good] for key, s in series.items()}
    out: list[SensorFault] = []
    for (sid, par), s in series.items():
        r, m = s.rules, s.rules.jump_hold_readings
        pos = np.flatnonzero(s.good)
        t, x = s.t[pos], s.x[pos]
        if x.size < 2 * m + 1:
            continue
        roll = pd.Series(x).rolling(m).median().to_numpy()
        i = np.arange(m, x.size - m + 1)
        pre, post = roll[i - 1], roll[i + m - 1]
        step, dx = post - pre, x[i] - x[i - 1]
        noise = s.noise[pos[i]]
        f = r.jump_step_fraction
        cand = ((np.abs(dx) > r.jump_k * noise) & (np.sign(dx) == np.sign(step))
                & (np.abs(dx) >= f * np.abs(step)) & (np.abs(step) >= f * np.abs(dx))
                & (t[i] - t[i - 1] <= s.gap_ns))
        same = [k for k in series if k[0] == sid and k[1] != par]
        down = [(n, par) for n in stations[sid].downstream_neighbours if (n, par) in series]
        up = [(n, par) for n in stations[sid].upstream_neighbours if (n, par) in series]
        for k in i[cand]:
            ti = int(t[k])
            # upstream stations cannot see a source between them and us: they may corroborate, but
            # their silence is no evidence; other parameters here and downstream stations are witnesses
            wins = ([(key, r.corroboration_window_s) for key in same]
                    + [(key, r.neighbour_window_s) for key in down + up])
            witnesses = [key for key, w in wins[:len(same) + len(down)]
                         if _has_any(clean_t[key], ti - int(w * NS), ti + int(w * NS))]
            if not witnesses or any(_has_any(abrupt[key], ti - int(w * NS), ti + int(w * NS)) for key, w in wins):
                continue
            if not s.good[pos[k]]:
                continue  # inside an earlier jump's span
            level0, jump = roll[k - 1], x[k] - x[k - 1]
            horizon = k + 1 + int(np.searchsorted(t[k + 1:], ti + int(r.jump_max_duration_s * NS), side="right"))
            steps = np.diff(x[k:horizon])
            back = np.flatnonzero((np.sign(steps) == -np.sign(jump)) & (np.abs(steps) >= 0.5 * abs(jump)))
            who = ", ".join(f"{a}/{b}" for a, b in witnesses)
            if back.size:
                j = k + 1 + int(back[0])  # first reading after the abrupt step back
                out.append(s.fault("isolated_jump", int(pos[k]), int(pos[j - 1]),
                                   f"{par} stepped {jump:+.4g} {s.unit()} and stepped back; "
                                   f"no abrupt change at {who}"))
            elif np.any(np.abs(x[k + 1:horizon] - level0) <= 0.5 * abs(jump)):
                continue  # a gradual return is a washout, as a plume passing: not a sensor fault
            else:
                out.append(SensorFault(sid, par, "isolated_jump", _ts(t[k - 1]), _ts(ti),
                                       f"{par} level shift {jump:+.4g} {s.unit()} not seen at {who} "
                                       "(recalibration or sonde swap?); readings kept", 1))
    return out

"""Release histories as the kernel uses them: impulses, jumps of the rate and changes of its slope.

Any history that is piecewise linear in time (a pulse, a box, a release still going on, a measured
rate curve, an observed inflow concentration curve) is a sum of these three; the kernel's curve for
it is the same sum of impulse, step and ramp responses (superposition of a linear system).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .routing import ForecastError


@dataclass(frozen=True, slots=True)
class SourceHistory:
    """A source strength that is piecewise linear in time, as impulses, jumps and slope changes.

    For a release into the river the strengths are kg (impulses), kg/s (jumps of the rate) and
    kg/s2 (changes of its slope); for an inflow boundary curve, g/m3, g/m3 and g/m3/s. Times [s]
    are after the release start.
    """

    impulses: tuple[tuple[float, float], ...] = ()
    jumps: tuple[tuple[float, float], ...] = ()
    kinks: tuple[tuple[float, float], ...] = ()

    @classmethod
    def pulse(cls, mass_kg: float, at_s: float = 0.0) -> SourceHistory:
        """An instantaneous release of ``mass_kg`` [kg]."""
        return cls(impulses=((at_s, mass_kg),))

    @classmethod
    def box(cls, rate_kg_s: float, duration_s: float | None, at_s: float = 0.0) -> SourceHistory:
        """A constant rate [kg/s] for ``duration_s`` [s]; None: still going on."""
        jumps = ((at_s, rate_kg_s),) if duration_s is None else ((at_s, rate_kg_s), (at_s + duration_s, -rate_kg_s))
        return cls(jumps=jumps)

    @classmethod
    def from_samples(cls, times_s: Sequence[float], values: Sequence[float], *, ongoing: bool = False) -> SourceHistory:
        """Linear interpolation between samples (a rate curve [kg/s] or a concentration curve [g/m3]).

        The value is 0 before the first sample; after the last it drops to 0, or holds when
        ``ongoing``. Two samples at one time make a jump.
        """
        t = np.asarray(times_s, float)
        v = np.asarray(values, float)
        if t.ndim != 1 or t.size != v.size or t.size == 0:
            raise ForecastError("a source curve needs as many times as values, at least one")
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(v))):
            raise ForecastError("a source curve has a time or value that is not finite")
        if np.any(np.diff(t) < 0):
            raise ForecastError("the times of a source curve must not decrease")
        jumps: list[tuple[float, float]] = []
        kinks: list[tuple[float, float]] = []
        level = slope = 0.0
        for i in range(t.size):
            if v[i] != level:  # the first sample, or a second sample at the same time
                jumps.append((float(t[i]), float(v[i] - level)))
                level = float(v[i])
            nxt = i + 1 < t.size and t[i + 1] > t[i]
            new_slope = float((v[i + 1] - v[i]) / (t[i + 1] - t[i])) if nxt else 0.0
            if new_slope != slope:
                kinks.append((float(t[i]), new_slope - slope))
                slope = new_slope
            if nxt:
                level = float(v[i + 1])  # reached along the segment
        if not ongoing and level != 0.0:
            jumps.append((float(t[-1]), -level))
        return cls(jumps=tuple(jumps), kinks=tuple(kinks))

    @property
    def start_s(self) -> float:
        """First time the source is active [s]."""
        return min([t for t, _ in (*self.impulses, *self.jumps, *self.kinks)], default=0.0)

    @property
    def end_s(self) -> float:
        """Last time the source changes [s] (for a source still going on, when it reached its level)."""
        return max([t for t, _ in (*self.impulses, *self.jumps, *self.kinks)], default=0.0)

    @property
    def ongoing(self) -> bool:
        """True when the source does not end: f(t) = sum J + sum K (t - tk) is not 0 after the end."""
        scale = max([abs(v) for _t, v in (*self.jumps, *self.kinks)], default=0.0)
        slope = sum(kv for _t, kv in self.kinks)
        level = sum(jv for _t, jv in self.jumps) + sum(kv * (self.end_s - tk) for tk, kv in self.kinks)
        return abs(slope) > 1e-9 * scale or abs(level) > 1e-9 * scale * max(1.0, self.end_s)

    @property
    def total(self) -> float:
        """Integral of the source over time (released mass [kg] for a rate); inf when ongoing."""
        if self.ongoing:
            return float("inf")
        te = self.end_s
        return (sum(m for _t, m in self.impulses) + sum(j * (te - t) for t, j in self.jumps)
                + sum(k * (te - t) ** 2 / 2.0 for t, k in self.kinks))

"""Observed signals for attribution: each station's excess over its own baseline, with noise.

For a pollutant the excess is value - baseline; for dissolved oxygen (a minimum standard) it is
baseline - value, the extra deficit. The baseline is the station's median and the noise scale its
robust spread (1.4826 MAD), floored so a perfectly flat record does not make any misfit infinitely
unlikely. A station "saw" the event when its excess rises clearly above its noise on several samples.

Units: times [s] after a reference time (UTC); excess [g/m3].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .readings import Readings

#: parameters whose standard is a minimum: an event lowers them
MINIMUM_PARAMETERS = frozenset({"DO"})
#: excess above SAW_SIGMAS noise scales on at least SAW_MIN_SAMPLES samples counts as "seen" [-]
SAW_SIGMAS = 5.0
SAW_MIN_SAMPLES = 2
#: noise floor: this share of the baseline, and an absolute floor [g/m3] (sensor resolution)
NOISE_FLOOR_RELATIVE = 0.02
NOISE_FLOOR_ABSOLUTE = 1e-3


@dataclass(frozen=True, slots=True)
class StationSignal:
    """One station's record of one parameter, as attribution uses it."""

    station: str
    t_s: np.ndarray
    excess: np.ndarray
    noise: float
    baseline: float
    saw: bool

    @property
    def peak(self) -> float:
        return float(np.max(self.excess)) if self.excess.size else 0.0


def station_signals(readings: Readings, parameter: str, stations: list[str], t_ref: pd.Timestamp) -> dict[str, StationSignal]:
    """Signals for every listed station that has readings of ``parameter``."""
    out: dict[str, StationSignal] = {}
    sign = -1.0 if parameter in MINIMUM_PARAMETERS else 1.0
    for sid in stations:
        s = readings.series(sid, parameter).sort_index()
        if s.empty:
            continue
        v = s.to_numpy(dtype=float)
        t = (s.index - t_ref).total_seconds().to_numpy()
        base = float(np.median(v))
        mad = float(np.median(np.abs(v - base))) * 1.4826
        noise = max(mad, NOISE_FLOOR_RELATIVE * abs(base), NOISE_FLOOR_ABSOLUTE)
        excess = sign * (v - base)
        saw = int(np.sum(excess > SAW_SIGMAS * noise)) >= SAW_MIN_SAMPLES
        out[sid] = StationSignal(sid, t, excess, noise, base, saw)
    return out

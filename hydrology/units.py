"""Unit conversion constants. Everything inside rivertrace is SI (m, s, m3/s, g/m3 = mg/L, 1/s).

Convert only at the edges (file readers, CLI flags, proto converters), with these constants.
"""

from __future__ import annotations

#: standard gravity [m/s2]
GRAVITY = 9.80665
#: international foot [m] (NIST SP 811)
FOOT = 0.3048
#: cubic foot per second [m3/s]
CFS = FOOT**3
#: one day [s]
DAY = 86400.0
#: one hour [s]
HOUR = 3600.0
#: one kilometre [m]
KM = 1000.0
#: one square kilometre [m2]
KM2 = 1.0e6


def per_day_to_per_s(rate_per_day: float) -> float:
    """Convert a first-order rate from [1/day] to [1/s]."""
    return rate_per_day / DAY


def per_s_to_per_day(rate_per_s: float) -> float:
    """Convert a first-order rate from [1/s] to [1/day]."""
    return rate_per_s * DAY

from datetime import timedelta as _timedelta
from datetime import timezone as _timezone

#: the DEFAULT display zone (stored times are UTC), for a network whose document states no ``timezone``:
#: Asia/Shanghai is UTC+8 all year, with no daylight saving since 1991, so a fixed offset is exact. Outputs
#: are written in their network's own zone: use :func:`hydrology.timezones.network_zone`, not this.
DISPLAY_TZ = _timezone(_timedelta(hours=8), "Asia/Shanghai")

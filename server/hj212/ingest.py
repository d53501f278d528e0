"""From a parsed HJ 212 upload to rivertrace rows: readings of a station, states of a discharger.

No I/O: the gateway gives the packet and the owner of its MN (from the network document's
``hj212_mn`` fields) and stores what comes back. Values are validated and converted to SI with the
same tables as gRPC ingest (:mod:`tracer.readings`: parameter, unit conversion, physical bounds), and
a packet with any bad value is refused whole (never half-applied; the monitor's data logger keeps it
and resends it once fixed).

Times: ``DataTime`` (``YYYYMMDDhhmmss``) is the field unit's local clock, read in
:data:`DEFAULT_TIMEZONE` (China Standard Time) and stored in UTC. A value's own ``xxxxxx-SampleTime``
(HJ 212-2017: when the water was sampled, for analysers with a measuring cycle) wins over DataTime.
Minute, hourly and daily averages are stored at their DataTime as sent, in the same series as the
real-time values; a value at a time already stored is a duplicate (stored once).

What each owner gets:

- a **station**: a reading per mapped pollutant code (:data:`~server.hj212.codes.POLLUTANTS`), with
  the data flag mapped by :data:`~server.hj212.codes.DATA_FLAGS` (a value without its ``-Flag`` is
  taken as ``N``, normal); facility states sent by a station's logger are skipped;
- a **discharger** (its online effluent monitor and treatment-facility states), an operations state
  at the packet's time: ``treatment_on`` from ``SBx-RS`` (CN 2021 or within any upload; off when any
  facility reports 0) or from the daily running time ``SBx-RT`` (CN 2041; 0 h is off, more is on);
  ``effluent_exceedance`` when a normal effluent value exceeds the discharger's ``permit_limits_mg_l``.
  HJ 212 carries no production state, so ``production_on`` is left unknown (NULL); the power-meter
  states reported over gRPC supply it (see ``server.pipeline.operations_evidence``).

Codes the tables do not map (other pollutants, ``-Cou`` totals, ``-EFlag``...) are skipped and
counted, not refused: a monitor measuring more than rivertrace uses still delivers what it uses.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from tracer.readings import UNITS, internal_unit, normalise_unit, parameter_quantity, physical_bounds

from .codes import DATA_COMMANDS, DATA_FLAGS, POLLUTANTS, QN_RTN, RUNNING_STATES
from .protocol import Hj212Error, Packet

DEFAULT_TIMEZONE = ZoneInfo("Asia/Shanghai")
_NUMBER_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_SB_RE = re.compile(r"^SB\d+-(RS|RT)$")


@dataclass(frozen=True, slots=True)
class Owner:
    """The network feature that owns an MN."""

    network: str
    kind: Literal["station", "discharger"]
    id: str
    permit_limits_mg_l: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Observations:
    """What one packet adds: reading rows ``(station, parameter, time_ns, SI value, flag)``, state rows
    ``(discharger, time_ns, production_on, treatment_on, effluent_exceedance)`` (None: not reported),
    and the CP keys that were skipped."""

    readings: tuple[tuple[str, str, int, float, str | None], ...] = ()
    states: tuple[tuple[str, int, bool | None, bool | None, bool | None], ...] = ()
    skipped: tuple[str, ...] = ()


@functools.cache
def _conversion(code: str) -> tuple[str, float, float, float, float]:
    """(parameter, scale, offset, low, high) of a pollutant code: SI = value * scale + offset."""
    pc = POLLUTANTS[code]
    conv = UNITS[parameter_quantity(pc.parameter)][normalise_unit(pc.unit)]
    lo, hi = physical_bounds(pc.parameter)
    return pc.parameter, conv.scale, conv.offset, lo, hi


def parse_time(text: str, what: str, tz: ZoneInfo = DEFAULT_TIMEZONE) -> int:
    """``YYYYMMDDhhmmss`` in ``tz`` -> ns since the epoch (UTC). Raises Hj212Error ``bad_value``."""
    try:
        if len(text) != 14 or not text.isdigit():
            raise ValueError("not 14 digits")
        t = datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=tz)
    except ValueError as err:
        raise Hj212Error("bad_value", f"{what} {text!r} is not a time YYYYMMDDhhmmss ({err})") from err
    return int(t.timestamp()) * 1_000_000_000


def _value(key: str, text: str) -> float:
    if not _NUMBER_RE.match(text):
        raise Hj212Error("bad_value", f"{key}={text!r} is not a number")
    v = float(text)
    if not math.isfinite(v):
        raise Hj212Error("bad_value", f"{key}={text!r} is not a finite number")
    return v


def observations(packet: Packet, owner: Owner, tz: ZoneInfo = DEFAULT_TIMEZONE) -> Observations:
    """The rows one upload packet adds for the feature that owns its MN (see module doc).

    Raises
    ------
    Hj212Error
        ``bad_value`` (QnRtn 2) naming the field: a missing or malformed DataTime, a value that is not
        a number, an unknown data flag, a value outside the physically possible range.
    """
    cp = packet.cp
    if "DataTime" not in cp:
        hint = " (an SM4-encrypted CP of HJ 212-2025 is not supported)" if packet.version >= 2 else ""
        raise Hj212Error("bad_value", f"CN {packet.cn}: CP has no DataTime{hint}", QN_RTN["refused"], packet)
    try:
        return _observations(packet, owner, tz)
    except Hj212Error as err:
        err.packet = packet
        raise


def _observations(packet: Packet, owner: Owner, tz: ZoneInfo) -> Observations:
    cp = packet.cp
    t_ns = parse_time(cp["DataTime"], "DataTime", tz)
    value_field = DATA_COMMANDS.get(packet.cn)
    readings: list[tuple[str, str, int, float, str | None]] = []
    skipped: list[str] = []
    running: list[bool] = []
    exceedance: bool | None = None
    used = {"DataTime"}
    for key in cp:
        code, _, what = key.partition("-")
        if code in POLLUTANTS and what == value_field:
            flag_text = cp.get(f"{code}-Flag", "N")
            if flag_text not in DATA_FLAGS:
                raise Hj212Error("bad_value", f"{code}-Flag={flag_text!r} is not an HJ 212 data flag "
                                              f"({', '.join(DATA_FLAGS)})")
            parameter, scale, offset, lo, hi = _conversion(code)
            v = _value(key, cp[key]) * scale + offset
            if not lo <= v <= hi:
                unit = internal_unit(parameter)
                raise Hj212Error("bad_value", f"{key}={cp[key]}: {parameter} {v:g} {unit} is outside the "
                                              f"physically possible range [{lo:g}, {hi:g}] {unit}")
            sample = cp.get(f"{code}-SampleTime")
            t = parse_time(sample, f"{code}-SampleTime", tz) if sample else t_ns
            flag = DATA_FLAGS[flag_text]
            readings.append((owner.id, parameter, t, v, flag))
            used.update((key, f"{code}-Flag", f"{code}-SampleTime"))
            limit = owner.permit_limits_mg_l.get(parameter)
            if limit is not None and flag is None:  # only a normal reading is evidence of an exceedance
                exceedance = bool(exceedance) or v > float(limit)
        elif _SB_RE.match(key):
            used.add(key)
            if what == "RS":
                if cp[key] in RUNNING_STATES:
                    running.append(RUNNING_STATES[cp[key]])
                else:
                    skipped.append(f"{key}={cp[key]}")
            else:
                running.append(_value(key, cp[key]) > 0.0)
    skipped += [k for k in cp if k not in used]
    if owner.kind == "station":
        skipped += [k for k in cp if _SB_RE.match(k)]
        return Observations(readings=tuple(readings), skipped=tuple(skipped))
    treatment = all(running) if running else None
    states = ((owner.id, t_ns, None, treatment, exceedance),) if (treatment is not None or exceedance is not None) else ()
    skipped += [f"{r[1]} (effluent value: stored as the exceedance state only)" for r in readings
                if r[1] not in owner.permit_limits_mg_l]
    return Observations(states=states, skipped=tuple(skipped))

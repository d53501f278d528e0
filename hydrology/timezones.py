"""Local time of a river network for people reading an incident.

Times are stored and computed in UTC; every human output shows them in the network's own zone, always
with date, time and zone so that nobody has to guess, and every machine output is ISO 8601 with the
offset. The zone is the network document's top-level ``"timezone"`` field, an IANA time zone name
(IANA tz database, https://www.iana.org/time-zones), kept in ``RiverNetwork.extra["timezone"]``. A network
without one is taken to be in China: ``Asia/Shanghai`` (UTC+8, no daylight saving since 1991).

Three forms:

* :func:`iso_local` ``2025-05-01T08:00:00-04:00``: machine outputs (JSON, CAP);
* :func:`local_time` ``2025-05-01 08:00 EDT``: a time inside a sentence or a Markdown line;
* :func:`markdown_time` ``2025-05-01 08:00 EDT (UTC-04:00, America/New_York)``: a time on its own, and
  :func:`zone_note` for the one line that says which zone an output's short times are in.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

DEFAULT_ZONE = "Asia/Shanghai"
#: IANA names of China Standard Time (Beijing time, UTC+8): the Chinese forms say 北京时间
CHINA_ZONES = frozenset({"Asia/Shanghai", "Asia/Chongqing", "Asia/Chungking", "Asia/Harbin", "PRC"})


#: US states (USPS codes) that lie wholly in one IANA zone, for an importer that knows a basin's state
#: (NHDPlusV2 gauges carry one). Split states (AK, AZ with the Navajo Nation's daylight saving, FL, ID,
#: IN, KS, KY, MI, ND, NE, NV, OR, SD, TN, TX) are left out: give their zone by hand. Source: the
#: standard time zone boundaries of 49 CFR part 71 and the zones of the IANA tz database (zone1970.tab).
US_STATE_ZONES = {
    **dict.fromkeys(("CT", "DC", "DE", "GA", "MA", "MD", "ME", "NC", "NH", "NJ", "NY", "OH", "PA", "RI", "SC",
                     "VA", "VT", "WV"), "America/New_York"),
    **dict.fromkeys(("AL", "AR", "IA", "IL", "LA", "MN", "MO", "MS", "OK", "WI"), "America/Chicago"),
    **dict.fromkeys(("CO", "MT", "NM", "UT", "WY"), "America/Denver"),
    **dict.fromkeys(("CA", "WA"), "America/Los_Angeles"),
    "HI": "Pacific/Honolulu",
}


def us_state_zone(states: Iterable[str]) -> str | None:
    """The one IANA zone of a set of US states (USPS codes), or None when a state is unknown, split
    between zones, or the states lie in different zones."""
    zones = {US_STATE_ZONES.get(str(s).strip().upper()) for s in states}
    return next(iter(zones)) if len(zones) == 1 and None not in zones else None


@cache
def _known_zones() -> frozenset[str]:
    """The IANA zone names this machine's tz database has (system zoneinfo or the ``tzdata`` package)."""
    return frozenset(available_timezones())


def zone_error(name: Any) -> str | None:
    """Why ``name`` is not a usable ``timezone`` value, or None if it is one (or absent: the default).

    A usable value is an IANA zone name such as ``"Asia/Shanghai"`` or ``"America/New_York"`` (one the
    tz database lists); a fixed offset such as ``"+08:00"`` is refused, because a display zone must
    know its daylight-saving rules.
    """
    if name is None:
        return None
    if not isinstance(name, str) or not name:
        return f"must be an IANA time zone name such as {DEFAULT_ZONE!r}, got {name!r}"
    if name not in _known_zones():
        return f"unknown IANA time zone {name!r} (give a name such as {DEFAULT_ZONE!r} or 'America/New_York')"
    return None


def zone(name: str | None) -> ZoneInfo:
    """The zone called ``name`` (None or empty: :data:`DEFAULT_ZONE`).

    Raises ``ValueError`` naming the field ``timezone`` when ``name`` is not an IANA zone name.
    """
    name = name or DEFAULT_ZONE
    err = zone_error(name)
    if err:
        raise ValueError(f"timezone: {err}")
    return ZoneInfo(name)


def network_zone(net: Any) -> ZoneInfo:
    """The zone of ``net`` (anything with an ``extra`` mapping): its ``timezone``, default ``Asia/Shanghai``.

    Raises ``ValueError`` naming the field and the bad zone when ``timezone`` is not an IANA zone name.
    """
    extra = getattr(net, "extra", None) or {}
    return zone(extra.get("timezone"))


def _aware(t: datetime) -> datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError("a naive datetime has no defined instant; give a timezone-aware one")
    return t


def _offset(loc: datetime) -> str:
    """``+08:00`` / ``-04:00`` of an aware local time."""
    off = loc.strftime("%z")
    return f"{off[:3]}:{off[3:5]}"


def _abbreviation(loc: datetime, lang: str = "en") -> str:
    """The zone's abbreviation (``EDT``, ``CST``), or ``UTC+04:00`` where the tz database has none
    (it then writes a bare number such as ``+04``). In Chinese: 北京时间 for China Standard Time,
    else the offset (``UTC-04:00``), as Chinese text writes zones."""
    if lang == "zh":
        china = getattr(loc.tzinfo, "key", None) in CHINA_ZONES and _offset(loc) == "+08:00"
        return "北京时间" if china else f"UTC{_offset(loc)}"
    name = loc.tzname() or ""
    return name if name.isalpha() else f"UTC{_offset(loc)}"


def utc_offset(t: datetime, tz: ZoneInfo) -> str:
    """The UTC offset of zone ``tz`` at instant ``t``: ``UTC+08:00``, ``UTC-04:00``."""
    return f"UTC{_offset(_aware(t).astimezone(tz))}"


def iso_local(t: datetime, tz: ZoneInfo) -> str:
    """ISO 8601 local time with its UTC offset, to the second (e.g. ``2024-06-01T08:00:00+08:00``)."""
    return _aware(t).astimezone(tz).isoformat(timespec="seconds")


def local_time(t: datetime, tz: ZoneInfo, lang: str = "en") -> str:
    """``2025-05-01 08:00 EDT``: date, time and zone abbreviation, for a time inside a sentence.

    ``lang="zh"``: ``2025-07-15 09:35 北京时间`` in China, ``2025-05-01 08:00 UTC-04:00`` elsewhere.
    """
    loc = _aware(t).astimezone(tz)
    return f"{loc:%Y-%m-%d %H:%M} {_abbreviation(loc, lang)}"


def markdown_time(t: datetime, tz: ZoneInfo) -> str:
    """``2024-06-01 08:00 CST (UTC+08:00, Asia/Shanghai)``: date, time and zone always shown."""
    loc = _aware(t).astimezone(tz)
    return f"{loc:%Y-%m-%d %H:%M} {_abbreviation(loc)} (UTC{_offset(loc)}, {tz.key})"


def zone_note(tz: ZoneInfo, times: Iterable[datetime | None] = (), lang: str = "en") -> str:
    """One line naming the zone of an output's short times, with each abbreviation's offset.

    ``Times are America/New_York local time: EDT = UTC-04:00.`` Abbreviations are ambiguous across
    the world (CST is China Standard Time here, US Central elsewhere), so an output that uses
    :func:`local_time` carries this line once. ``times`` are the instants shown (for the abbreviations
    in use, e.g. EST and EDT across a daylight-saving change); none given: the abbreviation now.
    """
    locs = [_aware(t).astimezone(tz) for t in times if t is not None] or [datetime.now(tz)]
    seen: dict[str, str] = {}
    for loc in sorted(locs):
        seen.setdefault(_abbreviation(loc, lang), _offset(loc))
    if lang == "zh":
        if set(seen) == {"北京时间"}:
            return f"时间均为北京时间（UTC+08:00，{tz.key}）。"
        return f"时间均为 {tz.key} 当地时间（{'、'.join(seen)}）。"
    pairs = ", ".join(f"{a} = UTC{o}" if not a.startswith(("UTC+", "UTC-")) else a for a, o in seen.items())
    return f"Times are {tz.key} local time ({pairs})."

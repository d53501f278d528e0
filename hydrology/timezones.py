"""Local time of a river network for people reading an incident.

Times are stored and computed in UTC; a report shows them in the network's own zone, always with date,
time and zone so that nobody has to guess. The zone is the IANA name in the network's ``extra["timezone"]``
(IANA tz database, https://www.iana.org/time-zones); a network without one is taken to be in China
(``Asia/Shanghai``, UTC+8, no daylight saving since 1991).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_ZONE = "Asia/Shanghai"


def network_zone(net: Any) -> ZoneInfo:
    """The zone of ``net`` (anything with an ``extra`` mapping), default ``Asia/Shanghai``.

    Raises ``ValueError`` naming the bad zone when ``extra["timezone"]`` is not an IANA zone name.
    """
    extra = getattr(net, "extra", None) or {}
    name = extra.get("timezone") or DEFAULT_ZONE
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"network extra.timezone: unknown IANA zone {name!r}") from exc


def _aware(t: datetime) -> datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError("a naive datetime has no defined instant; give a timezone-aware one")
    return t


def iso_local(t: datetime, tz: ZoneInfo) -> str:
    """ISO 8601 local time with its UTC offset, to the second (e.g. ``2024-06-01T08:00:00+08:00``)."""
    return _aware(t).astimezone(tz).isoformat(timespec="seconds")


def markdown_time(t: datetime, tz: ZoneInfo) -> str:
    """``2024-06-01 08:00 CST (UTC+08:00, Asia/Shanghai)``: date, time and zone always shown."""
    loc = _aware(t).astimezone(tz)
    off = loc.strftime("%z")
    return f"{loc:%Y-%m-%d %H:%M} {loc.tzname()} (UTC{off[:3]}:{off[3:]}, {tz.key})"

"""Network-local time formatting. Reference: fixed offsets from the IANA database (Shanghai UTC+8 all year,
Berlin UTC+1 in winter / UTC+2 in summer), independent of the formatting code."""
from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from hydrology.timezones import iso_local, markdown_time, network_zone

T = datetime(2024, 6, 1, 0, 0, tzinfo=UTC)


def test_default_zone_is_shanghai() -> None:
    tz = network_zone(SimpleNamespace(extra={}))
    assert tz.key == "Asia/Shanghai"
    assert iso_local(T, tz) == "2024-06-01T08:00:00+08:00"
    assert markdown_time(T, tz) == "2024-06-01 08:00 CST (UTC+08:00, Asia/Shanghai)"


def test_zone_from_extra_with_daylight_saving() -> None:
    tz = network_zone(SimpleNamespace(extra={"timezone": "Europe/Berlin"}))
    assert iso_local(T, tz) == "2024-06-01T02:00:00+02:00"
    assert iso_local(datetime(2024, 1, 1, tzinfo=UTC), tz) == "2024-01-01T01:00:00+01:00"


def test_bad_zone_and_naive_time_refused() -> None:
    with pytest.raises(ValueError, match="extra.timezone"):
        network_zone(SimpleNamespace(extra={"timezone": "Mars/Olympus"}))
    with pytest.raises(ValueError, match="naive"):
        iso_local(datetime(2024, 6, 1), network_zone(SimpleNamespace(extra={})))

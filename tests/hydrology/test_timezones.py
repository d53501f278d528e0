"""Network-local time formatting. Reference: the civil-time rules of the IANA database, written out here
by hand and independent of the formatting code: Shanghai is UTC+8 all year (CST, no daylight saving since
1991); US Eastern is EST = UTC-5 in winter and EDT = UTC-4 from the second Sunday of March 02:00 local
to the first Sunday of November 02:00 local (Energy Policy Act of 2005); Berlin is UTC+1 / UTC+2 in summer;
Dubai is UTC+4 and the database has no letters for it (it writes "+04")."""
from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from hydrology.timezones import iso_local, local_time, markdown_time, network_zone, zone, zone_error, zone_note

T = datetime(2024, 6, 1, 0, 0, tzinfo=UTC)


def test_default_zone_is_shanghai() -> None:
    tz = network_zone(SimpleNamespace(extra={}))
    assert tz.key == "Asia/Shanghai"
    assert iso_local(T, tz) == "2024-06-01T08:00:00+08:00"
    assert markdown_time(T, tz) == "2024-06-01 08:00 CST (UTC+08:00, Asia/Shanghai)"
    assert local_time(T, tz) == "2024-06-01 08:00 CST"
    assert local_time(T, tz, "zh") == "2024-06-01 08:00 北京时间"


def test_zone_from_extra_with_daylight_saving() -> None:
    tz = network_zone(SimpleNamespace(extra={"timezone": "Europe/Berlin"}))
    assert iso_local(T, tz) == "2024-06-01T02:00:00+02:00"
    assert iso_local(datetime(2024, 1, 1, tzinfo=UTC), tz) == "2024-01-01T01:00:00+01:00"


@pytest.mark.parametrize(("utc", "local"), [
    # 2025: DST from Sunday 9 March 07:00Z (02:00 EST) to Sunday 2 November 06:00Z (02:00 EDT)
    (datetime(2025, 5, 1, 12, 0, tzinfo=UTC), "2025-05-01 08:00 EDT"),
    (datetime(2025, 1, 15, 12, 0, tzinfo=UTC), "2025-01-15 07:00 EST"),
    (datetime(2025, 3, 9, 6, 59, tzinfo=UTC), "2025-03-09 01:59 EST"),   # one minute before the change
    (datetime(2025, 3, 9, 7, 0, tzinfo=UTC), "2025-03-09 03:00 EDT"),    # 02:00 EST becomes 03:00 EDT
    (datetime(2025, 11, 2, 5, 30, tzinfo=UTC), "2025-11-02 01:30 EDT"),  # the first 01:30 of the day
    (datetime(2025, 11, 2, 6, 30, tzinfo=UTC), "2025-11-02 01:30 EST"),  # the second one, an hour later
])
def test_us_eastern_says_est_or_edt_by_date(utc: datetime, local: str) -> None:
    assert local_time(utc, zone("America/New_York")) == local


def test_zone_without_letters_and_chinese_form_elsewhere() -> None:
    dubai, ny = zone("Asia/Dubai"), zone("America/New_York")
    assert local_time(T, dubai) == "2024-06-01 04:00 UTC+04:00"
    assert local_time(T, ny, "zh") == "2024-05-31 20:00 UTC-04:00"  # no 北京时间 outside China


def test_zone_note_lists_each_abbreviation_in_use() -> None:
    ny = zone("America/New_York")
    winter, summer = datetime(2025, 1, 15, tzinfo=UTC), datetime(2025, 5, 1, tzinfo=UTC)
    assert zone_note(ny, [summer]) == "Times are America/New_York local time (EDT = UTC-04:00)."
    assert zone_note(ny, [summer, None, winter]) == ("Times are America/New_York local time "
                                                     "(EST = UTC-05:00, EDT = UTC-04:00).")
    assert zone_note(zone(None), [T], "zh") == "时间均为北京时间（UTC+08:00，Asia/Shanghai）。"


@pytest.mark.parametrize("bad", ["Mars/Olympus", "+08:00", "", 8, "asia/shanghai", "../etc/passwd"])
def test_bad_zone_refused_naming_the_field(bad: object) -> None:
    assert zone_error(bad) is not None
    with pytest.raises(ValueError, match="^timezone: "):
        network_zone(SimpleNamespace(extra={"timezone": bad})) if bad else zone(str(bad) + "?")


def test_absent_zone_is_the_default_and_naive_time_refused() -> None:
    assert zone_error(None) is None and zone(None).key == "Asia/Shanghai"
    with pytest.raises(ValueError, match="naive"):
        iso_local(datetime(2024, 6, 1), network_zone(SimpleNamespace(extra={})))

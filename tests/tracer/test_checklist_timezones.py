"""The checklist speaks the network's time zone (issue 12: "a North Carolina basin shows 'release at
2025-05-01 20:00 (UTC+8)'"; "the Markdown has times without date or zone").

The network is the Ruxi demo basin with its document's ``timezone`` set to ``America/New_York`` (North
Carolina's zone): the planner needs dischargers, intakes and response sites, which an NHDPlus import of
the New Hope basin does not have. References are the civil-time rules written out by hand, independent
of the formatting code: US Eastern is EDT = UTC-4 from the second Sunday of March to the first Sunday of
November, EST = UTC-5 otherwise; Shanghai is CST = UTC+8 all year. Each expected local time below is the
action's UTC instant shifted by that fixed offset with plain ``timedelta`` arithmetic.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from hydrology.document import network_from_document, read_document
from hydrology.pollutants import pollutant
from hydrology.transport.analytic import Release
from server.cli import demo_basin_path
from tracer.planner import PlanInput, Suspect, plan

#: a time of day in a human text, and what must surround it: a date before, a zone after
CLOCK = re.compile(r"(?<![+-])\d\d:\d\d")  # not a UTC offset (UTC-04:00)
STAMP_EN = re.compile(r"(\d{4}-\d\d-\d\d) (\d\d:\d\d) ([A-Z]{3,4}|UTC[+-]\d\d:\d\d)\b")
STAMP_ZH = re.compile(r"(\d{4}-\d\d-\d\d) (\d\d:\d\d) (北京时间|UTC[+-]\d\d:\d\d)")


def _network(zone: str | None):
    doc = read_document(demo_basin_path("ruxi"))
    if zone is None:
        doc.pop("timezone", None)
    else:
        doc["timezone"] = zone
    return network_from_document(doc)


def _plan(zone: str | None, start_utc: datetime):
    net = _network(zone)
    plant = net.dischargers["RX-FOOD-1"]
    rel = Release(plant.reach, plant.chainage_m, pollutant("petroleum"), mass_kg=80.0, start=start_utc)
    now = start_utc + timedelta(minutes=35)
    inp = PlanInput("RX-FOOD-1/petroleum/test", now, (Suspect("RX-FOOD-1", 1.0, "given release"),), rel)
    return plan(net, inp)


def _by_hand(t: datetime, hours: int, abbr: str) -> str:
    """``t`` (UTC) at a fixed offset of ``hours``, written as the checklist should write it."""
    return f"{(t.astimezone(UTC) + timedelta(hours=hours)):%Y-%m-%d %H:%M} {abbr}"


def _every_clock_has_date_and_zone(text: str, stamp: re.Pattern[str]) -> int:
    """Every hh:mm in ``text`` is inside a full stamp (date, time, zone); returns how many there are."""
    covered = {m.start(2) for m in stamp.finditer(text)}
    bare = [text[max(0, m.start() - 20):m.end() + 8] for m in CLOCK.finditer(text) if m.start() not in covered]
    assert bare == [], f"times without a date or zone: {bare}"
    return len(covered)


@pytest.mark.parametrize(("start", "hours", "abbr"), [
    (datetime(2025, 5, 1, 12, 0, tzinfo=UTC), -4, "EDT"),    # 08:00 in May: daylight saving
    (datetime(2025, 1, 15, 13, 0, tzinfo=UTC), -5, "EST"),   # 08:00 in January: standard time
])
def test_north_carolina_checklist_says_local_time_with_its_zone(start, hours, abbr):
    cl = _plan("America/New_York", start)
    en, zh = cl.markdown("en"), cl.markdown("zh")
    timed = [a for a in cl.actions if a.deadline is not None]
    assert len(timed) >= 5  # halt, interception, intake, monitoring, notify
    for a in timed:
        assert f"Deadline: {_by_hand(a.deadline, hours, abbr)}" in en, a.id
        zh_zone = f"UTC-0{-hours}:00"
        assert f"截止: {_by_hand(a.deadline, hours, zh_zone)}" in zh, a.id
    intake = cl.by_kind("intake_suspension")[0]
    arrival = datetime.fromisoformat(intake.numbers["arrival"])
    assert f"Plume reaches the intake {_by_hand(arrival, hours, abbr)}" in intake.rationale[1]
    assert f"Times are America/New_York local time ({abbr} = UTC-0{-hours}:00)." in en
    for text in (en, zh):  # the old display: UTC+8, fixed
        assert "UTC+8" not in text and "+08:00" not in text and "北京时间" not in text and " CST" not in text


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Shanghai"])
def test_every_markdown_time_has_a_date_and_a_zone(zone, lang):
    cl = _plan(zone, datetime(2025, 5, 1, 12, 0, tzinfo=UTC))
    text = cl.markdown(lang)  # type: ignore[arg-type]
    n = _every_clock_has_date_and_zone(text, STAMP_ZH if lang == "zh" else STAMP_EN)
    assert n >= 20  # deadlines, windows and the times in the rationales


def test_demo_checklist_still_says_china_standard_time():
    """The Ruxi demo: released 09:00 China Standard Time on 15 July 2025, plan made at 09:35."""
    start = datetime(2025, 7, 15, 1, 0, tzinfo=UTC)  # 09:00 at UTC+8
    cl = _plan(None, start)  # the demo document's own zone (it states Asia/Shanghai)
    assert cl.timezone == "Asia/Shanghai"
    en, zh = cl.markdown("en"), cl.markdown("zh")
    halt = cl.by_kind("halt_discharge")[0]  # 09:35 plus the one-hour halt order: 10:35 CST
    assert "Deadline: 2025-07-15 10:35 CST" in en and "截止: 2025-07-15 10:35 北京时间" in zh
    assert halt.deadline == datetime(2025, 7, 15, 2, 35, tzinfo=UTC)
    assert "Made at 2025-07-15 09:35 CST. Times are Asia/Shanghai local time (CST = UTC+08:00)." in en
    assert "时间均为北京时间（UTC+08:00，Asia/Shanghai）" in zh
    for a in cl.actions:
        if a.deadline is not None:
            assert _by_hand(a.deadline, 8, "CST") in en


def test_a_document_without_timezone_is_shown_in_the_stated_default():
    start = datetime(2025, 7, 15, 1, 0, tzinfo=UTC)
    doc = read_document(demo_basin_path("ruxi"))
    doc.pop("timezone")
    cl = plan(network_from_document(doc), PlanInput("x", start, (Suspect("RX-FOOD-1", 1.0, "given release"),)))
    assert cl.timezone == "Asia/Shanghai" and "2025-07-15 10:00 CST" in cl.markdown("en")


def test_json_times_are_iso_8601_with_the_network_offset():
    cl = _plan("America/New_York", datetime(2025, 5, 1, 12, 0, tzinfo=UTC))
    d = cl.as_dict()
    assert d["timezone"] == "America/New_York"
    created = datetime.fromisoformat(d["created_at"])
    assert created.utcoffset() == timedelta(hours=-4) and created == cl.created_at
    seen = 0
    for a, ad in zip(cl.actions, d["actions"], strict=True):
        for key in ("deadline", "window_start", "window_end"):
            if ad[key] is None:
                continue
            t = datetime.fromisoformat(ad[key])  # parses as ISO 8601 and carries an offset
            assert t.utcoffset() == timedelta(hours=-4) and t == getattr(a, key).replace(microsecond=0)  # to the second
            seen += 1
        for key in ("arrival", "start_by", "end", "time"):
            if isinstance(a.numbers.get(key), str):
                assert datetime.fromisoformat(a.numbers[key]).utcoffset() == timedelta(hours=-4)
    assert seen >= 10

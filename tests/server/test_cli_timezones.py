"""CLI and CAP outputs in the network's zone (issue 12: "outputs mix UTC and local times").

Machine outputs (``--json``, CAP) must parse as ISO 8601 with an offset, the offset of the network's zone;
text outputs say date, time and zone. The network is the Ruxi demo basin with ``timezone`` set to
``America/New_York``; the reference offsets are the US Eastern rules written out by hand (EDT = UTC-4 in
May and July), the Shanghai one UTC+8, and each expected instant is computed here with ``timedelta``
from the release start and the seconds the forecast reports.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from server.cap import CAP_NS, follow_up_cap
from server.cli import demo_basin_path, main

EDT = timedelta(hours=-4)
RELEASE = ["--discharger", "RX-FOOD-1", "--mass-kg", "80", "--pollutant", "petroleum"]
#: an ISO 8601 time with an explicit numeric offset (not "Z", not naive)
ISO_OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?[+-]\d\d:\d\d$")


@pytest.fixture(scope="module")
def nc(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("tz")
    doc = json.loads(demo_basin_path("ruxi").read_text(encoding="utf-8"))
    doc["timezone"] = "America/New_York"
    path = d / "nc.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    assert main(["replay", "ruxi", "-o", str(d / "ruxi.csv")]) == 0
    return path


def _run(capsys, *argv: str) -> str:
    capsys.readouterr()
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def _times(obj, key_hint=("time", "start", "end", "at", "deadline", "arrival", "start_by")):
    """Every string value under a time-like key, recursively."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, str) and (k in key_hint or k.endswith(("_time", "_at", "_start", "_end"))):
                yield k, v
            else:
                yield from _times(v, key_hint)
    elif isinstance(obj, list):
        for v in obj:
            yield from _times(v, key_hint)


def _assert_all_local(doc, offset: timedelta, at_least: int) -> None:
    found = list(_times(doc))
    assert len(found) >= at_least
    for key, text in found:
        assert ISO_OFFSET.match(text), (key, text)
        assert datetime.fromisoformat(text).utcoffset() == offset, (key, text)


def test_forecast_json_and_text_in_the_network_zone(nc, capsys):
    start = "2025-05-01T12:00Z"  # 08:00 EDT
    doc = json.loads(_run(capsys, "forecast", str(nc), *RELEASE, "--start", start, "--json"))
    assert doc["timezone"] == "America/New_York"
    t0 = datetime(2025, 5, 1, 12, tzinfo=UTC)
    assert datetime.fromisoformat(doc["release"]["start"]) == t0
    for r in doc["receptors"]:
        if r["arrival_s"] is not None:  # the clock time is the start plus the seconds, cut to the minute
            got = datetime.fromisoformat(r["arrival_time"])
            exact = t0 + timedelta(seconds=r["arrival_s"])
            assert got.utcoffset() == EDT and timedelta(0) <= exact - got < timedelta(minutes=1)
    _assert_all_local(doc, EDT, at_least=9)
    text = _run(capsys, "forecast", str(nc), *RELEASE, "--start", start)
    assert "release start 2025-05-01 08:00 EDT (America/New_York)" in text


def test_plan_json_in_the_network_zone(nc, capsys):
    doc = json.loads(_run(capsys, "plan", str(nc), *RELEASE, "--start", "2025-05-01T12:00Z",
                          "--now", "2025-05-01T12:35Z", "--json"))
    assert doc["timezone"] == "America/New_York"
    assert datetime.fromisoformat(doc["created_at"]) == datetime(2025, 5, 1, 12, 35, tzinfo=UTC)
    _assert_all_local(doc, EDT, at_least=20)


def test_detect_and_trace_json_and_text_in_the_network_zone(nc, capsys):
    readings = str(nc.parent / "ruxi.csv")  # the Ruxi replay: July, daylight saving in New York
    det = json.loads(_run(capsys, "detect", str(nc), readings, "--json"))
    assert det["timezone"] == "America/New_York"
    _assert_all_local(det, EDT, at_least=10)
    tr = json.loads(_run(capsys, "trace", str(nc), readings, "--station", "RX-OILSPOT", "--parameter", "petroleum",
                         "--json"))
    assert tr["timezone"] == "America/New_York"
    _assert_all_local(tr, EDT, at_least=len(tr["candidates"]))  # every candidate's fitted release start
    text = _run(capsys, "trace", str(nc), readings, "--station", "RX-OILSPOT", "--parameter", "petroleum")
    starts = re.findall(r"start (\S+ \S+ \S+)", text)
    assert starts and all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d EDT", s) for s in starts), starts


def _cap(path: Path):
    root = ET.parse(path).getroot()
    q = f"{{{CAP_NS}}}"
    return root, q


def test_cap_times_and_texts_in_the_network_zone(nc, tmp_path):
    alert = tmp_path / "a.xml"
    assert main(["cap", str(nc), *RELEASE, "--start", "2025-05-01T12:00Z", "--now", "2025-05-01T12:35Z",
                 "--identifier", "NC-1", "-o", str(alert)]) == 0
    root, q = _cap(alert)
    assert root.findtext(q + "sent") == "2025-05-01T08:35:00-04:00"
    for info in root.findall(q + "info"):
        for tag in ("effective", "onset", "expires"):
            assert datetime.fromisoformat(info.findtext(q + tag)).utcoffset() == EDT, tag
        params = {p.findtext(q + "valueName"): p.findtext(q + "value") for p in info.findall(q + "parameter")}
        assert params["timezone"] == "America/New_York" and params["release_start"] == "2025-05-01T08:00:00-04:00"
    en = next(i for i in root.findall(q + "info") if i.findtext(q + "language") == "en")
    text = en.findtext(q + "headline") + en.findtext(q + "description") + en.findtext(q + "instruction")
    assert "UTC+8" not in text and "China Standard Time" not in text
    assert re.search(r"at 2025-05-01 \d\d:\d\d EDT", en.findtext(q + "headline"))
    assert "Times are America/New_York local time (EDT = UTC-04:00)." in en.findtext(q + "description")
    # the follow-up keeps the zone: its sent and its reference to the alert are written at -04:00
    up = follow_up_cap(alert.read_text(encoding="utf-8"), alert_id="NC-2", msg_type="Update",
                       sent=datetime(2025, 5, 1, 13, 35, tzinfo=UTC))
    r2 = ET.fromstring(up)
    assert r2.findtext(q + "sent") == "2025-05-01T09:35:00-04:00"
    assert r2.findtext(q + "references") == "rivertrace,NC-1,2025-05-01T08:35:00-04:00"


def test_demo_cap_still_says_china_standard_time(tmp_path):
    alert = tmp_path / "a.xml"
    assert main(["cap", "demo:ruxi", *RELEASE, "--start", "2025-07-15T09:00+08:00", "--now", "2025-07-15T09:35+08:00",
                 "-o", str(alert)]) == 0
    root, q = _cap(alert)
    assert root.findtext(q + "sent") == "2025-07-15T09:35:00+08:00"
    infos = {i.findtext(q + "language"): i for i in root.findall(q + "info")}
    assert "Times are Asia/Shanghai local time (CST = UTC+08:00)." in infos["en"].findtext(q + "description")
    assert "时间均为北京时间（UTC+08:00，Asia/Shanghai）。" in infos["zh-CN"].findtext(q + "description")
    assert re.search(r"2025-07-15 \d\d:\d\d 北京时间", infos["zh-CN"].findtext(q + "headline"))

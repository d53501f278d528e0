"""CAP 1.2 alerts (issue 14): valid against the OASIS schema, read back by an independent parser.

Documents come from ``rivertrace cap`` (the CLI over :func:`server.cap.build_cap`) on the Ruxi
demo basin: the oil release of the food plant, then an Update and a Cancel that reference the
earlier messages. The schema is ``tests/data/cap/CAP-v1.2-schema.xsd`` (source in its README),
checked with ``xmlschema``; the parser is ``cap-tools`` (xsdata bindings of CAP 1.2).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from server.cap import CapError, CapFacts, CapReceptor, CapReference, build_cap, cap_codes
from server.cli import main

xmlschema = pytest.importorskip("xmlschema", reason="xmlschema is in the test extra")
cap_models = pytest.importorskip("cap_tools.models", reason="cap-tools is in the test extra")

ROOT = Path(__file__).resolve().parents[2]
XSD = ROOT / "tests" / "data" / "cap" / "CAP-v1.2-schema.xsd"
RUXI = ["demo:ruxi", "--discharger", "RX-FOOD-1", "--mass-kg", "80", "--pollutant", "petroleum",
        "--start", "2025-07-15T09:00+08:00"]


@pytest.fixture(scope="module")
def schema():
    return xmlschema.XMLSchema(str(XSD))


def parse(path: Path):
    from xsdata.formats.dataclass.parsers import XmlParser

    return XmlParser().from_path(path, cap_models.Alert)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """Alert at 09:35, Update at 10:35 (references the Alert), Cancel at 18:30 (references the Update)."""
    d = tmp_path_factory.mktemp("cap")
    alert, update, cancel = d / "alert.xml", d / "update.xml", d / "cancel.xml"
    assert main(["cap", *RUXI, "--now", "2025-07-15T09:35+08:00", "--identifier", "RX-A-1", "-o", str(alert)]) == 0
    ref1 = "rivertrace,RX-A-1,2025-07-15T09:35:00+08:00"
    assert main(["cap", *RUXI, "--now", "2025-07-15T10:35+08:00", "--msg-type", "Update", "--reference", ref1,
                 "--identifier", "RX-A-2", "--observed", "--level", "high", "-o", str(update)]) == 0
    ref2 = "rivertrace,RX-A-2,2025-07-15T10:35:00+08:00"
    assert main(["cap", *RUXI, "--now", "2025-07-15T18:30+08:00", "--msg-type", "Cancel", "--reference", ref2,
                 "--identifier", "RX-A-3", "-o", str(cancel)]) == 0
    return alert, update, cancel


def test_every_message_is_valid_cap_1_2(chain, schema):
    for path in chain:
        schema.validate(str(path))  # raises with the offending element when invalid


def test_schema_negative_control_rejects_what_cap_forbids(chain, schema):
    """The schema does catch errors: a 'Z' time and an unknown urgency are refused."""
    text = chain[0].read_text(encoding="utf-8")
    for bad in (text.replace("<sent>2025-07-15T09:35:00+08:00</sent>", "<sent>2025-07-15T01:35:00Z</sent>"),
                text.replace("<urgency>Immediate</urgency>", "<urgency>Soon</urgency>", 1)):
        assert bad != text
        assert not schema.is_valid(bad)


def test_independent_parser_reads_identifier_languages_and_codes(chain):
    alert = parse(chain[0])
    assert alert.identifier == "RX-A-1" and alert.msg_type == cap_models.MsgType.ALERT
    assert alert.incidents == "RX-FOOD-1/petroleum/20250715T0100Z"
    assert [i.language for i in alert.infos] == ["zh-CN", "en"]
    for info in alert.infos:
        # at 09:35 the plume is already above the standard at RX-OILSPOT (arrival 09:30): act now;
        # it reaches the intake above its standard: Severe; forecast of a reported release: Likely
        assert (info.urgency, info.severity, info.certainty) == (
            cap_models.Urgency.IMMEDIATE, cap_models.Severity.SEVERE, cap_models.Certainty.LIKELY)
        assert cap_models.Category.ENV in info.categories and cap_models.Category.HEALTH in info.categories
    zh, en = alert.infos
    assert "石油类" in zh.event and "RX-INTAKE" in zh.headline and "petroleum" in en.event


def test_area_covers_the_stretch_and_the_intake(chain):
    import shapely

    from hydrology.io.netcdf import lonlat
    from server.cli import load_valid_network

    net = load_valid_network("demo:ruxi")
    info = parse(chain[0]).infos[1]
    stretch, intake = info.areas
    ring = [tuple(map(float, p.split(","))) for p in stretch.polygons[0].split()]
    assert len(ring) >= 4 and ring[0] == ring[-1]  # CAP 3.2.4: closed, at least four points
    poly = shapely.Polygon([(lon, lat) for lat, lon in ring])
    for rid in ("RX-OILSPOT", "RX-MID", "RX-INTAKE", "RX-DOWN"):  # every receptor above its standard
        f = net.feature(rid)
        (lon,), (lat,) = lonlat(net, [(f.reach, f.chainage_m)])
        assert poly.contains(shapely.Point(lon, lat)), rid
    up = net.feature("RX-UP")  # upstream of the release: not in the affected stretch
    (lon,), (lat,) = lonlat(net, [(up.reach, up.chainage_m)])
    assert not poly.contains(shapely.Point(lon, lat))
    centre, radius = intake.circles[0].split()
    f = net.feature("RX-INTAKE")
    (lon,), (lat,) = lonlat(net, [(f.reach, f.chainage_m)])
    # the circle is centred on the intake to the 5 decimals written (~1 m)
    assert tuple(map(float, centre.split(","))) == pytest.approx((lat, lon), abs=1e-5) and float(radius) == 1.0


def test_update_and_cancel_reference_the_earlier_messages(chain):
    from cap_tools import AlertState

    alert, update, cancel = (parse(p) for p in chain)
    assert update.msg_type == cap_models.MsgType.UPDATE and cancel.msg_type == cap_models.MsgType.CANCEL
    assert update.references == "rivertrace,RX-A-1,2025-07-15T09:35:00+08:00"
    state = AlertState()
    for msg in (alert, update, cancel):
        state.ingest(msg)  # removes every message a later one references: fails on a reference that does not match
    assert [a.identifier for a in state] == ["RX-A-3"]
    info = update.infos[1]
    assert (info.severity, info.certainty) == (cap_models.Severity.SEVERE, cap_models.Certainty.OBSERVED)
    info = cancel.infos[1]
    assert (info.urgency, info.response_types) == (cap_models.Urgency.PAST, [cap_models.ResponseType.ALL_CLEAR])


def test_follow_ups_of_the_service_chain_like_the_cli(chain, schema, tmp_path):
    """The service's Update and Cancel (server.cap.follow_up_cap, from the earlier document) are valid
    CAP 1.2 and chain as the independent parser expects: each references the one before."""
    from cap_tools import AlertState

    from server.cap import follow_up_cap

    first = chain[0].read_text(encoding="utf-8")
    update = follow_up_cap(first, alert_id="RX-A-2", sent=datetime(2025, 7, 15, 2, 35, tzinfo=UTC), msg_type="Update",
                           headline=("行动已确认", "action acknowledged"))
    cancel = follow_up_cap(update, alert_id="RX-A-3", sent=datetime(2025, 7, 15, 10, 30, tzinfo=UTC), msg_type="Cancel")
    paths = []
    for name, text in (("update", update), ("cancel", cancel)):
        schema.validate(text)
        (tmp_path / f"{name}.xml").write_text(text, encoding="utf-8")
        paths.append(tmp_path / f"{name}.xml")
    msgs = [parse(chain[0]), *(parse(p) for p in paths)]
    assert msgs[1].references == "rivertrace,RX-A-1,2025-07-15T09:35:00+08:00"
    assert msgs[1].infos[1].headline.startswith("action acknowledged; ")
    state = AlertState()
    for msg in msgs:
        state.ingest(msg)
    assert [a.identifier for a in state] == ["RX-A-3"]
    info = msgs[2].infos[1]
    assert (info.urgency, info.response_types) == (cap_models.Urgency.PAST, [cap_models.ResponseType.ALL_CLEAR])


# ------------------------------------------------------------------------------ the mapping table
T0 = datetime(2025, 7, 15, 1, 35, tzinfo=UTC)


def _facts(*, arrive_h=None, kind="intake", threshold=0.05, deadline_h=None, level=None, observed=False):
    arrival = None if arrive_h is None else T0 + timedelta(hours=arrive_h)
    rec = CapReceptor("R1", kind, "", None, None, arrival, arrival, arrival, 1.0, threshold)
    return CapFacts("A1", "I1", T0, "net", "", "COD", "化学需氧量", (rec,), level=level, observed=observed,
                    first_deadline=None if deadline_h is None else T0 + timedelta(hours=deadline_h))


@pytest.mark.parametrize("facts,msg,expected", [
    (_facts(arrive_h=-0.1), "Alert", ("Immediate", "Severe", "Likely")),  # already above the standard at the intake
    (_facts(arrive_h=5, deadline_h=0.2), "Alert", ("Immediate", "Severe", "Likely")),  # deadline in 12 min
    (_facts(arrive_h=5, deadline_h=0.9), "Alert", ("Expected", "Severe", "Likely")),
    (_facts(arrive_h=5), "Alert", ("Future", "Severe", "Likely")),  # no checklist: the arrival is the time to act
    (_facts(arrive_h=0.5, kind="station"), "Alert", ("Expected", "Moderate", "Likely")),
    (_facts(arrive_h=None), "Alert", ("Unknown", "Minor", "Likely")),  # nothing above a standard
    (_facts(arrive_h=None, level="critical", observed=True), "Update", ("Unknown", "Extreme", "Observed")),
    (_facts(arrive_h=3, kind="station", level="high", observed=True), "Alert", ("Future", "Severe", "Observed")),
    (_facts(arrive_h=3, level="low"), "Cancel", ("Past", "Minor", "Observed")),
])
def test_urgency_severity_certainty_table(facts, msg, expected):
    assert cap_codes(facts, msg) == expected


@pytest.mark.parametrize("kwargs,msg", [
    ({"msg_type": "Update"}, "must reference"),
    ({"sender": "river trace"}, "forbids spaces"),
    ({"msg_type": "Ack"}, "msgType"),
    ({"msg_type": "Cancel", "references": [CapReference("rivertrace", "a,b", T0)]}, "forbids"),
])
def test_what_cap_cannot_carry_is_refused(kwargs, msg):
    with pytest.raises(CapError, match=msg):
        build_cap(_facts(arrive_h=1), **kwargs)


def test_cli_update_without_reference_is_one_line(capsys):
    assert main(["cap", *RUXI, "--msg-type", "Update"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "must reference" in err


# ------------------------------------------------------------------------------ from readings (trace first)
@pytest.fixture(scope="module")
def from_readings(tmp_path_factory):
    d = tmp_path_factory.mktemp("cap_readings")
    out = {}
    for name, station, parameter in (("ruxi", "RX-OILSPOT", "petroleum"), ("puhe", "PH-ZHAIXI", "DO")):
        csv = d / f"{name}.csv"
        assert main(["replay", name, "-o", str(csv)]) == 0
        out[name] = d / f"{name}.xml"
        assert main(["cap", f"demo:{name}", str(csv), "--station", station, "--parameter", parameter,
                     "-o", str(out[name])]) == 0
    return out


def test_alerts_from_readings_are_valid_and_observed(from_readings, schema):
    import shapely

    from hydrology.io.netcdf import lonlat
    from server.cli import load_valid_network

    for path in from_readings.values():
        schema.validate(str(path))
    oil = parse(from_readings["ruxi"])
    assert oil.incidents.startswith("RX-OILSPOT/petroleum/")
    assert {(i.urgency, i.severity, i.certainty) for i in oil.infos} == {
        (cap_models.Urgency.IMMEDIATE, cap_models.Severity.SEVERE, cap_models.Certainty.OBSERVED)}
    do = parse(from_readings["puhe"])
    zh, en = do.infos
    # measured at the station (Observed), a station below its DO minimum and no intake: Moderate
    assert (en.severity, en.certainty) == (cap_models.Severity.MODERATE, cap_models.Certainty.OBSERVED)
    assert "溶解氧" in zh.headline and "PH-ZHAIXI" in zh.description and "4.05" in en.headline
    net = load_valid_network("demo:puhe")
    ring = [tuple(map(float, p.split(","))) for p in en.areas[0].polygons[0].split()]
    poly = shapely.Polygon([(lon, lat) for lat, lon in ring])
    for fid in ("PH-ZHAIXI", "PH-STP-A"):  # from the suspected plant down to the station
        f = net.feature(fid)
        (lon,), (lat,) = lonlat(net, [(f.reach, f.chainage_m)])
        assert poly.contains(shapely.Point(lon, lat)), fid

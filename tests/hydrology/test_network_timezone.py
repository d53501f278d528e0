"""The network document's ``timezone``: validated, defaulted, kept on every round trip, stated by the
demos and set on NHDPlus imports of US basins.

References: the IANA names of the zones (tz database); the states of the shipped NHDPlus gauges, read
from the raw ``Gage`` layers with pyogrio (New Hope: North Carolina, Eastern time; Walker Creek: California,
Pacific time; see tests/data/README.md), never from the importer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyogrio
import pytest
from net_cases import chain_doc

from hydrology.document import load_network, network_from_document, network_to_document, write_network
from hydrology.exceptions import NetworkFormatError
from hydrology.gpkg import read_network_gpkg, write_network_gpkg
from hydrology.nhdplus import import_nhdplus
from hydrology.timezones import network_zone
from hydrology.validate import validate_document
from server.cli import main

DATA = Path(__file__).resolve().parents[1] / "data" / "nhdplus"
DEMO = Path(__file__).resolve().parents[2] / "hydrology" / "data" / "demo"


def test_zone_is_kept_through_document_json_and_geopackage(tmp_path):
    doc = {**chain_doc(), "timezone": "America/New_York"}
    net = network_from_document(doc)
    assert network_zone(net).key == "America/New_York"
    assert network_to_document(net)["timezone"] == "America/New_York"
    write_network(net, tmp_path / "n.json")
    assert json.loads((tmp_path / "n.json").read_text(encoding="utf-8"))["timezone"] == "America/New_York"
    assert network_zone(load_network(tmp_path / "n.json")).key == "America/New_York"
    write_network_gpkg(net, tmp_path / "n.gpkg")
    assert read_network_gpkg(tmp_path / "n.gpkg")["timezone"] == "America/New_York"


@pytest.mark.parametrize("bad", ["Mars/Olympus", "+08:00", "UTC+8", "", 8, ["Asia/Shanghai"]])
def test_unknown_zone_is_a_validation_error_naming_the_field(bad):
    doc = {**chain_doc(), "timezone": bad}
    with pytest.raises(NetworkFormatError) as err:
        network_from_document(doc)
    (p,) = [p for p in err.value.problems if p.field == "timezone"]
    assert (p.severity, p.element) == ("error", "network")
    net, problems = validate_document(doc)
    assert net is None and [q.field for q in problems if q.severity == "error"] == ["timezone"]


def test_missing_zone_is_the_stated_default():
    net = network_from_document(chain_doc())
    assert "timezone" not in network_to_document(net)  # nothing invented on the round trip
    assert network_zone(net).key == "Asia/Shanghai"


@pytest.mark.parametrize("name", ["ruxi", "puhe"])
def test_demo_documents_state_china_standard_time(name):
    doc = json.loads((DEMO / f"{name}.json").read_text(encoding="utf-8"))
    assert doc["timezone"] == "Asia/Shanghai"


def _raw_states(name: str) -> set[str]:
    states = pyogrio.read_dataframe(DATA / name, layer="Gage", read_geometry=False)["STATE"]
    return set(states.dropna())


@pytest.mark.parametrize(("name", "state", "zone"), [("new_hope.gpkg", "NC", "America/New_York"),
                                                      ("walker.gpkg", "CA", "America/Los_Angeles")])
def test_nhdplus_import_of_a_us_basin_gets_its_zone(name, state, zone):
    assert _raw_states(name) == {state}
    doc, report = import_nhdplus(DATA / name)
    assert doc["timezone"] == zone and any(zone in n and state in n for n in report.notes)
    net, _problems = validate_document(doc)
    assert net is not None and network_zone(net).key == zone
    # an explicit zone wins over the gauges' state
    assert import_nhdplus(DATA / name, timezone="UTC")[0]["timezone"] == "UTC"


def test_nhdplus_without_gauges_says_it_has_no_zone_and_refuses_a_bad_one():
    doc, report = import_nhdplus(DATA / "petapsco_flowlines.gpkg")  # no Gage layer
    assert "timezone" not in doc and any("no time zone" in n and "Asia/Shanghai" in n for n in report.notes)
    doc, _ = import_nhdplus(DATA / "petapsco_flowlines.gpkg", timezone="America/New_York")  # Maryland
    assert doc["timezone"] == "America/New_York"
    with pytest.raises(NetworkFormatError, match="timezone") as err:
        import_nhdplus(DATA / "petapsco_flowlines.gpkg", timezone="US/Maryland")
    assert err.value.problems[0].field == "timezone"


def test_cli_import_timezone_option(tmp_path, capsys):
    out = tmp_path / "p.json"
    assert main(["import", str(DATA / "petapsco_flowlines.gpkg"), "-o", str(out), "--timezone", "America/New_York"]) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["timezone"] == "America/New_York"
    assert main(["import", str(DATA / "petapsco_flowlines.gpkg"), "-o", str(out), "--timezone", "Nowhere/Else"]) != 0
    assert "timezone" in capsys.readouterr().err

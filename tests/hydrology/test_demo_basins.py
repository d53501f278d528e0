"""The bundled basins carry the facts of the two incidents (DESIGN.md section 1)."""

import re
from importlib import resources

import pytest

from hydrology.oxygen_network import DOConditions, Effluent, predict_do
from hydrology.pollutants import pollutant
from hydrology.transport.analytic import Release, forecast
from server.cli import load_valid_network


@pytest.fixture(scope="module")
def ruxi():
    return load_valid_network("demo:ruxi")


@pytest.fixture(scope="module")
def puhe():
    return load_valid_network("demo:puhe")


def _from(net, fid, pol="tracer"):
    f = net.feature(fid)
    return forecast(net, Release(f.reach, f.chainage_m, pollutant(pol), mass_kg=1.0), kinds=("station", "intake", "site"))


def test_ruxi_food_plant_is_2_3_km_above_the_oil_spot(ruxi):
    assert ruxi.dischargers["RX-FOOD-1"].get("kind") == "food_processing"
    spot = _from(ruxi, "RX-FOOD-1", "petroleum").receptor("RX-OILSPOT")
    assert spot.distance_m == pytest.approx(2300.0)


def test_ruxi_oil_reaches_the_intake_about_6_hours_after_detection(ruxi):
    fc = _from(ruxi, "RX-FOOD-1", "petroleum")
    hours = (fc.receptor("RX-INTAKE").mean_travel_time_s - fc.receptor("RX-OILSPOT").mean_travel_time_s) / 3600
    assert 5.5 <= hours <= 6.5  # incident report: "reach a downstream drinking-water source in 6 hours"
    assert ruxi.intakes["RX-INTAKE"].get("population") == 120_000


def test_ruxi_has_departments_and_sites(ruxi):
    assert len(ruxi.departments) >= 5  # the checklist went to 5 departments
    assert len(ruxi.sites) >= 2 and ruxi.structures  # interception sites, a reservoir able to release


def test_puhe_plants_and_hydropower_are_above_zhaixi(puhe):
    zx = puhe.feature("PH-ZHAIXI")
    plants = [d for d in puhe.dischargers.values() if d.get("kind") == "sewage_plant"]
    assert len(plants) == 2 and all(puhe.is_upstream(p, zx) for p in plants)
    hps = next(iter(puhe.structures.values()))
    # the station releases into the main stem: above plant A and the section (plant B is on the Beixi brook)
    assert puhe.is_upstream(hps, puhe.feature("PH-STP-A")) and puhe.is_upstream(hps, zx)


def _readme_table():
    text = (resources.files("hydrology") / "data" / "demo" / "README.md").read_text(encoding="utf-8")
    return [float(v) for v in re.findall(r"^\| [^|]+ \| (\d+\.\d\d) \| (?:yes|\*\*no\*\*) \|$", text, re.MULTILINE)]


def test_puhe_do_scenarios_reproduce_the_incident_and_the_readme(puhe):
    cond = DOConditions(temperature_c=28.0)
    ok = {"PH-STP-A": Effluent(0.23, 10, 5, 2.0), "PH-STP-B": Effluent(0.12, 10, 5, 2.0)}
    bad = {"PH-STP-A": Effluent(0.23, 60, 25, 1.0), "PH-STP-B": Effluent(0.12, 60, 25, 1.0)}
    released = puhe.with_discharges({"PH-R01": 12.0})  # hydropower at its maximum release
    got = [predict_do(n, e, cond).stations["PH-ZHAIXI"].do_g_m3 for n, e in ((puhe, ok), (puhe, bad), (released, bad))]
    assert got[0] >= 5.0 and got[1] < 5.0 and got[2] >= 5.0  # class III DO minimum is 5 mg/L
    assert _readme_table() == pytest.approx(got, abs=0.006)  # the README shows 2 decimals

"""Network documents as GeoPackage layers and shapefile directories."""

from __future__ import annotations

import copy
import json
import math
import sqlite3
import warnings
from pathlib import Path

import pyogrio
import pytest
import shapely

from hydrology.document import network_from_document, network_to_document, read_document
from hydrology.exceptions import NetworkFormatError
from hydrology.gpkg import network_layers, read_network_gpkg, read_network_layers, write_network_gpkg
from hydrology.nhdplus import import_nhdplus
from hydrology.validate import validate_network

ROOT = Path(__file__).resolve().parents[2]
NHD = ROOT / "tests" / "data" / "nhdplus"
DEMO = ROOT / "hydrology" / "data" / "demo"

HAND = {
    "format": "rivertrace-network", "version": 1, "name": "小河 test basin", "crs": "EPSG:4326",
    "notes": "hand-made for the GeoPackage round trip", "survey": {"by": "field team", "year": 2025},
    "nodes": [{"id": "h", "x": 107.70, "y": 30.70, "name": "源头"}, {"id": "c", "x": 107.71, "y": 30.69},
              {"id": "t"}, {"id": "o", "x": 107.73, "y": 30.68, "gauge_datum_m": 312.5}],
    "reaches": [
        {"id": "r1", "from_node": "h", "to_node": "c", "length_m": 1500.0, "slope": 0.0012, "manning_n": 0.035,
         "bottom_width_m": 12.0, "side_slope": 2.0, "geometry": [[107.70, 30.70], [107.705, 30.695], [107.71, 30.69]],
         "name": "上游段", "source": {"survey": "2024-05", "points": [1, 2, 3]}, "lined": False},
        {"id": "r2", "from_node": "t", "to_node": "c", "length_m": 800.0, "slope": 0.003, "width_coef": 7.2,
         "width_exp": 0.5, "depth_coef": 0.27, "depth_exp": 0.3, "storage_ratio": 0.1,
         "storage_exchange_per_s": 1e-4, "lined": True},
        {"id": "r3", "from_node": "c", "to_node": "o", "length_m": 2000.0, "slope": 0.0008, "velocity_ms": 0.45,
         "dispersion_m2s": 12.5, "drainage_area_m2": 3.2e8, "mean_annual_discharge_m3s": 6.5,
         "discharge_m3s": 6.0, "geometry": [[107.71, 30.69], [107.73, 30.68]]},
    ],
    "inflows": [{"node": "h", "discharge_m3s": 4.0}, {"node": "t", "discharge_m3s": 2.0}],
    "stations": [{"id": "S1", "name": "寨溪桥", "reach": "r3", "chainage_m": 1000.0, "target_class": "III",
                  "parameters": ["DO", "NH3-N"]},
                 {"id": "S2", "reach": "r2", "chainage_m": 400.0}],
    "dischargers": [{"id": "D1", "name": "污水处理厂", "reach": "r1", "chainage_m": 0.0, "kind": "sewage_plant",
                     "pollutants": ["COD", "NH3-N"], "effluent_discharge_m3s": 0.2,
                     "permit_limits_mg_l": {"COD": 50.0, "NH3-N": 5.0}, "max_load_kg_s": {"COD": 0.01},
                     "power_meter_id": "PM-7", "violations": 3, "department": "dep-env"}],
    "intakes": [{"id": "I1", "reach": "r3", "chainage_m": 2000.0, "population": 120000, "operator": "水厂",
                 "standard_class": "III"}],
    "structures": [{"id": "HPS", "reach": "r1", "chainage_m": 1500.0, "kind": "hydropower",
                    "normal_release_m3s": 4.0, "max_release_m3s": 30.0}],
    "sites": [{"id": "B1", "reach": "r3", "chainage_m": 500.0, "kind": "boom", "build_time_s": 1800.0,
               "access": "road bridge"}],
    "departments": [{"id": "dep-env", "name": "生态环境局", "name_en": "Ecology and environment", "level": "district",
                     "roles": ["enforcement"], "owns": ["r1", "D1"], "contact": "023-0000"},
                    {"id": "dep-town", "name": "镇政府", "level": "township", "roles": [], "owns": []}],
}


def _doc(name: str) -> dict:
    if name == "hand":
        return copy.deepcopy(HAND)
    if name.endswith(".json"):
        return read_document(DEMO / name)
    doc, _report = import_nhdplus(NHD / name)
    return doc


def _types(obj):
    """The value tree with every number tagged by its type, so 1 and 1.0 and True differ."""
    if isinstance(obj, dict):
        return {k: _types(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_types(v) for v in obj]
    return (type(obj).__name__, obj)


@pytest.mark.parametrize("name", ["hand", "ruxi.json", "puhe.json", "walker.gpkg", "sample_natseamless.gpkg"])
def test_round_trip_is_exact(name, tmp_path):
    doc = _doc(name)
    path = tmp_path / "net.gpkg"
    write_network_gpkg(doc, path)
    back = read_network_gpkg(path)
    assert back == doc
    if name == "hand":  # ints stay ints and booleans stay booleans through the GIS column types
        assert _types(back) == _types(doc)
    assert [p for p in validate_network(network_from_document(back)) if p.severity == "error"] == []


def test_round_trip_of_a_network_object(tmp_path):
    net = network_from_document(HAND)
    write_network_gpkg(net, tmp_path / "n.gpkg")
    assert read_network_gpkg(tmp_path / "n.gpkg") == network_to_document(net)


def test_layers_and_geometry(tmp_path):
    path = tmp_path / "net.gpkg"
    write_network_gpkg(HAND, path)
    with sqlite3.connect(path) as con:
        contents = dict(con.execute("select table_name, data_type from gpkg_contents").fetchall())
    assert contents == {"network": "attributes", "nodes": "features", "reaches": "features",
                        "inflows": "attributes", "stations": "features", "dischargers": "features",
                        "intakes": "features", "structures": "features", "sites": "features",
                        "departments": "attributes"}
    assert pyogrio.read_info(path, layer="reaches")["crs"] == "EPSG:4326"
    st = pyogrio.read_dataframe(path, layer="stations").set_index("id")
    # S1 at 1000 of 2000 m on the straight r3 (107.71, 30.69) -> (107.73, 30.68): the midpoint
    assert st.geometry["S1"].equals_exact(shapely.Point(107.72, 30.685), 1e-12)
    assert st.geometry["S2"] is None  # r2 has no geometry
    # D1 at chainage 0 of r1 is r1's first vertex; HPS at the end is its last
    assert pyogrio.read_dataframe(path, layer="dischargers").geometry[0].equals(shapely.Point(107.70, 30.70))
    assert pyogrio.read_dataframe(path, layer="structures").geometry[0].equals(shapely.Point(107.71, 30.69))
    dis = pyogrio.read_dataframe(path, layer="dischargers")
    assert json.loads(dis["permit_limits_mg_l"][0]) == {"COD": 50.0, "NH3-N": 5.0}  # JSON text in the layer
    nodes = pyogrio.read_dataframe(path, layer="nodes").set_index("id")
    assert nodes.geometry["t"] is None and nodes.geometry["h"].equals(shapely.Point(107.70, 30.70))


def _write_shapefiles(doc: dict, directory: Path) -> None:
    """Write the layers as a GIS user would: GDAL's shapefile driver, which truncates field names."""
    directory.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GDAL warns about every truncated field name
        for layer, table in network_layers(doc).items():
            pyogrio.write_dataframe(table, directory / f"{layer}.shp", driver="ESRI Shapefile")


def _close(a, b, path="doc"):
    """Equal documents, numbers to 1e-12 relative (DBF stores decimal text)."""
    if isinstance(a, dict):
        assert set(a) == set(b), (path, set(a) ^ set(b))
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-12), (path, a, b)
    else:
        assert a == b, (path, a, b)


def test_shapefile_directory_with_truncated_names(tmp_path):
    shp = tmp_path / "shp"
    _write_shapefiles(HAND, shp)
    truncated = set(pyogrio.read_info(shp / "reaches.shp")["fields"])
    assert {"mean_annua", "storage_ex", "storage_ra", "drainage_a", "bottom_wid"} <= truncated  # GDAL did truncate
    _close(read_network_layers(shp), HAND)


def test_ambiguous_truncated_name_is_an_error(tmp_path):
    shp = tmp_path / "shp"
    _write_shapefiles(HAND, shp)
    reaches = pyogrio.read_dataframe(shp / "reaches.shp").rename(columns={"storage_ra": "storage"})
    pyogrio.write_dataframe(reaches, shp / "reaches.shp", driver="ESRI Shapefile")
    with pytest.raises(NetworkFormatError, match=r"column 'storage' is ambiguous.*storage_ratio.*storage_exchange_per_s"):
        read_network_layers(shp)


def test_long_json_cut_by_a_shapefile_is_an_error(tmp_path):
    doc = copy.deepcopy(HAND)
    doc["reaches"][0]["source"] = {"text": "x" * 400}
    shp = tmp_path / "shp"
    _write_shapefiles(doc, shp)
    with pytest.raises(NetworkFormatError, match=r"reaches\[r1\]\.source.*254"):
        read_network_layers(shp)


def test_missing_reaches_layer_is_named(tmp_path):
    path = tmp_path / "nodes_only.gpkg"
    pyogrio.write_dataframe(network_layers(HAND)["nodes"], path, layer="nodes", driver="GPKG")
    with pytest.raises(NetworkFormatError, match=r"nodes_only\.gpkg: no 'reaches' layer \(layers: nodes\)"):
        read_network_gpkg(path)
    with pytest.raises(NetworkFormatError, match="no such file"):
        read_network_gpkg(tmp_path / "absent.gpkg")


def test_write_replaces_an_existing_file(tmp_path):
    path = tmp_path / "net.gpkg"
    write_network_gpkg(HAND, path)
    small = {**copy.deepcopy(HAND), "stations": [], "dischargers": [], "departments": []}
    write_network_gpkg(small, path)
    back = read_network_gpkg(path)
    assert back["stations"] == [] and back["departments"] == [] and back == small


def test_local_coordinates_without_crs_and_an_empty_name(tmp_path):
    doc = {"format": "rivertrace-network", "version": 1, "name": "",
           "nodes": [{"id": "a", "x": 0.0, "y": 0.0}, {"id": "b", "x": 900.0, "y": 0.0}],
           "reaches": [{"id": "r", "from_node": "a", "to_node": "b", "length_m": 1000.0, "velocity_ms": 0.5,
                        "dispersion_m2s": 5.0, "discharge_m3s": 2.0, "geometry": [[0.0, 0.0], [900.0, 0.0]]}],
           "inflows": [], "stations": [], "dischargers": [], "intakes": [], "structures": [], "sites": [],
           "departments": []}
    write_network_gpkg(doc, tmp_path / "local.gpkg")
    assert read_network_gpkg(tmp_path / "local.gpkg") == doc


def test_a_value_of_the_wrong_type_is_named(tmp_path):
    doc = copy.deepcopy(HAND)
    doc["intakes"][0]["population"] = "many"
    with pytest.raises(NetworkFormatError, match="intakes.population"):
        write_network_gpkg(doc, tmp_path / "bad.gpkg")


# ------------------------------------------------------------------------------------ outputs for GIS (issue 14)
def _export(tmp_path, *extra):
    from server.cli import main

    gpkg, geojson = tmp_path / "ruxi.gpkg", tmp_path / "ruxi.geojson"
    code = main(["export", "demo:ruxi", "--gpkg", str(gpkg), "--geojson", str(geojson), *extra])
    assert code == 0
    return gpkg, geojson


RUXI_RELEASE = ("--discharger", "RX-FOOD-1", "--mass-kg", "80", "--pollutant", "petroleum",
                "--start", "2025-07-15T09:00+08:00")


def test_export_plume_has_datetimes_mg_l_fields_and_a_crs(tmp_path, capsys):
    import geopandas as gpd
    import pandas as pd

    gpkg, _ = _export(tmp_path, *RUXI_RELEASE)
    capsys.readouterr()
    rec = gpd.read_file(gpkg, layer="plume_receptors")
    assert rec.crs.to_epsg() == 4326
    assert {"peak_mg_l", "threshold_mg_l"} <= set(rec.columns) and not any("g_m3" in c for c in rec.columns)
    assert isinstance(rec["arrival_time"].dtype, pd.DatetimeTZDtype)
    start = pd.Timestamp("2025-07-15T01:00:00Z")
    # the datetime field is the start plus the seconds field, to the millisecond GeoPackage stores
    got = (rec["arrival_time"] - start).dt.total_seconds().to_numpy()
    assert got == pytest.approx(rec["arrival_s"].to_numpy(), abs=1e-3)
    rel = gpd.read_file(gpkg, layer="plume_release")
    assert rel["start"].iloc[0] == start
    reaches = gpd.read_file(gpkg, layer="plume_reaches")
    assert "max_peak_mg_l" in reaches.columns and reaches.crs.to_epsg() == 4326
    # the network layers read back as the same network
    assert read_network_gpkg(gpkg)["reaches"] == read_document(DEMO / "ruxi.json")["reaches"]


def test_export_geojson_is_wgs84_feature_collection(tmp_path, capsys):
    _, geojson = _export(tmp_path, *RUXI_RELEASE)
    capsys.readouterr()
    doc = json.loads(geojson.read_text(encoding="utf-8"))
    assert doc["type"] == "FeatureCollection"
    layers = {f["properties"]["layer"] for f in doc["features"]}
    assert {"reaches", "stations", "intakes", "plume_reaches", "plume_receptors", "plume_release"} <= layers
    pts = [f["geometry"]["coordinates"] for f in doc["features"] if f["geometry"] and f["geometry"]["type"] == "Point"]
    # RFC 7946 order is lon, lat: the Ruxi basin is near 107.7 E, 30.7 N
    assert all(107 < x < 108.5 and 30 < y < 31.5 for x, y in pts)
    rel = next(f for f in doc["features"] if f["properties"]["layer"] == "plume_release")
    assert rel["properties"]["start"].startswith("2025-07-15T01:00:00")


def test_geojson_of_a_network_without_crs_is_refused(tmp_path, capsys):
    from server.cli import main

    doc = read_document(DEMO / "ruxi.json")
    doc.pop("crs")
    path = tmp_path / "local.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    assert main(["export", str(path), "--geojson", str(tmp_path / "x.geojson")]) == 2
    assert "no CRS" in capsys.readouterr().err


ogrinfo = __import__("shutil").which("ogrinfo")


@pytest.mark.skipif(ogrinfo is None, reason="GDAL's ogrinfo is not installed (apt-get install gdal-bin)")
@pytest.mark.parametrize("what", ["export", "plot"])
def test_ogrinfo_opens_every_layer_without_warnings(what, tmp_path, capsys):
    import subprocess

    from server.cli import main

    if what == "export":
        paths = list(_export(tmp_path, *RUXI_RELEASE))
    else:
        paths = [tmp_path / "plume.gpkg"]
        assert main(["plot", "demo:ruxi", *RUXI_RELEASE, "--gpkg", str(paths[0])]) == 0
    capsys.readouterr()
    for path in paths:
        # -al: every layer, every feature, so a field GDAL cannot read would warn here
        res = subprocess.run([ogrinfo, "-ro", "-al", str(path)], check=True, capture_output=True, text=True, timeout=60)
        noise = [ln for ln in (res.stdout + res.stderr).splitlines() if ln.lower().startswith(("warning", "error"))]
        assert noise == [], noise
        if path.suffix == ".gpkg":
            assert "DateTime" in res.stdout


def test_ogrinfo_negative_control_old_geopackage_version_warns(tmp_path):
    """GeoPackage 1.4 (pyogrio's default) makes Debian's GDAL 3.6 warn: the check above can fail."""
    import subprocess

    import geopandas as gpd

    if ogrinfo is None:
        pytest.skip("GDAL's ogrinfo is not installed")
    version = subprocess.run([ogrinfo, "--version"], check=True, capture_output=True, text=True, timeout=30).stdout
    if not version.startswith("GDAL 3.6"):
        pytest.skip(f"the 1.4 warning is specific to GDAL < 3.7; this is {version.strip()}")
    path = tmp_path / "v14.gpkg"
    pyogrio.write_dataframe(gpd.GeoDataFrame({"a": [1]}, geometry=[shapely.Point(0, 0)], crs=4326), path)
    res = subprocess.run([ogrinfo, "-ro", "-al", str(path)], check=True, capture_output=True, text=True, timeout=60)
    assert "partially supported" in res.stderr + res.stdout

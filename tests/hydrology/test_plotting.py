"""Plume map, breakthrough curves, arrival along reaches and the GeoPackage for GIS users (task 6C)."""

import argparse
import math
import re
import warnings
from datetime import UTC, datetime

import numpy as np
import pytest
from net_cases import chain_doc, confluence_doc
from numpy.testing import assert_allclose
from scipy.optimize import brentq

import hydrology.gis_output as gis
from hydrology import plotting
from hydrology.document import network_from_document
from hydrology.gis_output import (
    arrivals_from_forecast,
    crs_axis_unit,
    crs_is_geographic,
    reach_arrivals,
    reach_summary,
    write_arrival_gpkg,
)
from hydrology.plotting import PlottingError, display_text, plot_breakthrough, plot_isochrones
from hydrology.pollutants import Pollutant, pollutant
from hydrology.transport.analytic import Release, forecast
from hydrology.transport.engines import run_engine
from hydrology.transport.numerical import summarize
from server.cli.forecast import add_plot_parser
from tracer.scenarios import demo_network

TRACER = Pollutant("tracer")
RUXI_START = datetime(2025, 7, 15, 1, 0, tzinfo=UTC)  # 09:00 Asia/Shanghai (tracer.scenarios)
#: (basin, discharger, pollutant, mass [kg]): the Ruxi oil spill and a Puhe sewage-plant ammonia slug
CASES = [("ruxi", "RX-FOOD-1", "petroleum", 80.0), ("puhe", "PH-STP-A", "NH3-N", 50.0)]


@pytest.fixture(scope="module", params=CASES, ids=[c[0] for c in CASES])
def basin(request):
    name, discharger, pol, mass = request.param
    net = demo_network(name)
    d = net.dischargers[discharger]
    release = Release(d.reach, d.chainage_m, pollutant(pol), mass_kg=mass, start=RUXI_START)
    fc = forecast(net, release, kinds=("station", "intake", "site"))
    return net, fc, arrivals_from_forecast(net, fc)


def _image(path):
    import matplotlib.image

    return matplotlib.image.imread(str(path))


def _assert_picture(path, min_colours=50):
    img = _image(path)
    h, w = img.shape[:2]
    assert w > 400 and h > 300, (w, h)
    rgb = np.round(img[..., :3] * 255).astype(np.uint32).reshape(-1, 3)
    # a blank or single-colour image has std 0; a drawn figure on white is well above 0.05
    assert rgb.std() / 255 > 0.05
    assert len(np.unique(rgb[:, 0] << 16 | rgb[:, 1] << 8 | rgb[:, 2])) >= min_colours


# ------------------------------------------------------------------------------------ arrivals
def _puff_arrival(x, level, mass_kg, U, D, A):
    """First time the Gaussian puff (Fischer et al. 1979 eq. 2.17) reaches ``level`` at x, by root finding."""
    def c(t):
        return 1000.0 * mass_kg / (A * math.sqrt(4 * math.pi * D * t)) * math.exp(-(x - U * t) ** 2 / (4 * D * t))

    t_peak = (math.sqrt(D**2 + U**2 * x**2) - D) / U**2  # maximum of c(t) at fixed x
    return brentq(lambda t: c(t) - level, 1e-6 * t_peak, t_peak, xtol=1e-6)


def test_arrival_along_a_uniform_channel_matches_the_closed_form():
    """Two identical reaches in series are one uniform channel: arrival is the puff's threshold crossing."""
    net = network_from_document(chain_doc(n=2, length=10000.0))
    st = net.reach_state()
    U, D, A = st.velocity_ms[0], st.dispersion_m2s[0], st.area_m2[0]
    arr = reach_arrivals(net, Release("r0", 0.0, TRACER, mass_kg=10.0), threshold_g_m3=1e-3)
    x = np.where(arr["reach"].values == "r1", 10000.0, 0.0) + arr["chainage_m"].values
    expected = [_puff_arrival(xi, 1e-3, 10.0, U, D, A) for xi in x[1:]]
    # the engine finds the crossing by linear interpolation on 400 samples over +-6 sigma: < 0.2 % of t
    assert_allclose(arr["arrival_s"].values[1:], expected, rtol=2e-3)
    assert arr["arrival_s"].values[0] == 0.0 and x[0] == 0.0  # the release point


def test_sample_points_agree_with_receptors_and_skip_upstream():
    doc = confluence_doc()
    net = network_from_document(doc)
    release = Release("m1", 2000.0, TRACER, mass_kg=5.0)
    fc = forecast(net, release, kinds=("station", "intake"), threshold_g_m3=1e-4)
    arr = arrivals_from_forecast(net, fc, points_per_reach=5)
    assert_allclose(arr["threshold_g_m3"].values[1:], 1e-4)  # the forecast's given threshold is reused
    reach, chain = arr["reach"].values.astype(str), arr["chainage_m"].values
    assert set(reach) == {"m1", "m2", "b1", "b2", "m3"}  # the tributary t1 is not below the release
    assert np.all(chain[reach == "m1"] >= 2000.0)
    # S-m2 sits at chainage 2000 of m2 (4000 m long): the sample point at 1/2 of m2
    i = np.flatnonzero((reach == "m2") & (chain == 2000.0))[0]
    rec = fc.receptor("S-m2")
    # the same routing and curve on the same point: equal to round-off
    assert_allclose([arr["arrival_s"].values[i], arr["peak_g_m3"].values[i], arr["mass_fraction"].values[i]],
                    [rec.arrival_s, rec.peak_g_m3, rec.mass_fraction], rtol=1e-9)


def test_chunked_evaluation_changes_nothing(monkeypatch):
    net = demo_network("ruxi")
    release = Release("RX-R03", 1400.0, pollutant("petroleum"), mass_kg=80.0)
    whole = reach_arrivals(net, release)
    monkeypatch.setattr(gis, "_POINTS_PER_CALL", 7)
    parts = reach_arrivals(net, release)
    for var in ("arrival_s", "peak_s", "peak_g_m3", "end_s"):
        assert_allclose(parts[var].values, whole[var].values, rtol=1e-12, equal_nan=True)  # same arithmetic


def test_reach_summary_is_continuous_at_nodes_and_nan_upstream(basin):
    net, fc, arr = basin
    table = reach_summary(net, arr).set_index("reach")
    assert list(table.index) == list(net.reaches)
    up = table[~table["below_release"]]
    assert len(up) and up[["arrival_s", "peak_s", "peak_g_m3"]].isna().all().all()
    assert table.loc[fc.release.reach, "entry_arrival_s"] == 0.0
    below = table[table["below_release"]]
    assert np.all(np.diff(below.sort_values("distance_m")["peak_s"].values) > 0)  # the peak moves downstream
    # where a reach simply continues another (one reach in, no inflow) its entry is the other's exit
    for rid in below.index:
        r = net.reaches[rid]
        ups = net.reaches_into(r.from_node)
        if rid != fc.release.reach and len(ups) == 1 and r.from_node not in net.inflows:
            # the transport kernel passes the mass flux across a node; the resident concentration a
            # point samples is flux x 2U/(U + r), which steps by 1 + O(D/(U x)) where U and D change
            # between the reaches (hydrology.transport.kernel): on the demo basins the arrival moves
            # by < 0.4 % (measured); 1 % allows for that step and nothing else
            assert_allclose(table.loc[rid, "entry_arrival_s"], table.loc[ups[0], "arrival_s"], rtol=1e-2)


def test_arrival_matches_the_receptor_forecast_at_the_ruxi_intake():
    """The map's arrival at the intake's chainage equals the intake forecast (DESIGN: ~6 h after the oil spot)."""
    net = demo_network("ruxi")
    release = Release("RX-R03", 1400.0, pollutant("petroleum"), mass_kg=80.0)
    fc = forecast(net, release)
    arr = reach_arrivals(net, release, points_per_reach=5)  # RX-R08 is 5000 m: points every 1250 m
    on = (arr["reach"].values == "RX-R08")
    hours = np.interp(2500.0, arr["chainage_m"].values[on], arr["arrival_s"].values[on]) / 3600
    # linear interpolation between points 1250 m apart: the leading edge moves almost linearly with
    # distance (measured 2e-5 off); 1e-3 would catch a point placed on the wrong reach or chainage
    assert_allclose(hours, fc.receptor("RX-INTAKE").arrival_s / 3600, rtol=1e-3)


# ------------------------------------------------------------------------------------ GeoPackage
def test_geopackage_reads_back_with_attributes_and_crs(basin, tmp_path):
    import geopandas as gpd
    import pyogrio

    net, fc, arr = basin
    path = write_arrival_gpkg(net, fc, tmp_path / "plume.gpkg", arrivals=arr)
    assert {name: geom for name, geom in pyogrio.list_layers(path)} == {
        "reaches": "LineString", "receptors": "Point", "release": "Point"}
    reaches = gpd.read_file(path, layer="reaches")
    assert reaches.crs.to_epsg() == 4326
    table = reach_summary(net, arr)
    assert list(reaches["reach"]) == list(table["reach"])
    for col, field in (("arrival_s", "arrival_s"), ("peak_s", "peak_s"), ("peak_g_m3", "peak_mg_l"),
                       ("end_s", "end_s"), ("entry_arrival_s", "entry_arrival_s")):  # mg/L = g/m3: same numbers
        assert_allclose(reaches[field].to_numpy(float), table[col].to_numpy(float), rtol=1e-12, equal_nan=True)
    assert reaches["below_release"].sum() == table["below_release"].sum()
    rec = gpd.read_file(path, layer="receptors")
    assert list(rec["id"]) == [r.id for r in fc.receptors]
    assert_allclose(rec["peak_mg_l"].to_numpy(float), [r.peak_g_m3 for r in fc.receptors], rtol=1e-12)
    assert rec.geometry.notna().all() and rec.crs.to_epsg() == 4326
    rel = gpd.read_file(path, layer="release")
    assert rel["mass_kg"].iloc[0] == fc.release.total_mass_kg


def test_geopackage_without_crs_uses_node_lines(tmp_path):
    import geopandas as gpd

    doc = chain_doc(n=2)
    for i, node in enumerate(doc["nodes"]):
        node["x"], node["y"] = 1000.0 * i, 0.0
    doc["stations"] = [{"id": "s1", "reach": "r1", "chainage_m": 2500.0}]
    net = network_from_document(doc)
    assert not crs_is_geographic(net) and crs_axis_unit(net) == "m, local"
    fc = forecast(net, Release("r0", 0.0, TRACER, mass_kg=1.0))
    path = write_arrival_gpkg(net, fc, tmp_path / "local.gpkg")
    reaches = gpd.read_file(path, layer="reaches")
    assert reaches.crs is None
    assert list(reaches.geometry.iloc[1].coords) == [(1000.0, 0.0), (2000.0, 0.0)]
    # s1 is at a quarter of r1, drawn at a quarter of the node-to-node line
    assert list(gpd.read_file(path, layer="receptors").geometry.iloc[0].coords) == [(1250.0, 0.0)]


# ------------------------------------------------------------------------------------ figures
def test_isochrone_map_is_a_picture(basin, tmp_path):
    net, fc, arr = basin
    out = plot_isochrones(net, fc, tmp_path / "map.png", arrivals=arr)
    _assert_picture(out)


def test_breakthrough_curves_are_a_picture(basin, tmp_path):
    _net, fc, _arr = basin
    out = plot_breakthrough(fc, tmp_path / "curves.png")
    _assert_picture(out)
    img = _image(out)
    assert img.shape[0] > 600  # one panel per receptor (several rows), not one squeezed panel


def test_breakthrough_from_a_numerical_dataset_read_back_from_netcdf(tmp_path):
    import xarray as xr

    net = demo_network("ruxi")
    release = Release("RX-R03", 1400.0, pollutant("petroleum"), mass_kg=80.0, start=RUXI_START)
    fc, ds = run_engine("numerical", net, release)
    ds.to_netcdf(tmp_path / "ens.nc", engine="h5netcdf")
    back = xr.open_dataset(tmp_path / "ens.nc", engine="h5netcdf")
    start_s, start = plotting._dataset_start(back)
    assert start == RUXI_START and start_s[0] == 0.0
    marks = [plotting._marks(start_s, back["concentration"].values[:, j], float(back["threshold"].values[j]))
             for j in range(back.sizes["receptor"])]
    ref = summarize(ds)
    # the same edge rule as hydrology.transport.numerical.summarize (an independent implementation): equal
    assert_allclose([m[0] for m in marks], [r.arrival_s for r in ref], rtol=1e-9)
    assert_allclose([m[3] for m in marks], [r.end_s for r in ref], rtol=1e-9)
    _assert_picture(plot_breakthrough(back, tmp_path / "num.png", receptors=["RX-INTAKE", "RX-MID"]))
    with pytest.raises(PlottingError, match="closed-form"):
        plot_breakthrough(fc, tmp_path / "x.png")


def test_tracer_without_standard_and_curves_dataset(tmp_path):
    net = network_from_document(confluence_doc())
    fc = forecast(net, Release("m1", 100.0, TRACER, mass_kg=1.0))
    assert all(r.threshold_g_m3 is None for r in fc.receptors)
    _assert_picture(plot_breakthrough(fc.curves(), tmp_path / "ds.png"))


def test_isochrone_ticks_sit_where_the_arrival_crosses_each_hour():
    """On a straight channel drawn to scale (x = distance), a tick at T h lies at the distance reached at T."""
    doc = chain_doc(n=2, length=10000.0)
    for i, node in enumerate(doc["nodes"]):
        node["x"], node["y"] = 10000.0 * i, 0.0
    net = network_from_document(doc)
    arr = reach_arrivals(net, Release("r0", 0.0, TRACER, mass_kg=10.0), threshold_g_m3=1e-3)
    lines = {rid: gis.reach_line(net, rid) for rid in net.reaches}
    segs, seg_h, below, ticks = plotting._arrival_segments(net, lines, arr, 1.0)
    assert not below and len(segs) == 2 * plotting.SEGMENTS_PER_REACH
    dist = np.where(arr["reach"].values == "r1", 10000.0, 0.0) + arr["chainage_m"].values
    hours = arr["arrival_s"].values / 3600
    assert [t[2] for t in ticks] == list(range(1, int(hours.max()) + 1))
    # both are linear interpolations of the same samples (in chainage, then along the line): to round-off
    assert_allclose([t[0][0] for t in ticks], np.interp([t[2] for t in ticks], hours, dist), rtol=1e-9)
    assert_allclose([t[0][1] for t in ticks], 0.0, atol=1e-9)
    assert np.all(np.diff(seg_h) > 0)  # colours grow downstream


def test_chinese_text_falls_back_with_a_warning_without_a_cjk_font(monkeypatch, tmp_path):
    net = demo_network("ruxi")
    fc = forecast(net, Release("RX-R03", 1400.0, pollutant("petroleum"), mass_kg=80.0))
    monkeypatch.setattr(plotting, "cjk_font", lambda: None)
    with pytest.warns(plotting.CJKFontWarning, match="no CJK font"):  # never silently
        assert display_text("汝溪河 油膜", "Ruxi oil film") == "Ruxi oil film"
    assert display_text("Ruxi", "id") == "Ruxi"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing glyph is a UserWarning in matplotlib: none may appear
        warnings.simplefilter("ignore", plotting.CJKFontWarning)  # the fallback's own notice (checked above)
        plot_isochrones(net, fc, tmp_path / "zh.png", title="汝溪河 油膜", lang="zh")
    monkeypatch.setattr(plotting, "cjk_font", lambda: "Some CJK Font")
    assert display_text("汝溪河 油膜", "Ruxi oil film") == "汝溪河 油膜"


def test_a_cjk_font_is_found_or_bundled_and_has_the_glyphs():
    from matplotlib import font_manager

    plotting.cjk_font.cache_clear()
    name = plotting.cjk_font()
    assert name in plotting.CJK_FONTS  # a system font, or the one the package dependency installs
    font = font_manager.get_font(font_manager.findfont(font_manager.FontProperties(family=name),
                                                       fallback_to_default=False))
    text = "".join(v[1] for v in plotting.TEXT.values())
    missing = {ch for ch in text if plotting._CJK.search(ch) and font.get_char_index(ord(ch)) == 0}
    assert missing == set()


def _glyph(ch: str) -> np.ndarray:
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context(plotting._rc()):
        fig = Figure(figsize=(0.6, 0.6), dpi=60)
        canvas = FigureCanvasAgg(fig)
        fig.text(0.5, 0.5, ch, fontsize=24, ha="center", va="center")
        canvas.draw()
        return np.asarray(canvas.buffer_rgba())[..., 0].copy()


def test_chinese_characters_render_as_glyphs_not_boxes(monkeypatch):
    """Missing glyphs render as identical boxes; real ones differ from each other and from blank."""
    a, b, c = (_glyph(ch) for ch in "汝溪河")
    blank = _glyph(" ")
    assert all((g < 128).sum() > 20 for g in (a, b, c))  # ink on the canvas
    assert not np.array_equal(a, b) and not np.array_equal(b, c) and not np.array_equal(a, blank)
    # negative control: with DejaVu Sans alone the same characters are the same empty box
    monkeypatch.setattr(plotting, "_rc", lambda: {"font.family": ["DejaVu Sans"]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # matplotlib's "Glyph ... missing" is the point here
        assert np.array_equal(_glyph("汝"), _glyph("溪"))


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_map_and_curves_in_both_languages_without_font_noise(lang, tmp_path, caplog):
    import logging

    net = demo_network("ruxi")
    fc = forecast(net, Release("RX-R03", 1400.0, pollutant("petroleum"), mass_kg=80.0, start=RUXI_START))
    caplog.set_level(logging.DEBUG, logger="matplotlib.font_manager")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing glyph (UserWarning) or the CJK fallback warning fails
        _assert_picture(plot_isochrones(net, fc, tmp_path / f"map_{lang}.png", lang=lang))
        _assert_picture(plot_breakthrough(fc, tmp_path / f"curves_{lang}.png", lang=lang))
    noise = [r.getMessage() for r in caplog.records if "findfont" in r.getMessage() and "not found" in r.getMessage()]
    assert noise == []


def test_labels_follow_the_language():
    assert plotting._text("intake", "zh") == "饮用水取水口" and plotting._text("intake", "en") == "drinking-water intake"
    assert plotting._basis("GB 3838-2002 class III", "zh") == "GB 3838-2002 III 类"
    assert plotting._pollutant("petroleum", "zh") == "石油类" and plotting._pollutant("NH3-N", "zh").startswith("氨氮")
    with pytest.raises(PlottingError, match="lang"):
        plotting._check_lang("fr")
    # every English text has a Chinese twin, and the Chinese ones have no English words (ids/units aside)
    for key, (en, zh) in plotting.TEXT.items():
        assert en and zh and not re.search(r"\b(?!mg|deg|UTC|kg|km|min)[a-z]{3,}\b", re.sub(r"\{[^}]*\}", "", zh)), key


def test_errors_name_the_problem(tmp_path):
    net = demo_network("ruxi")
    fc = forecast(net, Release("RX-R03", 1400.0, pollutant("petroleum"), mass_kg=80.0))
    with pytest.raises(PlottingError, match="NOPE"):
        plot_breakthrough(fc, tmp_path / "x.png", receptors=["NOPE"])
    with pytest.raises(PlottingError, match="isochrone step"):
        plot_isochrones(net, fc, tmp_path / "x.png", isochrone_step_h=0.0)
    outlet = forecast(net, Release("RX-R09", 2000.0, pollutant("petroleum"), mass_kg=1.0))
    with pytest.raises(PlottingError, match="no receptor"):
        plot_breakthrough(outlet, tmp_path / "x.png")
    bare = network_from_document(chain_doc(n=1))  # no geometry, no node coordinates
    with pytest.raises(PlottingError, match="'r0'"):
        plot_isochrones(bare, forecast(bare, Release("r0", 0.0, TRACER, mass_kg=1.0)), tmp_path / "x.png")


# ------------------------------------------------------------------------------------ CLI
def test_plot_command_writes_map_curves_and_geopackage(tmp_path):
    from server.cli import build_release, load_valid_network

    parser = argparse.ArgumentParser(prog="rivertrace")
    add_plot_parser(parser.add_subparsers(dest="command"), load_network=load_valid_network,
                    build_release=build_release)
    args = parser.parse_args(["plot", "demo:ruxi", "--discharger", "RX-FOOD-1", "--mass-kg", "80", "--pollutant",
                              "petroleum", "--start", "2025-07-15T09:00+08:00", "--map", str(tmp_path / "m.png"),
                              "--curves", str(tmp_path / "c.png"), "--gpkg", str(tmp_path / "p.gpkg")])
    assert args.func(args) == 0
    for name in ("m.png", "c.png"):
        _assert_picture(tmp_path / name)
    assert (tmp_path / "p.gpkg").stat().st_size > 0
    nothing = parser.parse_args(["plot", "demo:ruxi", "--discharger", "RX-FOOD-1", "--mass-kg", "1",
                                 "--pollutant", "tracer"])
    with pytest.raises(PlottingError, match="nothing to write"):
        nothing.func(nothing)

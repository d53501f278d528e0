"""The rivertrace command line: contracts used by modellers' scripts, exit codes, no tracebacks."""

import json
import subprocess
import sys

import pytest

from server.cli import main

FORECAST = ["forecast", "demo:ruxi", "--discharger", "RX-FOOD-1", "--mass-kg", "80", "--pollutant", "petroleum"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_forecast_json_contract(capsys):
    code, out, _ = run(capsys, *FORECAST, "--start", "2025-07-15T09:00+08:00", "--json")
    assert code == 0
    doc = json.loads(out)
    recs = doc["receptors"]
    assert [r["id"] for r in recs][:3] == ["RX-OILSPOT", "RX-MID", "RX-INTAKE"]
    for r in recs:
        assert {"id", "kind", "distance_m", "arrival_s", "peak_s", "peak_mg_l", "end_s"} <= set(r)
        assert r["arrival_s"] < r["peak_s"] < r["end_s"]
    assert recs[0]["arrival_time"].endswith("+08:00")
    assert doc["release"]["mass_kg"] == 80.0 and doc["release"]["behaviour"] == "floating"


def test_forecast_by_reach_with_duration_and_decay(capsys):
    code, out, _ = run(capsys, "forecast", "demo:puhe", "--reach", "PH-R03", "--chainage-m", "1000", "--mass-kg", "500",
                       "--duration-s", "7200", "--pollutant", "NH3-N", "--decay-per-day", "0.2", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["release"]["duration_s"] == 7200.0
    assert doc["release"]["decay_per_s"] == pytest.approx(0.2 / 86400)
    assert {r["id"] for r in doc["receptors"]} == {"PH-MID", "PH-ZHAIXI", "PH-OUTLET"}


def test_release_curve_that_is_a_box_equals_the_box(capsys, tmp_path):
    """--release-curve with a constant rate for an hour is --mass-kg/--duration-s: the same forecast."""
    curve = tmp_path / "rate.csv"
    curve.write_text("time_s,rate_kg_s\n0,0.02\n3600,0.02\n", encoding="utf-8")
    base = ["forecast", "demo:ruxi", "--discharger", "RX-FOOD-1", "--pollutant", "COD", "--json"]
    _, box, _ = run(capsys, *base, "--mass-kg", "72", "--duration-s", "3600")
    code, by_curve, _ = run(capsys, *base, "--release-curve", str(curve))
    assert code == 0
    a, b = json.loads(box), json.loads(by_curve)
    assert b["release"]["kind"] == "rate_curve" and b["release"]["mass_kg"] == pytest.approx(72.0)
    for ra, rb in zip(a["receptors"], b["receptors"], strict=True):
        assert rb["peak_mg_l"] == pytest.approx(ra["peak_mg_l"], rel=1e-9)  # one superposition, the same terms


def test_inflow_curve_forecast_and_bad_curves(capsys, tmp_path):
    """An observed concentration curve at the release point (the Clackamas x = 0 record, times from 0 s):
    the forecast runs with no mass, and a broken curve file is one line, exit 2."""
    good = tmp_path / "x0.csv"
    good.write_text("time_s,concentration_mg_l\n0,0\n600,0.02\n1200,0.01\n3000,0\n", encoding="utf-8")
    code, out, _ = run(capsys, "forecast", "demo:ruxi", "--reach", "RX-R01", "--chainage-m", "0",
                       "--inflow-curve", str(good), "--pollutant", "tracer", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["release"]["kind"] == "inflow_curve" and doc["release"]["mass_kg"] is None
    peaks = [r["peak_mg_l"] for r in doc["receptors"]]
    assert 0 < peaks[0] < 0.02 and peaks == sorted(peaks, reverse=True)  # diluted and dispersed downstream
    bad = tmp_path / "bad.csv"
    bad.write_text("time_s,concentration_mg_l\n0,0\n600,-1\n", encoding="utf-8")
    code, _, err = run(capsys, "forecast", "demo:ruxi", "--reach", "RX-R01", "--chainage-m", "0",
                       "--inflow-curve", str(bad), "--pollutant", "tracer")
    assert code == 2 and "line 3" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "forecast", "demo:ruxi", "--reach", "RX-R01", "--chainage-m", "0", "--mass-kg", "1",
                       "--inflow-curve", str(good), "--pollutant", "tracer")
    assert code == 2 and "exactly one of" in err


def test_tracer_has_no_standard_and_threshold_override(capsys):
    _, out, _ = run(capsys, *FORECAST[:-2], "--pollutant", "tracer", "--json")
    assert json.loads(out)["receptors"][0]["threshold_basis"] == "1% of peak"
    _, out, _ = run(capsys, *FORECAST[:-2], "--pollutant", "tracer", "--threshold-mg-l", "0.5", "--json")
    assert json.loads(out)["receptors"][0]["threshold_mg_l"] == 0.5


def test_forecast_writes_netcdf(capsys, tmp_path):
    import xarray as xr

    path = tmp_path / "curves.nc"
    code, _, _ = run(capsys, *FORECAST, "--netcdf", str(path))
    assert code == 0
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        # no --start: a duration after the release, never decoded as dates (issue 14: not 1970)
        t = ds["time_after_release"]
        assert ds["concentration"].attrs["units"] == "g m-3" and t.attrs["units"] == "s" and "calendar" not in t.attrs
        assert t.dtype.kind == "f" and float(ds["concentration"].max()) > 0
    code, _, _ = run(capsys, *FORECAST, "--netcdf", str(path), "--start", "2025-07-15T09:00+08:00")
    assert code == 0
    with xr.open_dataset(path, engine="h5netcdf") as ds:  # with --start: real times, starting at the release
        assert str(ds["time"].values[0]).startswith("2025-07-15T01:00:00")


@pytest.mark.parametrize("argv,code,msg", [
    (["forecast", "demo:ruxi", "--mass-kg", "1", "--pollutant", "COD"], 2, "give --discharger"),
    (["forecast", "demo:ruxi", "--discharger", "nope", "--mass-kg", "1", "--pollutant", "COD"], 2, "unknown discharger 'nope'"),
    (["forecast", "demo:ruxi", "--discharger", "RX-FOOD-1", "--mass-kg", "1", "--pollutant", "unobtainium"], 2, "unobtainium"),
    (["forecast", "demo:ruxi", "--discharger", "RX-FOOD-1", "--mass-kg", "-4", "--pollutant", "COD"], 2, "mass_kg must be positive"),
    (["forecast", "demo:ruxi", "--reach", "RX-R03", "--chainage-m", "99999", "--mass-kg", "1", "--pollutant", "COD"], 2, "outside reach"),
    (["forecast", "demo:ruxi", "--discharger", "RX-FOOD-1", "--mass-kg", "1", "--pollutant", "COD", "--start", "2025-07-15 10:00"], 2, "offset"),
    (["forecast", "missing.json", "--discharger", "x", "--mass-kg", "1", "--pollutant", "COD"], 2, "no such file"),
    (["validate", "demo:atlantis"], 2, "unknown demo basin"),
])
def test_bad_input_is_one_clear_message(capsys, argv, code, msg):
    got, _out, err = run(capsys, *argv)
    assert got == code
    assert msg in err and "Traceback" not in err


def test_validate_reports_errors_with_element_and_field(capsys, tmp_path):
    doc = json.loads((__import__("server.cli", fromlist=["x"]).demo_basin_path("ruxi")).read_text(encoding="utf-8"))
    doc["reaches"][2]["length_m"] = -10
    doc["stations"][0]["chainage_m"] = 1e7
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    code, out, _ = run(capsys, "validate", str(bad))
    assert code == 1
    assert f"reaches[{doc['reaches'][2]['id']}].length_m" in out and f"stations[{doc['stations'][0]['id']}].chainage_m" in out
    code, out, _ = run(capsys, "validate", str(bad), "--json")
    assert code == 1 and json.loads(out)["valid"] is False
    assert run(capsys, "validate", "demo:ruxi")[0] == 0


def test_malformed_json_file_exits_1_without_traceback(capsys, tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text('{"nodes": [', encoding="utf-8")
    code, _, err = run(capsys, "forecast", str(bad), "--reach", "a", "--chainage-m", "0", "--mass-kg", "1", "--pollutant", "COD")
    assert code == 1 and "invalid JSON at line 1" in err


def test_demo_runs_both_incidents_through_the_service(capsys):
    code, out, _ = run(capsys, "demo", "--lang", "en")
    assert code == 0
    ruxi, puhe = out.split("======== puhe ========")
    assert "Hub received alert ruxi:RX-OILSPOT/petroleum" in ruxi and "1. RX-FOOD-1" in ruxi
    assert "intake suspension: RX-INTAKE" in ruxi and "RX-INTAKE" in ruxi.split("Arrivals:")[1]
    ranking = puhe.split("Sources:")[1].splitlines()
    assert {ranking[1].split()[1], ranking[2].split()[1]} == {"PH-STP-A", "PH-STP-B"}
    assert "dilution release: PH-HPS" in puhe


def test_console_help_explains_units():
    out = subprocess.run([sys.executable, "-m", "server.cli", "forecast", "--help"], capture_output=True, text=True, check=True).stdout
    for unit in ("[kg]", "[s]", "[1/day]", "[mg/L]", "metres"):
        assert unit in out


def test_numerical_engine_agrees_with_analytic_on_the_demo(capsys):
    argv = ["forecast", "demo:ruxi", "--discharger", "RX-FOOD-1", "--mass-kg", "80", "--pollutant", "COD", "--json"]
    a = {r["id"]: r for r in json.loads(run(capsys, *argv)[1])["receptors"]}
    n = {r["id"]: r for r in json.loads(run(capsys, *argv, "--engine", "numerical")[1])["receptors"]}
    assert set(a) == set(n)
    for rid in a:  # DESIGN.md: the two engines agree on peak time within 3 %
        assert n[rid]["peak_s"] == pytest.approx(a[rid]["peak_s"], rel=0.03)


def test_import_nhdplus_then_validate_and_forecast(capsys, tmp_path):
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "data" / "nhdplus" / "walker.gpkg"
    out = tmp_path / "walker.json"
    code, _, err = run(capsys, "import", str(src), "-o", str(out))
    assert code == 0 and "0 validation error(s)" in err
    assert run(capsys, "validate", str(out))[0] == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    ends = {r["to_node"] for r in doc["reaches"]}
    heads = [r["id"] for r in doc["reaches"] if r["from_node"] not in ends]
    gauged = [json.loads(run(capsys, "forecast", str(out), "--reach", h, "--chainage-m", "0", "--mass-kg", "10",
                             "--pollutant", "tracer", "--json")[1])["receptors"] for h in heads]
    assert any(gauged), "some headwater drains past a USGS gauge"
    assert {r["id"][:5] for recs in gauged for r in recs} == {"USGS-"}


def test_forecast_with_nothing_downstream_is_empty_not_an_error(capsys, tmp_path):
    path = tmp_path / "c.nc"
    code, out, _ = run(capsys, "forecast", "demo:ruxi", "--reach", "RX-R09", "--chainage-m", "2000", "--mass-kg", "1",
                       "--pollutant", "COD", "--json", "--netcdf", str(path))
    assert code == 0 and json.loads(out)["receptors"] == [] and path.exists()


def test_import_network_layers_round_trip(capsys, tmp_path):
    from hydrology.document import read_document
    from hydrology.gpkg import write_network_gpkg
    from server.cli import demo_basin_path

    gpkg = tmp_path / "ruxi.gpkg"
    write_network_gpkg(read_document(demo_basin_path("ruxi")), gpkg)
    out = tmp_path / "ruxi.json"
    code, _, _ = run(capsys, "import", str(gpkg), "-o", str(out))
    assert code == 0
    assert run(capsys, "validate", str(gpkg))[0] == 0  # GeoPackage directly as NETWORK


@pytest.fixture(scope="module")
def ruxi_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("replay") / "ruxi.csv"
    assert main(["replay", "ruxi", "-o", str(path)]) == 0
    return path


def test_trace_json_contract(capsys, ruxi_csv):
    code, out, _ = run(capsys, "trace", "demo:ruxi", str(ruxi_csv), "--station", "RX-OILSPOT", "--parameter", "petroleum", "--json")
    assert code == 0
    cands = json.loads(out)["candidates"]
    assert cands[0]["id"] == "RX-FOOD-1"
    for c in cands:
        assert {"id", "probability", "distance_m", "travel_time_s", "release_start", "mass_kg", "evidence"} <= set(c)
    assert any(c["id"].startswith("reach:") for c in cands)
    assert [c["probability"] for c in cands] == sorted((c["probability"] for c in cands), reverse=True)
    assert json.loads(out)["model"] == "pulse"  # decided from the record: the oil came and went


def test_trace_release_model_flag(capsys, ruxi_csv):
    code, out, _ = run(capsys, "trace", "demo:ruxi", str(ruxi_csv), "--station", "RX-OILSPOT", "--parameter", "petroleum",
                       "--release", "pulse", "--json")
    assert code == 0 and json.loads(out)["notes"] == []  # forced: no note on how the model was chosen
    # the oil came and went: no plateau to date a continuous release from
    code, _, err = run(capsys, "trace", "demo:ruxi", str(ruxi_csv), "--station", "RX-OILSPOT", "--parameter", "petroleum",
                       "--release", "continuous")
    assert code == 2 and "plateau" in err and "pulse model" in err
    with pytest.raises(SystemExit) as exc:
        main(["trace", "demo:ruxi", str(ruxi_csv), "--station", "RX-OILSPOT", "--parameter", "petroleum", "--release", "steady"])
    assert exc.value.code == 2 and "--release" in capsys.readouterr().err


def test_detect_json_and_rejected_rows(capsys, ruxi_csv, tmp_path):
    bad = tmp_path / "bad.csv"
    lines = ruxi_csv.read_text().splitlines()
    lines += ["NOPE,petroleum,2025-07-15T03:00:00Z,0.1,mg/L,", "RX-UP,petroleum,2025-07-15T03:00:00Z,-1,mg/L,",
              "RX-UP,petroleum,not-a-time,0.1,mg/L,", "RX-UP,petroleum,2025-07-15T03:00:00Z,0.1,furlongs,"]
    bad.write_text("\n".join(lines) + "\n")
    code, out, err = run(capsys, "detect", "demo:ruxi", str(bad), "--json")
    assert code == 0
    doc = json.loads(out)
    assert len(doc["rejected"]) >= 4 and "rejected" in err
    assert doc["incidents"][0]["stations"][0] == "RX-OILSPOT"


def test_trace_errors_are_clear(capsys, ruxi_csv):
    code, _, err = run(capsys, "trace", "demo:ruxi", str(ruxi_csv), "--station", "RX-UP", "--parameter", "petroleum")
    assert code == 2 and "nothing to trace" in err and "Traceback" not in err
    code, _, err = run(capsys, "trace", "demo:ruxi", str(ruxi_csv), "--station", "RX-OILSPOT", "--parameter", "petroleum",
                       "--operations", "/nonexistent.json")
    assert code == 2 and "--operations" in err


def test_plan_known_release_json_contract(capsys):
    code, out, _ = run(capsys, "plan", "demo:ruxi", "--discharger", "RX-FOOD-1", "--mass-kg", "80", "--pollutant", "petroleum",
                       "--start", "2025-07-15T09:00+08:00", "--now", "2025-07-15T09:35+08:00", "--json")
    assert code == 0
    doc = json.loads(out)
    for a in doc["actions"]:
        assert {"id", "kind", "department", "target", "deadline", "window_start", "window_end", "priority", "rationale",
                "status"} <= set(a)
    assert {a["kind"] for a in doc["actions"]} >= {"halt_discharge", "interception", "dilution_release",
                                                   "intake_suspension", "monitoring", "notify"}
    assert len(doc["departments"]) >= 5


def test_plan_from_readings_markdown(capsys, ruxi_csv):
    code, out, _ = run(capsys, "plan", "demo:ruxi", str(ruxi_csv), "--station", "RX-OILSPOT", "--parameter", "petroleum")
    assert code == 0 and out.startswith("# 处置清单") and "RX-FOOD-1" in out
    code, out, _ = run(capsys, "plan", "demo:ruxi", str(ruxi_csv), "--station", "RX-OILSPOT", "--parameter", "petroleum",
                       "--markdown", "--lang", "en")
    assert code == 0 and "Disposal checklist" in out


def test_plan_usage_errors(capsys):
    assert run(capsys, "plan", "demo:ruxi", "--discharger", "RX-FOOD-1")[0] == 2
    code, _, err = run(capsys, "plan", "demo:ruxi", "--discharger", "RX-FOOD-1", "--mass-kg", "1", "--pollutant", "COD")
    assert code == 2 and "--start" in err


def test_forecast_bands(capsys):
    """``forecast --bands``: P10 <= P50 <= P90 at every receptor, the median next to the single forecast
    (the bands' own median runs on a 5x5 grid of flow and dispersion factors: within 2 %), and the intake's
    suspension window from 30 min before P10 arrival to P90 end."""
    code, out, _ = run(capsys, *FORECAST, "--json", "--bands")
    assert code == 0
    doc = json.loads(out)
    single = {r["id"]: r for r in doc["receptors"]}
    bands = doc["bands"]["receptors"]
    assert set(bands) == set(single)
    for rid, b in bands.items():
        for field in ("arrival_s", "peak_s", "end_s"):
            assert b[field]["p10"] <= b[field]["p50"] <= b[field]["p90"], (rid, field)
        assert b["arrival_s"]["p50"] == pytest.approx(single[rid]["arrival_s"], rel=0.02)
    intake = next(rid for rid, b in bands.items() if b["kind"] == "intake")
    lo, hi = bands[intake]["suspension_window_s"]
    assert lo == pytest.approx(bands[intake]["arrival_s"]["p10"] - 1800.0, abs=0.2)
    assert hi == bands[intake]["end_s"]["p90"] and hi > single[intake]["end_s"]
    code, _, err = run(capsys, *FORECAST, "--bands", "--engine", "numerical")
    assert code == 2 and "--bands" in err

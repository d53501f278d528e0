"""The command line a user expects (issue 14): --version, help with units, clean errors, fast start.

Every subcommand that writes a file is run with an output in a missing directory: one line on
stderr, exit 2, no traceback, and nothing computed first (the check runs before the work).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from server.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
RUXI = ["demo:ruxi", "--discharger", "RX-FOOD-1", "--mass-kg", "80", "--pollutant", "petroleum"]
MISSING = "no_such_dir/out"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"rivertrace {version('rivertrace')}"


#: flags whose value has no physical unit: their help says so with [-]
UNITLESS = {"--seed", "--members", "--top", "--chunk-size", "--flow-cv", "--velocity-cv", "--dispersion-factor"}


def test_every_flag_has_help_and_every_number_its_unit():
    missing, no_unit, not_dimensionless = [], [], []
    for name, sub in _subparsers(build_parser()).items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
                continue
            flag = action.option_strings[-1] if action.option_strings else action.dest
            if not action.help:
                missing.append(f"{name} {flag}")
            numeric = action.type in (int, float) or getattr(action.type, "__name__", "") in ("int", "float")
            if numeric and action.option_strings and "[" not in action.help:
                no_unit.append(f"{name} {flag}")
            if flag in UNITLESS and "[-]" not in action.help:
                not_dimensionless.append(f"{name} {flag}")
    assert missing == [] and no_unit == [] and not_dimensionless == []


def test_help_has_no_literal_percent_escapes():
    for name in _subparsers(build_parser()):
        out = subprocess.run([sys.executable, "-m", "server.cli", name, "--help"], capture_output=True, text=True,
                             check=True, timeout=60).stdout
        assert "%%" not in out, name


def test_help_does_not_import_the_science():
    """``--help`` stays fast because building the parser imports no heavy module (deterministic check)."""
    code = ("import sys; from server.cli import build_parser; build_parser(); "
            "heavy = ('numpy', 'scipy', 'pandas', 'xarray', 'matplotlib', 'geopandas', 'grpc', 'dask'); "
            "print(sorted(m for m in heavy if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60, cwd=ROOT)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------ bad output paths
def _calibrate_argv(out: str) -> list[str]:
    return ["calibrate", "demo:ruxi", "tracer.csv", "--reach", "RX-R03", "--chainage-m", "0", "--mass-kg", "1", "-o", out]


OUTPUTS = {
    "replay": lambda o: ["replay", "ruxi", "-o", o + ".csv"],
    "import": lambda o: ["import", str(ROOT / "tests/data/nhdplus/walker.gpkg"), "-o", o + ".json"],
    "export --gpkg": lambda o: ["export", "demo:ruxi", "--gpkg", o + ".gpkg"],
    "export --geojson": lambda o: ["export", "demo:ruxi", "--geojson", o + ".geojson"],
    "forecast --netcdf": lambda o: ["forecast", *RUXI, "--netcdf", o + ".nc"],
    "sweep -o": lambda o: ["sweep", "demo:ruxi", "--no-progress", "-o", o + ".nc"],
    "sweep --csv": lambda o: ["sweep", "demo:ruxi", "--no-progress", "-o", "ok.nc", "--csv", o + ".csv"],
    "ensemble": lambda o: ["ensemble", *RUXI, "--members", "10", "-o", o + ".nc"],
    "plot --map": lambda o: ["plot", *RUXI, "--map", o + ".png"],
    "plot --curves": lambda o: ["plot", *RUXI, "--curves", o + ".png"],
    "plot --gpkg": lambda o: ["plot", *RUXI, "--gpkg", o + ".gpkg"],
    "calibrate": lambda o: _calibrate_argv(o + ".json"),
    "cap": lambda o: ["cap", *RUXI, "--start", "2025-07-15T09:00+08:00", "-o", o + ".xml"],
}


@pytest.mark.parametrize("case", sorted(OUTPUTS))
def test_missing_output_directory_is_one_line_exit_2(case, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _out, err = run(capsys, *OUTPUTS[case](MISSING))
    assert code == 2, err
    assert err.count("\n") == 1 and "does not exist" in err and "no_such_dir" in err and "Traceback" not in err
    assert err.startswith(f"rivertrace {case.split()[0]}: ")
    assert not list(tmp_path.iterdir())  # refused before any work: nothing written


@pytest.mark.parametrize("case", ["replay", "forecast --netcdf", "export --gpkg"])
def test_output_that_is_a_directory_is_refused(case, capsys, tmp_path):
    code, _, err = run(capsys, *[a.replace(MISSING + ".csv", str(tmp_path)).replace(MISSING + ".nc", str(tmp_path))
                                 .replace(MISSING + ".gpkg", str(tmp_path)) for a in OUTPUTS[case](MISSING)])
    assert code == 2 and "is a directory" in err and err.count("\n") == 1


def test_write_error_after_the_check_is_still_one_line(capsys, tmp_path, monkeypatch):
    """The safety net: an OSError while writing (here: the directory vanished) is one line, exit 2."""
    from server import cli

    monkeypatch.setattr(cli, "check_outputs", lambda args: None)
    code, _, err = run(capsys, "replay", "ruxi", "-o", str(tmp_path / "gone" / "r.csv"))
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err and "gone" in err


def test_main_module_entry_point_has_no_traceback(tmp_path):
    res = subprocess.run([sys.executable, "-m", "server.cli", "replay", "ruxi", "-o", str(tmp_path / "x" / "r.csv")],
                         check=False, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert res.returncode == 2 and "Traceback" not in res.stderr and res.stderr.count("\n") == 1


@pytest.mark.parametrize("argv,msg", [
    (["ensemble", *RUXI, "--members", "0", "-o", "e.nc"], "--members: must be positive"),
    (["ensemble", *RUXI, "--flow-cv", "-0.1", "-o", "e.nc"], "--flow-cv: must be non-negative"),
    (["sweep", "demo:ruxi", "--chunk-size", "0", "-o", "m.nc"], "--chunk-size: must be positive"),
    (["trace", "demo:ruxi", "r.csv", "--station", "s", "--parameter", "p", "--horizon-h", "nan"], "--horizon-h"),
    (["calibrate", "demo:ruxi", "t.csv", "--reach", "RX-R03", "--chainage-m", "0", "--mass-kg", "-1", "-o", "f.json"],
     "--mass-kg: must be positive"),
])
def test_bad_numbers_are_usage_errors(capsys, argv, msg):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2 and msg in capsys.readouterr().err


def test_missing_groups_file_is_one_line(capsys, tmp_path):
    argv = _calibrate_argv(str(tmp_path / "f.json")) + ["--groups", str(tmp_path / "nope.json")]
    (tmp_path / "tracer.csv").write_text("station_id,time_s,concentration_mg_l\nRX-OILSPOT,60,0.1\n", encoding="utf-8")
    argv[2] = str(tmp_path / "tracer.csv")
    code, _, err = run(capsys, *argv)
    assert code == 2 and "nope.json" in err and err.count("\n") == 1


# ------------------------------------------------------------------------------ demo: everywhere
def test_calibrate_reads_demo_networks(capsys, tmp_path):
    """``calibrate demo:ruxi`` (issue 14: it failed with 'cannot read'): fit curves made by the same engine."""
    from hydrology.pollutants import Pollutant
    from hydrology.transport.analytic import Release, forecast
    from server.cli import load_valid_network

    net = load_valid_network("demo:ruxi")
    fc = forecast(net, Release("RX-R03", 0.0, Pollutant("tracer"), mass_kg=5.0))
    curves = fc.curves(n_times=400)
    rows = ["station_id,time_s,concentration_mg_l"]
    for j, rid in enumerate(curves["receptor"].values):
        if curves["kind"].values[j] == "station":
            rows += [f"{rid},{float(t)!r},{float(c)!r}" for t, c in zip(curves["time"].values, curves["concentration"].values[:, j],
                                                          strict=True)]
    csv = tmp_path / "tracer.csv"
    csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "fitted.json"
    code, _printed, err = run(capsys, "calibrate", "demo:ruxi", str(csv), "--reach", "RX-R03", "--chainage-m", "0",
                              "--mass-kg", "5", "-o", str(out))
    assert code == 0, err
    fitted = {p["name"]: p["value"] for p in json.loads(out.read_text(encoding="utf-8"))["calibration"]["parameters"]}
    # noise-free curves from the model being fitted: the velocity factor comes back as 1 (to the
    # optimiser's tolerance, well inside 1 %; a wrong network or unit would be far off)
    assert fitted["velocity_factor"] == pytest.approx(1.0, rel=0.01)


@pytest.mark.parametrize("command", ["validate", "sweep", "ensemble", "plot", "export", "forecast"])
def test_unknown_demo_basin_is_named(command, capsys):
    argv = {"validate": ["validate", "demo:atlantis"],
            "sweep": ["sweep", "demo:atlantis", "-o", "m.nc"],
            "ensemble": ["ensemble", "demo:atlantis", "--mass-kg", "1", "-o", "e.nc"],
            "plot": ["plot", "demo:atlantis", "--mass-kg", "1", "--pollutant", "COD", "--map", "m.png"],
            "export": ["export", "demo:atlantis", "--gpkg", "x.gpkg"],
            "forecast": ["forecast", "demo:atlantis", "--mass-kg", "1", "--pollutant", "COD"]}[command]
    code, _, err = run(capsys, *argv)
    assert code == 2 and "unknown demo basin 'atlantis'" in err


# ------------------------------------------------------------------------------ sweep worst case
def test_sweep_warns_when_worst_case_columns_cannot_be_computed(capsys, tmp_path):
    code, _, err = run(capsys, "sweep", "demo:ruxi", "--no-progress", "-o", str(tmp_path / "m.nc"))
    assert code == 0
    assert "worst-case columns (worst_*) are all NaN" in err and "'tracer' has no GB 3838 standard" in err
    code, _, err = run(capsys, "sweep", "demo:puhe", "--no-progress", "--pollutant", "COD", "--receptors", "all",
                       "-o", str(tmp_path / "m2.nc"))
    import xarray as xr

    with xr.open_dataset(tmp_path / "m2.nc", engine="h5netcdf") as ds:
        computed = bool((ds["worst_peak_g_m3"].notnull()).any())
    assert code == 0 and computed and "worst-case" not in err  # computed: no warning


@pytest.mark.parametrize("argv,msg", [
    (["forecast", *RUXI, "--kinds", "nonsense"], "--kinds 'nonsense': unknown kind"),
    (["plot", *RUXI, "--kinds", "station,pumps", "--map", "m.png"], "unknown kind(s) ['pumps']"),
    (["calibrate", "demo:ruxi", str(ROOT / "README.md"), "--reach", "RX-R03", "--chainage-m", "0", "--mass-kg", "1",
      "-o", "f.json"], "needs rows and columns station_id"),  # a file that is not a tracer CSV (was a TypeError)
    (["trace", "demo:ruxi", "ruxi.csv", "--station", "RX-OILSPOT", "--parameter", "petroleum", "--operations",
      "no_such.json"], "--operations no_such.json: No such file"),
    (["export", "demo:ruxi", "--gpkg", "x.gpkg", "--mass-kg", "1"], "a forecast needs --mass-kg and --pollutant"),
    (["export", "demo:ruxi"], "nothing to write"),
    (["cap", *RUXI], "give --start"),
    (["plot", *RUXI], "nothing to write"),
])
def test_other_user_mistakes_are_one_line_exit_2(argv, msg, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if "ruxi.csv" in argv:  # readings that load, so that the mistake under test is reached
        assert main(["replay", "ruxi", "-o", "ruxi.csv"]) == 0
        capsys.readouterr()
    code, _out, err = run(capsys, *argv)
    assert code == 2 and msg in err and err.count("\n") == 1 and "Traceback" not in err, err

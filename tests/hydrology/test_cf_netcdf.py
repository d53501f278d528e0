"""Every netCDF the project writes passes the IOOS compliance-checker (CF 1.8) with no errors (issue 14).

The checker is the independent judge: ``compliance-checker`` from PyPI (the ``test`` extra), run
offline through its Python API on files written by the CLI commands a modeller uses. A negative
control (the same curves written with plain ``xarray.to_netcdf``, as before issue 14) shows that
the checker does catch the errors it is meant to catch here.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

import numpy as np
import pytest
import xarray as xr

from server.cli import main

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the checker's own ioos_sos notice

cc = pytest.importorskip("compliance_checker.runner", reason="compliance-checker is in the test extra")

RUXI = ["demo:ruxi", "--discharger", "RX-FOOD-1", "--mass-kg", "80", "--pollutant", "petroleum"]
START = "2025-07-15T09:00+08:00"


def cf_problems(path, tmp_path) -> tuple[list[str], bool]:
    """(failed high-priority checks, whether the checker itself raised) for ``path`` under cf:1.8."""
    cc.CheckSuite.load_all_available_checkers()
    report = tmp_path / f"{path.name}.cc.json"
    _ok, raised = cc.ComplianceChecker.run_checker(str(path), ["cf:1.8"], 0, "normal", output_filename=str(report),
                                                    output_format="json")
    res = json.loads(report.read_text(encoding="utf-8"))["cf:1.8"]
    failed = [f"{c['name']}: {c['msgs']}" for c in res["high_priorities"] if c["value"][0] < c["value"][1]]
    return failed, bool(raised)


CASES = {
    "forecast-analytic": ["forecast", *RUXI, "--json", "--netcdf"],
    "forecast-analytic-start": ["forecast", *RUXI, "--start", START, "--json", "--netcdf"],
    "forecast-numerical": ["forecast", *RUXI, "--engine", "numerical", "--json", "--netcdf"],
    "forecast-numerical-start": ["forecast", *RUXI, "--engine", "numerical", "--start", START, "--json", "--netcdf"],
    "sweep-tracer": ["sweep", "demo:ruxi", "--no-progress", "-o"],
    "sweep-cod-reaches": ["sweep", "demo:puhe", "--sources", "reaches", "--receptors", "all", "--pollutant", "COD",
                          "--no-progress", "-o"],
    "ensemble": ["ensemble", *RUXI, "--members", "50", "--start", START, "-o"],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_written_netcdf_passes_the_cf_checker(case, tmp_path, capsys):
    path = tmp_path / f"{case}.nc"
    assert main([*CASES[case], str(path)]) == 0
    capsys.readouterr()
    failed, raised = cf_problems(path, tmp_path)
    assert failed == [] and not raised
    import netCDF4

    with netCDF4.Dataset(path) as nc:  # the file as written, before xarray decodes anything
        for name, var in nc.variables.items():
            assert var.dtype not in (np.int64, np.uint64, str), (name, var.dtype)  # no int64, no vlen strings
            assert name not in nc.dimensions or "_FillValue" not in var.ncattrs(), name  # CF 2.5.1
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        assert ds.attrs["Conventions"] == "CF-1.8"  # one Conventions value in every file
        if "receptor" in ds.dims:  # receptors are located: lon/lat on WGS 84
            assert ds["lon"].attrs["units"] == "degrees_east" and ds["lat"].attrs["standard_name"] == "latitude"
            # both demo basins lie in Chongqing municipality (105.2-110.2 E, 28.1-32.3 N): a swapped
            # lon/lat or an unprojected chainage would fall outside
            lon, lat = ds["lon"].values, ds["lat"].values
            assert np.all((lon > 105.2) & (lon < 110.2) & (lat > 28.1) & (lat < 32.3)), (lon, lat)


def test_curves_are_time_series_with_real_times_only_when_the_start_is_known(tmp_path, capsys):
    import netCDF4

    timed, bare = tmp_path / "timed.nc", tmp_path / "bare.nc"
    assert main(["forecast", *RUXI, "--start", START, "--json", "--netcdf", str(timed)]) == 0
    assert main(["forecast", *RUXI, "--json", "--netcdf", str(bare)]) == 0
    capsys.readouterr()
    with netCDF4.Dataset(timed) as nc:
        assert nc.featureType == "timeSeries" and nc["receptor"].cf_role == "timeseries_id"
        assert nc["time"].units == "seconds since 2025-07-15 01:00:00" and nc["time"].calendar == "standard"
        assert nc["concentration"].dimensions == ("receptor", "time")  # instance dimension first (CF 9.3.1)
        assert nc["receptor"].dtype == "S1" and nc["receptor"].ndim == 2  # char array, not a vlen string
    with xr.open_dataset(timed, engine="h5netcdf") as ds:
        assert ds["time"].values[0] == np.datetime64("2025-07-15T01:00:00")
    with netCDF4.Dataset(bare) as nc:
        t = nc["time_after_release"]
        assert t.units == "s" and "calendar" not in t.ncattrs() and "time" not in nc.variables
    with xr.open_dataset(bare, engine="h5netcdf") as ds:  # decodes as plain seconds, never as 1970 dates
        assert ds["time_after_release"].dtype == np.float64 and float(ds["time_after_release"][0]) == 0.0


def test_ensemble_member_is_int32_and_start_recorded(tmp_path, capsys):
    import netCDF4

    path = tmp_path / "ens.nc"
    assert main(["ensemble", *RUXI, "--members", "20", "--start", START, "-o", str(path)]) == 0
    capsys.readouterr()
    with netCDF4.Dataset(path) as nc:
        assert nc["member"].dtype == np.int32  # netCDF-3 has no int64
        assert datetime.fromisoformat(nc.release_start) == datetime(2025, 7, 15, 1, tzinfo=UTC)


def test_negative_control_plain_xarray_output_fails_the_checker(tmp_path):
    """Without hydrology.io.netcdf the curves carry _FillValue on time: the checker must say so."""
    from hydrology.transport.engines import run_engine
    from server.cli import build_release, load_valid_network
    from server.cli.forecast import add_forecast_parser

    net = load_valid_network("demo:ruxi")
    sub = argparse.ArgumentParser().add_subparsers()
    ns = add_forecast_parser(sub).parse_args(RUXI)
    _fc, ds = run_engine("numerical", net, build_release(net, ns))
    path = tmp_path / "plain.nc"
    ds.to_netcdf(path, engine="h5netcdf")
    failed, _raised = cf_problems(path, tmp_path)
    assert any("_FillValue" in f for f in failed)

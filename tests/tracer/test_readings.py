"""Readings: CSV/DataFrame/xarray loading, SI conversion, and row-level rejection."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from numpy.testing import assert_allclose

from tracer.exceptions import ReadingsFormatError
from tracer.readings import (
    LoadResult,
    canonical_parameter,
    internal_unit,
    load_readings_csv,
    readings_from_frame,
    readings_from_xarray,
)

FRENCH = Path(__file__).resolve().parents[1] / "data" / "water_quality" / "french_creek_do_temp.csv"
HEADER = "station_id,parameter,time,value,unit,flag\n"
GOOD = "S1,DO,2025-08-01T08:00:00+08:00,6.5,mg/L,\n"


def load(rows: str, known: set[str] | None = frozenset({"S1", "S2"})) -> LoadResult:
    return load_readings_csv(io.StringIO(HEADER + rows), known_stations=known)


@pytest.mark.parametrize(("parameter", "value", "unit", "expected_si", "expected_param"), [
    ("DO", "6.5", "mg/L", 6.5, "DO"),                      # mg/L = g/m3
    ("oil", "20", "ug/L", 0.020, "petroleum"),             # 1 ug/L = 1e-3 g/m3; alias from the standard
    ("NH3-N", "0.8", "g/m3", 0.8, "NH3-N"),
    ("ammonia", "800", "µg/L", 0.8, "NH3-N"),              # micro sign spelling
    ("temperature", "21.5", "degC", 21.5, "temperature"),  # kept in degC (documented exception)
    ("temperature", "294.65", "K", 21.5, "temperature"),
    ("temp", "70.7", "degF", 21.5, "temperature"),         # (70.7 - 32) * 5/9 = 21.5
    ("discharge", "12.5", "m3/s", 12.5, "discharge"),
    ("discharge", "100", "cfs", 100 * 0.3048**3, "discharge"),  # 1 ft3/s = 0.3048^3 m3/s (exact foot)
    ("conductivity", "500", "uS/cm", 0.05, "conductivity"),     # 1 uS/cm = 1e-4 S/m
    ("turbidity", "12", "NTU", 12.0, "turbidity"),
    ("pH", "7.2", "", 7.2, "pH"),
])
def test_units_are_converted_to_si(parameter, value, unit, expected_si, expected_param):
    res = load(f"S1,{parameter},2025-08-01T00:00:00Z,{value},{unit},\n")
    assert res.rejected == ()
    row = res.readings.frame.iloc[0]
    assert row["parameter"] == expected_param
    # conversion factors are exact up to float rounding
    assert_allclose(row["value"], expected_si, rtol=1e-12)


def test_times_with_offsets_become_utc_and_are_sorted():
    res = load("S1,DO,2025-08-01T09:00:00+08:00,6.1,mg/L,\n"
               "S1,DO,2025-08-01T00:30:00Z,6.2,mg/L,\n"
               "S1,DO,2025-07-31T19:00:00-05:00,6.3,mg/L,\n")
    assert res.rejected == ()
    frame = res.readings.frame
    assert str(frame["time"].dtype) == "datetime64[ns, UTC]"
    assert list(frame["time"]) == [pd.Timestamp("2025-08-01T00:00Z"), pd.Timestamp("2025-08-01T00:30Z"),
                                   pd.Timestamp("2025-08-01T01:00Z")]
    assert list(frame["value"]) == [6.3, 6.2, 6.1]  # out-of-order rows sorted, none rejected


@pytest.mark.parametrize(("row", "field", "reason_part"), [
    ("X9,DO,2025-08-01T00:00:00Z,6.5,mg/L,", "station_id", "unknown station 'X9'"),
    (",DO,2025-08-01T00:00:00Z,6.5,mg/L,", "station_id", "empty station id"),
    ("S1,radon,2025-08-01T00:00:00Z,6.5,mg/L,", "parameter", "unknown parameter 'radon'"),
    ("S1,DO,2025-08-01T00:00:00Z,6.5,furlongs,", "unit", "'furlongs'"),
    ("S1,DO,2025-08-01T00:00:00Z,6.5,degC,", "unit", "not a mass_concentration unit"),
    ("S1,DO,2025-08-01T00:00:00,6.5,mg/L,", "time", "no UTC offset"),
    ("S1,DO,yesterday,6.5,mg/L,", "time", "not an ISO 8601 timestamp"),
    ("S1,DO,,6.5,mg/L,", "time", "missing time"),
    ("S1,DO,2025-08-01T00:00:00Z,NaN,mg/L,", "value", "not a finite number"),
    ("S1,DO,2025-08-01T00:00:00Z,,mg/L,", "value", "not a finite number"),
    ("S1,DO,2025-08-01T00:00:00Z,six,mg/L,", "value", "not a finite number"),
    ("S1,DO,2025-08-01T00:00:00Z,inf,mg/L,", "value", "not a finite number"),
    ("S1,COD,2025-08-01T00:00:00Z,-3,mg/L,", "value", "outside the physically possible range"),
    ("S1,DO,2025-08-01T00:00:00Z,26,mg/L,", "value", "DO 26 g/m3 is outside"),
    ("S1,DO,2025-08-01T00:00:00Z,26000,ug/L,", "value", "DO 26 g/m3 is outside"),  # checked after conversion
    ("S1,temperature,2025-08-01T00:00:00Z,-10.75,degC,", "value", "outside the physically possible"),
    ("S1,pH,2025-08-01T00:00:00Z,15,,", "value", "outside the physically possible"),
])
def test_bad_rows_are_rejected_and_the_rest_kept(row, field, reason_part):
    res = load(GOOD + row + "\n" + "S2,DO,2025-08-01T00:05:00Z,7.0,mg/L,\n")
    assert [r.row_number for r in res.rejected] == [2]
    (rej,) = res.rejected
    assert rej.field == field
    assert reason_part in rej.reason
    assert len(res.readings) == 2  # rows 1 and 3 survive


def test_a_row_with_several_problems_reports_each():
    res = load("X9,radon,noon,abc,mg/L,\n")
    assert sorted(r.field for r in res.rejected) == ["parameter", "station_id", "time", "value"]
    assert res.rejected_row_numbers == (1,)
    assert len(res.readings) == 0


def test_duplicates_keep_the_first_valid_row():
    res = load("S1,DO,2025-08-01T00:00:00Z,6.0,mg/L,\n"
               "S1,DO,2025-08-01T08:00:00+08:00,6.9,mg/L,\n"   # same instant, other offset
               "S1,COD,2025-08-01T00:00:00Z,NaN,mg/L,\n"
               "S1,COD,2025-08-01T00:00:00Z,12,mg/L,\n")       # the first one was invalid: kept
    assert [(r.row_number, r.field) for r in res.rejected] == [(2, "time"), (3, "value")]
    assert "duplicate of row 1" in res.rejected[0].reason
    frame = res.readings.frame.set_index("parameter")
    assert frame.loc["DO", "value"] == 6.0
    assert frame.loc["COD", "value"] == 12.0


def test_unknown_stations_pass_when_no_station_list_is_given():
    res = load("ANY,DO,2025-08-01T00:00:00Z,6.0,mg/L,\n", known=None)
    assert res.rejected == () and res.readings.stations == ("ANY",)


def test_flag_column_is_optional_and_passed_through():
    without = load_readings_csv(io.StringIO("station_id,parameter,time,value,unit\n"
                                            "S1,DO,2025-08-01T00:00:00Z,6.0,mg/L\n"))
    assert without.rejected == () and without.readings.frame["flag"].isna().all()
    flagged = load("S1,DO,2025-08-01T00:00:00Z,6.0,mg/L,suspect\n")
    assert flagged.readings.frame["flag"].tolist() == ["suspect"]


@pytest.mark.parametrize("header", [
    "station_id,parameter,time,value\n",                       # unit missing
    "station,parameter,time,value,unit\n",                     # misspelt column
    "station_id,parameter,time,value,unit,flag,comment\n",     # unexpected column
])
def test_wrong_columns_refuse_the_whole_file(header):
    with pytest.raises(ReadingsFormatError, match="expected exactly"):
        load_readings_csv(io.StringIO(header + "S1,DO,2025-08-01T00:00:00Z,6.0,mg/L\n"))


def test_unreadable_file_raises(tmp_path):
    with pytest.raises(ReadingsFormatError, match="cannot be read"):
        load_readings_csv(tmp_path / "missing.csv")


def test_frame_with_aware_and_naive_datetimes():
    df = pd.DataFrame({"station_id": ["S1", "S1"], "parameter": ["DO", "DO"],
                       "time": pd.to_datetime(["2025-08-01 08:00", "2025-08-01 09:00"]),
                       "value": [6.0, 6.1], "unit": ["mg/L", "mg/L"]})
    naive = readings_from_frame(df)
    assert len(naive.readings) == 0
    assert {r.reason for r in naive.rejected} == {"time has no timezone (pass naive_timezone=)"}
    local = readings_from_frame(df, naive_timezone="Asia/Shanghai")
    assert list(local.readings.frame["time"]) == [pd.Timestamp("2025-08-01T00:00Z"), pd.Timestamp("2025-08-01T01:00Z")]
    aware = readings_from_frame(df.assign(time=df["time"].dt.tz_localize("Asia/Shanghai")))
    assert list(aware.readings.frame["time"]) == list(local.readings.frame["time"])


def test_xarray_dataset_is_loaded_with_its_units():
    times = pd.date_range("2025-08-01", periods=3, freq="h")
    ds = xr.Dataset(
        {"DO": (("station_id", "time"), [[6.0, np.nan, 6.2], [7.0, 7.1, 7.2]], {"units": "mg/L"}),
         "petroleum": (("station_id", "time"), [[10.0, 20.0, 30.0], [1.0, 2.0, 3.0]], {"units": "ug/L"})},
        coords={"station_id": ["S1", "S2"], "time": times})
    res = readings_from_xarray(ds, known_stations={"S1", "S2"})
    assert res.rejected == ()
    assert len(res.readings) == 11  # the NaN cell is padding, not a reading
    oil = res.readings.series("S1", "petroleum")
    assert_allclose(oil.to_numpy(), [0.01, 0.02, 0.03], rtol=1e-12)  # ug/L -> g/m3, exact factor
    assert oil.index[0] == pd.Timestamp("2025-08-01T00:00Z")  # CF convention: naive times are UTC


def test_xarray_without_units_is_refused():
    da = xr.DataArray([[1.0]], dims=("station_id", "time"), name="DO",
                      coords={"station_id": ["S1"], "time": pd.date_range("2025-08-01", periods=1)})
    with pytest.raises(ReadingsFormatError, match="units"):
        readings_from_xarray(da)
    assert len(readings_from_xarray(da, unit="mg/L").readings) == 1


def test_parameter_names_and_units():
    assert canonical_parameter("dissolved oxygen") == "DO"
    assert canonical_parameter("Temperature") == "temperature"
    assert internal_unit("COD") == "g/m3"
    assert internal_unit("temperature") == "degC"
    assert internal_unit("faecal-coliform") == "count/L"


def test_french_creek_record_rejections_match_an_independent_count():
    """The real record through the loader: NA rows, one duplicated time, impossible temperatures."""
    raw = pd.read_csv(FRENCH)
    local = pd.to_datetime(raw["date"] + " " + raw["time"], format="%m/%d/%Y %H:%M:%S")
    times = local.dt.tz_localize("America/Denver")
    frame = pd.concat([pd.DataFrame({"station_id": "FC", "parameter": p, "time": times, "value": raw[c], "unit": u})
                       for c, p, u in (("oxy", "DO", "mg/L"), ("temp", "temperature", "degC"))], ignore_index=True)
    res = readings_from_frame(frame)
    by_reason: dict[str, int] = {}
    for r in res.rejected:
        key = "nan" if "finite" in r.reason else "dup" if "duplicate" in r.reason else "impossible"
        by_reason[key] = by_reason.get(key, 0) + 1
    # independent counts from the raw table with plain pandas
    n_nan = int(raw["oxy"].isna().sum() + raw["temp"].isna().sum())
    n_cold = int((raw["temp"] < -2.0).sum())
    valid = pd.concat([pd.DataFrame({"p": "DO", "t": times, "ok": raw["oxy"].notna()}),
                       pd.DataFrame({"p": "T", "t": times, "ok": raw["temp"].notna() & (raw["temp"] >= -2.0)})])
    n_dup = int(valid[valid["ok"]].duplicated(["p", "t"]).sum())
    assert by_reason == {"nan": n_nan, "impossible": n_cold, "dup": n_dup}
    assert n_nan == 3316 and n_dup == 2  # SOURCES.md: 1658 NA rows, both columns; one duplicate row
    assert len(res.readings) == 2 * len(raw) - n_nan - n_cold - n_dup

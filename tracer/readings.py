"""Station readings: load, validate, convert to SI, and keep what is usable.

A reading is ``(station_id, parameter, time, value, unit, flag)``. Tables come from CSV files with
exactly those column names (``flag`` optional), from pandas DataFrames or from xarray objects. Inside,
every value is SI: concentrations in g/m3 (= mg/L; ug/L x 1e-3), discharge in m3/s, conductivity in
S/m. **Temperature is the one non-SI exception: it is kept in degC**, as every water-quality standard
and sensor states it (Kelvin would only invite off-by-273 errors in rules). Turbidity stays in
NTU/FNU (a formazin-calibrated optical unit with no SI equivalent) and pH is dimensionless.

Bad rows never sink the table. Each problem becomes a :class:`RejectedRow` naming the row, the field,
the raw value and the reason; the other rows are kept. Rows are checked one by one first (station,
parameter, unit, time, value, physical bounds); then, among the rows that passed, a later row with the
same station, parameter and time as an earlier one is rejected as a duplicate (the first valid row
wins, so a re-sent value after a NaN is accepted). Out-of-order times are sorted, never rejected.

Row numbers are 1-based positions among the data rows: row 1 is the first row after the CSV header
(CSV line 2) or the first row of a DataFrame.
"""

from __future__ import annotations

import functools
import io
import math
import os
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from hydrology.exceptions import UnknownModelError
from hydrology.units import CFS

from .exceptions import ReadingsFormatError

Quantity = Literal["mass_concentration", "temperature", "discharge", "turbidity", "conductivity",
                   "count", "dimensionless"]

#: columns of a readings table, in order; ``flag`` may be absent
CSV_COLUMNS: tuple[str, ...] = ("station_id", "parameter", "time", "value", "unit", "flag")
REQUIRED_COLUMNS: tuple[str, ...] = CSV_COLUMNS[:-1]
#: columns of :attr:`Readings.frame`
FRAME_COLUMNS: tuple[str, ...] = ("station_id", "parameter", "time", "value", "flag")
TIME_DTYPE = "datetime64[ns, UTC]"


@dataclass(frozen=True, slots=True)
class UnitConversion:
    """Affine conversion to the internal unit: ``internal = value * scale + offset``."""

    scale: float
    offset: float = 0.0


#: internal unit of each quantity
INTERNAL_UNIT: dict[Quantity, str] = {
    "mass_concentration": "g/m3", "temperature": "degC", "discharge": "m3/s", "turbidity": "NTU",
    "conductivity": "S/m", "count": "count/L", "dimensionless": "1",
}

#: accepted unit spellings (after :func:`normalise_unit`) per quantity
UNITS: dict[Quantity, dict[str, UnitConversion]] = {
    "mass_concentration": {
        "g/m3": UnitConversion(1.0), "mg/l": UnitConversion(1.0), "ug/l": UnitConversion(1.0e-3),
        "mg/m3": UnitConversion(1.0e-3), "ng/l": UnitConversion(1.0e-6), "g/l": UnitConversion(1.0e3),
        "kg/m3": UnitConversion(1.0e3), "ppm": UnitConversion(1.0), "ppb": UnitConversion(1.0e-3),
    },
    "temperature": {
        "degc": UnitConversion(1.0), "c": UnitConversion(1.0), "k": UnitConversion(1.0, -273.15),
        "degf": UnitConversion(5.0 / 9.0, -32.0 * 5.0 / 9.0),
    },
    "discharge": {
        "m3/s": UnitConversion(1.0), "l/s": UnitConversion(1.0e-3), "ft3/s": UnitConversion(CFS),
        "cfs": UnitConversion(CFS), "m3/h": UnitConversion(1.0 / 3600.0),
    },
    "turbidity": {"ntu": UnitConversion(1.0), "fnu": UnitConversion(1.0)},
    "conductivity": {
        "s/m": UnitConversion(1.0), "us/cm": UnitConversion(1.0e-4), "ms/cm": UnitConversion(0.1),
        "ms/m": UnitConversion(1.0e-3),
    },
    # counts per litre, as the standards state faecal coliforms
    "count": {"count/l": UnitConversion(1.0), "mpn/l": UnitConversion(1.0), "cfu/l": UnitConversion(1.0),
              "mpn/100ml": UnitConversion(10.0), "cfu/100ml": UnitConversion(10.0)},
    "dimensionless": {"1": UnitConversion(1.0), "-": UnitConversion(1.0), "": UnitConversion(1.0),
                      "ph": UnitConversion(1.0), "dimensionless": UnitConversion(1.0)},
}

#: parameters outside the standards' item lists, with their quantity
NON_STANDARD_PARAMETERS: dict[str, Quantity] = {
    "temperature": "temperature", "discharge": "discharge", "turbidity": "turbidity",
    "conductivity": "conductivity",
}
#: quantity of a standard item, by the (normalised) unit its standard table gives
STANDARD_UNIT_QUANTITY: dict[str, Quantity] = {
    "mg/l": "mass_concentration", "count/l": "count", "dimensionless": "dimensionless",
    "dilutionratio": "dimensionless", "degc": "temperature",
}
#: aliases (lower case) of the non-standard parameters; standard aliases are the standards module's
PARAMETER_ALIASES: dict[str, str] = {
    "temp": "temperature", "water_temperature": "temperature", "water temperature": "temperature",
    "flow": "discharge", "q": "discharge", "cond": "conductivity", "ec": "conductivity",
    "specific_conductance": "conductivity", "specific conductance": "conductivity",
}

#: physically impossible outside these bounds [internal unit], by parameter then by quantity
PHYSICAL_BOUNDS_BY_PARAMETER: dict[str, tuple[float, float]] = {
    # DO saturation is ~14.6 g/m3 at 0 degC (APHA 4500-O; Benson & Krause 1984); 25 g/m3 is beyond
    # any reported supersaturation in rivers and is the limit.
    "DO": (0.0, 25.0),
    "pH": (0.0, 14.0),
}
PHYSICAL_BOUNDS_BY_QUANTITY: dict[Quantity, tuple[float, float]] = {
    "mass_concentration": (0.0, math.inf),
    # liquid water at atmospheric pressure (sea water freezes near -1.9 degC)
    "temperature": (-2.0, 100.0),
    # negative discharge is real in tidal and backwater reaches
    "discharge": (-math.inf, math.inf),
    "turbidity": (0.0, math.inf),
    "conductivity": (0.0, math.inf),
    "count": (0.0, math.inf),
    "dimensionless": (0.0, math.inf),
}

#: quality flags rivertrace gives a meaning to (the ``flag`` column; any other string is kept as given).
#: The HJ 212 gateway writes them from the standard's data flags (``server/hj212/codes.py``); a
#: normal reading has no flag.
QUALITY_FLAGS: dict[str, str] = {
    "stopped": "instrument stopped", "maintenance": "taken during maintenance",
    "manual": "a value entered by hand", "fault": "instrument fault", "calibration": "taken during calibration",
    "over_range": "above the measuring range: the true value is at least this",
    "comm_error": "link between analyser and data logger failed",
}
#: flags of a value that is not a measurement of the river: detection ignores them unless told otherwise
NOT_MEASURED_FLAGS: frozenset[str] = frozenset({"stopped", "maintenance", "manual", "fault", "calibration", "comm_error"})

_OFFSET_RE = r"(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """One problem with one input row.

    Parameters
    ----------
    row_number : int
        1-based position among the data rows (CSV line ``row_number + 1``).
    field : str
        Offending column (``station_id``, ``parameter``, ``time``, ``value``, ``unit``).
    value : str
        The raw value of that field as given.
    reason : str
        Why the row was rejected, naming the value.
    """

    row_number: int
    field: str
    value: str
    reason: str

    def __str__(self) -> str:
        return f"row {self.row_number}: {self.field}={self.value!r}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Readings:
    """Validated readings in SI, sorted by station, parameter and time.

    ``frame`` has columns ``station_id`` (str), ``parameter`` (canonical name), ``time``
    (``datetime64[ns, UTC]``), ``value`` (float64, internal unit of the parameter, see
    :func:`internal_unit`) and ``flag`` (str or missing: the source's quality flag, passed through).
    Build it with the loaders; the constructor checks the columns and sorts.
    """

    frame: pd.DataFrame

    def __post_init__(self) -> None:
        missing = [c for c in FRAME_COLUMNS if c not in self.frame.columns]
        if missing:
            raise ReadingsFormatError(f"readings frame lacks columns {missing}")
        if str(self.frame["time"].dtype) != TIME_DTYPE:
            raise ReadingsFormatError(f"readings time dtype is {self.frame['time'].dtype}, expected {TIME_DTYPE}")
        frame = self.frame.loc[:, list(FRAME_COLUMNS)].sort_values(
            ["station_id", "parameter", "time"], kind="stable").reset_index(drop=True)
        frame["value"] = frame["value"].astype("float64")
        object.__setattr__(self, "frame", frame)

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def stations(self) -> tuple[str, ...]:
        """Station ids present, sorted."""
        return tuple(sorted(self.frame["station_id"].unique()))

    @property
    def parameters(self) -> tuple[str, ...]:
        """Canonical parameter names present, sorted."""
        return tuple(sorted(self.frame["parameter"].unique()))

    def series(self, station_id: str, parameter: str) -> pd.Series:
        """Values of one station and parameter [internal unit], indexed by UTC time."""
        sel = self.frame[(self.frame["station_id"] == station_id) & (self.frame["parameter"] == parameter)]
        return pd.Series(sel["value"].to_numpy(), index=pd.DatetimeIndex(sel["time"]), name=parameter)

    def concat(self, other: Readings) -> Readings:
        """Both sets of readings in one container (no duplicate check: load them together for that)."""
        return Readings(pd.concat([self.frame, other.frame], ignore_index=True))


@dataclass(frozen=True, slots=True)
class LoadResult:
    """Outcome of loading a table: the usable readings and every rejected row problem.

    A row with several problems appears once per problem in ``rejected``.
    """

    readings: Readings
    rejected: tuple[RejectedRow, ...]

    @property
    def rejected_row_numbers(self) -> tuple[int, ...]:
        """Distinct rejected row numbers, ascending."""
        return tuple(sorted({r.row_number for r in self.rejected}))


def normalise_unit(unit: str) -> str:
    """Canonical spelling of a unit string for lookup (lower case, ASCII, no spaces).

    ``"mg/L"`` -> ``"mg/l"``, ``"µg/L"`` -> ``"ug/l"``, ``"°C"`` -> ``"degc"``, ``"m³/s"`` ->
    ``"m3/s"``, ``"m^3/s"`` -> ``"m3/s"``.
    """
    u = str(unit).strip().lower().replace(" ", "")
    for old, new in (("µ", "u"), ("μ", "u"), ("³", "3"), ("^", ""), ("°", "deg"), ("deg_c", "degc"),
                     ("deg_f", "degf"), ("celsius", "degc"), ("kelvin", "k")):
        u = u.replace(old, new)
    return u


def canonical_parameter(name: str) -> str:
    """Canonical parameter name: a GB 3838 item (``DO``, ``NH3-N``...) or a non-standard parameter.

    Raises
    ------
    UnknownModelError
        When the name is neither a known alias nor a standard item.
    """
    key = str(name).strip()
    if key in NON_STANDARD_PARAMETERS:
        return key
    alias = PARAMETER_ALIASES.get(key.lower())
    if alias is not None:
        return alias
    if key.lower() in NON_STANDARD_PARAMETERS:
        return key.lower()
    from hydrology.standards import canonical_item  # deferred: another package owns the tables

    return canonical_item(key)


@functools.cache
def parameter_quantity(parameter: str) -> Quantity:
    """Physical quantity of a canonical parameter.

    Non-standard parameters are listed in :data:`NON_STANDARD_PARAMETERS`; a standard item's quantity
    follows the unit its table states (``mg/L`` -> mass concentration, ``count/L``, ``dimensionless``).

    Raises
    ------
    UnknownModelError
        For a name that is no parameter, or a standard unit this module cannot convert.
    """
    if parameter in NON_STANDARD_PARAMETERS:
        return NON_STANDARD_PARAMETERS[parameter]
    from hydrology.standards import BUNDLED_STANDARDS, load_standard

    for name in BUNDLED_STANDARDS:
        std = load_standard(name)
        unit = next((row.unit for row in std.rows if row.item == parameter), None)
        if unit is not None:
            quantity = STANDARD_UNIT_QUANTITY.get(normalise_unit(unit))
            if quantity is None:
                raise UnknownModelError(f"parameter {parameter!r}: standard unit {unit!r} ({name}) is not supported")
            return quantity
    raise UnknownModelError(f"parameter {parameter!r} is not a canonical parameter")


def internal_unit(parameter: str) -> str:
    """Unit in which a canonical parameter is stored inside rivertrace (``g/m3``, ``degC``...)."""
    return INTERNAL_UNIT[parameter_quantity(parameter)]


def physical_bounds(parameter: str) -> tuple[float, float]:
    """Closed interval of physically possible values of a parameter [internal unit]."""
    return PHYSICAL_BOUNDS_BY_PARAMETER.get(parameter) or PHYSICAL_BOUNDS_BY_QUANTITY[parameter_quantity(parameter)]


def load_readings_csv(path_or_buffer: str | os.PathLike[str] | io.TextIOBase,
                      known_stations: Collection[str] | None = None) -> LoadResult:
    """Load readings from a CSV file with columns ``station_id,parameter,time,value,unit[,flag]``.

    Times are ISO 8601 with a UTC offset (``2025-08-01T08:00:00+08:00`` or ``...Z``); a time without
    an offset is rejected (it is ambiguous). Values are converted to the internal unit of their
    parameter (see :func:`internal_unit`).

    Parameters
    ----------
    path_or_buffer : path or text buffer
        The CSV (UTF-8, optional BOM).
    known_stations : collection of str, optional
        When given, readings of any other station are rejected.

    Returns
    -------
    LoadResult
        Usable readings (SI, UTC, sorted) and the rejected rows.

    Raises
    ------
    ReadingsFormatError
        When the file cannot be read or its columns are not exactly the expected ones.
    """
    try:
        raw = pd.read_csv(path_or_buffer, dtype=str, keep_default_na=False, encoding="utf-8-sig",
                          skipinitialspace=True)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ReadingsFormatError(f"readings CSV {path_or_buffer!r} cannot be read: {err}") from err
    raw.columns = [str(c).strip() for c in raw.columns]
    return readings_from_frame(raw, known_stations=known_stations)


def readings_from_frame(df: pd.DataFrame, known_stations: Collection[str] | None = None,
                        naive_timezone: str | None = None) -> LoadResult:
    """Validate a DataFrame of readings (the CSV's columns) and convert it to SI.

    Parameters
    ----------
    df : DataFrame
        Columns ``station_id, parameter, time, value, unit`` and optionally ``flag``; no others.
        ``time`` may hold ISO 8601 strings with offsets or timezone-aware datetimes; ``value`` numbers
        or numeric strings.
    known_stations : collection of str, optional
        When given, readings of any other station are rejected.
    naive_timezone : str, optional
        IANA zone in which times without an offset are to be read (e.g. ``"Asia/Shanghai"``). When
        None (default) such times are rejected: nothing is assumed.

    Returns
    -------
    LoadResult
    """
    columns = [str(c) for c in df.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    extra = [c for c in columns if c not in CSV_COLUMNS]
    if missing or extra:
        raise ReadingsFormatError(
            f"readings table columns {columns}: missing {missing}, unexpected {extra}; "
            f"expected exactly {list(CSV_COLUMNS)} (flag optional)")
    n = len(df)
    row_number = np.arange(1, n + 1)
    problems: list[tuple[np.ndarray, str, pd.Series, str | pd.Series]] = []
    raw = {c: df[c].reset_index(drop=True) for c in columns}
    # text of the identifier columns; time and value are turned into text only for rejected rows
    as_text = {c: _as_text(raw[c]) for c in ("station_id", "parameter", "unit")}

    # station
    station = as_text["station_id"]
    bad_station = (station == "").to_numpy()
    problems.append((bad_station, "station_id", station, "empty station id"))
    if known_stations is not None:
        unknown = ~station.isin(set(known_stations)).to_numpy() & ~bad_station
        problems.append((unknown, "station_id", station, "unknown station " + station[unknown].map(repr)))

    # parameter
    param_raw = as_text["parameter"]
    canon: dict[str, str | None] = {}
    for name in param_raw.unique():
        try:
            canon[name] = canonical_parameter(name) if name else None
        except UnknownModelError:
            canon[name] = None
    parameter = param_raw.map(canon)
    bad_param = parameter.isna().to_numpy()
    problems.append((bad_param, "parameter", param_raw, "unknown parameter " + param_raw[bad_param].map(repr)))

    # unit, checked against the parameter's quantity
    unit_raw = as_text["unit"]
    scale = np.full(n, np.nan)
    offset = np.zeros(n)
    pairs = pd.DataFrame({"p": parameter, "u": unit_raw}).drop_duplicates()
    bad_unit = np.zeros(n, dtype=bool)
    unit_reason = pd.Series([""] * n, dtype=object)
    for p, u in pairs.itertuples(index=False):
        if p is None or (isinstance(p, float) and math.isnan(p)):
            continue
        sel = ((parameter == p) & (unit_raw == u)).to_numpy()
        quantity = parameter_quantity(p)
        conv = UNITS[quantity].get(normalise_unit(u))
        if conv is None:
            bad_unit |= sel
            accepted = sorted(UNITS[quantity])
            unit_reason[sel] = f"unit {u!r} is not a {quantity} unit for {p}; accepted: {accepted}"
        else:
            scale[sel], offset[sel] = conv.scale, conv.offset
    problems.append((bad_unit, "unit", unit_raw, unit_reason))

    # time
    time, bad_time, time_reason = _parse_times(raw["time"], naive_timezone)
    if bad_time.any():
        problems.append((bad_time, "time", _as_text(raw["time"]), time_reason))

    # value: numeric, finite, physically possible
    value_num = pd.to_numeric(raw["value"].astype(object), errors="coerce").to_numpy(dtype=float)
    not_number = ~np.isfinite(value_num)
    value_text = _as_text(raw["value"]) if not_number.any() else raw["value"].astype(str)
    if not_number.any():
        problems.append((not_number, "value", value_text,
                         value_text[not_number].map(lambda v: f"value {v!r} is not a finite number")))
    value = value_num * scale + offset
    lo = np.full(n, -np.inf)
    hi = np.full(n, np.inf)
    for p in parameter.dropna().unique():
        sel = (parameter == p).to_numpy()
        lo[sel], hi[sel] = physical_bounds(p)
    with np.errstate(invalid="ignore"):
        impossible = ~not_number & ~np.isnan(value) & ((value < lo) | (value > hi))
    if impossible.any():
        units = pd.Series([internal_unit(p) if isinstance(p, str) else "" for p in parameter], dtype=object)
        reason = pd.Series([
            f"{p} {v:g} {u} is outside the physically possible range [{a:g}, {b:g}] {u}"
            if imp else "" for p, v, u, a, b, imp in zip(parameter, value, units, lo, hi, impossible)],
            dtype=object)
        problems.append((impossible, "value", value_text, reason))

    rejected: list[RejectedRow] = []
    bad_any = np.zeros(n, dtype=bool)
    for mask, field, values, reason in problems:
        if not mask.any():
            continue
        bad_any |= mask
        idx = np.flatnonzero(mask)
        # a reason Series is labelled by row position (0..n-1), possibly only for the rows it rejects
        reasons = reason.loc[idx].tolist() if isinstance(reason, pd.Series) else [reason] * len(idx)
        rejected.extend(RejectedRow(int(row_number[i]), field, str(values.iloc[i]), str(r))
                        for i, r in zip(idx, reasons))

    flag = pd.Series([None] * n, dtype=object)
    if "flag" in raw:
        flag_text = _as_text(raw["flag"])
        flag = flag_text.where(flag_text != "", None)
    good = pd.DataFrame({
        "row": row_number, "station_id": station, "parameter": parameter, "time": time,
        "value": value, "flag": flag,
    }).loc[~bad_any]

    # duplicates among the valid rows: the first valid row of a key wins
    key = ["station_id", "parameter", "time"]
    dup = good.duplicated(key, keep="first").to_numpy()
    if dup.any():
        first_row = good.groupby(key, sort=False)["row"].transform("first").to_numpy()
        for r, f, t in zip(good["row"].to_numpy()[dup], first_row[dup], good["time"][dup]):
            rejected.append(RejectedRow(int(r), "time", t.isoformat(),
                                        f"duplicate of row {int(f)} (same station, parameter and time)"))
        good = good.loc[~dup]

    rejected.sort(key=lambda r: (r.row_number, CSV_COLUMNS.index(r.field)))
    frame = good.drop(columns="row").astype({"station_id": object, "parameter": object, "flag": object})
    return LoadResult(Readings(frame), tuple(rejected))


def readings_from_xarray(obj: object, known_stations: Collection[str] | None = None, *,
                         parameter: str | None = None, unit: str | None = None,
                         station_dim: str = "station_id", time_dim: str = "time",
                         naive_timezone: str = "UTC") -> LoadResult:
    """Load readings from an xarray DataArray or Dataset with dimensions (station, time).

    A Dataset holds one variable per parameter (the variable name), each with a ``units`` attribute.
    A DataArray's parameter is ``parameter`` or its name, its unit ``unit`` or ``attrs["units"]``.
    NaN cells are treated as absent (gridded data pads with NaN), not rejected.

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
    known_stations : collection of str, optional
        When given, readings of any other station are rejected.
    parameter, unit : str, optional
        For a DataArray without a name or a ``units`` attribute.
    station_dim, time_dim : str
        Dimension names.
    naive_timezone : str
        xarray holds times without a zone; by the CF convention they are UTC. Pass the zone if not.

    Returns
    -------
    LoadResult
    """
    import xarray as xr

    arrays: Iterable[tuple[str, xr.DataArray]]
    if isinstance(obj, xr.Dataset):
        arrays = [(str(k), v) for k, v in obj.data_vars.items()]
    elif isinstance(obj, xr.DataArray):
        name = parameter or obj.name
        if name is None:
            raise ReadingsFormatError("DataArray has no name: pass parameter=")
        arrays = [(str(name), obj)]
    else:
        raise ReadingsFormatError(f"expected an xarray DataArray or Dataset, got {type(obj).__name__}")
    parts = []
    for name, da in arrays:
        units = unit if (unit is not None and isinstance(obj, xr.DataArray)) else da.attrs.get("units")
        if units is None:
            raise ReadingsFormatError(f"variable {name!r} has no 'units' attribute")
        for dim in (station_dim, time_dim):
            if dim not in da.dims:
                raise ReadingsFormatError(f"variable {name!r} dims {da.dims} lack {dim!r}")
        df = da.to_series().dropna().reset_index()
        times = pd.DatetimeIndex(df[time_dim])
        if times.tz is None:
            times = times.tz_localize(naive_timezone)
        parts.append(pd.DataFrame({"station_id": df[station_dim].astype(str), "parameter": name,
                                   "time": times, "value": df.iloc[:, -1].to_numpy(), "unit": units}))
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(REQUIRED_COLUMNS))
    return readings_from_frame(frame, known_stations=known_stations)


def _as_text(col: pd.Series) -> pd.Series:
    """Stripped text of a column ("" for missing), computed once per distinct value."""
    codes, uniques = pd.factorize(col, use_na_sentinel=True)
    text = np.array([str(u).strip() for u in uniques] + [""], dtype=object)
    return pd.Series(text[codes], index=col.index, dtype=object)


def _parse_times(col: pd.Series, naive_timezone: str | None) -> tuple[pd.Series, np.ndarray, pd.Series]:
    """Parse a column of ISO 8601 strings or datetimes into UTC; report what fails and why."""
    n = len(col)
    reason = pd.Series([""] * n, dtype=object)
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        t = col.dt.tz_convert("UTC")
        bad = t.isna().to_numpy()
        reason[bad] = "missing time"
        return t.astype(TIME_DTYPE), bad, reason
    if pd.api.types.is_datetime64_dtype(col.dtype):
        if naive_timezone is None:
            bad = np.ones(n, dtype=bool)
            reason[:] = "time has no timezone (pass naive_timezone=)"
            return pd.Series(pd.NaT, index=col.index, dtype=TIME_DTYPE), bad, reason
        t = col.dt.tz_localize(naive_timezone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
        bad = t.isna().to_numpy()
        reason[bad] = f"time missing, or ambiguous/nonexistent in {naive_timezone}"
        return t.astype(TIME_DTYPE), bad, reason
    # strings or mixed objects (Timestamps)
    obj = col.astype(object)
    is_ts = obj.map(lambda v: isinstance(v, pd.Timestamp | np.datetime64)).to_numpy()
    text = _as_text(obj)
    has_offset = text.str.contains(_OFFSET_RE, regex=True).to_numpy()
    if is_ts.any():
        has_offset |= obj.map(lambda v: isinstance(v, pd.Timestamp) and v.tzinfo is not None).to_numpy()
    parsed = pd.Series(pd.NaT, index=col.index, dtype=TIME_DTYPE)
    if has_offset.any():
        parsed[has_offset] = pd.to_datetime(text[has_offset], format="ISO8601", utc=True, errors="coerce")
    naive = ~has_offset & (text != "").to_numpy()
    naive_ok = np.zeros(n, dtype=bool)
    if naive.any():
        local = pd.to_datetime(text[naive], format="ISO8601", errors="coerce")
        naive_ok[naive] = local.notna().to_numpy()
        if naive_timezone is not None:
            parsed[naive] = (local.dt.tz_localize(naive_timezone, ambiguous="NaT", nonexistent="NaT")
                             .dt.tz_convert("UTC"))
    bad = parsed.isna().to_numpy()
    reason[bad & (text == "").to_numpy()] = "missing time"
    if naive_timezone is None:
        reason[bad & naive_ok] = "time has no UTC offset (ISO 8601 with offset required)"
    else:
        reason[bad & naive_ok] = f"time is ambiguous or nonexistent in {naive_timezone}"
    unparsed = bad & (reason == "").to_numpy()
    reason[unparsed] = text[unparsed].map(lambda v: f"time {v!r} is not an ISO 8601 timestamp")
    return parsed, bad, reason


def water_temperature_c(readings: Readings, station_id: str, start: pd.Timestamp, end: pd.Timestamp) -> float | None:
    """Measured water temperature for an event [degC]: the median of the station's own temperature readings
    between ``start`` and ``end``; failing those, the median over every station of the network in that
    window (one river, one season: closer to the truth than a fixed default); None when nothing was measured.

    The DO model's rates and saturation depend on it (Arrhenius theta, Benson & Krause 1984), so a winter
    sag must not be judged at a summer default.
    """
    f = readings.frame
    sel = f[(f["parameter"] == "temperature") & (f["time"] >= start) & (f["time"] <= end)]
    own = sel[sel["station_id"] == station_id]["value"].dropna()
    use = own if len(own) else sel["value"].dropna()
    return float(use.median()) if len(use) else None


"""CF-1.8 netCDF: one writer for every netCDF the project writes (curves, sweep matrix, ensemble).

The in-memory datasets of the engines, :mod:`hydrology.sweep` and :mod:`hydrology.ensemble` carry
units on every variable; :func:`write_netcdf` turns one into a file that the IOOS
compliance-checker (``cchecker.py --test cf:1.8``) passes without errors, which
``tests/hydrology/test_cf_netcdf.py`` checks for each writer:

- ``Conventions = "CF-1.8"`` in every file (:data:`CONVENTIONS`), with ``title``, ``source``,
  ``history`` and ``institution``-free provenance.
- No ``_FillValue`` on coordinate variables (CF 2.5.1); data variables keep NaN as their fill.
- Text (ids, kinds) as fixed-width character arrays (``char id(receptor, strlen)``), the form CF
  2.2 and netCDF-3 tools read; variable-length strings are not used.
- No 64-bit integers (netCDF-3 has none): integer coordinates are written as int32.
- Time (:func:`cf_time`). With a release start, ``time`` is a real CF time coordinate,
  ``seconds since <start in UTC>``, ``calendar = "standard"``, so tools decode real dates. Without
  one, nothing in the file can say when the release happened: the coordinate is
  ``time_after_release`` in ``s`` (a duration, CF's plain unit, no calendar and no reference
  epoch), so no tool decodes it as 1970 dates. Both keep the values: seconds after the release start.
- Receptors (:func:`add_receptor_coordinates`): ``lon``/``lat`` [degrees_east/north, WGS 84] of
  every receptor, located on its reach line by chainage, with ``cf_role = "timeseries_id"`` on the
  receptor id; curve files (time x receptor) are ``featureType = "timeSeries"`` in the orthogonal
  multidimensional representation of CF 9.3.1 (data as ``(receptor, time)``).

Files are written to a temporary name and renamed, so a failed write leaves no half file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..exceptions import HydrologyError

if TYPE_CHECKING:
    import xarray as xr

    from ..network import RiverNetwork

__all__ = ["CONVENTIONS", "add_receptor_coordinates", "cf_time", "curves_dataset", "lonlat", "write_curves",
           "write_netcdf"]

#: the CF version every file states
CONVENTIONS = "CF-1.8"


class NetcdfOutputError(HydrologyError, ValueError):
    """A dataset that cannot be written as CF netCDF (no time coordinate, unknown CRS)."""


def cf_time(ds: xr.Dataset, start: datetime | None, dim: str = "time") -> xr.Dataset:
    """Make the time coordinate CF: real times with ``start``, else a ``time_after_release`` duration [s].

    ``ds[dim]`` holds seconds after the release start (float); its units attribute is ignored
    (:mod:`hydrology.transport.numerical` labels a start-less release with the 1970 epoch).
    """
    if dim not in ds.coords:
        raise NetcdfOutputError(f"the dataset has no {dim!r} coordinate")
    secs = np.asarray(ds[dim].values, float)
    if start is not None:
        if start.tzinfo is None:
            raise NetcdfOutputError(f"release start {start.isoformat()} has no UTC offset")
        t0 = start.astimezone(UTC)
        attrs = {"standard_name": "time", "long_name": "time", "axis": "T", "calendar": "standard",
                 "units": f"seconds since {t0.strftime('%Y-%m-%d %H:%M:%S')}",
                 "comment": f"the release started at {t0.isoformat()} (UTC), time 0"}
        out = ds.assign_coords({dim: (dim, secs, attrs)})
        out.attrs["time_coverage_start"] = t0.isoformat()
        return out
    attrs = {"units": "s", "long_name": "time after release start",
             "comment": "no release start was given: seconds after the release started, not a date"}
    return ds.assign_coords({dim: (dim, secs, attrs)}).rename({dim: "time_after_release"})


def lonlat(net: RiverNetwork, places: Sequence[tuple[str, float]]) -> tuple[np.ndarray, np.ndarray] | None:
    """Longitude and latitude [degrees, WGS 84] of (reach, chainage_m) places; None without CRS or geometry.

    A place sits on its reach line at chainage / length (:func:`hydrology.gis_output.feature_point`);
    projected coordinates are transformed with pyproj.
    """
    from ..gis_output import _crs, feature_point

    crs = _crs(net)
    if crs is None:
        return None
    pts = [feature_point(net, r, c) for r, c in places]
    if any(p is None for p in pts):
        return None
    xy = np.array(pts, float).reshape(-1, 2)
    if crs.is_geographic and crs.to_epsg() == 4326:
        return xy[:, 0].copy(), xy[:, 1].copy()
    from pyproj import CRS, Transformer

    tr = Transformer.from_crs(crs, CRS.from_epsg(4326), always_xy=True)
    lon, lat = tr.transform(xy[:, 0], xy[:, 1])
    return np.asarray(lon, float), np.asarray(lat, float)


def add_receptor_coordinates(ds: xr.Dataset, net: RiverNetwork, dim: str = "receptor", *,
                             reach: str = "receptor_reach", chainage: str = "receptor_chainage_m",
                             prefix: str = "") -> xr.Dataset:
    """Add ``lon``/``lat`` of every element of ``dim`` (from its reach and chainage variables) when known."""
    if dim not in ds.dims or ds.sizes[dim] == 0:
        return ds
    places = [(str(r), float(c)) for r, c in zip(ds[reach].values, ds[chainage].values, strict=True)]
    ll = lonlat(net, places)
    if ll is None:
        return ds
    lon, lat = ll
    return ds.assign_coords({
        f"{prefix}lon": (dim, lon, {"standard_name": "longitude", "long_name": f"{dim} longitude",
                                    "units": "degrees_east"}),
        f"{prefix}lat": (dim, lat, {"standard_name": "latitude", "long_name": f"{dim} latitude",
                                    "units": "degrees_north"}),
    })


def curves_dataset(net: RiverNetwork, ds: xr.Dataset, *, start: datetime | None = None) -> xr.Dataset:
    """The CF form of an engine's curves (time x receptor): ``featureType = "timeSeries"``.

    Either engine's dataset is accepted (:meth:`hydrology.transport.analytic.Forecast.curves` or
    :func:`hydrology.transport.numerical.simulate`); the receptor's reach and chainage are taken from the
    network's features. Concentrations are ``(receptor, time)``, instance dimension first.
    """
    kinds = [str(k) for k in ds["kind"].values] if "kind" in ds.coords else ["station"] * ds.sizes["receptor"]
    feats = [net.feature(str(r), k) for r, k in zip(ds["receptor"].values, kinds, strict=True)]  # type: ignore[arg-type]
    out = ds.copy()
    if "receptor_reach" not in out.coords:
        out = out.assign_coords(receptor_reach=("receptor", np.array([f.reach for f in feats], dtype=object),
                                                {"long_name": "reach id"}))
    if "chainage_m" in out.coords:
        out = out.rename({"chainage_m": "receptor_chainage_m"})
    if "receptor_chainage_m" not in out.coords:
        out = out.assign_coords(receptor_chainage_m=("receptor", np.array([f.chainage_m for f in feats], float),
                                                     {"units": "m", "long_name": "chainage from the reach's upstream end"}))
    if "distance" in out.data_vars:
        out = out.rename({"distance": "distance_m"})
        out["distance_m"].attrs.update(units="m", long_name="distance along the river from the release")
    if "threshold" in out.data_vars:
        out["threshold"].attrs.setdefault("long_name", "concentration defining arrival and end (NaN: share of peak)")
    # per-receptor constants describe the time series: auxiliary coordinates, not data of their own
    out = out.set_coords([v for v, da in out.data_vars.items() if da.dims == ("receptor",)])
    out["receptor"].attrs.update(cf_role="timeseries_id", long_name="receptor id")
    out = add_receptor_coordinates(out, net)
    out = out.transpose(..., "time")  # instance (and other) dimensions left of T (CF 2.4, 9.3.1)
    out = cf_time(out, start)
    out.attrs.setdefault("title", f"rivertrace plume forecast ({ds.attrs.get('engine', 'engine')} engine)")
    out.attrs.setdefault("source", f"rivertrace hydrology ({ds.attrs.get('engine', '')} engine)")
    if "lon" in out.coords:
        out.attrs["featureType"] = "timeSeries"
    return out


def write_curves(net: RiverNetwork, ds: xr.Dataset, path: str | Path, *, start: datetime | None = None) -> Path:
    """Write forecast curves as CF-1.8 ``timeSeries`` netCDF (:func:`curves_dataset`, :func:`write_netcdf`)."""
    return write_netcdf(curves_dataset(net, ds, start=start), path)


def _text(values: Any) -> np.ndarray:
    return np.array(["" if v is None else str(v) for v in np.asarray(values, dtype=object).ravel()],
                    dtype=object).reshape(np.shape(values))


def write_netcdf(ds: xr.Dataset, path: str | Path, *, compress: bool = True) -> Path:
    """Write ``ds`` as CF-1.8 netCDF-4 (h5netcdf); see the module docstring for what is changed.

    Returns the path written. An existing file is replaced only when the write succeeded.
    """
    out = ds.copy()
    out.attrs = {k: v for k, v in out.attrs.items() if v is not None}
    out.attrs["Conventions"] = CONVENTIONS
    out.attrs.setdefault("title", "rivertrace output")
    out.attrs.setdefault("source", "rivertrace")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out.attrs["history"] = f"{stamp} written by rivertrace" + (f"; {ds.attrs['history']}" if ds.attrs.get("history") else "")
    for k, v in list(out.attrs.items()):  # netCDF attributes: numbers, text or 1-d arrays; no bools or lists of text
        if isinstance(v, bool | np.bool_):
            out.attrs[k] = int(v)
        elif isinstance(v, list | tuple) and any(isinstance(x, str) for x in v):
            out.attrs[k] = ", ".join(map(str, v))
    encoding: dict[str, dict[str, Any]] = {}
    for name, var in out.variables.items():
        enc: dict[str, Any] = {}
        if var.dtype.kind in "OUS":
            out[name] = var.copy(data=_text(var.values))
            # fixed-width character arrays (char name(dim, strlenN)), UTF-8 for non-ASCII ids
            enc.update(dtype="S1", _FillValue=None)
        elif var.dtype.kind in "iu" and var.dtype.itemsize > 4:
            if var.size and (np.abs(var.values).max() > np.iinfo(np.int32).max):
                raise NetcdfOutputError(f"variable {name!r} does not fit in 32-bit integers")
            enc["dtype"] = "int32"
        elif var.dtype.kind == "b":
            out[name] = var.astype("int8")
        if name in out.coords or var.dtype.kind not in "fc":
            enc["_FillValue"] = None
        elif compress and var.ndim and var.size > 1024:
            enc.update(zlib=True, complevel=1)
        encoding[str(name)] = enc
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        out.to_netcdf(tmp, engine="h5netcdf", encoding=encoding)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target

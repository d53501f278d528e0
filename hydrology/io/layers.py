"""Write GIS layers as a GeoPackage or an RFC 7946 GeoJSON file, the same way for every output.

GeoPackage (:func:`write_gpkg`)
    One file, one table per layer, written to a temporary file and renamed. The GeoPackage
    version is 1.2 (``VERSION=1.2``): GDAL since 2.2 and QGIS read it without the "may only be
    partially supported" warning that older GDAL (Debian 12's 3.6) prints for the 1.4 files that
    pyogrio's GDAL writes by default. Layers keep the network's CRS; a network in local
    coordinates (no ``crs``) is written with GeoPackage's "undefined Cartesian" SRS.
    Tables without geometry (``network``, ``inflows``, ``departments``) are attribute tables.
    Datetime columns (pandas ``datetime64[..., UTC]``) become GeoPackage DateTime fields.

GeoJSON (:func:`write_geojson`)
    One ``FeatureCollection``; each feature's ``layer`` property names its layer. RFC 7946
    requires WGS 84 longitude/latitude, so layers are transformed to EPSG:4326; layers of a
    network without a CRS cannot be placed on the Earth and are refused. Attribute tables are
    left out (GeoJSON features have geometry; the ``network`` row goes into the collection's
    ``properties``-free ``name``). Datetimes are ISO 8601 text with offset.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..exceptions import HydrologyError

__all__ = ["GPKG_VERSION", "LayerOutputError", "write_geojson", "write_gpkg"]

#: GeoPackage version written (see the module docstring)
GPKG_VERSION = "1.2"


class LayerOutputError(HydrologyError, ValueError):
    """Layers that cannot be written in the requested format (GeoJSON without a CRS)."""


def write_gpkg(layers: Mapping[str, Any], path: str | Path, *, geometry_types: Mapping[str, str] | None = None) -> Path:
    """Write (Geo)DataFrames as the layers of one GeoPackage; returns the path written.

    ``geometry_types`` names the geometry of each spatial layer (``"Point"``, ``"LineString"``) so
    that a layer whose rows all lack geometry keeps its declared type.
    """
    import pyogrio

    out = Path(path)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp.gpkg")
    tmp.unlink(missing_ok=True)
    old = pyogrio.get_gdal_config_option("OGR_SQLITE_SYNCHRONOUS")
    pyogrio.set_gdal_config_options({"OGR_SQLITE_SYNCHRONOUS": "OFF"})  # an export, not a durable store
    try:
        first = True
        for name, table in layers.items():
            kwargs: dict[str, Any] = {"layer": name, "driver": "GPKG"}
            if first:
                kwargs["dataset_options"] = {"VERSION": GPKG_VERSION}
            if hasattr(table, "geometry") and table.geometry is not None and (geometry_types or {}).get(name):
                kwargs.update(geometry_type=geometry_types[name], promote_to_multi=False)  # type: ignore[index]
            with warnings.catch_warnings():
                # a network in local coordinates has no CRS (the document leaves crs out)
                warnings.filterwarnings("ignore", message="'crs' was not provided")
                pyogrio.write_dataframe(table, tmp, **kwargs)
            first = False
        os.replace(tmp, out)
    finally:
        pyogrio.set_gdal_config_options({"OGR_SQLITE_SYNCHRONOUS": old})
        tmp.unlink(missing_ok=True)
    return out


def _jsonable(v: Any) -> Any:
    import numpy as np
    import pandas as pd

    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, pd.Timestamp):
        return None if pd.isna(v) else v.isoformat()
    if v is pd.NaT or v is pd.NA:  # missing values of nullable columns
        return None
    if isinstance(v, np.generic):
        v = v.item()
        return None if isinstance(v, float) and math.isnan(v) else v
    return v


def write_geojson(layers: Mapping[str, Any], path: str | Path, *, name: str = "") -> Path:
    """Write the spatial layers as one RFC 7946 FeatureCollection (WGS 84 lon/lat); returns the path."""
    import shapely

    features: list[dict[str, Any]] = []
    for layer, table in layers.items():
        if not hasattr(table, "geometry"):
            continue  # attribute tables have no place in GeoJSON
        if table.crs is None:
            if table.geometry.notna().any():
                raise LayerOutputError(f"layer {layer!r} has no CRS: GeoJSON (RFC 7946) needs longitude/latitude; "
                                       "give the network a crs, or write a GeoPackage")
            wgs = table
        else:
            wgs = table.to_crs(4326)
        cols = [c for c in wgs.columns if c != wgs.geometry.name]
        for row, geom in zip(wgs[cols].itertuples(index=False), wgs.geometry, strict=True):
            props = {"layer": layer, **{c: _jsonable(v) for c, v in zip(cols, row, strict=True)}}
            features.append({"type": "Feature", "properties": props,
                             "geometry": None if geom is None else json.loads(shapely.to_geojson(geom))})
    doc = {"type": "FeatureCollection", "name": name, "features": features}
    out = Path(path)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(doc, ensure_ascii=False, allow_nan=False), encoding="utf-8")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out

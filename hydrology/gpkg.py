"""The network document as GIS layers: a GeoPackage (read and write) or a shapefile directory (read).

One layer per document collection, with the document's own field names (units in the names):

=============  ===========  ========================================================================
layer          geometry     content
=============  ===========  ========================================================================
network        none         one row: format, version, name, crs, notes (+ ``rt_extra``, ``rt_types``)
nodes          Point        id, x, y, name, ...; the point is (x, y) where both are given
reaches        LineString   every reach field; the line is the reach's ``geometry``
inflows        none         node, discharge_m3s
stations,      Point        the feature's fields; the point is placed on the reach line at
dischargers,                chainage_m / length_m of its length (no point when the reach has no
intakes,                    geometry); ``chainage_m`` stays the authority, the point is for maps
structures,
sites
departments    none         the department fields
=============  ===========  ========================================================================

List- and dict-valued fields (``pollutants``, ``roles``, ``owns``, ``parameters``,
``permit_limits_mg_l``, ``max_load_kg_s``, ``source`` and any other list or dict) are stored as
JSON text. Fields that are not in the document schema keep their names; their types (int, bool,
number, text or JSON) are recorded in the ``network`` row (``rt_types``) so that integers and
booleans survive the GIS column types, and document-level fields outside the schema go to
``rt_extra`` (JSON). Reading a GeoPackage written here gives back the document exactly (null fields
are left out, as :func:`hydrology.document.network_to_document` does).

Shapefiles (:func:`read_network_layers` on a directory of ``reaches.shp``, ``nodes.shp``, ...,
attribute tables as ``.dbf``) truncate field names to 10 characters; each truncated name is mapped
back to the unique schema field it starts with, and an ambiguous one is an error. Shapefile text
fields hold at most 254 bytes, so long JSON text or notes do not survive them: the reader fails on
JSON it cannot parse rather than guessing. Layers are read and written with pyogrio (GDAL).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .document import (
    _DEPARTMENT,
    _FEATURE_COMMON,
    _FEATURE_OWN,
    _INFLOW,
    _NODE,
    _REACH,
    FORMAT_NAME,
    FORMAT_VERSION,
    network_to_document,
)
from .exceptions import NetworkFormatError
from .network import FEATURE_COLLECTIONS, RiverNetwork

__all__ = ["LAYERS", "document_from_layers", "network_layers", "read_network_gpkg", "read_network_layers",
           "write_network_gpkg"]

#: column of the ``network`` row holding document-level fields outside the schema (JSON)
EXTRA_COLUMN = "rt_extra"
#: column of the ``network`` row holding the types of non-schema fields per layer (JSON)
TYPES_COLUMN = "rt_types"

_NETWORK = {"format": ("str", True), "version": ("int", True), "name": ("str", False), "crs": ("str", False),
            "notes": ("str", False), EXTRA_COLUMN: ("json", False), TYPES_COLUMN: ("json", False)}

#: layer -> field -> (kind, required), kinds as in :mod:`hydrology.document` plus "json"
LAYERS: dict[str, dict[str, tuple[str, bool]]] = {
    "network": _NETWORK,
    "nodes": dict(_NODE),
    "reaches": dict(_REACH),
    "inflows": dict(_INFLOW),
    **{key: {**_FEATURE_COMMON, **_FEATURE_OWN[key]} for key in FEATURE_COLLECTIONS},
    "departments": dict(_DEPARTMENT),
}
_GEOMETRY = {"nodes": "Point", "reaches": "LineString", **{k: "Point" for k in FEATURE_COLLECTIONS}}
_JSON_KINDS = {"strlist", "map", "json"}


def _isnull(v: Any) -> bool:
    if v is None or v is pd.NA:
        return True
    return isinstance(v, float) and math.isnan(v)


def _infer_kind(values: list[Any]) -> str:
    """Storage kind of a non-schema field from its non-null values."""
    vals = [v for v in values if v is not None]
    if all(isinstance(v, bool) for v in vals):
        return "bool"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
        return "int"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
        return "num"
    if all(isinstance(v, str) for v in vals):
        return "str"
    return "json"


def _column(values: list[Any], kind: str) -> Any:
    """A pandas column for GDAL: floats, nullable ints/booleans, text (JSON for lists and dicts)."""
    if kind == "num":
        return pd.array([np.nan if v is None else float(v) for v in values], dtype="float64")
    if kind == "int":
        return pd.array(values, dtype="Int64")
    if kind == "bool":
        return pd.array(values, dtype="boolean")
    if kind in _JSON_KINDS:
        return pd.array([None if v is None else json.dumps(v, ensure_ascii=False) for v in values], dtype=object)
    return pd.array([None if v is None else str(v) for v in values], dtype=object)


def _as_document(net_or_doc: RiverNetwork | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(net_or_doc, RiverNetwork):
        return network_to_document(net_or_doc)
    if not isinstance(net_or_doc, Mapping):
        raise NetworkFormatError(f"expected a RiverNetwork or a document dict, got {type(net_or_doc).__name__}")
    return dict(net_or_doc)


def network_layers(net_or_doc: RiverNetwork | Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """The document's layers: GeoDataFrames for nodes, reaches and located features, DataFrames else.

    Parameters
    ----------
    net_or_doc : RiverNetwork or dict
        A network or a network document (only structurally sound items are needed: ids, reach
        lengths and geometries are used to place the feature points).

    Returns
    -------
    dict
        Layer name -> table, in :data:`LAYERS` order; empty collections are left out, ``network``,
        ``nodes`` and ``reaches`` are always present.
    """
    import geopandas as gpd
    import shapely
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    doc = _as_document(net_or_doc)
    crs_text = doc.get("crs")
    try:
        crs = CRS.from_user_input(crs_text) if crs_text else None
    except CRSError:
        crs = None  # kept exactly in the network row; the GIS layers go without a CRS
    types: dict[str, dict[str, str]] = {}
    reach_lines: dict[str, tuple[Any, float]] = {}
    for r in doc.get("reaches") or []:
        if isinstance(r, Mapping) and r.get("geometry") and isinstance(r.get("length_m"), (int, float)):
            reach_lines[str(r["id"])] = (shapely.LineString([p[:2] for p in r["geometry"]]), float(r["length_m"]))

    out: dict[str, pd.DataFrame] = {}
    for layer, spec in LAYERS.items():
        if layer == "network":
            continue
        items = [dict(i) for i in doc.get(layer) or [] if isinstance(i, Mapping)]
        if not items and layer not in ("nodes", "reaches"):
            continue
        fields = [f for f in spec if f != "geometry"]
        extras = list(dict.fromkeys(k for i in items for k in i if k not in spec))
        if "geometry" in extras:
            raise NetworkFormatError(f"{layer}: a field named 'geometry' is only allowed on reaches")
        cols: dict[str, Any] = {}
        kinds = {**{f: spec[f][0] for f in fields}, **{f: _infer_kind([i.get(f) for i in items]) for f in extras}}
        for f, kind in kinds.items():
            try:
                cols[f] = _column([i.get(f) for i in items], kind)
            except (TypeError, ValueError) as err:
                raise NetworkFormatError(f"{layer}.{f}: values do not fit a {kind} column: {err}") from err
        if extras:
            types[layer] = {f: kinds[f] for f in extras}
        geom_type = _GEOMETRY.get(layer)
        if geom_type is None:
            out[layer] = pd.DataFrame(cols)
            continue
        if layer == "nodes":
            geoms = [shapely.Point(i["x"], i["y"]) if i.get("x") is not None and i.get("y") is not None else None
                     for i in items]
        elif layer == "reaches":
            geoms = [shapely.LineString([p[:2] for p in i["geometry"]]) if i.get("geometry") else None
                     for i in items]
        else:
            geoms = [_locate(reach_lines.get(str(i.get("reach"))), i.get("chainage_m")) for i in items]
        out[layer] = gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries(geoms, crs=crs), crs=crs)

    known = {"format", "version", "name", "crs", "notes", *LAYERS}
    meta = {"format": doc.get("format", FORMAT_NAME), "version": doc.get("version", FORMAT_VERSION),
            "name": doc.get("name"), "crs": crs_text, "notes": doc.get("notes"),
            EXTRA_COLUMN: {k: v for k, v in doc.items() if k not in known} or None,
            TYPES_COLUMN: types or None}
    net_row = pd.DataFrame({k: _column([v], _NETWORK[k][0]) for k, v in meta.items()})
    return {"network": net_row, **out}


def _locate(line: tuple[Any, float] | None, chainage_m: Any) -> Any:
    """Point at chainage_m along a reach line (as a share of its length), or None."""
    if line is None or not isinstance(chainage_m, (int, float)):
        return None
    geom, length_m = line
    frac = min(max(float(chainage_m) / length_m, 0.0), 1.0) if length_m > 0 else 0.0
    return geom.interpolate(frac, normalized=True)


def write_network_gpkg(net_or_doc: RiverNetwork | Mapping[str, Any], path: str | Path) -> None:
    """Write a network (or document) as a GeoPackage of layers with the document's field names.

    The layers go to a temporary file next to ``path``, which then replaces ``path`` in one step
    (an interrupted write never leaves half a network). SQLite's per-layer fsync is switched off
    while writing the temporary file (GDAL ``OGR_SQLITE_SYNCHRONOUS=OFF``; ten layers take 0.1 s
    instead of 1.3 s here): this is an export, not the service's durable store.

    Parameters
    ----------
    net_or_doc : RiverNetwork or dict
        What to write.
    path : str or Path
        The ``.gpkg`` file; an existing file is replaced.
    """
    import pyogrio

    p = Path(path)
    layers = network_layers(net_or_doc)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp.gpkg")
    old = pyogrio.get_gdal_config_option("OGR_SQLITE_SYNCHRONOUS")
    pyogrio.set_gdal_config_options({"OGR_SQLITE_SYNCHRONOUS": "OFF"})
    try:
        tmp.unlink(missing_ok=True)
        for layer, table in layers.items():
            kwargs: dict[str, Any] = {"layer": layer, "driver": "GPKG"}
            if layer in _GEOMETRY:
                kwargs.update(geometry_type=_GEOMETRY[layer], promote_to_multi=False)
            with warnings.catch_warnings():
                # a network in local coordinates has no CRS: the document says so (crs absent)
                warnings.filterwarnings("ignore", message="'crs' was not provided")
                pyogrio.write_dataframe(table, tmp, **kwargs)
        os.replace(tmp, p)
    finally:
        pyogrio.set_gdal_config_options({"OGR_SQLITE_SYNCHRONOUS": old})
        tmp.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------ reading
def _value(v: Any, kind: str, where: str) -> Any:
    """Convert a GDAL cell back to its document type (None for null)."""
    if _isnull(v):
        return None
    if isinstance(v, np.generic):
        v = v.item()
    try:
        if kind == "num":
            return float(v)
        if kind == "int":
            f = float(v)
            if not f.is_integer():
                raise ValueError(f"{v!r} is not an integer")
            return int(f)
        if kind == "bool":
            return bool(v)
        if kind in _JSON_KINDS:
            return json.loads(v) if isinstance(v, str) else v
        return str(v)
    except (TypeError, ValueError) as err:
        hint = " (shapefile text fields hold at most 254 bytes)" if kind in _JSON_KINDS else ""
        raise NetworkFormatError(f"{where}: cannot read {v!r} as {kind}: {err}{hint}") from err


def _map_names(columns: list[str], wanted: list[str], layer: str) -> dict[str, str]:
    """Column -> field name: exact match, else the unique field that the (truncated) name starts with."""
    out: dict[str, str] = {}
    lower = {w.lower(): w for w in wanted}
    for c in columns:
        if c == "geometry":
            continue
        if c.lower() in lower:
            out[c] = lower[c.lower()]
            continue
        cands = [w for w in wanted if w.lower().startswith(c.lower())]
        if len(cands) > 1:
            raise NetworkFormatError(f"layer {layer!r}: column {c!r} is ambiguous: it could be any of {cands} "
                                     "(truncated field name)")
        out[c] = cands[0] if cands else c
    fields = list(out.values())
    dup = sorted({f for f in fields if fields.count(f) > 1})
    if dup:
        raise NetworkFormatError(f"layer {layer!r}: several columns map to field(s) {dup}")
    return out


def document_from_layers(layers: Mapping[str, pd.DataFrame], *, name: str = "") -> dict[str, Any]:
    """Rebuild a network document from its layers (inverse of :func:`network_layers`).

    Parameters
    ----------
    layers : mapping
        Layer name -> table, as read from a GeoPackage or a shapefile directory.
    name : str
        Network name when there is no ``network`` layer.

    Raises
    ------
    NetworkFormatError
        When ``reaches`` or ``nodes`` is missing, a column name is ambiguous or a value cannot be
        read as its field's type.
    """
    import shapely

    missing = [k for k in ("nodes", "reaches") if k not in layers]
    if missing:
        raise NetworkFormatError(f"no {' and no '.join(repr(m) for m in missing)} layer "
                                 f"(layers: {', '.join(layers) or 'none'})")
    meta: dict[str, Any] = {}
    if "network" in layers and len(layers["network"]):
        t = layers["network"]
        names = _map_names([str(c) for c in t.columns], list(_NETWORK), "network")
        row = t.iloc[0]
        meta = {names[c]: _value(row[c], _NETWORK.get(names[c], ("str", False))[0], f"network.{names[c]}")
                for c in names}
    types: dict[str, dict[str, str]] = meta.pop(TYPES_COLUMN, None) or {}
    extra: dict[str, Any] = meta.pop(EXTRA_COLUMN, None) or {}
    doc: dict[str, Any] = {"format": meta.get("format") or FORMAT_NAME, "version": meta.get("version") or FORMAT_VERSION}
    if meta.get("name") is not None or "network" not in layers:
        doc["name"] = meta["name"] if meta.get("name") is not None else name
    crs = meta.get("crs") or _layer_crs(layers["reaches"])
    if crs:
        doc["crs"] = crs
    if meta.get("notes"):
        doc["notes"] = meta["notes"]
    doc.update(extra)

    for layer, spec in LAYERS.items():
        if layer == "network":
            continue
        t = layers.get(layer)
        if t is None:
            doc[layer] = []
            continue
        kinds = {**{f: k for f, (k, _r) in spec.items()}, **types.get(layer, {})}
        names = _map_names([str(c) for c in t.columns], list(kinds), layer)
        geoms = t.geometry if "geometry" in t.columns and hasattr(t, "geometry") else None
        items = []
        for k in range(len(t)):
            row = t.iloc[k]
            ident = row.get(next((c for c, f in names.items() if f == "id"), "id"), f"#{k}")
            item: dict[str, Any] = {}
            for c, f in names.items():
                v = _value(row[c], kinds.get(f, "str" if isinstance(row[c], str) else "num"),
                           f"{layer}[{ident}].{f}")
                if v is not None:
                    item[f] = v
            g = geoms.iloc[k] if geoms is not None else None
            if g is not None and not g.is_empty:
                if layer == "reaches":
                    item["geometry"] = shapely.get_coordinates(g).tolist()
                elif layer == "nodes" and ("x" not in item or "y" not in item):
                    item["x"], item["y"] = float(g.x), float(g.y)
            items.append(item)
        doc[layer] = items
    return doc


def _layer_crs(table: pd.DataFrame) -> str | None:
    crs = getattr(table, "crs", None)
    if crs is None:
        return None
    auth = crs.to_authority(min_confidence=100)
    return f"{auth[0]}:{auth[1]}" if auth else crs.to_wkt()


def _read_all(source: Path) -> dict[str, pd.DataFrame]:
    """The network layers of a GeoPackage or shapefile directory (names matched case-insensitively)."""
    import pyogrio

    try:
        names = [str(n) for n, _g in pyogrio.list_layers(source)]
    except Exception as err:  # pyogrio's DataSourceError and friends
        raise NetworkFormatError(f"{source}: cannot read layers: {err}") from err
    missing = [k for k in ("nodes", "reaches") if k not in {n.lower() for n in names}]
    if missing:
        hint = ("; an NHDPlus file? read it with hydrology.nhdplus.import_nhdplus"
                if any(n.lower() == "nhdflowline_network" for n in names) else "")
        raise NetworkFormatError(f"{source}: no {' and no '.join(repr(m) for m in missing)} layer "
                                 f"(layers: {', '.join(names) or 'none'}){hint}")
    layers: dict[str, pd.DataFrame] = {}
    for n in names:
        if n.lower() in LAYERS:
            layers[n.lower()] = pyogrio.read_dataframe(source, layer=n)
    return layers


def read_network_gpkg(path: str | Path) -> dict[str, Any]:
    """Read a network document from a GeoPackage written by :func:`write_network_gpkg` (or by hand).

    Raises
    ------
    NetworkFormatError
        For a file that is not a readable GeoPackage, a missing ``reaches`` or ``nodes`` layer, or
        an unreadable value (naming layer, id and field).
    """
    p = Path(path)
    if not p.is_file():
        raise NetworkFormatError(f"{p}: no such file")
    layers = _read_all(p)
    try:
        return document_from_layers(layers, name=p.stem)
    except NetworkFormatError as err:
        raise NetworkFormatError(f"{p}: {err}", getattr(err, "problems", None)) from err


def read_network_layers(path_or_dir: str | Path) -> dict[str, Any]:
    """Read a network document from a GeoPackage or a directory of shapefiles.

    A directory holds ``reaches.shp``, ``nodes.shp``, ... (and ``.dbf`` files for the attribute
    tables ``network``, ``inflows``, ``departments``); truncated field names are mapped back to
    the document's names by unique prefix.

    Raises
    ------
    NetworkFormatError
        As :func:`read_network_gpkg`, and for an ambiguous truncated field name.
    """
    p = Path(path_or_dir)
    if not p.is_dir():
        return read_network_gpkg(p)
    layers = _read_all(p)
    try:
        return document_from_layers(layers, name=p.name)
    except NetworkFormatError as err:
        raise NetworkFormatError(f"{p}: {err}", getattr(err, "problems", None)) from err

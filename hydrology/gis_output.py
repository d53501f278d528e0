"""Plume arrival along every reach, the GeoPackage that GIS users open in QGIS, and ``rivertrace plot``.

Arrival at every reach
----------------------
The analytic engine (:mod:`hydrology.transport.analytic`) reports at located features. To know when the plume
reaches each part of the river, :func:`reach_arrivals` puts virtual ``site`` features at
:data:`POINTS_PER_REACH` evenly spaced chainages on every reach at or below the release (both reach
ends included), in a copy of the network that holds nothing else, and runs
:func:`hydrology.transport.analytic.forecast` on it with the same reach state. Each sample point therefore
gets exactly what a receptor there would get: leading-edge arrival (first time C >= threshold),
peak time and concentration, and end (last time above), from moment chaining with the closed-form
curve (Rhine Alarm Model method; Nordin & Troutman 1980 for the moment equivalence). The threshold
is the given one, else the class III limit of the pollutant (:func:`hydrology.transport.analytic.receptor_thresholds`
for a site), else, for a pollutant without a standard, 1 % of each point's own peak.

Points above the release on its reach and reaches not below the release are not sampled (NaN in the
tables). The release point itself is added with arrival 0 (the plume starts there) and no peak (a
point release is singular there). Between samples the map interpolates linearly in chainage, which
follows advection (arrival grows almost linearly with distance on a uniform reach).

GeoPackage
----------
:func:`write_arrival_gpkg` writes three layers with the network's CRS: ``reaches`` (the reach
line, from its ``geometry`` or else the straight line between its nodes, with the per-reach summary
of :func:`reach_summary` as attributes), ``receptors`` (the forecast's receptors as points, with
arrival, peak and end) and ``release`` (the release point). Times are seconds after the release
start and, when the release has a start, also UTC datetimes (``*_time``); concentrations are mg/L
(``*_mg_l``, = g/m3, the API's names); the column names carry the units.

``rivertrace plot`` (:func:`cmd_plot`; its flags are defined in :mod:`server.cli.forecast`) writes the map and curves of
:mod:`hydrology.plotting` and this GeoPackage for one release; it lives here, beside the arrivals
that the map and the GeoPackage share, because :mod:`hydrology.plotting` is figures only.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .exceptions import HydrologyError, UnknownElementError
from .network import Feature, RiverNetwork
from .transport.analytic import Forecast, Release, forecast

if TYPE_CHECKING:
    import xarray as xr

    from .reach_state import ReachState

__all__ = ["POINTS_PER_REACH", "GisOutputError", "arrivals_from_forecast", "cmd_plot",
           "crs_axis_unit", "crs_is_geographic", "feature_point", "plume_layers", "point_on_line", "reach_arrivals", "reach_line", "reach_summary",
           "write_arrival_gpkg"]

#: sample points per reach, both ends included [-]: the leading edge moves almost linearly with
#: distance (at the Ruxi intake, arrival interpolated between 5 points per reach is 2e-5 off the
#: receptor forecast, between 9 points 2e-6)
POINTS_PER_REACH = 9
#: sample points evaluated in one forecast call (memory: points x N_TIMES x 8 bytes per array)
_POINTS_PER_CALL = 4000


class GisOutputError(HydrologyError, ValueError):
    """Output that cannot be made: a CRS pyproj does not know, too few sample points per reach."""


# ------------------------------------------------------------------------------------ arrivals
def _downstream_set(net: RiverNetwork, reach: str) -> list[str]:
    below = net.all_downstream(reach) | {reach}
    return [r for r in net.reach_order if r in below]


def reach_arrivals(net: RiverNetwork, release: Release, *, threshold_g_m3: float | None = None,
                   wind_ms: float = 0.0, points_per_reach: int = POINTS_PER_REACH,
                   state: ReachState | None = None) -> xr.Dataset:
    """Arrival, peak and end of a plume at sample points along every reach below a release.

    Parameters
    ----------
    net : RiverNetwork
        A valid network.
    release : Release
        The release (its pollutant, mass or rate and duration are used).
    threshold_g_m3 : float, optional
        Concentration defining arrival and end [g/m3]; default the pollutant's GB 3838-2002
        class III limit, or 1 % of each point's own peak for a pollutant without a standard.
    wind_ms : float
        Along-stream 10 m wind [m/s] (floating pollutants only).
    points_per_reach : int
        Evenly spaced sample points per reach, both ends included (>= 2).
    state : ReachState, optional
        Precomputed reach state (default: the network's cached one).

    Returns
    -------
    xr.Dataset
        Dimension ``point``; coordinates ``reach`` (id), ``chainage_m`` [m]; variables
        ``arrival_s``, ``peak_s``, ``end_s`` [s after the release start], ``peak_g_m3`` [g/m3],
        ``distance_m`` [m along the river from the release], ``mass_fraction`` [-] and
        ``threshold_g_m3`` [g/m3] (NaN: share of the point's peak). NaN where the plume does not
        exceed the threshold (arrival, end) or where the point is not below the release.

    Notes
    -----
    Computed with the analytic engine (:func:`hydrology.transport.analytic.forecast`) on virtual ``site``
    features; see the module docstring. Cost: one moment routing per :data:`_POINTS_PER_CALL`
    points and N_TIMES curve samples per point.
    """
    import xarray as xr

    if points_per_reach < 2:
        raise GisOutputError(f"points_per_reach must be at least 2 (both reach ends), got {points_per_reach}")
    st = state if state is not None else net.reach_state()
    if release.reach not in net.reaches:
        raise UnknownElementError(f"unknown release reach {release.reach!r}")
    fracs = np.linspace(0.0, 1.0, points_per_reach)
    reaches: list[str] = []
    chain: list[float] = []
    for rid in _downstream_set(net, release.reach):
        length = net.reaches[rid].length_m
        for fr in fracs:
            c = float(fr * length)
            if rid == release.reach and c <= release.chainage_m:
                continue  # at or above the release: route_moments skips these points
            reaches.append(rid)
            chain.append(c)
    n = len(reaches)
    out = {k: np.full(n, np.nan) for k in ("arrival_s", "peak_s", "end_s", "peak_g_m3", "distance_m",
                                            "mass_fraction", "threshold_g_m3")}
    bases = np.full(n, "", dtype=object)
    for lo in range(0, n, _POINTS_PER_CALL):
        hi = min(lo + _POINTS_PER_CALL, n)
        sites = {f"{reaches[i]}@{i}": Feature("site", f"{reaches[i]}@{i}", reaches[i], chain[i]) for i in range(lo, hi)}
        virtual = RiverNetwork(net.nodes, net.reaches, inflows=net.inflows, features={"site": sites},
                               name=net.name, crs=net.crs)
        fc = forecast(virtual, release, kinds=("site",), threshold_g_m3=threshold_g_m3, wind_ms=wind_ms, state=st)
        for r in fc.receptors:
            i = int(r.id.rsplit("@", 1)[1])
            out["arrival_s"][i] = np.nan if r.arrival_s is None else r.arrival_s
            out["end_s"][i] = np.nan if r.end_s is None else r.end_s
            out["peak_s"][i] = r.peak_s
            out["peak_g_m3"][i] = r.peak_g_m3
            out["distance_m"][i] = r.distance_m
            out["mass_fraction"][i] = r.mass_fraction
            out["threshold_g_m3"][i] = np.nan if r.threshold_g_m3 is None else r.threshold_g_m3
            bases[i] = r.threshold_basis
    # the release point: the plume starts there (arrival 0); its peak is singular, so it has none
    reaches.insert(0, release.reach)
    chain.insert(0, float(release.chainage_m))
    start = {"arrival_s": 0.0, "distance_m": 0.0, "mass_fraction": 1.0}
    out = {k: np.concatenate([[start.get(k, np.nan)], v]) for k, v in out.items()}
    bases = np.concatenate([np.array(["release point"], dtype=object), bases])
    units = {"arrival_s": "s", "peak_s": "s", "end_s": "s", "peak_g_m3": "g m-3", "distance_m": "m",
             "mass_fraction": "1", "threshold_g_m3": "g m-3"}
    names = {"arrival_s": "leading-edge arrival (first time at or above the threshold) after release start",
             "peak_s": "time of peak concentration after release start",
             "end_s": "trailing-edge end (last time at or above the threshold) after release start",
             "peak_g_m3": f"peak {release.pollutant.name} concentration",
             "distance_m": "distance along the river from the release",
             "mass_fraction": "share of the released mass passing the point",
             "threshold_g_m3": "concentration defining arrival and end (NaN: share of peak)"}
    return xr.Dataset(
        {k: ("point", v, {"units": units[k], "long_name": names[k]}) for k, v in out.items()},
        coords={"reach": ("point", np.array(reaches, dtype=object), {"long_name": "reach id"}),
                "chainage_m": ("point", np.array(chain, float), {"units": "m",
                                                                 "long_name": "chainage from the reach's upstream end"}),
                "threshold_basis": ("point", bases)},
        attrs={"engine": "analytic (virtual site features)", "pollutant": release.pollutant.name,
               "source_reach": release.reach, "source_chainage_m": float(release.chainage_m),
               "release_mass_kg": release.total_mass_kg, "points_per_reach": points_per_reach},
    )


def arrivals_from_forecast(net: RiverNetwork, fc: Forecast, *, wind_ms: float = 0.0,
                           points_per_reach: int = POINTS_PER_REACH) -> xr.Dataset:
    """:func:`reach_arrivals` for the release of a forecast, with the forecast's threshold when it was given.

    When every receptor of ``fc`` has a threshold of basis ``"given"`` (one value for all), the
    same value defines arrival along the reaches; otherwise the default of :func:`reach_arrivals`
    applies (class III limit, or 1 % of peak), which a receptor's own class may differ from.
    """
    given = {r.threshold_g_m3 for r in fc.receptors if r.threshold_basis == "given"}
    threshold = given.pop() if len(given) == 1 and all(r.threshold_basis == "given" for r in fc.receptors) else None
    return reach_arrivals(net, fc.release, threshold_g_m3=threshold, wind_ms=wind_ms, points_per_reach=points_per_reach)


def reach_summary(net: RiverNetwork, arrivals: xr.Dataset) -> pd.DataFrame:
    """One row per reach (network order) summarising :func:`reach_arrivals`.

    Columns: ``reach``, ``name``, ``below_release`` (bool), and, at the reach's downstream end,
    ``arrival_s``, ``peak_s``, ``end_s`` [s], ``peak_g_m3`` [g/m3], ``distance_m`` [m],
    ``mass_fraction`` [-]; ``entry_arrival_s`` [s] is the arrival at the reach's upstream end (0 on
    the release reach, where the plume starts); ``max_peak_g_m3`` [g/m3] is the highest peak at
    the reach's sample points below the release (on the release reach it depends on the sample
    spacing, since the peak is singular at the release point). NaN for reaches not below the
    release, and for arrival and end where the plume stays below the threshold.
    """
    reach = np.asarray(arrivals["reach"].values).astype(str)
    chain = np.asarray(arrivals["chainage_m"].values, float)
    v = {k: np.asarray(arrivals[k].values, float) for k in
         ("arrival_s", "peak_s", "end_s", "peak_g_m3", "distance_m", "mass_fraction", "threshold_g_m3")}
    src = str(arrivals.attrs.get("source_reach"))
    rows = []
    groups: dict[str, np.ndarray] = {}
    for rid in np.unique(reach):
        groups[str(rid)] = np.flatnonzero(reach == rid)
    for rid, r in net.reaches.items():
        row: dict[str, Any] = {"reach": rid, "name": r.name, "below_release": rid in groups}
        idx = groups.get(rid)
        if idx is None:
            row.update({k: math.nan for k in ("arrival_s", "peak_s", "end_s", "peak_g_m3", "distance_m",
                                              "mass_fraction", "entry_arrival_s", "max_peak_g_m3", "threshold_g_m3")})
        else:
            end = idx[np.argmax(chain[idx])]
            first = idx[np.argmin(chain[idx])]
            row.update({k: float(v[k][end]) for k in ("arrival_s", "peak_s", "end_s", "peak_g_m3", "distance_m",
                                                      "mass_fraction", "threshold_g_m3")})
            row["entry_arrival_s"] = 0.0 if rid == src else float(v["arrival_s"][first])
            peaks = v["peak_g_m3"][idx]
            row["max_peak_g_m3"] = float(np.nanmax(peaks)) if np.any(np.isfinite(peaks)) else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------ geometry
def reach_line(net: RiverNetwork, reach_id: str) -> np.ndarray | None:
    """Coordinates [CRS units] of a reach line: its ``geometry``, else its two nodes' x/y, else None."""
    r = net.reach(reach_id)
    if r.geometry:
        return np.asarray([p[:2] for p in r.geometry], float)
    a, b = net.nodes.get(r.from_node), net.nodes.get(r.to_node)
    if a is not None and b is not None and None not in (a.x, a.y, b.x, b.y):
        return np.array([[a.x, a.y], [b.x, b.y]], float)
    return None


def point_on_line(line: np.ndarray, fraction: np.ndarray | float) -> np.ndarray:
    """Points at ``fraction`` (0 to 1) of a polyline's length [-]; returns (n, 2) coordinates.

    A feature's chainage is placed at chainage / length_m of the drawn line, as
    :mod:`hydrology.gpkg` does: the line is often schematic, chainage stays the authority.
    """
    seg = np.hypot(*np.diff(line, axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    s = np.clip(np.atleast_1d(np.asarray(fraction, float)), 0.0, 1.0) * cum[-1]
    return np.column_stack([np.interp(s, cum, line[:, 0]), np.interp(s, cum, line[:, 1])])


def feature_point(net: RiverNetwork, reach_id: str, chainage_m: float) -> np.ndarray | None:
    """Map position (x, y) of a point at a chainage on a reach, or None when the reach has no coordinates."""
    line = reach_line(net, reach_id)
    if line is None:
        return None
    length = net.reach(reach_id).length_m
    return point_on_line(line, chainage_m / length if length > 0 else 0.0)[0]


# ------------------------------------------------------------------------------------ GeoPackage
def _crs(net: RiverNetwork) -> Any:
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    if not net.crs:
        return None
    try:
        return CRS.from_user_input(net.crs)
    except CRSError as err:
        raise GisOutputError(f"network {net.name!r}: crs {net.crs!r} is not a CRS pyproj knows: {err}") from err


def crs_is_geographic(net: RiverNetwork) -> bool:
    """True when the network's CRS is geographic (lon/lat); False for a projected or absent CRS."""
    crs = _crs(net)
    return bool(crs is not None and crs.is_geographic)


def crs_axis_unit(net: RiverNetwork) -> str:
    """Unit of the network's x/y coordinates for axis labels ("metre", "degree"; "m, local" without a CRS)."""
    crs = _crs(net)
    if crs is None:
        return "m, local"
    return str(crs.axis_info[0].unit_name) if crs.axis_info else "CRS units"


#: GeoPackage/GeoJSON field names for the internal g/m3 names: the API's unit, mg/L (= g/m3)
FIELD_NAMES = {"peak_g_m3": "peak_mg_l", "max_peak_g_m3": "max_peak_mg_l", "threshold_g_m3": "threshold_mg_l"}
#: fields in seconds after the release that get a datetime twin (``*_time``) when the start is known
_TIME_FIELDS = ("arrival_s", "peak_s", "end_s", "entry_arrival_s")


def _with_times(table: pd.DataFrame, start: Any) -> pd.DataFrame:
    """Rename g/m3 fields to mg/L and, with a release start, add UTC datetime fields beside the seconds."""
    out = table.rename(columns=FIELD_NAMES)
    if start is None:
        return out
    t0 = pd.Timestamp(start).tz_convert("UTC")
    for col in _TIME_FIELDS:
        if col in out.columns:
            secs = pd.to_numeric(out[col], errors="coerce")
            at = out.columns.get_loc(col) + 1
            # whole milliseconds: GeoPackage DateTime holds milliseconds, so the field reads back exactly
            out.insert(at, col[:-2] + "_time", (t0 + pd.to_timedelta(secs.round(3), unit="s")).astype("datetime64[ms, UTC]"))
    return out


def plume_layers(net: RiverNetwork, fc: Forecast, *, arrivals: xr.Dataset | None = None, wind_ms: float = 0.0,
                 prefix: str = "") -> dict[str, Any]:
    """The plume forecast as GeoDataFrames: ``reaches``, ``receptors`` and ``release`` (names after ``prefix``).

    Columns carry units in their names: seconds after the release start (``*_s``), concentrations in
    mg/L (``*_mg_l``, = g/m3), metres (``*_m``); with a release start, every ``*_s`` time has a
    datetime twin ``*_time`` (UTC) and the release's ``start`` is a datetime. See
    :func:`write_arrival_gpkg` for the columns.
    """
    import geopandas as gpd
    import shapely

    crs = _crs(net)
    start = fc.release.start
    arr = arrivals if arrivals is not None else arrivals_from_forecast(net, fc, wind_ms=wind_ms)
    table = _with_times(reach_summary(net, arr), start)
    lines = [reach_line(net, rid) for rid in table["reach"]]
    reaches = gpd.GeoDataFrame(table, geometry=[None if ln is None else shapely.LineString(ln) for ln in lines],
                               crs=crs)
    nan = math.nan
    rec_rows, rec_geom = [], []
    for r in fc.receptors:
        feat = net.feature(r.id, r.kind)
        rec_rows.append({"id": r.id, "kind": r.kind, "name": feat.name, "reach": r.reach, "chainage_m": r.chainage_m,
                         "distance_m": r.distance_m, "arrival_s": nan if r.arrival_s is None else r.arrival_s,
                         "peak_s": r.peak_s, "peak_g_m3": r.peak_g_m3, "end_s": nan if r.end_s is None else r.end_s,
                         "duration_above_s": nan if r.duration_above_s is None else r.duration_above_s,
                         "threshold_g_m3": nan if r.threshold_g_m3 is None else r.threshold_g_m3,
                         "threshold_basis": r.threshold_basis, "mass_fraction": r.mass_fraction,
                         "discharge_m3s": r.discharge_m3s})
        p = feature_point(net, r.reach, r.chainage_m)
        rec_geom.append(None if p is None else shapely.Point(*p))
    cols = ["id", "kind", "name", "reach", "chainage_m", "distance_m", "arrival_s", "peak_s", "peak_g_m3", "end_s",
            "duration_above_s", "threshold_g_m3", "threshold_basis", "mass_fraction", "discharge_m3s"]
    receptors = gpd.GeoDataFrame(_with_times(pd.DataFrame(rec_rows, columns=cols), start), geometry=rec_geom, crs=crs)
    rel = fc.release
    p = feature_point(net, rel.reach, rel.chainage_m)
    rel_table = pd.DataFrame(
        {"reach": [rel.reach], "chainage_m": [rel.chainage_m], "pollutant": [rel.pollutant.name],
         "mass_kg": [rel.total_mass_kg], "duration_s": [float(rel.duration_s or 0.0)],
         "start": pd.Series([pd.Timestamp(rel.start).tz_convert("UTC") if rel.start else pd.NaT],
                            dtype="datetime64[ms, UTC]")})
    release = gpd.GeoDataFrame(rel_table, geometry=[None if p is None else shapely.Point(*p)], crs=crs)
    return {f"{prefix}reaches": reaches, f"{prefix}receptors": receptors, f"{prefix}release": release}


#: geometry type of each plume layer (unprefixed name)
PLUME_GEOMETRY = {"reaches": "LineString", "receptors": "Point", "release": "Point"}


def write_arrival_gpkg(net: RiverNetwork, fc: Forecast, path: str | Path, *, arrivals: xr.Dataset | None = None,
                       wind_ms: float = 0.0) -> Path:
    """Write the plume forecast as a GeoPackage: reaches with arrival times, receptors, release.

    Parameters
    ----------
    net : RiverNetwork
        The network the forecast was made on (geometry and CRS come from it).
    fc : Forecast
        A forecast of either engine (its receptors and release are written).
    path : str or Path
        The ``.gpkg`` file; an existing file is replaced (written to a temporary file first).
    arrivals : xr.Dataset, optional
        A precomputed :func:`reach_arrivals` result (default: :func:`arrivals_from_forecast`).
    wind_ms : float
        Along-stream wind [m/s] used for the reach arrivals when they are computed here.

    Returns
    -------
    Path
        The file written (GeoPackage 1.2, :mod:`hydrology.io.layers`). Layers: ``reaches``
        (LineString; the columns of :func:`reach_summary`, with ``peak_mg_l``, ``max_peak_mg_l``,
        ``threshold_mg_l``), ``receptors`` (Point: id, kind, name, reach, chainage_m, distance_m,
        arrival_s, peak_s, peak_mg_l, end_s, duration_above_s, threshold_mg_l, threshold_basis,
        mass_fraction, discharge_m3s) and ``release`` (Point: reach, chainage_m, pollutant,
        mass_kg, duration_s, start as a DateTime). With a release start every ``*_s`` time has a
        DateTime twin ``*_time`` (UTC). Reaches or receptors without coordinates get a null geometry.
    """
    from .io.layers import write_gpkg

    return write_gpkg(plume_layers(net, fc, arrivals=arrivals, wind_ms=wind_ms), path, geometry_types=PLUME_GEOMETRY)


# ------------------------------------------------------------------------------------ CLI
def cmd_plot(args: argparse.Namespace, *, load_network: Callable[[str], RiverNetwork],
             build_release: Callable[[RiverNetwork, argparse.Namespace], Release]) -> int:
    """Run ``rivertrace plot``: forecast the release (analytic engine) and write the requested outputs."""
    from .plotting import PlottingError, plot_breakthrough, plot_isochrones
    from .timezones import network_zone

    if not (args.map or args.curves or args.gpkg):
        raise PlottingError("nothing to write: give --map PNG, --curves PNG and/or --gpkg GPKG")
    net = load_network(args.network)
    release = build_release(net, args)
    kinds = tuple(k.strip() for k in args.kinds.split(","))
    fc = forecast(net, release, kinds=kinds, threshold_g_m3=args.threshold_mg_l,  # type: ignore[arg-type]
                  wind_ms=args.wind_ms)  # mg/L = g/m3: no conversion
    arrivals = arrivals_from_forecast(net, fc, wind_ms=args.wind_ms) if (args.map or args.gpkg) else None
    if args.map:
        plot_isochrones(net, fc, args.map, title=args.title, isochrone_step_h=args.isochrone_step_h, arrivals=arrivals,
                        lang=getattr(args, "lang", "en"))
        print(f"wrote map {args.map}", file=sys.stderr)
    if args.curves:
        ids = [r.strip() for r in args.receptors.split(",")] if args.receptors else None
        plot_breakthrough(fc, args.curves, receptors=ids, lang=getattr(args, "lang", "en"),
                          timezone=network_zone(net).key)
        print(f"wrote curves {args.curves}", file=sys.stderr)
    if args.gpkg:
        write_arrival_gpkg(net, fc, args.gpkg, arrivals=arrivals)
        print(f"wrote GeoPackage {args.gpkg} (layers reaches, receptors, release)", file=sys.stderr)
    return 0

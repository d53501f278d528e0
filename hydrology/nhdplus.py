"""Import an NHDPlusV2 flowline GeoPackage as a rivertrace network document.

:func:`import_nhdplus` reads the flowline layer (``NHDFlowline_Network`` or the file's only line
layer) and the ``Gage`` layer, and returns a network document dict (:mod:`hydrology.document`) and
an :class:`ImportReport` counting what each rule did. Units are converted to SI here, once, and each
reach's ``source`` object says which rule gave each number.

* Topology: reach id = COMID, node ids = FromNode/ToNode (integers as strings). NHDPlus lines are
  digitised downstream (the last vertex of every flowline is the first vertex of those below it, on
  all 1,833 links of the shipped files), so nodes sit at the first/last vertices; Z and M are dropped.
* Flow: ``discharge_m3s`` = QE_MA [cfs] x 0.3048^3 (EROM flow, already routed through divergences),
  else QA_MA. A stated flow of 0 is a *dry* flowline (EROM sends no water down minor divergence
  paths and headwater lake paths): it is left out and listed in the report, since it cannot carry
  a plume and the core requires positive discharge. A flowline with neither value gets no discharge
  (validation reports it; nothing is invented). As every reach states its discharge,
  ``flow_fraction`` is not written: the core derives split shares from the discharges.
* Velocity, first rule that applies (:data:`VELOCITY_RULES`): VE_MA > 0 -> VE_MA [ft/s] x 0.3048;
  TOTMA > 0 (lake ArtificialPaths: residence time [days]) -> length / (TOTMA x 86400); else Jobson
  (1996) at import. EROM's VE_MA *is* Jobson's peak velocity with Q = Qa = QE_MA, Da = DivDASqKM,
  eq. 12 where SLOPE is known and eq. 14 (no slope) where it is not: that recipe gives back VE_MA to
  0.03 % on all 1,354 flowlines with VE_MA > 0 in the shipped files, so the Jobson rule applies it to
  the flowlines EROM left without a velocity (tidal ones, VE_MA = -9999). It is written as
  ``velocity_ms`` because the core ranks hydraulic geometry (on every reach, below) above Jobson and
  has no no-slope variant; ``drainage_area_m2`` and ``mean_annual_discharge_m3s`` are kept.
* Slope: SLOPE [m/m], -9998 = missing. Every reach needs one (no reach has a measured dispersion
  coefficient, and the estimator needs u* = sqrt(g R S)), so a missing slope becomes the NHDPlus
  floor :data:`NHDPLUS_MIN_SLOPE` and ``source.slope`` says so.
* Width and depth: NHDPlus has none; every reach gets the hydraulic-geometry coefficients of
  :data:`hydrology.empirical_hydraulics.LEOPOLD_MADDOCK_DEFAULTS`, and the document ``notes`` say so.
* Gauges become stations ``USGS-<SOURCE_FEA>`` on the FLComID reach. ``Measure`` is a reach-code
  measure in percent from the reach code's downstream end (0 = outlet, 100 = inlet; nhdplusTools
  ``rescale_measures``) and a flowline covers [FromMeas, ToMeas] of its reach code, so chainage_m =
  (ToMeas - Measure) / (ToMeas - FromMeas) x length_m (= (100 - Measure)/100 x length_m for a
  flowline that is a whole reach code).

References
----------
McKay, L., Bondelid, T., Dewald, T., Johnston, J., Moore, R., and Rea, A. (2012), NHDPlus Version 2:
User Guide (Data Model Version 2.1), US EPA / Horizon Systems.
Jobson, H. E. (1996), Prediction of traveltime and longitudinal dispersion in rivers and streams,
USGS Water-Resources Investigations Report 96-4013, eqs. 12 and 14.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from .empirical_hydraulics import LEOPOLD_MADDOCK_DEFAULTS, jobson_velocity, jobson_velocity_no_slope
from .exceptions import NetworkFormatError
from .problems import Problem
from .timezones import DEFAULT_ZONE, us_state_zone, zone_error
from .units import CFS, DAY, FOOT, KM, KM2

__all__ = [
    "FLOWLINE_LAYER",
    "GAGE_LAYER",
    "MISSING_CODES",
    "NHDPLUS_MIN_SLOPE",
    "VELOCITY_RULES",
    "ImportReport",
    "import_nhdplus",
]

#: Name of the NHDPlusV2 network flowline layer.
FLOWLINE_LAYER = "NHDFlowline_Network"
#: Name of the NHDPlusV2 stream-gauge event layer.
GAGE_LAYER = "Gage"
#: NHDPlus "no value" codes (McKay et al. 2012: -9998 = no value, -9999 = not computed).
MISSING_CODES = (-9998.0, -9999.0)
#: Smallest slope NHDPlusV2 assigns [m/m]: computed slopes are floored at 1e-5. Not found stated in
#: a source reachable from here (see the issue note); the shipped files agree: 449 flowlines have
#: SLOPE exactly 1e-5 and none has a positive SLOPE below it.
NHDPLUS_MIN_SLOPE = 1.0e-5
#: a lake reach is a fully mixed tank: D = LAKE_MIXING_FACTOR x U x L gives travel-time variance equal
#: to the residence time squared (2 D L / U^3 = L^2 / U^2), the CSTR result (Levenspiel 1999, ch. 14)
LAKE_MIXING_FACTOR = 0.5
#: Node positions of flowlines meeting at one node may differ by this much [CRS units] (float noise).
NODE_POSITION_TOLERANCE = 1e-9

FloatArray = NDArray[np.float64]
#: discharge columns [cfs] in priority order
DISCHARGE_COLUMNS = ("QE_MA", "QA_MA")
_M_WARNING = "Measured \\(M\\) geometry types are not supported"  # M is dropped anyway (2-D document)
_SOURCE_INT = ("Hydroseq", "DnHydroseq", "StreamOrde", "Divergence", "Tidal")
_SOURCE_STR = ("GNIS_NAME", "FTYPE", "REACHCODE")


class _Table:
    """A table with case-insensitive columns; numbers as float arrays with NaN for missing values."""

    def __init__(self, df: pd.DataFrame, what: str) -> None:
        self.df, self.what = df, what
        self.columns: dict[str, str] = {}
        for c in map(str, df.columns):
            if c.lower() in self.columns:
                raise NetworkFormatError(f"{what}: columns {self.columns[c.lower()]!r} and {c!r} differ only in case")
            self.columns[c.lower()] = c

    def has(self, name: str) -> bool:
        return name.lower() in self.columns

    def raw(self, name: str) -> pd.Series:
        if not self.has(name):
            raise NetworkFormatError(f"{self.what}: required column {name!r} is missing")
        return self.df[self.columns[name.lower()]]

    def code(self, name: str) -> FloatArray:
        """Numeric column as written, missing codes kept (an absent column is all NaN)."""
        if not self.has(name):
            return np.full(len(self.df), np.nan)
        return pd.to_numeric(self.raw(name), errors="coerce").to_numpy(dtype=float, na_value=np.nan)

    def num(self, name: str) -> FloatArray:
        """Numeric column with the NHDPlus missing codes as NaN."""
        v = self.code(name)
        return np.where(np.isin(v, MISSING_CODES), np.nan, v)


@dataclass(frozen=True, slots=True)
class _Hydro:
    """Per-flowline inputs of the velocity rules, SI, NaN where missing."""

    length_m: FloatArray
    discharge_m3s: FloatArray
    ve_ms: FloatArray
    totma_s: FloatArray
    slope: FloatArray
    drainage_area_m2: FloatArray


@dataclass(frozen=True, slots=True)
class VelocityRule:
    """One way to get a reach velocity: where it applies, the velocity [m/s], the provenance text."""

    applies: Callable[[_Hydro], NDArray[np.bool_]]
    velocity: Callable[[_Hydro, NDArray[np.bool_]], FloatArray]
    source: Callable[[_Hydro, int], str]


def _jobson(h: _Hydro, m: NDArray[np.bool_]) -> FloatArray:
    """Jobson (1996) Vp [m/s] with Q = Qa: eq. 12 where the slope is known, eq. 14 where it is not."""
    q, da, s = h.discharge_m3s[m], h.drainage_area_m2[m], h.slope[m]
    v = np.empty(q.shape)
    k = s > 0
    if k.any():
        v[k] = jobson_velocity(q[k], da[k], s[k], q[k])[0]
    if (~k).any():
        v[~k] = jobson_velocity_no_slope(q[~k], da[~k], q[~k])[0]
    return v


#: Velocity rules in priority order (first that applies wins), keyed by the name the report counts.
VELOCITY_RULES: dict[str, VelocityRule] = {
    "VE_MA": VelocityRule(lambda h: h.ve_ms > 0, lambda h, m: h.ve_ms[m],
                          lambda h, i: "NHDPlus EROM VE_MA x 0.3048"),
    "TOTMA (lake residence)": VelocityRule(lambda h: h.totma_s > 0, lambda h, m: h.length_m[m] / h.totma_s[m],
                                           lambda h, i: "NHDPlus TOTMA (lake residence)"),
    "Jobson (1996)": VelocityRule(
        lambda h: (h.discharge_m3s > 0) & (h.drainage_area_m2 > 0), _jobson,
        lambda h, i: (f"Jobson (1996) peak velocity at import, {'eq. 12' if h.slope[i] > 0 else 'eq. 14 (no slope)'},"
                      " Q = Qa = discharge_m3s, Da = drainage_area_m2 (the NHDPlus EROM recipe of VE_MA)")),
}


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What :func:`import_nhdplus` did, rule by rule.

    ``rules`` maps a rule group ("discharge", "velocity", "slope", "drainage_area", "dry",
    "stations") to counts per rule; ``excluded`` maps a reason to the ids left out (flowline
    COMIDs, gauge ids).
    """

    path: str
    layer: str
    crs: str | None
    flowlines: int
    reaches: int
    nodes: int
    rules: Mapping[str, Mapping[str, int]]
    excluded: Mapping[str, tuple[str, ...]]
    node_position_conflicts: int
    notes: tuple[str, ...] = ()

    def __str__(self) -> str:
        lines = [f"{self.path} [{self.layer}] -> {self.reaches} reaches of {self.flowlines} flowlines, "
                 + f"{self.nodes} nodes, crs {self.crs}"]
        lines += [f"  {g}: " + ", ".join(f"{k} {v}" for k, v in c.items()) for g, c in self.rules.items()]
        lines += [f"  excluded, {why}: {len(ids)} ({', '.join(ids[:8])}{' ...' if len(ids) > 8 else ''})"
                  for why, ids in self.excluded.items()]
        lines.append(f"  node position conflicts: {self.node_position_conflicts}")
        return "\n".join(lines + [f"  note: {n}" for n in self.notes])

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready)."""
        return {"path": self.path, "layer": self.layer, "crs": self.crs, "flowlines": self.flowlines,
                "reaches": self.reaches, "nodes": self.nodes, "rules": {k: dict(v) for k, v in self.rules.items()},
                "excluded": {k: list(v) for k, v in self.excluded.items()},
                "node_position_conflicts": self.node_position_conflicts, "notes": list(self.notes)}


# ---------------------------------------------------------------------------------------- reading
def _pick_layer(path: Path, layers: list[tuple[str, str | None]], layer: str | None) -> str:
    names = {n.lower(): n for n, _ in layers}
    if layer is not None:
        if layer.lower() not in names:
            raise NetworkFormatError(f"{path}: no layer {layer!r} (layers: {', '.join(n for n, _ in layers)})")
        return names[layer.lower()]
    if FLOWLINE_LAYER.lower() in names:
        return names[FLOWLINE_LAYER.lower()]
    lines = [n for n, g in layers if g is not None and "linestring" in g.lower()]
    if len(lines) != 1:
        raise NetworkFormatError(f"{path}: no {FLOWLINE_LAYER!r} layer and {len(lines)} line layers "
                                 f"({', '.join(lines) or 'none'}); name the flowline layer with layer=...")
    return lines[0]


def _crs_name(wkt: str | None, layer: str) -> tuple[str | None, str | None]:
    """Document CRS string, and a note when it was interpreted (custom NHDPlus srs -> EPSG:4269)."""
    from pyproj import CRS

    if not wkt:
        return None, f"layer {layer!r} has no CRS; coordinates are in unknown units"
    crs = CRS.from_user_input(wkt)
    auth = crs.to_authority(min_confidence=100)
    if auth is not None:
        return f"{auth[0]}:{auth[1]}", None
    if crs.is_geographic and crs.ellipsoid is not None and crs.ellipsoid.name == "GRS80":
        return "EPSG:4269", (f"layer {layer!r} has a custom geographic CRS on GRS80 without an authority code "
                             "(NHDPlus NAD83 lon/lat); written as EPSG:4269")
    return crs.to_wkt(), f"layer {layer!r} has a CRS without an authority code; written as WKT"


def _py(value: Any) -> Any:
    """A JSON-ready scalar: numpy types unwrapped, NaN -> None, blank text -> None, integral -> int."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value.strip() or None if isinstance(value, str) else value


def _as_id(value: Any, what: str) -> str:
    v = _py(value)
    if not isinstance(v, int) or isinstance(v, bool):
        raise NetworkFormatError(f"{what}: {value!r} is not an integer id")
    return str(v)


def _line_coords(geom: Any, comid: str) -> list[list[float]] | None:
    """2-D vertices of a flowline as digitised (downstream), Z and M dropped."""
    import shapely

    if geom is None or geom.is_empty:
        return None
    g = shapely.line_merge(geom) if geom.geom_type == "MultiLineString" else geom
    if g.geom_type != "LineString":
        raise NetworkFormatError(f"flowline {comid}: geometry is a {g.geom_type} of disjoint parts, not one line")
    return shapely.get_coordinates(g).tolist()


def _rules(t: _Table, n: int) -> dict[str, Any]:
    """Apply the discharge, slope, drainage-area and velocity rules to every flowline at once."""
    length_m = t.num("LENGTHKM") * KM
    if np.isnan(length_m).any():
        raise NetworkFormatError(f"{t.what}: row {int(np.flatnonzero(np.isnan(length_m))[0])} has no LENGTHKM")
    if not any(t.has(c) for c in DISCHARGE_COLUMNS):
        raise NetworkFormatError(f"{t.what}: none of {DISCHARGE_COLUMNS} is present; no discharge can be had")
    q, q_rule = np.full(n, np.nan), np.full(n, "none", dtype=object)
    for col in DISCHARGE_COLUMNS:
        take = np.isnan(q) & ~np.isnan(t.num(col))
        q[take], q_rule[take] = t.num(col)[take] * CFS, col
    dry = q == 0.0
    slope = t.num("SLOPE")
    div_da, tot_da = t.num("DivDASqKM") * KM2, t.num("TotDASqKM") * KM2
    da = np.where(div_da > 0, div_da, np.where(tot_da > 0, tot_da, np.nan))
    h = _Hydro(length_m, q, t.num("VE_MA") * FOOT, t.num("TOTMA") * DAY, slope, da)
    velocity, v_rule = np.full(n, np.nan), np.full(n, "none", dtype=object)
    for name, rule in VELOCITY_RULES.items():
        m = np.isnan(velocity) & ~dry & rule.applies(h)
        if m.any():
            velocity[m], v_rule[m] = rule.velocity(h, m), name
    return {"hydro": h, "q_rule": q_rule, "dry": dry, "velocity": velocity, "v_rule": v_rule,
            "slope_missing": np.isnan(slope), "slope_code": t.code("SLOPE"), "totma_code": t.code("TOTMA"),
            "da_rule": np.where(div_da > 0, "DivDASqKM", np.where(tot_da > 0, "TotDASqKM", "none"))}


def _reach(t: _Table, i: int, ids: tuple[str, str, str], geom: list[list[float]] | None,
           r: Mapping[str, Any]) -> dict[str, Any]:
    """The document reach of flowline row i, with its provenance in ``source``."""
    h: _Hydro = r["hydro"]
    hg = LEOPOLD_MADDOCK_DEFAULTS
    src: dict[str, Any] = {"dataset": "NHDPlusV2", "COMID": int(ids[0])}
    src.update({c: _py(t.raw(c).iloc[i]) for c in (*_SOURCE_STR, *_SOURCE_INT) if t.has(c)})
    src["TOTMA_days"] = None if np.isnan(r["totma_code"][i]) else float(r["totma_code"][i])
    src["discharge"] = ("missing: none of QE_MA, QA_MA" if r["q_rule"][i] == "none"
                        else f"NHDPlus {r['q_rule'][i]} x 0.3048^3")
    v_rule = r["v_rule"][i]
    src["velocity"] = (VELOCITY_RULES[v_rule].source(h, i) if v_rule != "none"
                       else "none: no VE_MA, no TOTMA, no discharge and drainage area for Jobson")
    src["slope"] = (f"missing ({r['slope_code'][i]:g}); NHDPlus minimum slope 1e-5 used" if r["slope_missing"][i]
                    else "NHDPlus SLOPE")
    src["drainage_area"] = str(r["da_rule"][i])
    src["width_depth"] = f"hydraulic geometry defaults: {hg.source}"
    out: dict[str, Any] = {
        "id": ids[0], "from_node": ids[1], "to_node": ids[2], "length_m": float(h.length_m[i]),
        "slope": NHDPLUS_MIN_SLOPE if r["slope_missing"][i] else float(h.slope[i]),
        "width_coef": hg.a, "width_exp": hg.b, "depth_coef": hg.c, "depth_exp": hg.f,
    }
    for key, value in (("drainage_area_m2", h.drainage_area_m2[i]), ("discharge_m3s", h.discharge_m3s[i]),
                       ("mean_annual_discharge_m3s", h.discharge_m3s[i]), ("velocity_ms", r["velocity"][i])):
        if not np.isnan(value):
            out[key] = float(value)
    if v_rule == "TOTMA (lake residence)" and "velocity_ms" in out:
        # a lake mixes like a stirred tank (fully_mixed: the transport engines treat it as one);
        # D = U L / 2 gives a channel reader the same travel-time variance tau^2 = 2 D L / U^3
        out["fully_mixed"] = True
        out["dispersion_m2s"] = LAKE_MIXING_FACTOR * out["velocity_ms"] * out["length_m"]
        src["dispersion"] = "lake: fully mixed (a stirred tank of residence time TOTMA); D = U L / 2 for the moments"
    if src.get("GNIS_NAME"):
        out["name"] = src["GNIS_NAME"]
    if geom is not None:
        out["geometry"] = geom
    out["source"] = src
    return out


def import_nhdplus(path: str | Path, layer: str | None = None, *,
                   gauges: bool = True, timezone: str | None = None) -> tuple[dict[str, Any], ImportReport]:
    """Read an NHDPlusV2 flowline GeoPackage into a rivertrace network document.

    Parameters
    ----------
    path : str or Path
        GeoPackage with NHDPlusV2 flowlines and their value-added attributes (column names are
        matched case-insensitively).
    layer : str, optional
        Flowline layer; default ``NHDFlowline_Network``, else the file's only line layer.
    gauges : bool
        Import the ``Gage`` layer (when present) as stations.
    timezone : str, optional
        IANA zone the basin's times are shown in (``"America/New_York"`` for North Carolina,
        ``"America/Los_Angeles"`` for California), written as the document's ``timezone``. Without
        it the zone is taken from the ``STATE`` of the ``Gage`` layer's gauges when they all lie in
        states wholly within one zone (:data:`hydrology.timezones.US_STATE_ZONES`); otherwise the
        document has none and displays in the default ``Asia/Shanghai``. The report's notes say which.

    Returns
    -------
    document : dict
        A rivertrace network document (SI units; see :mod:`hydrology.document`).
    report : ImportReport
        Counts per rule and the ids left out, with reasons.

    Raises
    ------
    NetworkFormatError
        For an unreadable file, a missing layer or required column, a non-integer or duplicate
        id, a flowline made of disjoint parts, or a ``timezone`` that is not an IANA zone name.
    """
    import pyogrio

    zone_problem = zone_error(timezone)
    if zone_problem:
        raise NetworkFormatError(f"timezone: {zone_problem}",
                                 [Problem("error", "network", "", "timezone", zone_problem)])
    p = Path(path)
    if not p.is_file():
        raise NetworkFormatError(f"{p}: no such file")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_M_WARNING)
        try:
            layers = [(str(a), None if b is None else str(b)) for a, b in pyogrio.list_layers(p)]
        except Exception as err:  # pyogrio's DataSourceError and friends
            raise NetworkFormatError(f"{p}: cannot read as a GeoPackage: {err}") from err
        lyr = _pick_layer(p, layers, layer)
        crs, crs_note = _crs_name(pyogrio.read_info(p, layer=lyr)["crs"], lyr)
        t = _Table(pyogrio.read_dataframe(p, layer=lyr), f"{p.name}[{lyr}]")
    n = len(t.df)
    ids = [tuple(_as_id(v, f"{t.what} {c}") for c, v in zip(("COMID", "FromNode", "ToNode"), row, strict=True))
           for row in zip(t.raw("COMID"), t.raw("FromNode"), t.raw("ToNode"), strict=True)]
    comids = [i[0] for i in ids]
    if len(set(comids)) != n:
        raise NetworkFormatError(f"{t.what}: duplicate COMID {sorted({c for c in comids if comids.count(c) > 1})[:5]}")
    r = _rules(t, n)
    dry, v_rule = r["dry"], r["v_rule"]
    geoms = list(t.df.geometry) if "geometry" in t.df else [None] * n

    reaches: list[dict[str, Any]] = []
    node_xy: dict[str, tuple[float, float]] = {}
    conflicts: set[str] = set()
    for i in np.flatnonzero(~dry):
        line = _line_coords(geoms[i], comids[i])
        reaches.append(_reach(t, int(i), ids[i], line, r))  # type: ignore[arg-type]
        for node, xy in ((ids[i][1], line[0]), (ids[i][2], line[-1])) if line else ():
            old = node_xy.setdefault(node, (xy[0], xy[1]))
            if max(abs(old[0] - xy[0]), abs(old[1] - xy[1])) > NODE_POSITION_TOLERANCE:
                conflicts.add(node)
    nodes = [{"id": nid, **({"x": node_xy[nid][0], "y": node_xy[nid][1]} if nid in node_xy else {})}
             for nid in dict.fromkeys(x for rr in reaches for x in (rr["from_node"], rr["to_node"]))]

    excluded: dict[str, tuple[str, ...]] = {}
    if dry.any():
        excluded["dry flowline (stated flow 0)"] = tuple(comids[i] for i in np.flatnonzero(dry))
    rules: dict[str, dict[str, int]] = {
        "discharge": _counts(r["q_rule"][~dry], (*DISCHARGE_COLUMNS, "none")),
        "velocity": _counts(v_rule[~dry], (*VELOCITY_RULES, "none")),
        "slope": {"SLOPE": int((~r["slope_missing"] & ~dry).sum()),
                  "NHDPlus minimum 1e-5 (SLOPE missing)": int((r["slope_missing"] & ~dry).sum())},
        "drainage_area": _counts(r["da_rule"][~dry], ("DivDASqKM", "TotDASqKM", "none")),
        "dry": {"excluded": int(dry.sum())},
    }
    stations: list[dict[str, Any]] = []
    gage = next((name for name, _ in layers if name.lower() == GAGE_LAYER.lower()), None)
    if gauges and gage is not None:
        stations, rules["stations"], skipped = _gauge_stations(p, gage, t, comids, reaches)
        excluded.update(skipped)
    notes = [crs_note] if crs_note else []
    if timezone is None:
        states = _gauge_states(p, gage) if gage is not None else []
        timezone = us_state_zone(states) if states else None
        if timezone is not None:
            notes.append(f"time zone {timezone}: the state of the gauges ({', '.join(sorted(set(states)))}; "
                         f"{len(states)} gauges state one)")
        else:
            why = (f"the gauges' states ({', '.join(sorted(set(states)))}) are not wholly in one zone" if states
                   else "no gauge states a STATE" if gage is not None else "there is no Gage layer")
            notes.append(f"no time zone: NHDPlus has none, none was given (--timezone) and {why}; times will show in "
                         f"{DEFAULT_ZONE}, the default; set the document's 'timezone' (e.g. America/New_York)")
    tidal = (t.num("Tidal") == 1) & ~dry
    if tidal.any():
        notes.append(f"{int(tidal.sum())} flowlines are tidal (Tidal = 1), where EROM gives no velocity; "
                     f"{int((tidal & (v_rule == 'Jobson (1996)')).sum())} of them use the steady Jobson (1996) "
                     "velocity, which ignores tidal exchange")
    doc: dict[str, Any] = {
        "format": "rivertrace-network", "version": 1, "name": p.stem, **({"crs": crs} if crs else {}),
        **({"timezone": timezone} if timezone else {}),
        "notes": _document_notes(p, lyr, n, rules, notes), "nodes": nodes, "reaches": reaches, "inflows": [],
        "stations": stations, "dischargers": [], "intakes": [], "structures": [], "sites": [], "departments": [],
    }
    report = ImportReport(path=str(p), layer=lyr, crs=crs, flowlines=n, reaches=len(reaches), nodes=len(nodes),
                          rules=rules, excluded=excluded, node_position_conflicts=len(conflicts), notes=tuple(notes))
    return doc, report


def _counts(values: NDArray[Any], keys: tuple[str, ...]) -> dict[str, int]:
    return {k: int((values == k).sum()) for k in keys}


def _document_notes(p: Path, layer: str, n: int, rules: Mapping[str, Mapping[str, int]], extra: list[str]) -> str:
    hg = LEOPOLD_MADDOCK_DEFAULTS
    v = rules["velocity"]
    parts = [
        (f"Imported by rivertrace from NHDPlusV2 file {p.name}, layer {layer} ({n} flowlines); each reach's "
         "'source' object keeps the NHDPlus ids and names the rule behind each number."),
        (f"discharge_m3s = QE_MA (EROM mean annual flow) x 0.3048^3, else QA_MA; {rules['dry']['excluded']} dry "
         "flowlines (stated flow 0: EROM routes no water down them) are not imported."),
        (f"velocity_ms: VE_MA x 0.3048 on {v['VE_MA']} reaches; length / (TOTMA x 86400) on "
         f"{v['TOTMA (lake residence)']} lake reaches (TOTMA = residence time); Jobson (1996) at import on "
         f"{v['Jobson (1996)']} reaches (Q = Qa = discharge, Da = DivDASqKM, as EROM computes VE_MA)."),
        ("NHDPlus has no channel width or depth: width_coef/width_exp/depth_coef/depth_exp on every reach are the "
         f"hydraulic-geometry defaults B = {hg.a} Q^{hg.b}, H = {hg.c} Q^{hg.f} [m] ({hg.source}); they feed the "
         "dispersion estimator only (velocity_ms is stated on every reach that has one)."),
        ("Lake reaches (TOTMA rule) are fully_mixed: stirred tanks of residence time TOTMA in both transport engines; "
         "they also state dispersion_m2s = U L / 2 (travel-time variance = residence time squared); the river "
         "dispersion estimators do not apply to lakes."),
        (f"Missing SLOPE (-9998) is replaced by the NHDPlus minimum slope {NHDPLUS_MIN_SLOPE:g} on "
         f"{rules['slope']['NHDPlus minimum 1e-5 (SLOPE missing)']} reaches (needed for the shear velocity)."),
    ]
    return " ".join(parts + [e + "." for e in extra])


def _gauge_states(p: Path, layer: str) -> list[str]:
    """The ``STATE`` (USPS code) of the gauges in the Gage layer that state one (empty when the column
    is missing)."""
    import pyogrio

    g = _Table(pyogrio.read_dataframe(p, layer=layer, read_geometry=False), f"{p.name}[{layer}]")
    if not g.has("STATE"):
        return []
    return [str(v) for v in map(_py, g.raw("STATE")) if isinstance(v, str)]


def _gauge_stations(p: Path, layer: str, flow: _Table, comids: list[str], reaches: list[dict[str, Any]],
                    ) -> tuple[list[dict[str, Any]], dict[str, int], dict[str, tuple[str, ...]]]:
    """Stations from the Gage layer, the counts, and the skipped gauge ids per reason."""
    import pyogrio

    g = _Table(pyogrio.read_dataframe(p, layer=layer), f"{p.name}[{layer}]")
    by_id = {r["id"]: r for r in reaches}
    row = {c: i for i, c in enumerate(comids)}
    from_meas, to_meas, measures = flow.num("FromMeas"), flow.num("ToMeas"), g.num("Measure")
    stations: list[dict[str, Any]] = []
    skipped: dict[str, list[str]] = {}
    for k in range(len(g.df)):
        fea = _py(g.raw("SOURCE_FEA").iloc[k])
        sid, comid = f"USGS-{fea}", _as_id(g.raw("FLComID").iloc[k], f"{g.what} FLComID")
        i = row.get(comid)
        lo = 0.0 if i is None or np.isnan(from_meas[i]) else float(from_meas[i])
        hi = 100.0 if i is None or np.isnan(to_meas[i]) else float(to_meas[i])
        meas = float(measures[k])
        rc = [_py(tab.raw("REACHCODE").iloc[j]) if tab.has("REACHCODE") else None for tab, j in ((g, k), (flow, i))
              ] if i is not None else [None, None]
        reason = ("gauge: duplicate SOURCE_FEA" if any(s["id"] == sid for s in stations)
                  else "gauge: FLComID not in the flowline layer" if i is None
                  else "gauge: on a dry flowline (not imported)" if comid not in by_id
                  else "gauge: Measure outside its flowline's FromMeas..ToMeas"
                  if not (hi > lo and lo - 1e-6 <= meas <= hi + 1e-6)
                  else "gauge: REACHCODE differs from its flowline's" if None not in rc and rc[0] != rc[1]
                  else None)
        if reason:
            skipped.setdefault(reason, []).append(sid)
            continue
        frac = min(max((hi - meas) / (hi - lo), 0.0), 1.0)
        st: dict[str, Any] = {"id": sid, "reach": comid, "chainage_m": frac * by_id[comid]["length_m"]}
        if g.has("STATION_NM") and _py(g.raw("STATION_NM").iloc[k]):
            st["name"] = _py(g.raw("STATION_NM").iloc[k])
        st["source"] = {"dataset": "NHDPlusV2 Gage", "SOURCE_FEA": fea, "FLComID": int(comid), "Measure": meas,
                        "FromMeas": lo, "ToMeas": hi, "chainage": "(ToMeas - Measure) / (ToMeas - FromMeas) x length_m",
                        **{c: _py(g.raw(c).iloc[k]) for c in ("REACHCODE", "AGENCY_CD", "DASqKm") if g.has(c)}}
        stations.append(st)
    counts = {"imported": len(stations), **{k: len(v) for k, v in skipped.items()}}
    return stations, counts, {k: tuple(v) for k, v in skipped.items()}

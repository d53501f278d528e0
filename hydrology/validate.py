"""Semantic validation of a river network: every problem, with element id and field.

Errors make a network unusable for forecasting (a cycle, a non-positive length, a station off its
reach, split fractions that do not sum to 1, a reach with no discharge or no way to get a
velocity). Warnings are worth a look but do not stop work (disconnected parts, isolated nodes,
department references to unknown ids, pollutants that are not standard items).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .document import network_from_document
from .exceptions import NetworkFormatError, NetworkValidationError
from .network import FEATURE_COLLECTIONS, RiverNetwork
from .problems import Problem

#: relative tolerance on split fractions summing to 1 [-]: NHDPlus and hand-written files round
#: fractions to a few digits, so 1e-3 accepts 0.333 + 0.667 but not 0.3 + 0.6.
SPLIT_SUM_RTOL = 1e-3
WATER_CLASSES = ("I", "II", "III", "IV", "V")

#: plausible ranges of every numeric field, SI units (README "Plausibility ranges"): a value outside
#: is an error naming the range. A bound in the tuple is (low, high, low_open, high_open, unit); the
#: highs are set beyond the largest real rivers (Amazon: mean flow ~209,000 m3/s, basin ~7e12 m2)
#: and the lows at the physical limit, so no real network is refused and nothing absurd passes.
REACH_RANGES: dict[str, tuple[float, float, bool, bool, str]] = {
    "length_m": (0.0, 1e6, True, False, "m"),                       # 0 - 1,000 km
    "slope": (0.0, 1.0, True, False, "m/m"),
    "manning_n": (0.0, 1.0, True, False, "s/m^(1/3)"),
    "bottom_width_m": (0.0, 1e5, False, False, "m"),
    "side_slope": (0.0, 100.0, False, False, "H:V"),
    "width_coef": (0.0, 1e4, True, False, "m (m3/s)^-b"),
    "width_exp": (0.0, 1.0, False, False, "-"),
    "depth_coef": (0.0, 1e3, True, False, "m (m3/s)^-f"),
    "depth_exp": (0.0, 1.0, False, False, "-"),
    "drainage_area_m2": (0.0, 1e13, True, False, "m2"),
    "mean_annual_discharge_m3s": (0.0, 3e5, True, False, "m3/s"),
    "discharge_m3s": (0.0, 3e5, True, False, "m3/s"),
    "velocity_ms": (0.0, 20.0, True, False, "m/s"),
    "dispersion_m2s": (0.0, 1e5, False, False, "m2/s"),
    "storage_ratio": (0.0, 100.0, False, False, "-"),
    "storage_exchange_per_s": (0.0, 1.0, True, False, "1/s"),
    "flow_fraction": (0.0, 1.0, True, False, "-"),
}
INFLOW_RANGE = (0.0, 3e5, True, False, "m3/s")
#: node coordinates: degrees or projected metres; beyond 1e8 is neither [-]
COORD_RANGE = (-1e8, 1e8, False, False, "CRS units")
FEATURE_RANGES: dict[str, dict[str, tuple[float, float, bool, bool, str]]] = {
    "dischargers": {"effluent_discharge_m3s": (0.0, 1e4, False, False, "m3/s"), "violations": (0, 1e6, False, False, "-")},
    "intakes": {"population": (0, 1e9, False, False, "people")},
    "structures": {"normal_release_m3s": (0.0, 3e5, False, False, "m3/s"),
                   "max_release_m3s": (0.0, 3e5, False, False, "m3/s")},
    "sites": {"build_time_s": (0.0, 1e7, False, False, "s")},
}
_FEATURE_CLASSES: dict[str, tuple[str, ...]] = {"stations": ("target_class",), "intakes": ("standard_class",)}


def range_text(rng: tuple[float, float, bool, bool, str]) -> str:
    lo, hi, lo_open, hi_open, unit = rng
    return f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'} {unit}"


def in_range(v: float, rng: tuple[float, float, bool, bool, str]) -> bool:
    lo, hi, lo_open, hi_open, _unit = rng
    if not math.isfinite(v):
        return False
    return (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)


def _count_parts(net: RiverNetwork) -> int:
    """Number of weakly connected parts of the graph of the reaches (nodes no reach touches not
    counted), by scipy's connected components over node rows."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    t = net.reaches
    n = len(net.nodes.id_index)
    ones = np.ones(len(t), dtype=np.int8)
    _k, labels = connected_components(coo_matrix((ones, (t.from_row, t.to_row)), shape=(n, n)), directed=True,
                                      connection="weak")
    touched = np.unique(np.concatenate([t.from_row, t.to_row]))
    return int(np.unique(labels[touched]).size)


def _has_velocity_method(r: Any) -> bool:
    jobson = r.drainage_area_m2 is not None and r.slope is not None
    return r.velocity_ms is not None or r.has_trapezoid or r.has_hydraulic_geometry or jobson


def _suspect_reaches(net: RiverNetwork) -> np.ndarray:
    """Rows of the reaches that may have an error (a superset, in row order): the checks of
    :func:`_reach_errors`, over the columns at once; only these rows are then checked one by one."""
    t = net.reaches
    col = t.column
    bad = np.zeros(len(t), dtype=bool)
    with np.errstate(invalid="ignore"):
        for fld, (lo, hi, _lo_open, _hi_open, _unit) in REACH_RANGES.items():
            v = col(fld)
            bad |= ~np.isnan(v) & ~((v > lo) & (v < hi))  # not strictly inside (NaN = unset)
        has = {f: ~np.isnan(col(f)) for f in ("velocity_ms", "slope", "manning_n", "bottom_width_m", "side_slope",
                                              "width_coef", "width_exp", "depth_coef", "depth_exp",
                                              "drainage_area_m2", "storage_exchange_per_s")}
        bad |= (col("bottom_width_m") == 0) & ~(col("side_slope") > 0)
        bad |= (col("storage_ratio") > 0) & ~has["storage_exchange_per_s"]
    velocity = (has["velocity_ms"]
                | (has["manning_n"] & has["bottom_width_m"] & has["side_slope"] & has["slope"])
                | (has["width_coef"] & has["width_exp"] & has["depth_coef"] & has["depth_exp"])
                | (has["drainage_area_m2"] & has["slope"]))
    bad |= ~velocity
    declared = net.nodes.n_declared
    bad |= (t.from_row >= declared) | (t.to_row >= declared) | (t.from_row == t.to_row)
    for i, g in t.geometry.items():
        if not (np.isfinite(g).all() and (np.abs(g) <= COORD_RANGE[1]).all()):
            bad[i] = True
    return np.flatnonzero(bad)


def _reach_errors(net: RiverNetwork, r: Any, err: Any) -> bool:
    """Report the errors of one reach; True when it names an unknown node."""
    dangling = False
    for fld, rng in REACH_RANGES.items():
        v = getattr(r, fld)
        if v is None or rng[0] < v < rng[1]:  # strictly inside: fine whichever ends are open
            continue
        if not in_range(v, rng):
            err("reaches", r.id, fld, f"must be in {range_text(rng)}, got {v:g}")
    if r.geometry and not all(in_range(c, COORD_RANGE) for pt in r.geometry for c in pt):
        err("reaches", r.id, "geometry", f"every coordinate must be in {range_text(COORD_RANGE)}")
    if r.bottom_width_m == 0 and not (r.side_slope or 0) > 0:
        err("reaches", r.id, "bottom_width_m", "a channel of zero bottom width needs side_slope > 0 (else it "
            "has no cross-section)")
    for end in ("from_node", "to_node"):
        if getattr(r, end) not in net.nodes:
            err("reaches", r.id, end, f"unknown node {getattr(r, end)!r}")
            dangling = True
    if r.from_node == r.to_node:
        err("reaches", r.id, "to_node", f"reach starts and ends at node {r.from_node!r}")
    if not _has_velocity_method(r):
        err("reaches", r.id, "velocity_ms",
            "no way to compute velocity: give velocity_ms, a Manning trapezoid (slope, manning_n, "
            "bottom_width_m, side_slope), hydraulic geometry (width_coef/exp, depth_coef/exp) or "
            "drainage_area_m2 and slope for Jobson (1996)")
    if (r.storage_ratio or 0) > 0 and r.storage_exchange_per_s is None:
        err("reaches", r.id, "storage_exchange_per_s", "storage_ratio > 0 needs storage_exchange_per_s [1/s]")
    return dangling


def validate_network(net: RiverNetwork) -> list[Problem]:
    """All semantic problems of a parsed network, errors first.

    The per-element checks run over the columns at once and name, one element at a time, only the
    elements they flag (in document order, as a loop over every element would).
    """
    errors: list[Problem] = []
    warnings: list[Problem] = []

    def err(element: str, ident: str, fld: str, msg: str) -> None:
        errors.append(Problem("error", element, ident, fld, msg))

    # nodes: coordinates
    nt = net.nodes
    n_decl = nt.n_declared
    with np.errstate(invalid="ignore"):
        xy_bad = np.zeros(n_decl, dtype=bool)
        for c in (nt.x[:n_decl], nt.y[:n_decl]):
            xy_bad |= ~np.isnan(c) & ~((c >= COORD_RANGE[0]) & (c <= COORD_RANGE[1]))
    for i in np.flatnonzero(xy_bad).tolist():
        nd = nt.node_at(i)
        for fld in ("x", "y"):
            c = getattr(nd, fld)
            if c is not None and not in_range(float(c), COORD_RANGE):
                err("nodes", nd.id, fld, f"must be in {range_text(COORD_RANGE)}, got {c:g}")
    # reaches: values and node references
    dangling = False
    for i in _suspect_reaches(net).tolist():
        dangling |= _reach_errors(net, net.reaches.reach_at(i), err)
    inf = net.inflows
    with np.errstate(invalid="ignore"):
        q = inf.discharge_m3s
        lo, hi = INFLOW_RANGE[0], INFLOW_RANGE[1]
        inflow_bad = (inf.rows >= n_decl) | ~((q > lo) & (q <= hi))
    if inflow_bad.any():
        ids = nt.id_index.ids
        for r, v in zip(inf.rows[inflow_bad].tolist(), q[inflow_bad].tolist()):
            node_id = ids[r]
            if node_id not in net.nodes:
                err("inflows", node_id, "node", f"unknown node {node_id!r}")
            if not in_range(v, INFLOW_RANGE):
                err("inflows", node_id, "discharge_m3s", f"must be in {range_text(INFLOW_RANGE)}, got {v:g}")

    # topology
    cycle = net.find_cycle()
    if cycle:
        err("reaches", cycle[0], "to_node", f"cycle through reaches {cycle}")
    out_ptr, _out_rows, in_ptr, _in_rows = net._csr
    n_out, n_in = np.diff(out_ptr)[:n_decl], np.diff(in_ptr)[:n_decl]
    node_ids = nt.id_index.ids
    fraction = net.reaches.column("flow_fraction")
    for i in np.flatnonzero(n_out > 1).tolist():
        node = node_ids[i]
        outs_rows = net._out_of_row(i)
        fractions = fraction[outs_rows]
        if not np.isnan(fractions).any():
            total = sum(fractions.tolist())
            if abs(total - 1.0) > SPLIT_SUM_RTOL:
                outs = net._ids_of(outs_rows)
                err("reaches", outs[0], "flow_fraction",
                    f"fractions of the reaches leaving split node {node!r} ({', '.join(outs)}) sum to "
                    f"{total:.6g}, not 1")
    for i in np.flatnonzero((n_out == 0) & (n_in == 0)).tolist():
        warnings.append(Problem("warning", "nodes", node_ids[i], "", "isolated node: no reach starts or ends here"))
    if net.reaches and not dangling:
        n_parts = _count_parts(net)
        if n_parts > 1:
            warnings.append(Problem("warning", "network", "", "reaches",
                                    f"the network has {n_parts} disconnected parts"))

    # flows (only meaningful on an acyclic, fully referenced network)
    if not cycle and not dangling:
        _q, missing = net.accumulate_discharge()
        for rid, why in missing:
            err("reaches", rid, "discharge_m3s", why)

    # features
    lengths = net.reaches.column("length_m")
    for key, kind in FEATURE_COLLECTIONS.items():
        for f in net.features[kind].values():
            row = net.reaches.row(f.reach)
            if row is None:
                err(key, f.id, "reach", f"unknown reach {f.reach!r}")
            elif not (0.0 <= f.chainage_m <= float(lengths[row])):
                err(key, f.id, "chainage_m",
                    f"{f.chainage_m} m lies outside reach {f.reach!r} (0 to {float(lengths[row])} m)")
            for fld, rng in FEATURE_RANGES.get(key, {}).items():
                v = f.get(fld)
                if v is not None and not in_range(float(v), rng):
                    err(key, f.id, fld, f"must be in {range_text(rng)}, got {v:g}")
            for fld in _FEATURE_CLASSES.get(key, ()):
                v = f.get(fld)
                if v is not None and v not in WATER_CLASSES:
                    err(key, f.id, fld, f"must be one of {WATER_CLASSES}, got {v!r}")
        if key == "structures":
            for f in net.features[kind].values():
                lo, hi = f.get("normal_release_m3s"), f.get("max_release_m3s")
                if lo is not None and hi is not None and hi < lo:
                    err(key, f.id, "max_release_m3s", f"{hi} m3/s is below normal_release_m3s {lo} m3/s")

    # references that are worth a warning
    reach_index = net.reaches.id_index.index
    feature_ids = {f.id for f in net.iter_features()}
    for d in net.departments.values():
        for o in d.owns:
            if o not in reach_index and o not in feature_ids:
                warnings.append(Problem("warning", "departments", d.id, "owns", f"unknown reach or feature {o!r}"))
    for f in net.dischargers.values():
        dep = f.get("department")
        if dep is not None and dep not in net.departments:
            warnings.append(Problem("warning", "dischargers", f.id, "department", f"unknown department {dep!r}"))
    return errors + warnings


def validate_document(doc: Mapping[str, Any]) -> tuple[RiverNetwork | None, list[Problem]]:
    """Parse and validate a document dict; the network is None when parsing failed."""
    try:
        net = network_from_document(doc)
    except NetworkFormatError as exc:
        return None, exc.problems
    return net, validate_network(net)


def require_valid(net: RiverNetwork) -> RiverNetwork:
    """Return ``net`` if it has no errors, else raise :class:`NetworkValidationError` listing them."""
    problems = [p for p in validate_network(net) if p.severity == "error"]
    if problems:
        raise NetworkValidationError(
            f"network {net.name!r} has {len(problems)} error(s); first: {problems[0]}", problems)
    return net


def load_valid(path: str) -> RiverNetwork:
    """Read a JSON network document from ``path`` and :func:`require_valid` it (the batch commands'
    default loader; the CLI passes one that also reads GeoPackages and the bundled basins)."""
    from .document import load_network

    return require_valid(load_network(path))

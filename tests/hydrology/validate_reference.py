"""The validation of commit 918ecf7 (a loop over every element, reaches built one by one), kept as
the reference that tests/hydrology/test_validate_columns.py compares the column version against.
Not used by the package."""

from typing import Any

from hydrology.network import FEATURE_COLLECTIONS, RiverNetwork
from hydrology.problems import Problem
from hydrology.validate import (
    _FEATURE_CLASSES,
    COORD_RANGE,
    FEATURE_RANGES,
    INFLOW_RANGE,
    REACH_RANGES,
    SPLIT_SUM_RTOL,
    WATER_CLASSES,
    in_range,
    range_text,
)


def _count_parts(edges: Any) -> int:
    """Number of weakly connected parts of the graph made by these (from, to) edges (union-find with
    path halving: linear, where a networkx subgraph view took seconds at 100,000 reaches)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while True:
            p = parent.setdefault(x, x)
            if p == x:
                return x
            parent[x] = parent.setdefault(p, p)
            x = parent[x]

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb
    return len({find(x) for x in list(parent)})


def _has_velocity_method(r: Any) -> bool:
    jobson = r.drainage_area_m2 is not None and r.slope is not None
    return r.velocity_ms is not None or r.has_trapezoid or r.has_hydraulic_geometry or jobson


def reference_validate_network(net: RiverNetwork) -> list[Problem]:
    """All semantic problems of a parsed network, errors first."""
    errors: list[Problem] = []
    warnings: list[Problem] = []

    def err(element: str, ident: str, fld: str, msg: str) -> None:
        errors.append(Problem("error", element, ident, fld, msg))

    # reaches: values and node references
    dangling = False
    for nd in net.nodes.values():
        for fld in ("x", "y"):
            c = getattr(nd, fld)
            if c is not None and not in_range(float(c), COORD_RANGE):
                err("nodes", nd.id, fld, f"must be in {range_text(COORD_RANGE)}, got {c:g}")
    for r in net.reaches.values():
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
    for node_id, v in net.inflows.items():
        if node_id not in net.nodes:
            err("inflows", node_id, "node", f"unknown node {node_id!r}")
        if not in_range(v, INFLOW_RANGE):
            err("inflows", node_id, "discharge_m3s", f"must be in {range_text(INFLOW_RANGE)}, got {v:g}")

    # topology
    cycle = net.find_cycle()
    if cycle:
        err("reaches", cycle[0], "to_node", f"cycle through reaches {cycle}")
    for node in net.nodes:
        outs = net.reaches_out_of(node)
        if len(outs) > 1:
            fractions = [net.reaches[o].flow_fraction for o in outs]
            if all(fr is not None for fr in fractions):
                total = sum(fractions)  # type: ignore[arg-type]
                if abs(total - 1.0) > SPLIT_SUM_RTOL:
                    err("reaches", outs[0], "flow_fraction",
                        f"fractions of the reaches leaving split node {node!r} ({', '.join(outs)}) sum to "
                        f"{total:.6g}, not 1")
        if not outs and not net.reaches_into(node):
            warnings.append(Problem("warning", "nodes", node, "", "isolated node: no reach starts or ends here"))
    if net.reaches and not dangling:
        n_parts = _count_parts((r.from_node, r.to_node) for r in net.reaches.values())
        if n_parts > 1:
            warnings.append(Problem("warning", "network", "", "reaches",
                                    f"the network has {n_parts} disconnected parts"))

    # flows (only meaningful on an acyclic, fully referenced network)
    if not cycle and not dangling:
        _q, missing = net.accumulate_discharge()
        for rid, why in missing:
            err("reaches", rid, "discharge_m3s", why)

    # features
    for key, kind in FEATURE_COLLECTIONS.items():
        for f in net.features[kind].values():
            on = net.reaches.get(f.reach)
            if on is None:
                err(key, f.id, "reach", f"unknown reach {f.reach!r}")
            elif not (0.0 <= f.chainage_m <= on.length_m):
                err(key, f.id, "chainage_m",
                    f"{f.chainage_m} m lies outside reach {on.id!r} (0 to {on.length_m} m)")
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
    known_ids = set(net.reaches) | {f.id for f in net.iter_features()}
    for d in net.departments.values():
        for o in d.owns:
            if o not in known_ids:
                warnings.append(Problem("warning", "departments", d.id, "owns", f"unknown reach or feature {o!r}"))
    for f in net.dischargers.values():
        dep = f.get("department")
        if dep is not None and dep not in net.departments:
            warnings.append(Problem("warning", "dischargers", f.id, "department", f"unknown department {dep!r}"))
    return errors + warnings

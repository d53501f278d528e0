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

import networkx as nx

from .document import network_from_document
from .exceptions import NetworkFormatError, NetworkValidationError
from .network import FEATURE_COLLECTIONS, RiverNetwork
from .problems import Problem

#: relative tolerance on split fractions summing to 1 [-]: NHDPlus and hand-written files round
#: fractions to a few digits, so 1e-3 accepts 0.333 + 0.667 but not 0.3 + 0.6.
SPLIT_SUM_RTOL = 1e-3
WATER_CLASSES = ("I", "II", "III", "IV", "V")

# (field, test, message): the test returns True when the value is acceptable
_REACH_RULES: tuple[tuple[str, Any, str], ...] = (
    ("length_m", lambda v: v > 0, "must be positive [m]"),
    ("slope", lambda v: v > 0, "must be positive [m/m]"),
    ("manning_n", lambda v: v > 0, "must be positive [s/m^(1/3)]"),
    ("bottom_width_m", lambda v: v >= 0, "must not be negative [m]"),
    ("side_slope", lambda v: v >= 0, "must not be negative [H:V]"),
    ("width_coef", lambda v: v > 0, "must be positive"),
    ("depth_coef", lambda v: v > 0, "must be positive"),
    ("drainage_area_m2", lambda v: v > 0, "must be positive [m2]"),
    ("mean_annual_discharge_m3s", lambda v: v > 0, "must be positive [m3/s]"),
    ("discharge_m3s", lambda v: v > 0, "must be positive [m3/s]"),
    ("velocity_ms", lambda v: v > 0, "must be positive [m/s]"),
    ("dispersion_m2s", lambda v: v >= 0, "must not be negative [m2/s]"),
    ("storage_ratio", lambda v: v >= 0, "must not be negative [-]"),
    ("storage_exchange_per_s", lambda v: v > 0, "must be positive [1/s]"),
    ("flow_fraction", lambda v: 0 < v <= 1, "must be in (0, 1]"),
)
_FEATURE_RULES: dict[str, tuple[tuple[str, Any, str], ...]] = {
    "stations": (("target_class", lambda v: v in WATER_CLASSES, f"must be one of {WATER_CLASSES}"),),
    "dischargers": (("effluent_discharge_m3s", lambda v: v >= 0, "must not be negative [m3/s]"),
                    ("violations", lambda v: v >= 0, "must not be negative")),
    "intakes": (("population", lambda v: v >= 0, "must not be negative"),
                ("standard_class", lambda v: v in WATER_CLASSES, f"must be one of {WATER_CLASSES}")),
    "structures": (("normal_release_m3s", lambda v: v >= 0, "must not be negative [m3/s]"),
                   ("max_release_m3s", lambda v: v >= 0, "must not be negative [m3/s]")),
    "sites": (("build_time_s", lambda v: v >= 0, "must not be negative [s]"),),
}


def _has_velocity_method(r: Any) -> bool:
    jobson = r.drainage_area_m2 is not None and r.slope is not None
    return r.velocity_ms is not None or r.has_trapezoid or r.has_hydraulic_geometry or jobson


def validate_network(net: RiverNetwork) -> list[Problem]:
    """All semantic problems of a parsed network, errors first."""
    errors: list[Problem] = []
    warnings: list[Problem] = []

    def err(element: str, ident: str, fld: str, msg: str) -> None:
        errors.append(Problem("error", element, ident, fld, msg))

    # reaches: values and node references
    dangling = False
    for r in net.reaches.values():
        for fld, ok, msg in _REACH_RULES:
            v = getattr(r, fld)
            if v is not None and not (math.isfinite(v) and ok(v)):
                err("reaches", r.id, fld, f"{msg}, got {v}")
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
        if not v > 0:
            err("inflows", node_id, "discharge_m3s", f"must be positive [m3/s], got {v}")

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
        n_parts = nx.number_weakly_connected_components(net.graph.subgraph(
            {n for r in net.reaches.values() for n in (r.from_node, r.to_node)}))
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
            for fld, ok, msg in _FEATURE_RULES.get(key, ()):
                v = f.get(fld)
                if v is not None and not ok(v):
                    err(key, f.id, fld, f"{msg}, got {v!r}")
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

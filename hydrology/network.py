"""The river network: a directed graph of reaches between nodes, with features located on reaches.

Flow goes from a reach's ``from_node`` to its ``to_node``. Rivers are almost trees, but splits exist
(braids, diversions, NHDPlus minor paths); a reach leaving a split carries a ``flow_fraction``.
Cycles are an error. Features (stations, dischargers, intakes, control structures, response sites)
sit on a reach at a chainage measured in metres from the reach's upstream end.

All quantities are SI (m, s, m3/s, g/m3). The JSON network document (see README, "Network format")
is parsed by :mod:`hydrology.document`; this module holds the value objects and the graph queries.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import networkx as nx

from .exceptions import HydraulicsError, NetworkTopologyError, UnknownElementError

if TYPE_CHECKING:
    from .reach_state import ReachState

FeatureKind = Literal["station", "discharger", "intake", "structure", "site"]
#: feature collections in document order: document key -> feature kind
FEATURE_COLLECTIONS: dict[str, FeatureKind] = {
    "stations": "station",
    "dischargers": "discharger",
    "intakes": "intake",
    "structures": "structure",
    "sites": "site",
}


@dataclass(frozen=True, slots=True)
class Node:
    """A river node (source, confluence, split or outlet); ``x``, ``y`` in the network's CRS."""

    id: str
    x: float | None = None
    y: float | None = None
    name: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class Reach:
    """A river reach between two nodes.

    Geometry and hydraulics are optional in groups; :mod:`hydrology.reach_state` decides which
    applies (an explicit velocity wins, then a Manning trapezoid, then hydraulic geometry, then
    Jobson 1996) and fails loudly when none does. Units are in the field names.
    """

    id: str
    from_node: str
    to_node: str
    length_m: float
    slope: float | None = None
    manning_n: float | None = None
    bottom_width_m: float | None = None
    side_slope: float | None = None
    width_coef: float | None = None
    width_exp: float | None = None
    depth_coef: float | None = None
    depth_exp: float | None = None
    drainage_area_m2: float | None = None
    mean_annual_discharge_m3s: float | None = None
    discharge_m3s: float | None = None
    velocity_ms: float | None = None
    dispersion_m2s: float | None = None
    storage_ratio: float | None = None
    storage_exchange_per_s: float | None = None
    flow_fraction: float | None = None
    #: a lake or pool that mixes fully: a stirred tank of residence time length / velocity
    fully_mixed: bool = False
    geometry: tuple[tuple[float, float], ...] | None = None
    name: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def has_trapezoid(self) -> bool:
        """True when Manning normal depth can be solved (n, bottom width, side slope, slope)."""
        return None not in (self.manning_n, self.bottom_width_m, self.side_slope, self.slope)

    @property
    def has_hydraulic_geometry(self) -> bool:
        """True when width and depth power laws B = a Q^b, H = c Q^f are given."""
        return None not in (self.width_coef, self.width_exp, self.depth_coef, self.depth_exp)


@dataclass(frozen=True, slots=True)
class Feature:
    """Anything located on a reach: ``kind`` says which; ``attrs`` holds the kind's own fields.

    ``chainage_m`` is measured from the reach's upstream end [m].
    """

    kind: FeatureKind
    id: str
    reach: str
    chainage_m: float
    name: str | None = None
    attrs: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def get(self, key: str, default: Any = None) -> Any:
        """An attribute of the feature's kind (``target_class``, ``population``...)."""
        return self.attrs.get(key, default)


@dataclass(frozen=True, slots=True)
class Department:
    """A department or governance centre that receives actions; ``owns`` lists reach/feature ids."""

    id: str
    name: str
    name_en: str | None = None
    level: str | None = None
    roles: tuple[str, ...] = ()
    owns: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)


class RiverNetwork:
    """A directed river network with located features.

    Built by :func:`hydrology.document.network_from_document`; semantic checks are in
    :func:`hydrology.validate.validate_network`. Graph queries raise
    :class:`~hydrology.exceptions.NetworkTopologyError` on a cycle and
    :class:`~hydrology.exceptions.UnknownElementError` for unknown ids.
    """

    def __init__(
        self,
        nodes: Mapping[str, Node],
        reaches: Mapping[str, Reach],
        *,
        inflows: Mapping[str, float] | None = None,
        features: Mapping[FeatureKind, Mapping[str, Feature]] | None = None,
        departments: Mapping[str, Department] | None = None,
        name: str = "",
        crs: str | None = None,
        notes: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.nodes = dict(nodes)
        self.reaches = dict(reaches)
        self.inflows: dict[str, float] = dict(inflows or {})
        self.features: dict[FeatureKind, dict[str, Feature]] = {
            kind: dict((features or {}).get(kind, {})) for kind in FEATURE_COLLECTIONS.values()
        }
        self.departments = dict(departments or {})
        self.name = name
        self.crs = crs
        self.notes = notes
        self.extra = dict(extra or {})

    # ------------------------------------------------------------------ lookups
    def __repr__(self) -> str:
        counts = ", ".join(f"{len(v)} {k}s" for k, v in self.features.items() if v)
        return f"RiverNetwork({self.name!r}: {len(self.reaches)} reaches, {len(self.nodes)} nodes{', ' + counts if counts else ''})"

    @property
    def stations(self) -> dict[str, Feature]:
        return self.features["station"]

    @property
    def dischargers(self) -> dict[str, Feature]:
        return self.features["discharger"]

    @property
    def intakes(self) -> dict[str, Feature]:
        return self.features["intake"]

    @property
    def structures(self) -> dict[str, Feature]:
        return self.features["structure"]

    @property
    def sites(self) -> dict[str, Feature]:
        return self.features["site"]

    def reach(self, reach_id: str) -> Reach:
        """The reach with this id."""
        try:
            return self.reaches[reach_id]
        except KeyError:
            raise UnknownElementError(f"unknown reach {reach_id!r}") from None

    def feature(self, feature_id: str, kind: FeatureKind | None = None) -> Feature:
        """A located feature by id, searching one kind or all of them."""
        kinds = [kind] if kind else list(self.features)
        for k in kinds:
            if feature_id in self.features[k]:
                return self.features[k][feature_id]
        what = kind or "feature"
        raise UnknownElementError(f"unknown {what} {feature_id!r}")

    def iter_features(self, kinds: tuple[FeatureKind, ...] | None = None) -> Iterator[Feature]:
        """Every located feature, optionally of the given kinds, in document order."""
        for kind, coll in self.features.items():
            if kinds is None or kind in kinds:
                yield from coll.values()

    # ------------------------------------------------------------------ graph
    @cached_property
    def graph(self) -> nx.MultiDiGraph:
        """Nodes as graph nodes, reaches as keyed edges ``(from_node, to_node, reach_id)``."""
        g = nx.MultiDiGraph()
        g.add_nodes_from(self.nodes)
        for r in self.reaches.values():
            g.add_edge(r.from_node, r.to_node, key=r.id)
        return g

    @cached_property
    def _out_reaches(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {n: [] for n in self.nodes}
        for r in self.reaches.values():
            out.setdefault(r.from_node, []).append(r.id)
        return out

    @cached_property
    def _in_reaches(self) -> dict[str, list[str]]:
        inn: dict[str, list[str]] = {n: [] for n in self.nodes}
        for r in self.reaches.values():
            inn.setdefault(r.to_node, []).append(r.id)
        return inn

    def reaches_out_of(self, node_id: str) -> list[str]:
        """Reaches that leave a node (more than one at a split)."""
        return list(self._out_reaches.get(node_id, ()))

    def reaches_into(self, node_id: str) -> list[str]:
        """Reaches that enter a node (more than one at a confluence)."""
        return list(self._in_reaches.get(node_id, ()))

    @cached_property
    def _kahn(self) -> tuple[list[str], set[str]]:
        """Kahn's topological sort of the nodes, O(nodes + reaches): (order, nodes left on cycles)."""
        indeg = {n: 0 for n in self._out_reaches}
        for n in self._in_reaches:
            indeg.setdefault(n, 0)
        for r in self.reaches.values():
            indeg[r.to_node] += 1
        ready = [n for n, d in indeg.items() if d == 0]
        order: list[str] = []
        while ready:
            n = ready.pop()
            order.append(n)
            for rid in self._out_reaches.get(n, ()):
                m = self.reaches[rid].to_node
                indeg[m] -= 1
                if indeg[m] == 0:
                    ready.append(m)
        return order, {n for n, d in indeg.items() if d > 0}

    def find_cycle(self) -> list[str] | None:
        """Reach ids forming one cycle, or None for an acyclic network."""
        _order, left = self._kahn
        if not left:
            return None
        # only nodes on or below a cycle are left: search there (small) for the cycle itself
        sub = nx.MultiDiGraph()
        sub.add_edges_from((r.from_node, r.to_node, r.id) for r in self.reaches.values()
                           if r.from_node in left and r.to_node in left)
        return [key for _u, _v, key in nx.find_cycle(sub)]

    @cached_property
    def reach_order(self) -> list[str]:
        """Reach ids in topological order (every reach after all reaches upstream of it)."""
        node_order, left = self._kahn
        if left:
            raise NetworkTopologyError(f"the network has a cycle through reaches {self.find_cycle()}")
        order: list[str] = []
        for n in node_order:
            order.extend(self._out_reaches.get(n, ()))
        return order

    def downstream_reaches(self, reach_id: str) -> list[str]:
        """Reaches immediately below a reach (more than one when its to_node splits)."""
        return self.reaches_out_of(self.reach(reach_id).to_node)

    def upstream_reaches(self, reach_id: str) -> list[str]:
        """Reaches immediately above a reach."""
        return self.reaches_into(self.reach(reach_id).from_node)

    def all_upstream(self, reach_id: str) -> set[str]:
        """Every reach from which water can reach ``reach_id`` (excluding itself)."""
        self.reach(reach_id)
        seen: set[str] = set()
        stack = self.upstream_reaches(reach_id)
        while stack:
            rid = stack.pop()
            if rid not in seen:
                seen.add(rid)
                stack.extend(self.reaches_into(self.reaches[rid].from_node))
        return seen

    def all_downstream(self, reach_id: str) -> set[str]:
        """Every reach that water leaving ``reach_id`` can reach (excluding itself)."""
        self.reach(reach_id)
        seen: set[str] = set()
        stack = self.downstream_reaches(reach_id)
        while stack:
            rid = stack.pop()
            if rid not in seen:
                seen.add(rid)
                stack.extend(self.reaches_out_of(self.reaches[rid].to_node))
        return seen

    def is_upstream(self, a: Feature, b: Feature) -> bool:
        """True when water passing feature ``a`` can later pass feature ``b``."""
        if a.reach == b.reach:
            return a.chainage_m < b.chainage_m
        return b.reach in self.all_downstream(a.reach)

    def outlets(self) -> list[str]:
        """Nodes with no reach leaving them."""
        return [n for n in self.nodes if not self._out_reaches.get(n)]

    # ------------------------------------------------------------------ flow
    def accumulate_discharge(self) -> tuple[dict[str, float], list[tuple[str, str]]]:
        """Steady discharge of every reach [m3/s], and the reaches where it cannot be had.

        A reach's stated ``discharge_m3s`` wins. Otherwise the flow entering its from_node (the
        node's ``inflows`` plus the discharge of every reach into it) is passed on (continuity,
        Q_out = sum(Q_in) + inflow); at a split each reach takes its ``flow_fraction``.

        Returns
        -------
        discharge : dict
            reach id -> discharge [m3/s] (0 where no flow reaches it).
        missing : list of (reach id, reason)
        """
        q: dict[str, float] = {}
        missing: list[tuple[str, str]] = []
        for rid in self.reach_order:
            r = self.reaches[rid]
            if r.discharge_m3s is not None:
                q[rid] = float(r.discharge_m3s)
                continue
            node = r.from_node
            total = self.inflows.get(node, 0.0) + sum(q[u] for u in self._in_reaches.get(node, ()))
            if len(self._out_reaches[node]) > 1:
                if r.flow_fraction is None:
                    missing.append((rid, f"leaves split node {node!r} but has neither flow_fraction nor discharge_m3s"))
                    total = 0.0
                else:
                    total *= float(r.flow_fraction)
            if not (total > 0.0 and math.isfinite(total)) and not any(m[0] == rid for m in missing):
                missing.append((rid, (f"no discharge: give discharge_m3s on the reach or an inflow at or above "
                                      f"its from_node {node!r}")))
            q[rid] = total
        return q, missing

    @cached_property
    def steady_discharge(self) -> dict[str, float]:
        """Steady discharge of every reach [m3/s] (see :meth:`accumulate_discharge`).

        Raises
        ------
        HydraulicsError
            For the first reach with no positive discharge, naming it.
        """
        q, missing = self.accumulate_discharge()
        if missing:
            rid, why = missing[0]
            more = f" (and {len(missing) - 1} more reaches)" if len(missing) > 1 else ""
            raise HydraulicsError(f"reach {rid!r}: {why}{more}")
        return q

    def split_fraction(self, reach_id: str) -> float:
        """Share of the from_node's outflow that this reach carries [-] (1 where there is no split)."""
        r = self.reach(reach_id)
        outs = self._out_reaches[r.from_node]
        if len(outs) == 1:
            return 1.0
        q = self.steady_discharge
        return q[reach_id] / sum(q[o] for o in outs)

    def reach_state(self, estimator: str | None = None) -> ReachState:
        """Steady hydraulic state of every reach (cached per dispersion estimator).

        See :func:`hydrology.reach_state.compute_reach_state`.
        """
        from .reach_state import compute_reach_state

        cache = self.__dict__.setdefault("_state_cache", {})
        if estimator not in cache:
            cache[estimator] = compute_reach_state(self, estimator=estimator)
        return cache[estimator]

    def with_discharges(self, discharges_m3s: Mapping[str, float]) -> RiverNetwork:
        """A copy with stated reach discharges replaced (gauge updates, scenarios) [m3/s]."""
        from dataclasses import replace

        reaches = dict(self.reaches)
        for rid, value in discharges_m3s.items():
            reaches[rid] = replace(self.reach(rid), discharge_m3s=float(value))
        return RiverNetwork(
            self.nodes, reaches, inflows=self.inflows, features=self.features,
            departments=self.departments, name=self.name, crs=self.crs, notes=self.notes, extra=self.extra,
        )

"""The river network: a directed graph of reaches between nodes, with features located on reaches.

Flow goes from a reach's ``from_node`` to its ``to_node``. Rivers are almost trees, but splits exist
(braids, diversions, NHDPlus minor paths); a reach leaving a split carries a ``flow_fraction``.
Cycles are an error. Features (stations, dischargers, intakes, control structures, response sites)
sit on a reach at a chainage measured in metres from the reach's upstream end.

All quantities are SI (m, s, m3/s, g/m3). The JSON network document (see README, "Network format")
is parsed by :mod:`hydrology.document`; this module holds the graph queries. The per-reach data are
columns (:mod:`hydrology.network_columns`): ``net.reaches`` and ``net.nodes`` are read-only mappings
that build a :class:`Reach` or :class:`Node` on demand, and the topology is CSR index arrays. The
value objects live in :mod:`hydrology.network_elements` and are re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np

from .exceptions import HydraulicsError, NetworkTopologyError, UnknownElementError
from .network_columns import InflowMap, NodeTable, ReachTable, tables_from_objects
from .network_elements import (
    FEATURE_COLLECTIONS,
    REACH_NUM_FIELDS,
    Department,
    Feature,
    FeatureKind,
    Node,
    Reach,
)

if TYPE_CHECKING:
    from .reach_state import ReachState

#: adjacency answers kept per network (node id -> reach ids leaving or entering it)
ADJACENT_CACHE = 1 << 18

__all__ = ["FEATURE_COLLECTIONS", "REACH_NUM_FIELDS", "Department", "Feature", "FeatureKind", "Node", "Reach",
           "RiverNetwork"]

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
        self.nodes: NodeTable
        self.reaches: ReachTable
        self.inflows: InflowMap
        self.nodes, self.reaches, self.inflows = tables_from_objects(nodes, reaches, inflows or {})
        self.features: dict[FeatureKind, dict[str, Feature]] = {
            kind: dict((features or {}).get(kind, {})) for kind in FEATURE_COLLECTIONS.values()
        }
        self.departments = dict(departments or {})
        self.name = name
        self.crs = crs
        self.notes = notes
        self.extra = dict(extra or {})

    def __getstate__(self) -> dict[str, Any]:  # pickling (process pools): caches of closures are rebuilt
        return {k: v for k, v in self.__dict__.items() if k != "_adjacent"}

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
        return self.reaches.reach_at(self._row(reach_id))

    def _row(self, reach_id: str) -> int:
        i = self.reaches.row(reach_id)
        if i is None:
            raise UnknownElementError(f"unknown reach {reach_id!r}")
        return i

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
        """Nodes as graph nodes, reaches as keyed edges ``(from_node, to_node, reach_id)``.

        Built on first use for callers that need networkx; the queries below use index arrays.
        """
        g = nx.MultiDiGraph()
        g.add_nodes_from(self.nodes)
        t = self.reaches
        node_ids = self.nodes.id_index.ids
        g.add_edges_from((node_ids[u], node_ids[v], rid)
                         for u, v, rid in zip(t.from_row.tolist(), t.to_row.tolist(), t.id_index.ids))
        return g

    @cached_property
    def _csr(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Topology as CSR arrays over node rows: (out_ptr, out_rows, in_ptr, in_rows).

        The reach rows leaving node row ``i`` are ``out_rows[out_ptr[i]:out_ptr[i + 1]]``, in document
        order (a stable sort), and likewise for the reaches entering it.
        """
        n = len(self.nodes.id_index)
        t = self.reaches

        def csr(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            ptr = np.zeros(n + 1, dtype=np.int64)
            np.cumsum(np.bincount(rows, minlength=n), out=ptr[1:])
            return ptr, np.argsort(rows, kind="stable").astype(np.int32)

        out_ptr, out_rows = csr(t.from_row)
        in_ptr, in_rows = csr(t.to_row)
        return out_ptr, out_rows, in_ptr, in_rows

    def rows_into_nodes(self) -> tuple[np.ndarray, np.ndarray]:
        """The reaches entering each node, as CSR arrays over rows: the rows of the reaches entering
        node row ``i`` (``nodes.id_index``) are ``rows[ptr[i]:ptr[i + 1]]``, in document order. Returns
        ``(ptr, rows)``; with ``reaches.from_row`` it walks the network without an id lookup."""
        return self._csr[2], self._csr[3]

    def _node_row(self, node_id: str) -> int | None:
        i = self.nodes.row(node_id)
        return None if i is None or i >= len(self._csr[0]) - 1 else i

    def _ids_of(self, rows: np.ndarray) -> list[str]:
        ids = self.reaches.id_index.ids
        return [ids[j] for j in rows.tolist()]

    def _out_of_row(self, i: int) -> np.ndarray:
        ptr, rows = self._csr[0], self._csr[1]
        return rows[ptr[i]:ptr[i + 1]]

    def _into_row(self, i: int) -> np.ndarray:
        ptr, rows = self._csr[2], self._csr[3]
        return rows[ptr[i]:ptr[i + 1]]

    def reaches_out_of(self, node_id: str) -> list[str]:
        """Reaches that leave a node (more than one at a split)."""
        return list(self._adjacent(node_id, True))

    def reaches_into(self, node_id: str) -> list[str]:
        """Reaches that enter a node (more than one at a confluence)."""
        return list(self._adjacent(node_id, False))

    @cached_property
    def _adjacent(self) -> Callable[[str, bool], tuple[str, ...]]:
        """(node id, leaving?) -> reach ids, the last ADJACENT_CACHE answers kept (traces walk the same
        nodes again and again; the arrays answer in ~2 us, the cache in ~0.2 us)."""
        def adjacent(node_id: str, leaving: bool) -> tuple[str, ...]:
            i = self._node_row(node_id)
            if i is None:
                return ()
            return tuple(self._ids_of(self._out_of_row(i) if leaving else self._into_row(i)))
        return lru_cache(maxsize=ADJACENT_CACHE)(adjacent)

    @cached_property
    def _kahn(self) -> tuple[np.ndarray, np.ndarray]:
        """Kahn's topological sort of the node rows, O(nodes + reaches): (order, rows left on cycles)."""
        out_ptr, out_rows, _in_ptr, _in_rows = self._csr
        n = len(out_ptr) - 1
        indeg = np.bincount(self.reaches.to_row, minlength=n).tolist()
        ptr, rows, to = out_ptr.tolist(), out_rows.tolist(), self.reaches.to_row.tolist()
        ready = [i for i, d in enumerate(indeg) if d == 0]
        order: list[int] = []
        while ready:
            i = ready.pop()
            order.append(i)
            for j in rows[ptr[i]:ptr[i + 1]]:
                k = to[j]
                indeg[k] -= 1
                if indeg[k] == 0:
                    ready.append(k)
        return np.array(order, dtype=np.int64), np.flatnonzero(np.array(indeg) > 0)

    def find_cycle(self) -> list[str] | None:
        """Reach ids forming one cycle, or None for an acyclic network."""
        _order, left = self._kahn
        if not left.size:
            return None
        # only nodes on or below a cycle are left: search there (small) for the cycle itself
        t = self.reaches
        on = np.zeros(len(self._csr[0]) - 1, dtype=bool)
        on[left] = True
        rows = np.flatnonzero(on[t.from_row] & on[t.to_row])
        node_ids = self.nodes.id_index.ids
        sub = nx.MultiDiGraph()
        sub.add_edges_from((node_ids[t.from_row[j]], node_ids[t.to_row[j]], rid)
                           for j, rid in zip(rows.tolist(), self._ids_of(rows)))
        return [key for _u, _v, key in nx.find_cycle(sub)]

    @cached_property
    def reach_order_rows(self) -> np.ndarray:
        """Reach rows (indices into ``reaches``) in topological order; see :attr:`reach_order`."""
        node_order, left = self._kahn
        if left.size:
            raise NetworkTopologyError(f"the network has a cycle through reaches {self.find_cycle()}")
        out_ptr, out_rows = self._csr[0], self._csr[1]
        counts = out_ptr[node_order + 1] - out_ptr[node_order]
        first = np.concatenate(([0], np.cumsum(counts)[:-1]))
        pos = np.repeat(out_ptr[node_order] - first, counts) + np.arange(int(counts.sum()))
        return out_rows[pos]

    @cached_property
    def reach_order(self) -> list[str]:
        """Reach ids in topological order (every reach after all reaches upstream of it)."""
        return self._ids_of(self.reach_order_rows)

    def downstream_reaches(self, reach_id: str) -> list[str]:
        """Reaches immediately below a reach (more than one when its to_node splits)."""
        return self._ids_of(self._out_of_row(int(self.reaches.to_row[self._row(reach_id)])))

    def upstream_reaches(self, reach_id: str) -> list[str]:
        """Reaches immediately above a reach."""
        return self._ids_of(self._into_row(int(self.reaches.from_row[self._row(reach_id)])))

    def _closure(self, start: int, downstream: bool) -> set[str]:
        """Reach ids reachable from reach row ``start`` along (or against) the flow, excluding it."""
        t = self.reaches
        ends = t.to_row if downstream else t.from_row
        step = self._out_of_row if downstream else self._into_row
        seen: set[int] = set()
        stack = step(int(ends[start])).tolist()
        while stack:
            j = stack.pop()
            if j not in seen:
                seen.add(j)
                stack.extend(step(int(ends[j])).tolist())
        ids = t.id_index.ids
        return {ids[j] for j in seen}

    def all_upstream(self, reach_id: str) -> set[str]:
        """Every reach from which water can reach ``reach_id`` (excluding itself)."""
        return self._closure(self._row(reach_id), downstream=False)

    def all_downstream(self, reach_id: str) -> set[str]:
        """Every reach that water leaving ``reach_id`` can reach (excluding itself)."""
        return self._closure(self._row(reach_id), downstream=True)

    def is_upstream(self, a: Feature, b: Feature) -> bool:
        """True when water passing feature ``a`` can later pass feature ``b``."""
        if a.reach == b.reach:
            return a.chainage_m < b.chainage_m
        return b.reach in self.all_downstream(a.reach)

    def outlets(self) -> list[str]:
        """Nodes with no reach leaving them."""
        out_ptr = self._csr[0]
        n = self.nodes.n_declared
        ids = self.nodes.id_index.ids
        return [ids[i] for i in np.flatnonzero(np.diff(out_ptr[:n + 1]) == 0).tolist()]

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
        t = self.reaches
        out_ptr, _out_rows, in_ptr_a, in_rows_a = self._csr
        n = len(out_ptr) - 1
        inflow = [0.0] * n
        for i, v in zip(self.inflows.rows.tolist(), self.inflows.discharge_m3s.tolist()):
            if i < n:
                inflow[i] = v
        n_out = np.diff(out_ptr).tolist()
        in_ptr, in_rows = in_ptr_a.tolist(), in_rows_a.tolist()
        stated, frac = t.column("discharge_m3s").tolist(), t.column("flow_fraction").tolist()
        frm, ids, node_ids = t.from_row.tolist(), t.id_index.ids, self.nodes.id_index.ids
        order = self.reach_order_rows.tolist()
        q = [0.0] * len(t)
        missing: list[tuple[str, str]] = []
        for j in order:
            if not math.isnan(stated[j]):
                q[j] = stated[j]
                continue
            node = frm[j]
            total = inflow[node] + sum(q[u] for u in in_rows[in_ptr[node]:in_ptr[node + 1]])
            flagged = False
            if n_out[node] > 1:
                if math.isnan(frac[j]):
                    missing.append((ids[j], (f"leaves split node {node_ids[node]!r} but has neither "
                                             "flow_fraction nor discharge_m3s")))
                    total, flagged = 0.0, True
                else:
                    total *= frac[j]
            if not (total > 0.0 and math.isfinite(total)) and not flagged:
                missing.append((ids[j], (f"no discharge: give discharge_m3s on the reach or an inflow at or above "
                                         f"its from_node {node_ids[node]!r}")))
            q[j] = total
        return {ids[j]: q[j] for j in order}, missing

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
        outs = self._out_of_row(int(self.reaches.from_row[self._row(reach_id)]))
        if len(outs) == 1:
            return 1.0
        q = self.steady_discharge
        return q[reach_id] / sum(q[o] for o in self._ids_of(outs))

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
        rows = np.array([self._row(rid) for rid in discharges_m3s], dtype=np.int64)
        values = np.array([float(v) for v in discharges_m3s.values()], dtype=float)
        reaches = self.reaches.with_column_values("discharge_m3s", rows, values)
        return RiverNetwork(
            self.nodes, reaches, inflows=self.inflows, features=self.features,
            departments=self.departments, name=self.name, crs=self.crs, notes=self.notes, extra=self.extra,
        )

"""Checked node, reach and inflow items of a network document into columns, in one go or in chunks.

Used by :mod:`hydrology.document`; items may come in several calls (a reader that decodes a file in
chunks, as tried in commit ece92d4, needs no other change). Nothing built here keeps an object of the parsed document: numbers go into float arrays, ids into
packed strings, and the rare names, geometries and unknown fields are copied (:func:`fresh`). The
document's memory can then go back to the system once it is dropped. Units are those of the
document (SI, named in the fields); see :mod:`hydrology.network_columns` for the layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .network_columns import REACH_COLUMNS, IdIndex, InflowMap, NodeTable, ReachTable


def fresh(value: Any, memo: dict[str, str] | None = None) -> Any:
    """A copy of a JSON value made of new objects (str, float, int, list, dict, tuple), so that keeping it
    does not keep the parsed document's memory pinned; other values are returned as they are. With
    ``memo``, equal strings share one copy."""
    t = type(value)
    if t is str:
        if memo is None:
            return value[:1] + value[1:]  # a new string when 2+ characters (1 character: an interned singleton)
        got = memo.get(value)
        if got is None:
            got = memo[value] = value[:1] + value[1:]
        return got
    if t is float:
        return value + 0.0
    if t is int:
        return value + 0
    if t is list:
        return [fresh(v, memo) for v in value]
    if t is tuple:
        return tuple(fresh(v, memo) for v in value)
    if t is dict:
        return {fresh(k, memo): fresh(v, memo) for k, v in value.items()}
    return value


class ColumnBuilder:
    """Accumulates checked items: nodes first, then reaches and inflows, then :meth:`finish`.

    ``node_keys``/``reach_keys`` are the documented fields; any other field of an item is kept in
    that element's ``extra``. ``ghosts`` counts node ids that reaches or inflows name but no node
    declares (validation reports them; they still get a row of the node id space).
    """

    def __init__(self, node_keys: frozenset[str], reach_keys: frozenset[str]) -> None:
        self._node_keys, self._reach_keys = node_keys, reach_keys
        self._node_ids: list[str] = []
        self._index: dict[str, int] = {}
        self._n_declared = 0
        self._xy: list[np.ndarray] = []
        self._node_names: dict[int, str] = {}
        self._node_extras: dict[int, dict[str, Any]] = {}
        self._m = 0
        self._reach_packed: list[str] = []
        self._reach_ends: list[np.ndarray] = []
        self._from: list[np.ndarray] = []
        self._to: list[np.ndarray] = []
        self._num: list[np.ndarray] = []
        self._mixed: list[np.ndarray] = []
        self._names: dict[int, str] = {}
        self._geometry: dict[int, np.ndarray] = {}
        self._extras: dict[int, dict[str, Any]] = {}
        self._inflow_rows: list[np.ndarray] = []
        self._inflow_q: list[np.ndarray] = []
        self.ghosts = 0

    def add_nodes(self, items: Sequence[dict[str, Any]]) -> None:
        if self.ghosts:
            raise ValueError("nodes must be added before any reach or inflow names an undeclared node")
        base = len(self._node_ids)
        for i, n in enumerate(items):
            self._index[n["id"]] = base + i
            self._node_ids.append(n["id"])
            if n.get("name") is not None:
                self._node_names[base + i] = fresh(n["name"])
            if not self._node_keys.issuperset(n):
                self._node_extras[base + i] = fresh({k: v for k, v in n.items() if k not in self._node_keys})
        self._n_declared += len(items)
        self._xy.append(np.array([(n.get("x"), n.get("y")) for n in items], dtype=float).reshape(len(items), 2))

    def _rows(self, names: list[str]) -> np.ndarray:
        index, ids = self._index, self._node_ids
        out = np.fromiter((index.get(s, -1) for s in names), np.int64, len(names))
        for j in np.flatnonzero(out < 0).tolist():  # ids no node declares
            i = index.setdefault(names[j], len(ids))
            if i == len(ids):
                ids.append(names[j])
                self.ghosts += 1
            out[j] = i
        return out.astype(np.int32)

    def add_reaches(self, items: Sequence[dict[str, Any]]) -> None:
        m, base = len(items), self._m
        # undeclared ids: those leaving first, then those entered (the order the topology meets them)
        self._from.append(self._rows([r["from_node"] for r in items]))
        self._to.append(self._rows([r["to_node"] for r in items]))
        num = np.empty((m, len(REACH_COLUMNS)))
        for j, k in enumerate(REACH_COLUMNS):  # None (unset) becomes NaN
            num[:, j] = np.array([r.get(k) for r in items], dtype=float)
        self._num.append(num)
        self._mixed.append(np.array([bool(r.get("fully_mixed")) for r in items], dtype=bool).reshape(m))
        ids = [r["id"] for r in items]
        self._reach_packed.append("".join(ids))
        self._reach_ends.append(np.fromiter(map(len, ids), np.int64, m))
        for i, r in enumerate(items):
            if not self._reach_keys.issuperset(r):
                self._extras[base + i] = fresh({k: v for k, v in r.items() if k not in self._reach_keys})
            if r.get("name") is not None:
                self._names[base + i] = fresh(r["name"])
            if r.get("geometry"):
                self._geometry[base + i] = np.array([(p[0], p[1]) for p in r["geometry"]], dtype=float)
        self._m += m

    def add_inflows(self, items: Sequence[dict[str, Any]]) -> None:
        self._inflow_rows.append(self._rows([f["node"] for f in items]).astype(np.int64))
        self._inflow_q.append(np.array([f["discharge_m3s"] for f in items], dtype=float).reshape(len(items)))

    def finish(self) -> tuple[NodeTable, ReachTable, InflowMap]:
        """The tables; the builder is spent."""
        xy = np.concatenate(self._xy) if self._xy else np.zeros((0, 2))
        nodes = NodeTable(IdIndex.packed_from(self._node_ids), self._n_declared, xy[:, 0].copy(), xy[:, 1].copy(),
                          self._node_names, self._node_extras)
        lengths = np.concatenate(self._reach_ends) if self._reach_ends else np.zeros(0, np.int64)
        reaches = ReachTable(
            IdIndex(packed="".join(self._reach_packed), ends=np.cumsum(lengths)), nodes, _cat(self._from, np.int32),
            _cat(self._to, np.int32),
            np.concatenate(self._num) if self._num else np.zeros((0, len(REACH_COLUMNS))),
            _cat(self._mixed, bool), names=self._names, geometry=self._geometry, extras=self._extras)
        # several inflows at one node add up (in document order), kept at the node's first place
        rows, q_all = _cat(self._inflow_rows, np.int64), _cat(self._inflow_q, float)
        uniq, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
        q = np.zeros(uniq.size)
        np.add.at(q, inverse.reshape(-1), q_all)
        keep = np.argsort(first, kind="stable")
        self.__dict__.clear()
        return nodes, reaches, InflowMap(nodes, uniq[keep], q[keep])


def _cat(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)

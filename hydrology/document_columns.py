"""Checked node, reach and inflow items of a network document into columns, in one go or in chunks.

Used by :mod:`hydrology.document`; items may come in several calls (a reader that decodes a file in
chunks, as tried in commit ece92d4, needs no other change). Nothing built here keeps an object of the parsed document: numbers go into float arrays, ids into
packed strings, and the rare names, geometries and unknown fields are copied (:func:`fresh`). The
document's memory can then go back to the system once it is dropped. Units are those of the
document (SI, named in the fields); see :mod:`hydrology.network_columns` for the layout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
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


#: items decoded at a time by :class:`ItemChunks` (about 25 MB of Python objects for reaches)
CHUNK_ITEMS = 1 << 14


class ItemChunks:
    """A JSON array of a document held undecoded, one encoded item per entry, and decoded a chunk of
    items at a time (so that a million reaches never exist as a million dicts at once).

    ``encoded`` are the items' JSON texts (e.g. ``msgspec.Raw`` slices of the document's bytes);
    ``decode`` turns one into Python objects as ``json.loads`` would.
    """

    def __init__(self, encoded: Sequence[Any], decode: Callable[[Any], Any], chunk: int | None = None) -> None:
        self.encoded, self.decode, self.chunk = encoded, decode, chunk or CHUNK_ITEMS

    def __len__(self) -> int:
        return len(self.encoded)

    def chunks(self) -> Iterator[list[Any]]:
        """The decoded items, ``chunk`` at a time, in order."""
        enc, dec = self.encoded, self.decode
        for a in range(0, len(enc), self.chunk):
            yield [dec(e) for e in enc[a:a + self.chunk]]


class ColumnBuilder:
    """Accumulates checked items: nodes first, then reaches and inflows, then :meth:`finish`.

    ``node_keys``/``reach_keys`` are the documented fields; any other field of an item is kept in
    that element's ``extra``. ``expected`` (``{"nodes": n, "reaches": m, "inflows": k}``, any left
    out) sizes the columns once, so that :meth:`finish` does not hold the pieces and the whole at
    once. ``ghosts`` counts node ids that reaches or inflows name but no node declares (validation
    reports them; they still get a row of the node id space); ``duplicate_nodes`` counts node items
    whose id an earlier node has.
    """

    def __init__(self, node_keys: frozenset[str], reach_keys: frozenset[str],
                 expected: Mapping[str, int] | None = None) -> None:
        size = dict(expected or {})
        self._node_keys, self._reach_keys = node_keys, reach_keys
        self._node_ids: list[str] = []
        self._index: dict[str, int] = {}
        self._n_declared = 0
        self._xy = _Column((2,), float, size.get("nodes", 0))
        self._node_names: dict[int, str] = {}
        self._node_extras: dict[int, dict[str, Any]] = {}
        self._m = 0
        self._reach_packed: list[str] = []
        self._reach_ends = _Column((), np.int64, size.get("reaches", 0))
        self._from = _Column((), np.int32, size.get("reaches", 0))
        self._to = _Column((), np.int32, size.get("reaches", 0))
        self._num = _Column((len(REACH_COLUMNS),), float, size.get("reaches", 0))
        self._mixed = _Column((), bool, size.get("reaches", 0))
        self._names: dict[int, str] = {}
        self._geometry: dict[int, np.ndarray] = {}
        self._extras: dict[int, dict[str, Any]] = {}
        self._inflow_rows = _Column((), np.int64, size.get("inflows", 0))
        self._inflow_q = _Column((), float, size.get("inflows", 0))
        self.ghosts = 0
        self.duplicate_nodes = 0

    def add_nodes(self, items: Sequence[dict[str, Any]]) -> None:
        if self.ghosts:
            raise ValueError("nodes must be added before any reach or inflow names an undeclared node")
        base = len(self._node_ids)
        index = self._index
        for i, n in enumerate(items):
            nid = n["id"]
            if nid in index:
                self.duplicate_nodes += 1
            index[nid] = base + i
            self._node_ids.append(nid)
            if n.get("name") is not None:
                self._node_names[base + i] = fresh(n["name"])
            if not self._node_keys.issuperset(n):
                self._node_extras[base + i] = fresh({k: v for k, v in n.items() if k not in self._node_keys})
        self._n_declared += len(items)
        self._xy.extend(np.array([(n.get("x"), n.get("y")) for n in items], dtype=float).reshape(len(items), 2))

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
        self._from.extend(self._rows([r["from_node"] for r in items]))
        self._to.extend(self._rows([r["to_node"] for r in items]))
        num = np.empty((m, len(REACH_COLUMNS)))
        for j, k in enumerate(REACH_COLUMNS):  # None (unset) becomes NaN
            num[:, j] = np.array([r.get(k) for r in items], dtype=float)
        self._num.extend(num)
        self._mixed.extend(np.array([bool(r.get("fully_mixed")) for r in items], dtype=bool).reshape(m))
        ids = [r["id"] for r in items]
        self._reach_packed.append("".join(ids))
        self._reach_ends.extend(np.fromiter(map(len, ids), np.int64, m))
        for i, r in enumerate(items):
            if not self._reach_keys.issuperset(r):
                self._extras[base + i] = fresh({k: v for k, v in r.items() if k not in self._reach_keys})
            if r.get("name") is not None:
                self._names[base + i] = fresh(r["name"])
            if r.get("geometry"):
                self._geometry[base + i] = np.array([(p[0], p[1]) for p in r["geometry"]], dtype=float)
        self._m += m

    def add_inflows(self, items: Sequence[dict[str, Any]]) -> None:
        self._inflow_rows.extend(self._rows([f["node"] for f in items]).astype(np.int64))
        self._inflow_q.extend(np.array([f["discharge_m3s"] for f in items], dtype=float).reshape(len(items)))

    def finish(self) -> tuple[NodeTable, ReachTable, InflowMap]:
        """The tables; the builder is spent."""
        xy = self._xy.result()
        nodes = NodeTable(IdIndex.packed_from(self._node_ids), self._n_declared, xy[:, 0].copy(), xy[:, 1].copy(),
                          self._node_names, self._node_extras)
        del xy
        self._node_ids.clear()
        self._index.clear()
        self._xy = _Column((2,), float)
        packed = "".join(self._reach_packed)
        self._reach_packed.clear()
        ends = self._reach_ends.result()
        np.cumsum(ends, out=ends)
        reaches = ReachTable(
            IdIndex(packed=packed, ends=ends), nodes, self._from.result(), self._to.result(), self._num.result(),
            self._mixed.result(), names=self._names, geometry=self._geometry, extras=self._extras)
        # several inflows at one node add up (in document order), kept at the node's first place
        rows, q_all = self._inflow_rows.result(), self._inflow_q.result()
        uniq, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
        q = np.zeros(uniq.size)
        np.add.at(q, inverse.reshape(-1), q_all)
        keep = np.argsort(first, kind="stable")
        self.__dict__.clear()
        return nodes, reaches, InflowMap(nodes, uniq[keep], q[keep])


class _Column:
    """A column filled a block of rows at a time, sized once when the row count is known."""

    def __init__(self, tail: tuple[int, ...], dtype: Any, capacity: int = 0) -> None:
        self._a = np.empty((capacity, *tail), dtype)
        self._n = 0

    def extend(self, block: np.ndarray) -> None:
        k = len(block)
        if self._n + k > len(self._a):  # more than expected: grow
            grown = np.empty((max(2 * len(self._a), self._n + k), *self._a.shape[1:]), self._a.dtype)
            grown[:self._n] = self._a[:self._n]
            self._a = grown
        self._a[self._n:self._n + k] = block
        self._n += k

    def result(self) -> np.ndarray:
        """The rows filled (the array itself when it is full); the column is spent."""
        a, self._a = self._a, self._a[:0]
        return a if self._n == len(a) else a[:self._n].copy()



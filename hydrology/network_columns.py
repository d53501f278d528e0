"""Columnar storage of a river network's nodes and reaches (issue 13, "Cost and memory").

A network of a million reaches held as one Python object per reach costs about 2 kB a reach: the
object, its float and string objects, an ``extra`` dict each, and the JSON document's memory that
those objects pin (CPython returns an arena of its small-object allocator to the system only when
nothing in it is alive, and ids kept from a parsed document sit in nearly every arena of it). Here
the per-reach data are numpy columns instead:

- ids in an :class:`IdIndex`: one packed string with offsets, and the ``list``/``dict`` of Python
  strings built on first use (after the document is gone, so they do not pin it);
- the numeric reach fields as one float array, NaN where a field is unset (a parsed document holds
  finite numbers only, so NaN is unambiguous);
- ``from_node``/``to_node`` as int32 indices into the node id space (declared nodes first, then ids
  that only reaches or inflows name, so an invalid network can still be built and validated);
- the rare fields (names, geometry, unknown fields) in sparse dicts keyed by row.

:class:`NodeTable` and :class:`ReachTable` are read-only ``Mapping``\\ s that build a
:class:`~hydrology.network.Node` or :class:`~hydrology.network.Reach` on demand, so
``net.reaches[rid].length_m`` and ``for r in net.reaches.values()`` keep working.
"""

from __future__ import annotations

from collections.abc import Callable, ItemsView, Iterable, Iterator, Mapping, Sequence, ValuesView
from dataclasses import fields
from functools import lru_cache
from math import isnan
from typing import Any

import numpy as np

from .network_elements import REACH_NUM_FIELDS, Node, Reach

#: columns of :attr:`ReachTable.num`: length first, then the optional numeric fields of a Reach
REACH_COLUMNS: tuple[str, ...] = ("length_m", *REACH_NUM_FIELDS)
_COL = {name: j for j, name in enumerate(REACH_COLUMNS)}
#: reaches built on demand and kept per table (about 0.5 kB each)
REACH_CACHE = 1 << 18
# ReachTable._build passes the fields by position: id, nodes, length, the numbers, then the rest
if tuple(f.name for f in fields(Reach)) != ("id", "from_node", "to_node", *REACH_COLUMNS, "fully_mixed",
                                            "geometry", "name", "extra"):
    raise ImportError("hydrology.network_columns: Reach fields changed; update ReachTable._build")


class IdIndex:
    """Element ids in order, with id -> row; packed as one string plus offsets until first use."""

    __slots__ = ("_ends", "_ids", "_index", "_packed")

    def __init__(self, ids: Sequence[str] | None = None, *, packed: str = "", ends: np.ndarray | None = None) -> None:
        self._ids: list[str] | None = list(ids) if ids is not None else None
        self._index: dict[str, int] | None = None
        self._packed = packed
        self._ends = ends if ends is not None else np.zeros(0, np.int64)

    @classmethod
    def packed_from(cls, ids: Sequence[str]) -> IdIndex:
        """Pack ids (e.g. strings of a parsed document) so that none of the given objects is kept."""
        ends = np.cumsum(np.fromiter((len(s) for s in ids), np.int64, len(ids)))
        return cls(packed="".join(ids), ends=ends)

    def __len__(self) -> int:
        return len(self._ids) if self._ids is not None else len(self._ends)

    @property
    def ids(self) -> list[str]:
        """The ids in row order (fresh strings, built once)."""
        if self._ids is None:
            p, ends = self._packed, self._ends.tolist()
            starts = [0, *ends[:-1]]
            self._ids = [p[a:b] for a, b in zip(starts, ends)]
            self._packed, self._ends = "", np.zeros(0, np.int64)
        return self._ids

    @property
    def index(self) -> dict[str, int]:
        """id -> row (for duplicate ids, the last row, as a dict built from a document keeps)."""
        if self._index is None:
            self._index = {s: i for i, s in enumerate(self.ids)}
        return self._index


class NodeTable(Mapping[str, Node]):
    """The declared nodes as a read-only mapping id -> :class:`Node`, built on demand.

    ``ids`` has the whole node id space: the ``n_declared`` declared nodes first, then node ids named
    only by reaches or inflows (not items of the mapping). ``x``, ``y`` [CRS units] are NaN where unset.
    """

    def __init__(self, ids: IdIndex, n_declared: int, x: np.ndarray, y: np.ndarray,
                 names: Mapping[int, str] | None = None, extras: Mapping[int, Mapping[str, Any]] | None = None) -> None:
        self.id_index = ids
        self.n_declared = n_declared
        self.x, self.y = x, y
        self.names = dict(names or {})
        self.extras = dict(extras or {})

    def row(self, node_id: str) -> int | None:
        """Row of a node id in the node id space (declared or not), or None."""
        return self.id_index.index.get(node_id)

    def __getitem__(self, node_id: str) -> Node:
        i = self.id_index.index.get(node_id)
        if i is None or i >= self.n_declared:
            raise KeyError(node_id)
        return self.node_at(i)

    def node_at(self, i: int) -> Node:
        x, y = float(self.x[i]), float(self.y[i])
        return Node(self.id_index.ids[i], None if isnan(x) else x, None if isnan(y) else y,
                    self.names.get(i), self.extras.get(i, {}))

    def __contains__(self, node_id: object) -> bool:
        i = self.id_index.index.get(node_id) if isinstance(node_id, str) else None
        return i is not None and i < self.n_declared

    def __iter__(self) -> Iterator[str]:
        return iter(self.id_index.ids[:self.n_declared])

    def __len__(self) -> int:
        return self.n_declared


class ReachTable(Mapping[str, Reach]):
    """The reaches as a read-only mapping id -> :class:`Reach`, built on demand, over columns.

    ``num[:, j]`` is the column :data:`REACH_COLUMNS` ``[j]`` in SI units (NaN = unset);
    ``from_row``/``to_row`` index ``nodes.id_index``.
    """

    def __init__(self, ids: IdIndex, nodes: NodeTable, from_row: np.ndarray, to_row: np.ndarray, num: np.ndarray,
                 fully_mixed: np.ndarray, *, names: Mapping[int, str] | None = None,
                 geometry: Mapping[int, np.ndarray] | None = None,
                 extras: Mapping[int, Mapping[str, Any]] | None = None) -> None:
        self.id_index = ids
        self.nodes = nodes
        self.from_row, self.to_row = from_row, to_row
        self.num = num
        self.fully_mixed = fully_mixed
        self.names = dict(names or {})
        self.geometry = dict(geometry or {})
        self.extras = dict(extras or {})
        #: the reach of row ``i`` as a value object; the last REACH_CACHE built are kept, since a trace
        #: asks for the same reaches again and again (a build costs ~5 us, a cache hit ~0.2 us)
        self.reach_at: Callable[[int], Reach] = lru_cache(maxsize=REACH_CACHE)(self._build)

    def column(self, name: str) -> np.ndarray:
        """One numeric field of every reach in row order (a view; NaN = unset)."""
        return self.num[:, _COL[name]]

    def row(self, reach_id: str) -> int | None:
        return self.id_index.index.get(reach_id)

    def _build(self, i: int) -> Reach:
        vals = self.num[i].tolist()
        g = self.geometry.get(i) if self.geometry else None
        node_ids = self.nodes.id_index.ids
        # by position, in field order (checked at import): keywords would cost a dict per reach
        args: list[Any] = [self.id_index.ids[i], node_ids[self.from_row[i]], node_ids[self.to_row[i]], vals[0],
                           *[None if isnan(v) else v for v in vals[1:]], bool(self.fully_mixed[i]),
                           None if g is None else tuple(map(tuple, g.tolist())), self.names.get(i),
                           self.extras.get(i, {})]
        return Reach(*args)

    def __getstate__(self) -> dict[str, Any]:  # pickling (process pools): the cache is rebuilt, not sent
        state = dict(self.__dict__)
        del state["reach_at"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.reach_at = lru_cache(maxsize=REACH_CACHE)(self._build)

    def _full_pass_builder(self) -> Callable[[int], Reach]:
        """How a pass over every reach gets them: through the cache when they all fit in it (a second
        pass is then a lookup), else built afresh (a pass through a full LRU cache would only churn)."""
        return self.reach_at if len(self) <= REACH_CACHE else self._build

    def __getitem__(self, reach_id: str) -> Reach:
        i = self.id_index.index.get(reach_id)
        if i is None:
            raise KeyError(reach_id)
        return self.reach_at(i)

    def __contains__(self, reach_id: object) -> bool:
        return isinstance(reach_id, str) and reach_id in self.id_index.index

    def __iter__(self) -> Iterator[str]:
        return iter(self.id_index.ids)

    def __len__(self) -> int:
        return len(self.id_index)

    def values(self) -> Any:  # a ValuesView that builds reaches in row order without id lookups
        return _RowValues(self)

    def items(self) -> Any:
        return _RowItems(self)

    def with_column_values(self, name: str, rows: np.ndarray, values: np.ndarray) -> ReachTable:
        """A copy with ``num[rows, name] = values`` (ids, topology and sparse fields shared)."""
        num = self.num.copy()
        num[rows, _COL[name]] = values
        return ReachTable(self.id_index, self.nodes, self.from_row, self.to_row, num, self.fully_mixed,
                          names=self.names, geometry=self.geometry, extras=self.extras)


class _RowValues(ValuesView[Reach]):
    _mapping: ReachTable

    def __iter__(self) -> Iterator[Reach]:
        return map(self._mapping._full_pass_builder(), range(len(self._mapping)))


class _RowItems(ItemsView[str, Reach]):
    _mapping: ReachTable

    def __iter__(self) -> Iterator[tuple[str, Reach]]:
        t = self._mapping
        return zip(t.id_index.ids, map(t._full_pass_builder(), range(len(t))))


class InflowMap(Mapping[str, float]):
    """Point inflows at nodes [m3/s] as a read-only mapping node id -> discharge, over arrays.

    Lookups go to a plain dict built on first use (routing asks for one node at a time).
    """

    def __init__(self, nodes: NodeTable, rows: np.ndarray, discharge_m3s: np.ndarray) -> None:
        self.nodes, self.rows, self.discharge_m3s = nodes, rows, discharge_m3s
        self._dict: dict[str, float] | None = None

    @property
    def as_dict(self) -> dict[str, float]:
        if self._dict is None:
            ids = self.nodes.id_index.ids
            self._dict = {ids[r]: q for r, q in zip(self.rows.tolist(), self.discharge_m3s.tolist())}
        return self._dict

    def __getitem__(self, node_id: str) -> float:
        return self.as_dict[node_id]

    def get(self, node_id: str, default: Any = None) -> Any:
        return self.as_dict.get(node_id, default)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.as_dict

    def __iter__(self) -> Iterator[str]:
        return iter(self.as_dict)

    def __len__(self) -> int:
        return len(self.rows)

    def items(self) -> Any:
        return self.as_dict.items()

    def values(self) -> Any:
        return self.as_dict.values()


def tables_from_objects(nodes: Mapping[str, Node], reaches: Mapping[str, Reach],
                        inflows: Mapping[str, float]) -> tuple[NodeTable, ReachTable, InflowMap]:
    """Columns from value objects (networks built in code, tests, derived networks)."""
    if isinstance(nodes, NodeTable) and isinstance(reaches, ReachTable) and reaches.nodes is nodes:
        table, rt = nodes, reaches
    else:
        table, rt = _build_from_objects(nodes, reaches)
    if isinstance(inflows, InflowMap) and inflows.nodes is table:
        return table, rt, inflows
    return table, rt, inflow_map(table, inflows.items())


def inflow_map(table: NodeTable, pairs: Iterable[tuple[str, float]]) -> InflowMap:
    """Inflows from (node id, discharge [m3/s]) pairs; node ids not in ``table`` are added to its id space."""
    index = table.id_index.index
    ids = table.id_index.ids
    rows: list[int] = []
    q: list[float] = []
    at: dict[int, int] = {}
    for node_id, value in pairs:
        i = index.get(node_id)
        if i is None:
            i = index[node_id] = len(ids)
            ids.append(node_id)
        k = at.get(i)
        if k is None:
            at[i] = len(rows)
            rows.append(i)
            q.append(float(value))
        else:
            q[k] += float(value)
    return InflowMap(table, np.array(rows, dtype=np.int64), np.array(q, dtype=float))


def _build_from_objects(nodes: Mapping[str, Node], reaches: Mapping[str, Reach]) -> tuple[NodeTable, ReachTable]:
    node_list = list(nodes.values())
    ids = list(nodes)
    n_declared = len(ids)
    index = {s: i for i, s in enumerate(ids)}
    reach_list = list(reaches.values())
    # ids named only by reaches: those leaving first, then those entered, each in reach order
    # (the order the former dict-of-lists topology met them, so topological orders stay the same)
    for attr in ("from_node", "to_node"):
        for r in reach_list:
            nid = getattr(r, attr)
            if nid not in index:
                index[nid] = len(ids)
                ids.append(nid)
    node_idx = IdIndex(ids)
    node_idx._index = index
    x = np.array([np.nan if n.x is None else n.x for n in node_list], dtype=float)
    y = np.array([np.nan if n.y is None else n.y for n in node_list], dtype=float)
    table = NodeTable(node_idx, n_declared, x, y, {i: n.name for i, n in enumerate(node_list) if n.name is not None},
                      {i: n.extra for i, n in enumerate(node_list) if n.extra})
    m = len(reach_list)
    num = np.full((m, len(REACH_COLUMNS)), np.nan)
    for i, r in enumerate(reach_list):
        num[i] = [np.nan if (v := getattr(r, k)) is None else v for k in REACH_COLUMNS]
    rt = ReachTable(
        IdIndex(list(reaches)), table,
        np.array([index[r.from_node] for r in reach_list], dtype=np.int32).reshape(m),
        np.array([index[r.to_node] for r in reach_list], dtype=np.int32).reshape(m),
        num, np.array([r.fully_mixed for r in reach_list], dtype=bool).reshape(m),
        names={i: r.name for i, r in enumerate(reach_list) if r.name is not None},
        geometry={i: np.asarray(r.geometry, dtype=float) for i, r in enumerate(reach_list) if r.geometry},
        extras={i: r.extra for i, r in enumerate(reach_list) if r.extra},
    )
    return table, rt

"""Read a network document's text into columns without holding its nodes and reaches as dicts.

``json.loads`` of a 1,000,000-reach document (437 MB) builds about 1.75 GB of dicts, floats and
strings before the first column exists. Here the top-level object is walked with the json
module's own scanner: the ``nodes``, ``reaches`` and ``inflows`` arrays are decoded a chunk of
items at a time, checked with the same rules as :func:`hydrology.document.network_from_document`
and appended to a :class:`~hydrology.document_columns.ColumnBuilder`; every other key is decoded
whole. The chunk's dicts are then dropped, so the peak is the text plus the columns plus a chunk.

This is a fast path for valid documents only. On anything else (a problem in an item, a duplicate
id, a node id no node declares, nodes after reaches, a repeated top-level key, a JSON syntax error)
:func:`stream_network` returns None and the caller parses the whole document, which reports every
problem exactly as before.
"""

from __future__ import annotations

import json
import re
from typing import Any

from . import document as _doc
from .document_columns import ColumnBuilder
from .network import RiverNetwork

#: items decoded, checked and turned into columns at a time
CHUNK = 20_000
_WS = re.compile(r"[ \t\n\r]*").match
_STREAMED = {"nodes": _doc._NODE, "reaches": _doc._REACH, "inflows": _doc._INFLOW}


class _Fallback(Exception):
    """The fast path cannot read this document; parse it whole instead."""


def stream_network(text: str) -> RiverNetwork | None:
    """A network from the text of a JSON network document, or None when the fast path does not apply.

    Raises
    ------
    NetworkFormatError
        For problems outside the nodes, reaches and inflows (features, departments, format), as
        :func:`hydrology.document.network_from_document` reports them.
    """
    try:
        rest, columns = _walk(text)
    except (_Fallback, StopIteration, IndexError, KeyError, TypeError, ValueError):
        return None
    return _doc._build(rest, columns.finish())


def _walk(text: str) -> tuple[dict[str, Any], ColumnBuilder]:
    scan = json.JSONDecoder().scan_once
    columns = _Reader(ColumnBuilder(_doc._NODE_KEYS, _doc._REACH_KEYS))
    rest: dict[str, Any] = {}
    seen: set[str] = set()
    i = _expect(text, _WS(text, 0).end(), "{")
    i = _WS(text, i).end()
    if text[i] == "}":
        raise _Fallback  # no nodes or reaches: the whole parse reports it
    while True:
        if text[i] != '"':
            raise _Fallback
        key, i = scan(text, i)
        if key in seen:
            raise _Fallback  # json.loads keeps the last of repeated keys: leave that to it
        seen.add(key)
        i = _WS(text, _expect(text, _WS(text, i).end(), ":")).end()
        if key in _STREAMED:
            i = columns.read_array(text, i, key, scan)
        else:
            rest[key], i = scan(text, i)
        i = _WS(text, i).end()
        if text[i] == ",":
            i = _WS(text, i + 1).end()
            continue
        i = _expect(text, i, "}")
        break
    if _WS(text, i).end() != len(text) or not {"nodes", "reaches"} <= seen:
        raise _Fallback
    return rest, columns.builder


def _expect(text: str, i: int, char: str) -> int:
    if text[i] != char:
        raise _Fallback
    return i + 1


class _Reader:
    """Streams the three arrays into the builder, in chunks, refusing what the whole parse must report."""

    def __init__(self, builder: ColumnBuilder) -> None:
        self.builder = builder
        self.ids: dict[str, set[str]] = {"nodes": set(), "reaches": set()}

    def read_array(self, text: str, i: int, key: str, scan: Any) -> int:
        if key == "nodes" and (self.ids["reaches"] or self.builder.ghosts):
            raise _Fallback  # reaches or inflows came first: their node rows are not known yet
        i = _WS(text, _expect(text, i, "[")).end()
        chunk: list[Any] = []
        if text[i] == "]":
            return i + 1
        while True:
            item, i = scan(text, i)
            chunk.append(item)
            if len(chunk) == CHUNK:
                self._add(key, chunk)
                chunk = []
            i = _WS(text, i).end()
            if text[i] == ",":
                i = _WS(text, i + 1).end()
                continue
            i = _expect(text, i, "]")
            break
        self._add(key, chunk)
        return i

    def _add(self, key: str, chunk: list[Any]) -> None:
        problems: list[Any] = []
        items = _doc._parse_items({key: chunk}, key, _STREAMED[key], problems)
        if problems or len(items) != len(chunk):
            raise _Fallback
        seen = self.ids.get(key)
        if seen is not None:
            n = len(seen)
            seen.update(item["id"] for item in items)
            if len(seen) != n + len(items):
                raise _Fallback  # a duplicate id
        {"nodes": self.builder.add_nodes, "reaches": self.builder.add_reaches,
         "inflows": self.builder.add_inflows}[key](items)
        if self.builder.ghosts:
            raise _Fallback  # a node id no node declares: the whole parse orders these rows

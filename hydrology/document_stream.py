"""A JSON network document decoded without a Python dict per reach at once (issue 13, "Cost and memory").

``json.loads`` of a 1,000,000-reach document (437 MB) builds every node, reach and inflow as a dict
before a column is filled: 2.6 GB at its peak. Here `msgspec <https://jcristharif.com/msgspec/>`_
first splits the document into its top-level fields without decoding them (``msgspec.Raw``: a slice
of the document's bytes), and each of ``nodes``, ``reaches`` and ``inflows`` into its items' slices;
the items are then decoded :data:`~hydrology.document_columns.CHUNK_ITEMS` at a time into the same
dicts ``json.loads`` gives and handed to :func:`hydrology.document.network_from_document`, which
checks them and fills the columns chunk by chunk. What is alive at the peak: the document's bytes,
48 bytes a slice, one chunk of dicts and the columns.

Why msgspec: it is a C decoder that gives plain dicts/lists/str/int/float exactly as ``json.loads``
(so the structural checks and their messages are unchanged), it can leave parts undecoded
(``Raw``), and it decodes about 3 times as fast as ``json.loads``. ijson streams too but is slower
than ``json.loads``; orjson has no way to leave parts undecoded.

msgspec refuses a few things ``json.loads`` takes: ``NaN``/``Infinity``, numbers beyond the float
range (``1e400``) and lone UTF-16 surrogates. For such a document (and for invalid JSON) the whole
document goes through ``json.loads`` instead, so it gets the same problems (``must be finite``) and
the same syntax error messages as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import msgspec

from .document import network_from_document, parse_json
from .document_columns import ItemChunks
from .exceptions import NetworkFormatError
from .network import RiverNetwork

#: the fields decoded a chunk at a time (each has an item per node or reach)
STREAMED = ("nodes", "reaches", "inflows")

_TOP = msgspec.json.Decoder(dict[str, msgspec.Raw])
_LIST = msgspec.json.Decoder(list[msgspec.Raw])
_ANY = msgspec.json.Decoder()


def network_from_json(data: bytes | bytearray | memoryview, *, reference: Callable[[], Any] | None = None,
                      source: str = "") -> RiverNetwork:
    """Parse a network document given as UTF-8 JSON bytes; the same network and the same
    :class:`~hydrology.exceptions.NetworkFormatError` problems as
    ``network_from_document(json.loads(data))``.

    ``reference`` gives the document the ``json.loads`` way when msgspec refuses it (default:
    :func:`hydrology.document.parse_json` of ``data``, messages prefixed with ``source``).
    """
    try:
        return network_from_document(_split(data))
    except (msgspec.DecodeError, NetworkFormatError):
        # NaN, 1e400, a lone surrogate, invalid JSON, not an object (msgspec refuses them), or a document
        # with problems (whose list may be incomplete when streamed): json.loads' way decides
        pass
    return network_from_document(reference() if reference is not None else parse_json(bytes(data), source))


def _split(data: bytes | bytearray | memoryview) -> _LazyDocument:
    return _LazyDocument(_TOP.decode(data))


class _LazyDocument(Mapping[str, Any]):
    """The document's top-level fields, the streamed ones as :class:`ItemChunks` when they are lists
    and the others decoded at each access (none is kept decoded: a big network's departments list
    every reach, and are needed only twice)."""

    def __init__(self, top: dict[str, msgspec.Raw]) -> None:
        self._top = top
        self._chunks: dict[str, ItemChunks] = {}
        for key in STREAMED:
            if key in top:
                try:
                    self._chunks[key] = ItemChunks(_LIST.decode(top[key]), _ANY.decode)
                except msgspec.ValidationError:  # not a list: decoded whole, and reported as before
                    pass

    def __getitem__(self, key: str) -> Any:
        got = self._chunks.get(key)
        return got if got is not None else _ANY.decode(self._top[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._top)

    def __len__(self) -> int:
        return len(self._top)

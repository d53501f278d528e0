"""The JSON network document: parse it into a :class:`~hydrology.network.RiverNetwork` and back.

Parsing is structural: required fields present, numbers are numbers, ids are strings, and every
problem is collected (element, id, field) before one :class:`NetworkFormatError` is raised, so a
user fixes a file in one pass. Semantic checks (cycles, lengths > 0, chainage within the reach,
split fractions) are :func:`hydrology.validate.validate_network`'s job, so they can be reported
together with warnings. Unknown fields are kept in ``extra``/``attrs`` and written back: nothing a
user put in a file is lost on a round trip.

The format is documented in README.md ("Network format"). Units are SI and named in the fields. The
top-level ``timezone`` is the IANA zone the network's times are shown in (``"America/New_York"``); an
unknown name is an error on the field ``timezone``, and a document without one is shown in
``Asia/Shanghai`` (:mod:`hydrology.timezones`). It is kept in ``RiverNetwork.extra`` like any other
top-level field, so it survives every round trip.
"""

from __future__ import annotations

import gc
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .document_columns import ColumnBuilder, ItemChunks
from .document_columns import fresh as _fresh
from .exceptions import NetworkFormatError
from .network import FEATURE_COLLECTIONS, REACH_NUM_FIELDS, Department, Feature, RiverNetwork
from .problems import Problem
from .timezones import zone_error

FORMAT_NAME = "rivertrace-network"
FORMAT_VERSION = 1

# field -> (type, required); types: str, num, int, strlist, map, geom, any
_NODE = {"id": ("str", True), "x": ("num", False), "y": ("num", False), "name": ("str", False)}
_REACH_NUM = REACH_NUM_FIELDS
_REACH = {
    "id": ("str", True), "from_node": ("str", True), "to_node": ("str", True),
    "length_m": ("num", True), "geometry": ("geom", False), "name": ("str", False),
    "fully_mixed": ("bool", False),
    **{k: ("num", False) for k in _REACH_NUM},
}
_NODE_KEYS, _REACH_KEYS = frozenset(_NODE), frozenset(_REACH)
_FEATURE_COMMON = {"id": ("str", True), "name": ("str", False), "reach": ("str", True),
                   "chainage_m": ("num", True)}
_FEATURE_OWN: dict[str, dict[str, tuple[str, bool]]] = {
    "stations": {"target_class": ("str", False), "parameters": ("strlist", False), "hj212_mn": ("str", False)},
    "dischargers": {"kind": ("str", True), "pollutants": ("strlist", False),
                    "effluent_discharge_m3s": ("num", False), "permit_limits_mg_l": ("map", False),
                    "max_load_kg_s": ("map", False), "power_meter_id": ("str", False),
                    "violations": ("int", False), "department": ("str", False), "hj212_mn": ("str", False)},
    "intakes": {"population": ("int", False), "operator": ("str", False),
                "standard_class": ("str", False)},
    "structures": {"kind": ("str", False), "normal_release_m3s": ("num", False),
                   "max_release_m3s": ("num", False), "operator": ("str", False)},
    "sites": {"kind": ("str", True), "build_time_s": ("num", True), "access": ("str", False)},
}
_DEPARTMENT = {"id": ("str", True), "name": ("str", True), "name_en": ("str", False),
               "level": ("str", False), "roles": ("strlist", False), "owns": ("strlist", False)}
_INFLOW = {"node": ("str", True), "discharge_m3s": ("num", True)}


def _check(value: Any, kind: str) -> str | None:
    """Return an error message when ``value`` is not of ``kind``, else None."""
    if kind == "str":
        return None if isinstance(value, str) and value != "" else "must be a non-empty string"
    if kind == "num":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be a number, got {_short(value)}"
        return None if _finite(value) else f"must be finite, got {_short(value)}"
    if kind == "bool":
        return None if isinstance(value, bool) else f"must be true or false, got {_short(value)}"
    if kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63
        return None if ok else f"must be an integer (below 2^63), got {_short(value)}"
    if kind == "strlist":
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        return None if ok else "must be a list of strings"
    if kind == "map":
        return None if isinstance(value, dict) else "must be an object"
    if kind == "nummap":
        ok = isinstance(value, dict) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and _finite(v) and v >= 0 for v in value.values())
        return None if ok else "must be an object of non-negative finite numbers"
    if kind == "geom":
        ok = isinstance(value, list) and all(
            isinstance(p, (list, tuple)) and len(p) >= 2
            and all(isinstance(c, (int, float)) and not isinstance(c, bool) and _finite(c) for c in p) for p in value
        )
        return None if ok else "must be a list of [x, y] points of finite numbers"
    return None


def _finite(value: float) -> bool:
    """Finite and representable as a float (a 400-digit integer is not)."""
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _short(value: Any) -> str:
    """A value for a message, at most 60 characters (a 400-digit number is not echoed whole)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _parse_items(doc: Mapping[str, Any], key: str, spec: Mapping[str, tuple[str, bool]],
                 problems: list[Problem], required: bool = False) -> list[dict[str, Any]]:
    """Type-check every item of ``doc[key]``; return the items that are objects."""
    raw = doc.get(key)
    if raw is None:
        if required:
            problems.append(Problem("error", "network", "", key, f"'{key}' is required"))
        return []
    if not isinstance(raw, list):
        problems.append(Problem("error", "network", "", key, f"'{key}' must be a list"))
        return []
    return _parse_list(raw, key, spec, problems)


def _parse_list(raw: Sequence[Any], key: str, spec: Mapping[str, tuple[str, bool]], problems: list[Problem],
                offset: int = 0) -> list[dict[str, Any]]:
    """Type-check the items of a list (``raw[0]`` being item ``offset`` of ``key``); return the good ones."""
    items: list[dict[str, Any]] = []
    must = tuple(f for f, (_kind, req) in spec.items() if req)
    for i, item in enumerate(raw, offset):
        if not isinstance(item, dict):
            problems.append(Problem("error", key, f"#{i}", "", "must be an object"))
            continue
        if _fast_ok(item, spec, must):  # the common case, in one pass over the item's own keys
            items.append(item)
            continue
        ident = str(item["id"]) if isinstance(item.get("id"), str) else f"#{i}"
        bad = False
        for fname, (kind, req) in spec.items():
            value = item.get(fname)
            if value is None:
                if req:
                    problems.append(Problem("error", key, ident, fname, "is required"))
                    bad = True
                continue
            msg = _check(value, kind)
            if msg:
                problems.append(Problem("error", key, ident, fname, msg))
                bad = True
        if not bad:
            items.append(item)
    return items


def _fast_ok(item: Mapping[str, Any], spec: Mapping[str, tuple[str, bool]], required: tuple[str, ...]) -> bool:
    """Whether an item passes every check of its spec; a quick pass that only says yes or no (the
    slow path then names every problem in spec order). Same rules as :func:`_check`."""
    for fname in required:
        if item.get(fname) is None:
            return False
    for fname, value in item.items():
        sp = spec.get(fname)
        if sp is None or value is None:
            continue
        kind = sp[0]
        t = type(value)
        if kind == "num":
            if t is float:
                if value - value != 0.0:  # NaN or +-inf
                    return False
            elif t is not int or abs(value) > 1e300:
                return False
        elif kind == "str":
            if t is not str or not value:
                return False
        elif _check(value, kind) is not None:
            return False
    return True


def _find_duplicates(items: Sequence[Any], key: str, seen: set[str], problems: list[Problem]) -> None:
    """A problem for every item whose id an earlier item (in ``seen``, which is updated) has."""
    for item in items:
        ident = item.get("id") if isinstance(item, dict) else None
        if isinstance(ident, str):
            if ident in seen:
                problems.append(Problem("error", key, ident, "id", "duplicate id"))
            seen.add(ident)


def _extra(item: Mapping[str, Any], spec: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in spec}


def network_from_document(doc: Mapping[str, Any]) -> RiverNetwork:
    """Build a network from a parsed JSON document (a dict).

    ``nodes``, ``reaches`` and ``inflows`` may also be :class:`~hydrology.document_columns.ItemChunks`
    (:mod:`hydrology.document_stream`); the problems raised for such a document may then be
    incomplete (duplicate ids are only noticed at the end), and the caller parses it again as a dict
    to list them.

    Raises
    ------
    NetworkFormatError
        With ``problems`` listing every structural problem (element, id, field, message).
    """
    problems: list[Problem] = []
    if not isinstance(doc, Mapping):
        raise NetworkFormatError("a network document must be a JSON object",
                                 [Problem("error", "network", "", "", "must be a JSON object")])
    fmt = doc.get("format", FORMAT_NAME)
    if fmt != FORMAT_NAME:
        problems.append(Problem("error", "network", "", "format", f"expected {FORMAT_NAME!r}, got {fmt!r}"))
    version = doc.get("version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        problems.append(Problem("error", "network", "", "version",
                                f"this rivertrace reads version {FORMAT_VERSION}, got {version!r}"))

    # features and departments first (a big network's departments name every reach: better decoded
    # before the reaches' columns grow); their problems are listed after those of the reaches
    later: list[Problem] = []
    features: dict[str, dict[str, Feature]] = {}
    for key, kind in FEATURE_COLLECTIONS.items():
        spec = {**_FEATURE_COMMON, **_FEATURE_OWN[key]}
        coll: dict[str, Feature] = {}
        for item in _parse_items(doc, key, spec, later):
            attrs = {k: v for k, v in item.items() if k not in _FEATURE_COMMON}
            coll[item["id"]] = Feature(kind, _fresh(item["id"]), _fresh(item["reach"]),
                                       float(item["chainage_m"]), _fresh(item.get("name")), _fresh(attrs))
        features[kind] = coll
    memo: dict[str, str] = {}  # departments' "owns" name the same reaches many times: one copy of each id
    departments = {
        d["id"]: Department(*_fresh((d["id"], d["name"], d.get("name_en"), d.get("level"),
                                     tuple(d.get("roles") or ()), tuple(d.get("owns") or ()), _extra(d, _DEPARTMENT)),
                                    memo))
        for d in _parse_items(doc, "departments", _DEPARTMENT, later)
    }
    del memo
    # nodes, reaches, inflows: checked and put into columns a list (or a chunk, ItemChunks) at a time
    columns = ColumnBuilder(_NODE_KEYS, _REACH_KEYS, {k: len(v) for k in ("nodes", "reaches", "inflows")
                                                      if isinstance(v := doc.get(k), (list, ItemChunks))})
    duplicates: dict[str, list[Problem]] = {"nodes": [], "reaches": []}
    streamed = False
    for key, spec, required, add in (("nodes", _NODE, True, columns.add_nodes),
                                     ("reaches", _REACH, True, columns.add_reaches),
                                     ("inflows", _INFLOW, False, columns.add_inflows)):
        raw = doc.get(key)
        if isinstance(raw, ItemChunks):  # duplicate ids are found in the columns, below
            streamed = True
            offset = 0
            for part in raw.chunks():
                add(_parse_list(part, key, spec, problems, offset))
                offset += len(part)
        elif isinstance(raw, list):
            add(_parse_list(raw, key, spec, problems))
            if key in duplicates:
                _find_duplicates(raw, key, set(), duplicates[key])
        else:
            _parse_items(doc, key, spec, problems, required)  # names the missing or non-list field
    problems += later

    # duplicate ids are structural: a dict would silently keep only the last one
    problems += duplicates["nodes"] + duplicates["reaches"]
    for key in ("departments", *FEATURE_COLLECTIONS):
        items = doc.get(key)
        _find_duplicates(items if isinstance(items, list) else [], key, set(), problems)
    # an HJ 212 device id (MN) names one station or discharger: the gateway maps packets by it
    mns: dict[str, str] = {}
    for key in ("stations", "dischargers"):
        items = doc.get(key)
        for item in items if isinstance(items, list) else []:  # a non-list is reported above
            mn = item.get("hj212_mn") if isinstance(item, dict) else None
            if isinstance(mn, str) and mn:
                if not (len(mn) <= 24 and mn.isascii() and mn.isalnum()):
                    problems.append(Problem("error", key, str(item.get("id")), "hj212_mn",
                                            f"MN {mn!r} is not 1-24 letters or digits (HJ 212)"))
                if mn in mns:
                    problems.append(Problem("error", key, str(item.get("id")), "hj212_mn", f"MN {mn!r} is also {mns[mn]}'s"))
                mns.setdefault(mn, str(item.get("id")))
    zone_problem = zone_error(doc.get("timezone"))
    if zone_problem:
        problems.append(Problem("error", "network", "", "timezone", zone_problem))
    if problems:
        raise NetworkFormatError(f"network document has {len(problems)} problem(s): {problems[0]}", problems)

    known = {"format", "version", "name", "crs", "notes", "nodes", "reaches", "inflows", "departments",
             *FEATURE_COLLECTIONS}
    duplicate_nodes = columns.duplicate_nodes
    nodes, reaches, inflows = columns.finish()
    if streamed and (duplicate_nodes or len(reaches.id_index.index) < len(reaches)):
        raise NetworkFormatError("duplicate ids", [Problem("error", "network", "", "id", "duplicate ids (the "
                                                           "problems of a streamed document are incomplete)")])
    return RiverNetwork(
        nodes, reaches, inflows=inflows, features=features, departments=departments,  # type: ignore[arg-type]
        name=_fresh(str(doc.get("name") or "")), crs=_fresh(doc.get("crs")), notes=_fresh(doc.get("notes")),
        extra=_fresh({k: v for k, v in doc.items() if k not in known}),
    )


def network_to_document(net: RiverNetwork) -> dict[str, Any]:
    """The JSON document of a network (inverse of :func:`network_from_document`)."""
    def clean(d: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in d.items() if v is not None}

    doc: dict[str, Any] = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "name": net.name}
    if net.crs:
        doc["crs"] = net.crs
    if net.notes:
        doc["notes"] = net.notes
    doc.update(net.extra)
    doc["nodes"] = [clean({"id": n.id, "x": n.x, "y": n.y, "name": n.name, **n.extra}) for n in net.nodes.values()]
    reaches = []
    for r in net.reaches.values():
        d = {"id": r.id, "from_node": r.from_node, "to_node": r.to_node, "length_m": r.length_m,
             **{k: getattr(r, k) for k in _REACH_NUM}, "name": r.name, "fully_mixed": r.fully_mixed or None,
             "geometry": [list(p) for p in r.geometry] if r.geometry else None, **r.extra}
        reaches.append(clean(d))
    doc["reaches"] = reaches
    doc["inflows"] = [{"node": k, "discharge_m3s": v} for k, v in net.inflows.items()]
    for key, kind in FEATURE_COLLECTIONS.items():
        doc[key] = [clean({"id": f.id, "name": f.name, "reach": f.reach, "chainage_m": f.chainage_m, **f.attrs})
                    for f in net.features[kind].values()]
    doc["departments"] = [clean({"id": d.id, "name": d.name, "name_en": d.name_en, "level": d.level,
                                 "roles": list(d.roles), "owns": list(d.owns), **d.extra})
                          for d in net.departments.values()]
    return doc


def read_document(path: str | Path) -> dict[str, Any]:
    """Read a JSON network document, turning JSON syntax errors into :class:`NetworkFormatError`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise NetworkFormatError(f"{p}: cannot read: {err.strerror or err}") from err
    return parse_json(text, str(p))


def _read_bytes(path: str | Path) -> bytes:
    p = Path(path)
    try:
        return p.read_bytes()
    except OSError as err:
        raise NetworkFormatError(f"{p}: cannot read: {err.strerror or err}") from err


def parse_json(data: bytes | str, source: str = "") -> Any:
    """``json.loads`` of a UTF-8 document, a syntax error becoming :class:`NetworkFormatError`
    (message prefixed with ``source``, e.g. the file name, when given)."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        prob = Problem("error", "network", "", "", f"invalid JSON at line {err.lineno} column {err.colno}: {err.msg}")
        raise NetworkFormatError(f"{source}: {prob.message}" if source else prob.message, [prob]) from err


def load_network(path: str | Path) -> RiverNetwork:
    """Read and parse a JSON network document (structural checks only; see ``validate``).

    The document is decoded a chunk of reaches at a time (:func:`hydrology.document_stream.network_from_json`),
    so a million reaches never exist as a million dicts. The cyclic garbage collector is paused while
    the parse allocates objects that cannot form cycles (at 1M reaches it would otherwise walk them
    again and again).
    """
    from .document_stream import network_from_json

    data = _read_bytes(path)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return network_from_json(data, reference=lambda: read_document(path))
    finally:
        if was_enabled:
            gc.enable()


def write_network(net: RiverNetwork | Mapping[str, Any], path: str | Path, *, indent: int | None = 1) -> None:
    """Write a network (or a document dict) as JSON, UTF-8, non-ASCII names kept readable."""
    doc = network_to_document(net) if isinstance(net, RiverNetwork) else dict(net)
    Path(path).write_text(json.dumps(doc, ensure_ascii=False, indent=indent) + "\n", encoding="utf-8")

"""Water-quality standards as data: limits by item and class, exceedance, and sample classification.

The tables live in CSV files (``hydrology/data/standards/*.csv``, read as package data with
:mod:`importlib.resources`); a user extends them by writing a CSV of the same layout and loading it
with :meth:`Standard.from_csv`. Nothing numeric about a standard is in this module.

CSV layout (UTF-8, one row per item, header required):

``item``
    Canonical key (``DO``, ``CODMn``, ``COD``, ``BOD5``, ``NH3-N``, ``TP``, ``TN``, ``petroleum``...).
``unit``
    Documentation only: every mg/L value is already g/m3, the internal unit; microbiology is per L.
``kind``
    ``max`` (value must not exceed), ``min`` (must not fall below, e.g. DO), ``range`` (cells
    ``lo~hi``, e.g. pH ``6~9``) or ``descriptive`` (no numeric limit; the rule is in ``notes``).
class columns
    Every column not named here, in header order from best to worst class (``I..V``; ``1A, 1B, 2,
    3``). An empty cell means the standard sets no limit for that class.
``condition`` (optional)
    ``temperature_c>12``-style test selecting among rows of the same item (GB 18918 NH3-N).
``aliases`` (optional)
    ``|``-separated other names, matched case-insensitively ignoring spaces, ``-``, ``_`` and
    parentheses.
``name_zh``, ``name_en``, ``notes``, ``source`` (optional)
    Documentation; ``source`` cites the standard, table and item number.

References
----------
GB 3838-2002, Environmental quality standards for surface water (地表水环境质量标准), Tables 1-2.
GB 18918-2002, Discharge standard of pollutants for municipal wastewater treatment plant
    (城镇污水处理厂污染物排放标准), Table 1.
"""

from __future__ import annotations

import csv
import functools
import io
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from os import PathLike
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from .exceptions import HydrologyError, UnknownModelError

LimitKind = Literal["max", "min", "range"]
ItemKind = Literal["max", "min", "range", "descriptive"]
WaterClass = str | int

#: Bundled standards: name -> CSV file in ``hydrology/data/standards``.
BUNDLED_STANDARDS: dict[str, str] = {
    "GB3838-2002": "gb3838_2002_table1.csv",
    "GB3838-2002-T2": "gb3838_2002_table2.csv",
    "GB18918-2002": "gb18918_2002.csv",
}
DEFAULT_STANDARD = "GB3838-2002"

_DOC_COLUMNS = ("item", "name_zh", "name_en", "unit", "kind", "condition", "aliases", "notes", "source")
_KINDS = ("max", "min", "range", "descriptive")
_ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X")
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_CONDITION = re.compile(rf"^\s*(temperature_c)\s*(<=|>=|<|>)\s*({_NUMBER})\s*$")
_RANGE = re.compile(rf"^\s*({_NUMBER})\s*[~～]\s*({_NUMBER})\s*$")
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


class StandardsError(HydrologyError, ValueError):
    """A standard table is malformed, or a limit is asked for that the table does not define."""


def _norm(name: str) -> str:
    return re.sub(r"[\s\-_()]", "", str(name)).casefold()


@dataclass(frozen=True, slots=True)
class Condition:
    """A test on the sample's context selecting one row of a conditional item (``temperature_c>12``)."""

    variable: str
    op: str
    threshold: float

    def holds(self, temperature_c: float) -> bool:
        """True where the condition is met at water temperature ``temperature_c`` [degC]."""
        return _OPS[self.op](temperature_c, self.threshold)

    def __str__(self) -> str:
        return f"{self.variable}{self.op}{self.threshold:g}"


@dataclass(frozen=True, slots=True)
class StandardItem:
    """One row of a standard: limits of an item for every class (None where the class has none)."""

    item: str
    kind: ItemKind
    unit: str
    limits: Mapping[str, float | tuple[float, float] | None]
    condition: Condition | None = None
    name_zh: str = ""
    name_en: str = ""
    notes: str = ""
    source: str = ""


@dataclass(frozen=True, slots=True)
class Limit:
    """The limit of one item for one class: ``value_g_m3`` is a float, or (lo, hi) for a range.

    Values are in g/m3 (= mg/L) except where ``unit`` says otherwise (pH, counts per L, colour).
    """

    item: str
    value_g_m3: float | tuple[float, float]
    kind: LimitKind
    unit: str
    water_class: str
    standard: str
    notes: str = ""

    def exceeded_by(self, value: float) -> bool:
        """True if ``value`` (same unit as the limit) violates it: above a max, below a min, outside a range."""
        if self.kind == "max":
            return value > self.value_g_m3  # type: ignore[operator]
        if self.kind == "min":
            return value < self.value_g_m3  # type: ignore[operator]
        lo, hi = self.value_g_m3  # type: ignore[misc]
        return value < lo or value > hi


@dataclass(frozen=True, slots=True)
class ClassResult:
    """Class of a sample: its worst item (GB 3838-2002 section 5, single-factor assessment).

    ``water_class`` is one of the standard's classes or ``"worse than <last class>"``;
    ``deciding_items`` are the items in that class; ``item_classes`` gives every assessed item's
    class; ``not_assessed`` lists descriptive items (water temperature) present in the sample.
    """

    water_class: str
    deciding_items: tuple[str, ...]
    item_classes: Mapping[str, str]
    not_assessed: tuple[str, ...]
    standard: str


def _parse_cell(text: str, kind: str, where: str) -> float | tuple[float, float] | None:
    text = text.strip()
    if not text:
        return None
    if kind == "descriptive":
        raise StandardsError(f"{where}: descriptive item has a value {text!r}; put the rule in notes")
    if kind == "range":
        m = _RANGE.match(text)
        if not m:
            raise StandardsError(f"{where}: range cell {text!r} is not of the form 'lo~hi'")
        lo, hi = float(m[1]), float(m[2])
        if lo > hi:
            raise StandardsError(f"{where}: range {text!r} has lo > hi")
        return (lo, hi)
    try:
        return float(text)
    except ValueError:
        raise StandardsError(f"{where}: limit {text!r} is not a number") from None


@dataclass(frozen=True, slots=True)
class Standard:
    """A water-quality standard: ordered classes (best first) and one or more rows per item."""

    name: str
    classes: tuple[str, ...]
    rows: tuple[StandardItem, ...]
    aliases: Mapping[str, str]

    @classmethod
    def from_csv(cls, path: str | PathLike[str] | Traversable, name: str | None = None) -> Standard:
        """Read a standard from a CSV file in the layout described in the module docstring.

        Parameters
        ----------
        path : str, path-like or Traversable
            The CSV file.
        name : str, optional
            Name of the standard; the file stem if omitted.

        Raises
        ------
        StandardsError
            On a missing column, an unknown kind, an unparseable cell, duplicate or inconsistent
            items, or an alias naming two items. The message gives the file and line.
        """
        p = path if isinstance(path, Traversable) else Path(path)
        label = name if name is not None else Path(p.name).stem
        reader = csv.DictReader(io.StringIO(p.read_text(encoding="utf-8")))
        header = [h.strip() for h in reader.fieldnames or []]
        missing = [c for c in ("item", "unit", "kind") if c not in header]
        if missing:
            raise StandardsError(f"standard {label!r} ({p}): missing column(s) {missing}")
        classes = tuple(h for h in header if h not in _DOC_COLUMNS)
        if not classes:
            raise StandardsError(f"standard {label!r} ({p}): no class columns")
        rows: list[StandardItem] = []
        aliases: dict[str, str] = {}
        for line, raw in enumerate(reader, start=2):
            rec = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
            where = f"{p}:{line} item {rec.get('item')!r}"
            item, kind = rec["item"], rec["kind"]
            if not item:
                raise StandardsError(f"{where}: empty item")
            if kind not in _KINDS:
                raise StandardsError(f"{where}: kind {kind!r} is not one of {_KINDS}")
            condition = None
            if rec.get("condition"):
                m = _CONDITION.match(rec["condition"])
                if not m:
                    raise StandardsError(f"{where}: condition {rec['condition']!r} is not like 'temperature_c>12'")
                condition = Condition(m[1], m[2], float(m[3]))
            limits = {c: _parse_cell(rec.get(c, ""), kind, f"{where} class {c}") for c in classes}
            rows.append(StandardItem(item, kind, rec["unit"], MappingProxyType(limits),  # type: ignore[arg-type]
                                     condition, rec.get("name_zh", ""), rec.get("name_en", ""),
                                     rec.get("notes", ""), rec.get("source", "")))
            for alias in [item, *filter(None, (a.strip() for a in rec.get("aliases", "").split("|")))]:
                if aliases.setdefault(_norm(alias), item) != item:
                    raise StandardsError(f"{where}: alias {alias!r} already names {aliases[_norm(alias)]!r}")
        std = cls(label, classes, tuple(rows), MappingProxyType(aliases))
        for item in std.items:
            variants = std._rows(item)
            if len(variants) > 1 and any(r.condition is None for r in variants):
                raise StandardsError(f"standard {label!r}: item {item!r} has {len(variants)} rows; "
                                     "repeated rows need a condition each")
        return std

    @property
    def items(self) -> tuple[str, ...]:
        """Canonical item keys, in table order."""
        return tuple(dict.fromkeys(r.item for r in self.rows))

    def _rows(self, item: str) -> list[StandardItem]:
        return [r for r in self.rows if r.item == item]

    def canonical_item(self, name: str) -> str:
        """Canonical key of an item name or alias (case-insensitive). Raises UnknownModelError."""
        try:
            return self.aliases[_norm(name)]
        except KeyError:
            raise UnknownModelError(
                f"item {name!r} is not in standard {self.name!r}; known items: {list(self.items)}"
            ) from None

    def water_class(self, water_class: WaterClass | None) -> str:
        """Normalise a class label: 'III', 'iii', 3 or '3' for GB 3838; '1a' for GB 18918."""
        if water_class is None:
            if len(self.classes) == 1:
                return self.classes[0]
            raise StandardsError(f"standard {self.name!r} has classes {list(self.classes)}; give one")
        text = str(water_class).strip()
        wanted = [text]
        if text.isdigit() and 1 <= int(text) <= len(_ROMAN):
            wanted.append(_ROMAN[int(text) - 1])
        for w in wanted:
            for c in self.classes:
                if c.casefold() == w.casefold():
                    return c
        raise StandardsError(f"class {water_class!r} is not in standard {self.name!r}: {list(self.classes)}")

    def row(self, item: str, temperature_c: float | None = None) -> StandardItem:
        """The row of ``item`` that applies, choosing among conditional rows by water temperature."""
        key = self.canonical_item(item)
        variants = self._rows(key)
        if len(variants) == 1 and variants[0].condition is None:
            return variants[0]
        conds = [str(r.condition) for r in variants]
        if temperature_c is None:
            raise StandardsError(f"item {key!r} in {self.name!r} depends on water temperature "
                                 f"({conds}); pass temperature_c [degC]")
        chosen = [r for r in variants if r.condition is not None and r.condition.holds(temperature_c)]
        if len(chosen) != 1:
            raise StandardsError(f"item {key!r} in {self.name!r}: {len(chosen)} rows of {conds} "
                                 f"hold at temperature_c={temperature_c}")
        return chosen[0]

    def limit(self, item: str, water_class: WaterClass | None = None, *,
              temperature_c: float | None = None) -> Limit:
        """Limit of ``item`` for ``water_class``; see :func:`limit`."""
        row = self.row(item, temperature_c)
        cls_ = self.water_class(water_class)
        if row.kind == "descriptive":
            raise StandardsError(f"item {row.item!r} in {self.name!r} has no numeric limit: {row.notes}")
        value = row.limits[cls_]
        if value is None:
            raise StandardsError(f"item {row.item!r} in {self.name!r} has no limit for class {cls_!r}")
        return Limit(row.item, value, row.kind, row.unit, cls_, self.name, row.notes)  # type: ignore[arg-type]

    def item_class(self, item: str, value: float, *, temperature_c: float | None = None) -> str:
        """Best class whose limit ``value`` meets (an empty cell imposes nothing), else 'worse than'."""
        row = self.row(item, temperature_c)
        for c in self.classes:
            lim = row.limits[c]
            if lim is None or not Limit(row.item, lim, row.kind, row.unit, c, self.name).exceeded_by(value):  # type: ignore[arg-type]
                return c
        return f"worse than {self.classes[-1]}"

    def classify(self, sample: Mapping[str, float], *, temperature_c: float | None = None) -> ClassResult:
        """Class of a sample = its worst item; see :func:`classify`."""
        if not sample:
            raise StandardsError("empty sample: nothing to classify")
        ranks = {c: i for i, c in enumerate(self.classes)}
        worst = f"worse than {self.classes[-1]}"
        ranks[worst] = len(self.classes)
        per_item: dict[str, str] = {}
        skipped: list[str] = []
        for name, value in sample.items():
            row = self.row(name, temperature_c)
            if row.kind == "descriptive":
                skipped.append(row.item)
                continue
            per_item[row.item] = self.item_class(row.item, float(value), temperature_c=temperature_c)
        if not per_item:
            raise StandardsError(f"sample {dict(sample)} has no item with a numeric limit in {self.name!r}")
        decided = max(per_item.values(), key=ranks.__getitem__)
        deciding = tuple(k for k, c in per_item.items() if c == decided)
        return ClassResult(decided, deciding, MappingProxyType(per_item), tuple(skipped), self.name)


@functools.cache
def load_standard(name: str = DEFAULT_STANDARD) -> Standard:
    """Load a bundled standard by name (see :data:`BUNDLED_STANDARDS`), as package data.

    Raises
    ------
    UnknownModelError
        If ``name`` is not bundled; use :meth:`Standard.from_csv` for your own tables.
    """
    try:
        filename = BUNDLED_STANDARDS[name]
    except KeyError:
        raise UnknownModelError(
            f"standard {name!r} is not bundled; known: {sorted(BUNDLED_STANDARDS)} "
            "(load your own with Standard.from_csv)") from None
    return Standard.from_csv(resources.files("hydrology") / "data" / "standards" / filename, name=name)


def _standard(standard: str | Standard) -> Standard:
    return standard if isinstance(standard, Standard) else load_standard(standard)


def canonical_item(name: str, standard: str | Standard | None = None) -> str:
    """Canonical item key for a name or alias, e.g. 'ammonia' -> 'NH3-N', 'oil' -> 'petroleum'.

    Parameters
    ----------
    name : str
        Item name or alias, case-insensitive.
    standard : str or Standard, optional
        Resolve within this standard; by default within all bundled standards.

    Raises
    ------
    UnknownModelError
        Listing the known items, if the name is not recognised.
    """
    if standard is not None:
        return _standard(standard).canonical_item(name)
    for std_name in BUNDLED_STANDARDS:
        std = load_standard(std_name)
        if _norm(name) in std.aliases:
            return std.aliases[_norm(name)]
    known = sorted({i for s in BUNDLED_STANDARDS for i in load_standard(s).items}, key=str.casefold)
    raise UnknownModelError(f"item {name!r} is not a known water-quality item; known items: {known}")


def limit(item: str, water_class: WaterClass | None = None, standard: str | Standard = DEFAULT_STANDARD,
          *, temperature_c: float | None = None) -> Limit:
    """Limit of an item for a class of a standard.

    Parameters
    ----------
    item : str
        Item name or alias ('DO', 'NH3-N', 'ammonia', 'oil'...).
    water_class : str or int, optional
        'I'..'V' or 1..5 for GB 3838; '1A', '1B', '2', '3' for GB 18918; may be omitted for a
        single-class table (GB3838-2002-T2).
    standard : str or Standard, default "GB3838-2002"
        Bundled standard name or a loaded :class:`Standard`.
    temperature_c : float, optional
        Water temperature [degC]; required for temperature-dependent items (GB 18918 NH3-N).

    Returns
    -------
    Limit
        Value [g/m3] (or per L, pH units...), kind 'max' | 'min' | 'range', unit.

    Raises
    ------
    UnknownModelError
        For an unknown item or standard.
    StandardsError
        For an unknown class, a class without a limit, or a descriptive item.
    """
    return _standard(standard).limit(item, water_class, temperature_c=temperature_c)


def exceeds(item: str, value: float, water_class: WaterClass | None = None,
            standard: str | Standard = DEFAULT_STANDARD, *, temperature_c: float | None = None) -> bool:
    """True if ``value`` [g/m3] violates the class limit: above a max, below a min (DO), outside a range.

    Parameters are as for :func:`limit`; ``value`` is in the limit's unit (g/m3 = mg/L; counts per L
    for faecal coliforms; pH units).
    """
    return limit(item, water_class, standard, temperature_c=temperature_c).exceeded_by(float(value))


def classify(sample: Mapping[str, float], standard: str | Standard = DEFAULT_STANDARD, *,
             temperature_c: float | None = None) -> ClassResult:
    """Water-quality class of a sample: the class of its worst item.

    Each item's class is the best class whose limit its value meets (an item meeting Class I is
    Class I; DO is a minimum, so lower DO is worse); the sample takes the worst of them. Descriptive
    items (water temperature) are listed as not assessed. Which items to include is the caller's
    choice (e.g. GB 3838 applies TN and TP-lake to lakes and reservoirs).

    Parameters
    ----------
    sample : mapping of str to float
        Item name or alias -> value [g/m3] (counts per L for faecal coliforms, pH units for pH).
    standard : str or Standard, default "GB3838-2002"
        Bundled standard name or a loaded :class:`Standard`.
    temperature_c : float, optional
        Water temperature [degC], needed only for temperature-dependent items.

    Returns
    -------
    ClassResult
        Class ('I'..'V' or 'worse than V'), deciding items and per-item classes.
    """
    return _standard(standard).classify(sample, temperature_c=temperature_c)


def pollutant_name_zh(name: str) -> str:
    """The Chinese name of a pollutant from the bundled GB 3838 table (``tracer``: 示踪剂); the item
    name itself when the table has no Chinese name for it."""
    if name == "tracer":
        return "示踪剂"
    try:
        return load_standard().row(name).name_zh or name
    except (KeyError, ValueError):
        return name

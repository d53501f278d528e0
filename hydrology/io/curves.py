"""Reading a time curve from CSV: a release rate [kg/s] or an observed inflow concentration [mg/L].

Columns ``time_s`` (seconds after the release start) or ``time`` (ISO 8601 with a UTC offset; needs
the release start), and one value column. Rows must be in time order; every bad row is named.
"""

from __future__ import annotations

import csv
import math
from datetime import datetime
from pathlib import Path

from ..exceptions import HydrologyError


class CurveFormatError(HydrologyError, ValueError):
    """A curve file that cannot be used (missing columns, bad rows); the message names the first row."""


def read_curve(path: str | Path, column: str, start: datetime | None = None) -> tuple[tuple[float, float], ...]:
    """(time [s after the release start], value) rows of a curve CSV.

    Parameters
    ----------
    path : str or Path
        The CSV file.
    column : str
        The value column, e.g. ``rate_kg_s`` [kg/s] or ``concentration_mg_l`` [mg/L = g/m3]; values
        are SI already and must be finite and >= 0.
    start : datetime, optional
        Timezone-aware release start, needed for a ``time`` column.

    Raises
    ------
    CurveFormatError
        Naming the file, the number of bad rows and the first of them.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as err:
        raise CurveFormatError(f"{path}: cannot read: {err.strerror or err}") from err
    header = set(rows[0]) if rows else set()
    tcol = "time_s" if "time_s" in header else "time"
    if not rows or column not in header or tcol not in header:
        raise CurveFormatError(f"{path}: needs rows and columns time_s (or time) and {column} (header {sorted(header)})")
    if tcol == "time" and (start is None or start.tzinfo is None):
        raise CurveFormatError(f"{path}: ISO times need a timezone-aware release start (or seconds in a time_s column)")
    out: list[tuple[float, float]] = []
    problems: list[str] = []
    for line, row in enumerate(rows, start=2):
        try:
            if tcol == "time_s":
                t = float(row[tcol])
            else:
                when = datetime.fromisoformat(str(row[tcol]).strip())
                if when.tzinfo is None:
                    raise ValueError(f"time {row[tcol]!r} has no UTC offset")
                t = (when - start).total_seconds()  # type: ignore[operator]
            v = float(row[column])
        except (TypeError, ValueError) as err:
            problems.append(f"line {line}: {err}")
            continue
        if not (math.isfinite(t) and math.isfinite(v) and v >= 0):
            problems.append(f"line {line}: {tcol} {t} and {column} {v} must be finite, the value >= 0")
        elif out and t < out[-1][0]:
            problems.append(f"line {line}: time {t} s goes back (rows must be in time order)")
        else:
            out.append((t, v))
    if problems:
        raise CurveFormatError(f"{path}: {len(problems)} bad row(s); first: {problems[0]}")
    return tuple(out)

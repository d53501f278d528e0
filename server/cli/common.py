"""What every command group of the ``rivertrace`` CLI shares: errors, reading networks, release flags.

Light on purpose: this module imports only the standard library at import time, so that
``rivertrace --help`` starts fast; numpy, xarray and the science modules are imported inside the
functions that need them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEMO_BASINS = ("ruxi", "puhe")


class CliError(Exception):
    """A usage or input error; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


# --------------------------------------------------------------------------- loading
def demo_basin_path(name: str) -> Path:
    """Path of a bundled demo basin document (``ruxi`` or ``puhe``)."""
    from importlib import resources

    if name not in DEMO_BASINS:
        raise CliError(f"unknown demo basin {name!r}; bundled: {', '.join(DEMO_BASINS)}")
    return Path(str(resources.files("hydrology") / "data" / "demo" / f"{name}.json"))


def read_any_document(source: str, layer: str | None = None) -> dict[str, Any]:
    """A network document from JSON, ``demo:NAME``, a GeoPackage or a shapefile directory."""
    from hydrology.document import read_document

    if source.startswith("demo:"):
        return read_document(demo_basin_path(source[5:]))
    path = Path(source)
    if not path.exists():
        raise CliError(f"{source}: no such file or directory")
    if path.suffix.lower() == ".json":
        return read_document(path)
    if path.is_dir() or path.suffix.lower() in (".gpkg", ".shp"):
        from hydrology.gpkg import read_network_layers

        return read_network_layers(path)
    raise CliError(f"{source}: unknown network format (expected .json, .gpkg, a shapefile directory or demo:NAME)")


def load_valid_network(source: str):
    """Parse and validate; raise :class:`NetworkValidationError` listing every error."""
    from hydrology.document import network_from_document
    from hydrology.validate import require_valid

    return require_valid(network_from_document(read_any_document(source)))


def print_problems(problems: Sequence[Any], stream: Any = None) -> None:
    for p in problems:
        print(f"  {p}", file=stream or sys.stderr)


# --------------------------------------------------------------------------- output paths
def check_output_path(path: str | os.PathLike[str], flag: str) -> None:
    """Refuse, before any work, an output path whose directory is missing or which is a directory.

    Raises :class:`CliError` (exit 2) with one line naming the flag and the path.
    """
    p = Path(path)
    if p.is_dir():
        raise CliError(f"{flag} {path}: is a directory; give a file name")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise CliError(f"{flag} {path}: directory {str(parent)!r} does not exist")
    if not parent.is_dir():
        raise CliError(f"{flag} {path}: {str(parent)!r} is not a directory")
    if not os.access(parent, os.W_OK):
        raise CliError(f"{flag} {path}: directory {str(parent)!r} is not writable")


def check_outputs(args: argparse.Namespace) -> None:
    """Before any work: every output flag a command declared with ``set_defaults(outputs={dest: flag})``,
    and ``--kinds`` where the command has it."""
    for dest, flag in getattr(args, "outputs", {}).items():
        value = getattr(args, dest, None)
        if value:
            check_output_path(value, flag)
    if isinstance(getattr(args, "kinds", None), str):
        parse_kinds(args.kinds)


# --------------------------------------------------------------------------- releases
def parse_time(text: str | None, flag: str = "--start") -> datetime | None:
    """An ISO 8601 time with a UTC offset, as UTC; None for None."""
    if text is None:
        return None
    try:
        t = datetime.fromisoformat(text)
    except ValueError as err:
        raise CliError(f"{flag} {text!r}: not an ISO 8601 time (e.g. 2025-07-14T09:30:00+08:00)") from err
    if t.tzinfo is None:
        raise CliError(f"{flag} {text!r}: give a UTC offset (e.g. +08:00 or Z); times are never guessed")
    return t.astimezone(UTC)


def add_release_arguments(parser: argparse.ArgumentParser, *, start_help: str, pollutant_default: str | None = None,
                          with_threshold: bool = True, optional: bool = False, curves: bool = False) -> None:
    """The release flags shared by ``forecast``, ``plot``, ``ensemble`` and ``export`` (units in the names).

    ``optional``: the release itself is optional (``export``), so no flag is required. ``curves``: a
    measured rate curve or an observed inflow curve may replace ``--mass-kg`` (the kernel's engines).
    """
    where = parser.add_argument_group("where (either a discharger, or a reach and chainage)")
    where.add_argument("--discharger", metavar="ID", help="release at this registered discharger")
    where.add_argument("--reach", metavar="ID", help="reach id of the release")
    where.add_argument("--chainage-m", type=float, metavar="X", help="release position: metres [m] from the "
                       "reach's upstream end")
    what = parser.add_argument_group("what")
    what.add_argument("--mass-kg", type=float, required=not (optional or curves), metavar="M",
                      help="mass released [kg]; instantaneous unless --duration-s is given"
                      + ("; or give --release-curve or --inflow-curve instead" if curves else ""))
    what.add_argument("--duration-s", type=float, metavar="T", help="release duration [s] (constant rate M/T)")
    if curves:
        what.add_argument("--release-curve", metavar="CSV", help="release rate over time, for a discharge that is not a "
                          "box: columns time_s [s after --start] (or time, ISO 8601 with offset) and rate_kg_s [kg/s]; "
                          "linear between rows, 0 before the first and after the last")
        what.add_argument("--inflow-curve", metavar="CSV", help="concentration observed at the release point over time "
                          "(an upstream boundary curve, e.g. a tracer study's x = 0 record): columns time_s [s after "
                          "--start] (or time, ISO 8601 with offset) and concentration_mg_l [mg/L]; linear between rows")
    if pollutant_default is None:
        what.add_argument("--pollutant", required=not optional, metavar="NAME",
                          help="GB 3838 item (COD, NH3-N, petroleum, TP, ...) or 'tracer' (conservative, no standard)")
    else:
        what.add_argument("--pollutant", default=pollutant_default, metavar="NAME",
                          help=f"GB 3838 item (COD, NH3-N, petroleum, TP, ...) or 'tracer' (default {pollutant_default})")
    what.add_argument("--decay-per-day", type=float, metavar="K",
                      help="first-order decay rate [1/day] (default 0: conservative)")
    what.add_argument("--start", metavar="ISO8601", help=start_help)
    what.add_argument("--wind-ms", type=float, default=0.0, metavar="W",
                      help="along-stream 10 m wind [m/s] for floating pollutants (default 0)")
    if with_threshold:
        what.add_argument("--threshold-mg-l", type=float, metavar="C",
                          help="arrival/end threshold for every receptor [mg/L] (default: each receptor's standard)")


#: feature kinds a forecast can report at (``--kinds``)
RECEPTOR_KINDS = ("station", "intake", "site", "structure", "discharger")


def parse_kinds(text: str) -> tuple[str, ...]:
    """``--kinds station,intake`` as a tuple; an unknown kind is a usage error naming the known ones."""
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in RECEPTOR_KINDS]
    if unknown or not kinds:
        raise CliError(f"--kinds {text!r}: unknown kind(s) {unknown or [text]}; known: {', '.join(RECEPTOR_KINDS)}")
    return kinds


def build_release(net: Any, args: argparse.Namespace):
    """A :class:`hydrology.transport.analytic.Release` from CLI flags (converted to SI here)."""
    from hydrology.pollutants import pollutant
    from hydrology.transport.analytic import Release
    from hydrology.units import per_day_to_per_s

    if args.discharger:
        d = net.feature(args.discharger, "discharger")
        reach, chainage = d.reach, d.chainage_m
        if args.reach is not None or args.chainage_m is not None:
            raise CliError("give either --discharger or --reach/--chainage-m, not both")
    else:
        if args.reach is None or args.chainage_m is None:
            raise CliError("give --discharger D, or --reach R with --chainage-m X")
        reach, chainage = args.reach, args.chainage_m
    if args.decay_per_day is not None and not args.decay_per_day >= 0:
        raise CliError(f"--decay-per-day must not be negative, got {args.decay_per_day}")
    pol = pollutant(args.pollutant, per_day_to_per_s(args.decay_per_day or 0.0))
    start = parse_time(getattr(args, "start", None))
    rate_csv, inflow_csv = getattr(args, "release_curve", None), getattr(args, "inflow_curve", None)
    given = [args.mass_kg is not None, rate_csv is not None, inflow_csv is not None]
    if sum(given) != 1:
        raise CliError("give exactly one of --mass-kg, --release-curve CSV and --inflow-curve CSV")
    if rate_csv is not None or inflow_csv is not None:
        if args.duration_s is not None:
            raise CliError("--duration-s goes with --mass-kg; a curve states its own duration")
        path, column = (rate_csv, "rate_kg_s") if rate_csv is not None else (inflow_csv, "concentration_mg_l")
        curve = read_curve(path, column, start)
        key = "rate_curve" if rate_csv is not None else "inflow_curve"
        return Release(reach, chainage, pol, start=start, **{key: curve})
    if args.duration_s is not None:
        if not args.duration_s > 0:
            raise CliError(f"--duration-s must be positive, got {args.duration_s}")
        return Release(reach, chainage, pol, rate_kg_s=args.mass_kg / args.duration_s,
                       duration_s=args.duration_s, start=start)
    return Release(reach, chainage, pol, mass_kg=args.mass_kg, start=start)


def read_curve(path: str, column: str, start: datetime | None) -> tuple[tuple[float, float], ...]:
    """:func:`hydrology.io.curves.read_curve`, its errors as one CLI line."""
    from hydrology.io.curves import CurveFormatError
    from hydrology.io.curves import read_curve as _read

    try:
        return _read(path, column, start)
    except CurveFormatError as err:
        raise CliError(str(err)) from err


def positive(kind: type = float, *, allow_zero: bool = False):
    """An argparse ``type`` that refuses a negative (or zero) number with one clear line."""
    def parse(text: str):
        try:
            v = kind(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from err
        if not (v >= 0 if allow_zero else v > 0):
            raise argparse.ArgumentTypeError(f"must be {'non-negative' if allow_zero else 'positive'}, got {text}")
        return v
    parse.__name__ = kind.__name__
    return parse


def lazy(module: str, name: str):
    """A command function imported only when the command runs (keeps ``--help`` fast)."""
    def run(args: argparse.Namespace, *rest: Any, **kw: Any) -> int:
        import importlib

        return getattr(importlib.import_module(module), name)(args, *rest, **kw)
    run.__name__ = name
    run.__qualname__ = f"lazy({module}.{name})"
    return run

"""The ``rivertrace`` command line, one module per command group.

=====================  =======================================================
module                 commands
=====================  =======================================================
:mod:`.network`        validate, import, export
:mod:`.forecast`       forecast, plot
:mod:`.incident`       detect, trace, replay, plan, cap
:mod:`.batch`          sweep, ensemble, calibrate
:mod:`.service`        serve, demo
=====================  =======================================================

Flags carry units in their names (``--chainage-m``, ``--mass-kg``, ``--decay-per-day``) and in their
help; values are converted to SI here, at the edge. Exit codes: 0 success, 1 the input has errors
(validation failed), 2 bad usage, unreadable input or an output that cannot be written. Errors are
one readable line per problem, never a traceback. Every module imports only the standard library at
import time (numpy, xarray and the science are imported when a command runs), so ``rivertrace
--help`` and ``rivertrace COMMAND --help`` start fast.

``server.cli`` was one module until issue 14; the names that other code imports from it
(``main``, ``build_parser``, ``demo_basin_path``, ``load_valid_network``, ``build_release``,
``read_any_document``, ``forecast_json``, ``CliError``) are re-exported here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hydrology.units import DISPLAY_TZ

from . import batch, forecast, incident, network, service
from .common import (
    CliError,
    build_release,
    check_outputs,
    demo_basin_path,
    load_valid_network,
    print_problems,
    read_any_document,
)
from .forecast import forecast_json, print_forecast_table

#: the DEFAULT display zone (Asia/Shanghai), kept for callers of ``server.cli.CHINA_TZ``; every output is
#: written in its network's own zone (``hydrology.timezones.network_zone``)
CHINA_TZ = DISPLAY_TZ

__all__ = ["CHINA_TZ", "CliError", "build_parser", "build_release", "demo_basin_path", "forecast_json", "load_valid_network",
           "main", "print_forecast_table", "read_any_document"]

GROUPS = (network, forecast, incident, batch, service)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rivertrace")
    except PackageNotFoundError:  # running from a source tree that was not installed
        return "unknown (not installed)"


class _VersionAction(argparse.Action):
    """``--version``, looking the version up only when asked (importlib.metadata costs start-up time)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: object, values: object,
                 option_string: str | None = None) -> None:
        print(f"rivertrace {_version()}")  # stdout, as argparse's own version action
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rivertrace",
        description="River pollution source-tracing and water-quality forecasting. Units are SI and named in "
                    "every flag (m, s, kg, m3/s, mg/L = g/m3); times are ISO 8601 with an offset.",
        epilog="NETWORK is a JSON network document (see README, 'Network format'), a GeoPackage or shapefile "
               "directory with the same field names, or a bundled demo basin: demo:ruxi, demo:puhe. "
               "Exit codes: 0 success, 1 the input has errors, 2 bad usage or unreadable input.",
    )
    p.add_argument("--version", action=_VersionAction)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from hydrology.exceptions import HydrologyError, NetworkFormatError, NetworkValidationError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_outputs(args)
        return int(args.func(args))
    except CliError as err:
        print(f"rivertrace {args.command}: {err}", file=sys.stderr)
        return err.code
    except (NetworkFormatError, NetworkValidationError) as err:
        print(f"rivertrace {args.command}: {err}", file=sys.stderr)
        print_problems(err.problems)
        return 1
    except HydrologyError as err:
        print(f"rivertrace {args.command}: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. piped into `head`
        return 0
    except OSError as err:  # a file that cannot be read or written: one line, never a traceback
        where = f"{err.filename}: " if getattr(err, "filename", None) else ""
        print(f"rivertrace {args.command}: {where}{err.strerror or err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

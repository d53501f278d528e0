"""``rivertrace sweep``, ``ensemble`` and ``calibrate``: the modellers' batch commands.

The parsers live here, light, so that ``rivertrace --help`` does not import numpy, scipy or xarray;
the work is :func:`hydrology.sweep.cmd_sweep`, :func:`hydrology.ensemble.cmd_ensemble` and
:func:`hydrology.calibration.cmd_calibrate`, imported when the command runs. The choices below
repeat names defined in those modules (``RECEPTOR_SETS``, ``WORST_CASES``, ``DEFAULT_CHUNK``,
``WORST_RELEASE_S``); ``tests/server/test_cli_package.py`` checks that they agree.
"""

from __future__ import annotations

import argparse
from typing import Any

from . import common
from .common import add_release_arguments, lazy, positive

#: ``hydrology.sweep.RECEPTOR_SETS`` keys
RECEPTOR_SETS = ("intakes", "stations", "all")
#: ``hydrology.sweep.WORST_CASES`` keys
WORST_CASES = ("max_load", "permit")
#: ``hydrology.sweep.DEFAULT_CHUNK`` [receptors per task]
DEFAULT_CHUNK = 50
#: ``hydrology.sweep.WORST_RELEASE_S`` [s]
WORST_RELEASE_S = 3600.0


def _factor_range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH (e.g. 0.5,2), got {text!r}") from err
    return lo, hi


def add_sweep_parser(sub: Any, load_network: Any = None) -> argparse.ArgumentParser:
    """Add ``rivertrace sweep``; ``load_network(path)`` parses and validates NETWORK (default: the CLI's)."""
    p = sub.add_parser("sweep", help="vulnerability matrix: every source x every receptor (Dask)",
                       description="Arrival, peak and duration above the standard at every receptor for a 1 kg "
                                   "release at every source and a worst-case release from each discharger's permit "
                                   "data; netCDF with dims (source, receptor). The worst-case columns need a "
                                   "threshold (the pollutant's standard, or --threshold-mg-l) and a worst-case rate "
                                   "for the pollutant in the network (--worst-case); the command warns when they "
                                   "cannot be computed, as with the default pollutant 'tracer'.")
    p.add_argument("network", metavar="NETWORK", help="network .json, .gpkg, shapefile directory or demo:NAME")
    p.add_argument("--sources", choices=("dischargers", "reaches"), default="dischargers",
                   help="release points: every registered discharger, or the upstream end of every reach "
                        "(default dischargers)")
    p.add_argument("--receptors", choices=RECEPTOR_SETS, default="intakes",
                   help="receptors: intakes, stations or all (default intakes)")
    p.add_argument("--pollutant", default="tracer", metavar="NAME",
                   help="GB 3838 item (COD, NH3-N, ...) or 'tracer' (default; no standard, so no worst-case columns)")
    p.add_argument("--decay-per-day", type=float, default=0.0, metavar="K", help="first-order decay [1/day] "
                   "(default 0)")
    p.add_argument("--worst-case", choices=WORST_CASES, default="max_load",
                   help="worst-case release rate [kg/s]: max_load = the discharger's max_load_kg_s for the "
                        "pollutant; permit = effluent_discharge_m3s x permit_limits_mg_l (default max_load)")
    p.add_argument("--worst-release-s", type=positive(), default=WORST_RELEASE_S, metavar="T",
                   help=f"worst-case release duration [s] (default {WORST_RELEASE_S:g})")
    p.add_argument("--threshold-mg-l", type=float, metavar="C",
                   help="threshold for every receptor [mg/L] (default: each receptor's standard)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address (tcp://host:8786), or threads or "
                   "synchronous; default in-process threads")
    p.add_argument("--chunk-size", type=positive(int), default=DEFAULT_CHUNK, metavar="N",
                   help=f"receptors per Dask task [-] (default {DEFAULT_CHUNK}; memory per task grows with N)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("-o", "--output", required=True, metavar="MATRIX.nc", help="netCDF to write (CF-1.8)")
    p.add_argument("--csv", metavar="PATH", help="also write the long table (one row per downstream pair)")
    p.set_defaults(func=lazy("hydrology.sweep", "cmd_sweep"), load_network=load_network or common.load_valid_network,
                   outputs={"output": "--output", "csv": "--csv"})
    return p


def add_ensemble_parser(sub: Any, load_network: Any = None) -> argparse.ArgumentParser:
    """Add ``rivertrace ensemble``; ``load_network(path)`` parses and validates NETWORK (default: the CLI's)."""
    p = sub.add_parser("ensemble", help="Monte Carlo forecast: P10/P50/P90 at every receptor",
                       description="Monte Carlo plume forecast over flow, velocity and dispersion uncertainty: "
                                   "quantiles of arrival, peak time and peak concentration at every downstream "
                                   "receptor and the probability of exceeding its standard (netCDF).")
    p.add_argument("network", metavar="NETWORK", help="network .json, .gpkg, shapefile directory or demo:NAME")
    add_release_arguments(p, start_help="release start, ISO 8601 with offset (recorded in the netCDF)",
                          pollutant_default="tracer")
    mc = p.add_argument_group("Monte Carlo")
    mc.add_argument("--members", type=positive(int), default=1000, metavar="N",
                    help="ensemble members [-] (default 1000)")
    mc.add_argument("--flow-cv", type=positive(allow_zero=True), default=0.2, metavar="CV",
                    help="coefficient of variation of discharge [-]: lognormal factor on every reach's flow "
                         "(default 0.2)")
    mc.add_argument("--velocity-cv", type=positive(allow_zero=True), default=0.0, metavar="CV",
                    help="coefficient of variation of velocity at a given flow [-] (default 0)")
    mc.add_argument("--dispersion-factor", type=_factor_range, default=(0.5, 2.0), metavar="LOW,HIGH",
                    help="log-uniform range of the factor on dispersion [-] (default 0.5,2)")
    mc.add_argument("--seed", type=int, default=0, metavar="N",
                    help="random seed [-] (integer, default 0; same seed, same members)")
    p.add_argument("--kinds", default="station,intake", help="receptor kinds, comma-separated (default station,intake)")
    p.add_argument("-o", "--output", required=True, metavar="ENS.nc", help="netCDF to write (CF-1.8)")
    p.set_defaults(func=lazy("hydrology.ensemble", "cmd_ensemble"), load_network=load_network or common.load_valid_network,
                   outputs={"output": "--output"})
    return p


def add_calibrate_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``rivertrace calibrate NETWORK TRACER.csv ... -o FITTED.json``."""
    c = sub.add_parser("calibrate", help="fit velocity, dispersion and storage to tracer breakthrough curves",
                       description="Fit per reach group velocity, dispersion (and storage) to tracer curves, OTIS-P "
                                   "style; print them with 95 % intervals and write the fitted network document.")
    c.add_argument("network", metavar="NETWORK", help="network .json, .gpkg, shapefile directory or demo:NAME")
    c.add_argument("tracer", metavar="TRACER.csv", help="station_id, time (ISO 8601) or time_s [s], "
                   "concentration_mg_l [mg/L]")
    c.add_argument("--reach", required=True, metavar="ID", help="reach id of the injection")
    c.add_argument("--chainage-m", required=True, type=float, metavar="X",
                   help="injection position: metres [m] from the reach's upstream end")
    c.add_argument("--mass-kg", type=positive(), metavar="M", help="tracer mass injected [kg] (or --inflow-curve)")
    c.add_argument("--duration-s", type=positive(), metavar="T",
                   help="injection duration [s] (constant rate M/T; default instantaneous)")
    c.add_argument("--inflow-curve", metavar="CSV", help="instead of a mass: the concentration observed at the "
                   "injection point or an upstream section (columns time_s [s] or time (ISO 8601), "
                   "concentration_mg_l [mg/L]), the upstream boundary of the fit")
    c.add_argument("--decay-per-day", type=positive(allow_zero=True), metavar="K",
                   help="first-order decay of the tracer [1/day] (default 0; rhodamine WT ~0.76)")
    c.add_argument("--background-mg-l", type=positive(allow_zero=True), default=0.0, metavar="C",
                   help="concentration the stations read without the tracer [mg/L] (default 0)")
    c.add_argument("--error-model", choices=("relative", "scaled", "absolute"), default="relative",
                   help="residuals: relative (noise ~ concentration; log residuals), scaled (each station / its "
                        "peak), absolute (in mg/L, OTIS-P's unweighted least squares) (default relative)")
    c.add_argument("--engine", choices=("analytic", "numerical"), default="analytic",
                   help="forward model: analytic (the exact transport kernel: storage, lakes, decay) or numerical "
                        "(finite volumes) (default analytic)")
    c.add_argument("--start", metavar="ISO8601", help="injection start with UTC offset (needed for ISO times)")
    c.add_argument("--groups", metavar="FILE.json", help='{"group": [reach ids], ...} (default: one group)')
    c.add_argument("--storage", action="store_true", help="also fit the storage-zone ratio beta [-] and exchange "
                   "rate alpha [1/s] per group")
    c.add_argument("-o", "--output", required=True, metavar="FITTED.json", help="fitted network document to write")
    c.set_defaults(func=lazy("hydrology.calibration", "cmd_calibrate"), read_document=common.read_any_document,
                   outputs={"output": "--output"})
    return c


def register(sub: argparse._SubParsersAction) -> None:
    add_sweep_parser(sub)
    add_ensemble_parser(sub)
    add_calibrate_parser(sub)

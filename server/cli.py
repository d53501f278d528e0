"""The ``rivertrace`` command line: validate, import, forecast, demo.

Flags carry units in their names (``--chainage-m``, ``--mass-kg``, ``--decay-per-day``); values are
converted to SI here, at the edge. Exit codes: 0 success, 1 the input has errors (validation
failed), 2 bad usage or unreadable input. Errors are one readable message per problem, never a
traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from hydrology.exceptions import HydrologyError, NetworkFormatError, NetworkValidationError
from hydrology.units import DISPLAY_TZ

CHINA_TZ = DISPLAY_TZ
DEMO_BASINS = ("ruxi", "puhe")


class CliError(Exception):
    """A usage or input error; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


# --------------------------------------------------------------------------- loading
def demo_basin_path(name: str) -> Path:
    """Path of a bundled demo basin document (``ruxi`` or ``puhe``)."""
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


def _print_problems(problems: Sequence[Any], stream: Any = sys.stderr) -> None:
    for p in problems:
        print(f"  {p}", file=stream)


# --------------------------------------------------------------------------- commands
def cmd_validate(args: argparse.Namespace) -> int:
    from hydrology.validate import validate_document

    doc = read_any_document(args.network, args.layer)
    net, problems = validate_document(doc)
    errors = [p for p in problems if p.severity == "error"]
    warnings = [p for p in problems if p.severity == "warning"]
    if args.json:
        print(json.dumps({"valid": not errors, "errors": [p.as_dict() for p in errors],
                          "warnings": [p.as_dict() for p in warnings]}, ensure_ascii=False, indent=1))
    else:
        if net is not None:
            print(f"{args.network}: {net!r}")
        print(f"{len(errors)} error(s), {len(warnings)} warning(s)")
        if errors:
            print("errors:")
            _print_problems(errors, sys.stdout)
        if warnings:
            print("warnings:")
            _print_problems(warnings, sys.stdout)
    return 1 if errors else 0


def cmd_import(args: argparse.Namespace) -> int:
    from hydrology.document import write_network
    from hydrology.validate import validate_document

    src = Path(args.source)
    if not src.exists():
        raise CliError(f"{src}: no such file or directory")
    kind = args.format
    if kind == "auto":
        kind = "nhdplus" if _looks_like_nhdplus(src) else "layers"
    if kind == "nhdplus":
        from hydrology.nhdplus import import_nhdplus

        doc, report = import_nhdplus(src, layer=args.layer)
        print(report, file=sys.stderr)
    else:
        from hydrology.gpkg import read_network_layers

        doc = read_network_layers(src)
    _net, problems = validate_document(doc)
    errors = [p for p in problems if p.severity == "error"]
    write_network(doc, args.output)
    print(f"wrote {args.output}: {len(doc.get('reaches', []))} reaches, {len(doc.get('stations', []))} stations; "
          f"{len(errors)} validation error(s), {len(problems) - len(errors)} warning(s)", file=sys.stderr)
    _print_problems(problems[:20])
    if len(problems) > 20:
        print(f"  ... and {len(problems) - 20} more (run `rivertrace validate {args.output}`)", file=sys.stderr)
    return 1 if errors else 0


def _looks_like_nhdplus(path: Path) -> bool:
    if path.is_dir() or path.suffix.lower() != ".gpkg":
        return False
    import pyogrio

    for name, _geom in pyogrio.list_layers(path):
        cols = {c.lower() for c in pyogrio.read_info(path, layer=name)["fields"]}
        if {"comid", "fromnode", "tonode"} <= cols:
            return True
    return False


def _parse_time(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        t = datetime.fromisoformat(text)
    except ValueError as err:
        raise CliError(f"--start {text!r}: not an ISO 8601 time (e.g. 2025-07-14T09:30:00+08:00)") from err
    if t.tzinfo is None:
        raise CliError(f"--start {text!r}: give a UTC offset (e.g. +08:00 or Z); times are never guessed")
    return t.astimezone(UTC)


def build_release(net: Any, args: argparse.Namespace):
    """A :class:`hydrology.forecast.Release` from CLI flags (converted to SI here)."""
    from hydrology.forecast import Release
    from hydrology.pollutants import pollutant
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
    if args.decay_per_day is not None and args.decay_per_day < 0:
        raise CliError(f"--decay-per-day must not be negative, got {args.decay_per_day}")
    pol = pollutant(args.pollutant, per_day_to_per_s(args.decay_per_day or 0.0))
    if args.duration_s is not None:
        if not args.duration_s > 0:
            raise CliError(f"--duration-s must be positive, got {args.duration_s}")
        return Release(reach, chainage, pol, rate_kg_s=args.mass_kg / args.duration_s,
                       duration_s=args.duration_s, start=_parse_time(args.start))
    return Release(reach, chainage, pol, mass_kg=args.mass_kg, start=_parse_time(args.start))


def _iso(start: datetime | None, seconds: float | None) -> str | None:
    if start is None or seconds is None:
        return None
    return (start + timedelta(seconds=seconds)).astimezone(CHINA_TZ).isoformat(timespec="minutes")


def forecast_json(net: Any, fc: Any) -> dict[str, Any]:
    """The JSON object of ``rivertrace forecast --json`` (mg/L = g/m3, seconds after release start)."""
    rel = fc.release
    out = {
        "network": net.name, "engine": fc.engine,
        "release": {"reach": rel.reach, "chainage_m": rel.chainage_m, "pollutant": rel.pollutant.name,
                    "behaviour": rel.pollutant.behaviour, "mass_kg": rel.total_mass_kg,
                    "duration_s": rel.duration_s, "decay_per_s": rel.pollutant.decay_per_s,
                    "start": rel.start.isoformat() if rel.start else None},
        "receptors": [],
    }
    for r in fc.receptors:
        out["receptors"].append({
            "id": r.id, "kind": r.kind, "reach": r.reach, "chainage_m": r.chainage_m,
            "distance_m": round(r.distance_m, 3), "arrival_s": _round(r.arrival_s), "peak_s": _round(r.peak_s),
            "peak_mg_l": r.peak_g_m3, "end_s": _round(r.end_s), "duration_above_s": _round(r.duration_above_s),
            "threshold_mg_l": r.threshold_g_m3, "threshold_basis": r.threshold_basis,
            "mean_travel_time_s": _round(r.mean_travel_time_s), "mass_fraction": r.mass_fraction,
            "discharge_m3s": r.discharge_m3s,
            "arrival_time": _iso(rel.start, r.arrival_s), "peak_time": _iso(rel.start, r.peak_s),
            "end_time": _iso(rel.start, r.end_s),
        })
    return out


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def _hm(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    m = round(seconds / 60)
    return f"{m // 60}h{m % 60:02d}"


def print_forecast_table(net: Any, fc: Any, stream: Any = sys.stdout) -> None:
    """Human-readable forecast: one line a receptor, times as h:mm after the release."""
    rel = fc.release
    print(f"{net.name}: {rel.pollutant.name} ({rel.pollutant.behaviour}), {rel.total_mass_kg:g} kg at reach "
          f"{rel.reach} +{rel.chainage_m:g} m, engine {fc.engine}", file=stream)
    print(f"{'receptor':<16}{'kind':<9}{'dist km':>8}{'arrive':>8}{'peak':>8}{'end':>8}{'peak mg/L':>11}  threshold",
          file=stream)
    for r in fc.receptors:
        thr = f"{r.threshold_g_m3:g} ({r.threshold_basis})" if r.threshold_g_m3 is not None else r.threshold_basis
        print(f"{r.id:<16}{r.kind:<9}{r.distance_m / 1000:>8.2f}{_hm(r.arrival_s):>8}{_hm(r.peak_s):>8}"
              f"{_hm(r.end_s):>8}{r.peak_g_m3:>11.4g}  {thr}", file=stream)


def run_forecast(net: Any, release: Any, args: argparse.Namespace):
    from hydrology.engines import run_engine

    # mg/L = g/m3: the threshold needs no conversion
    return run_engine(args.engine, net, release, kinds=tuple(args.kinds.split(",")),
                      threshold_g_m3=args.threshold_mg_l, wind_ms=args.wind_ms)


def cmd_forecast(args: argparse.Namespace) -> int:
    net = load_valid_network(args.network)
    release = build_release(net, args)
    fc, ds = run_forecast(net, release, args)
    if args.netcdf:
        ds.to_netcdf(args.netcdf, engine="h5netcdf")
        print(f"wrote curves to {args.netcdf}", file=sys.stderr)
    if args.json:
        print(json.dumps(forecast_json(net, fc), ensure_ascii=False, indent=1))
    else:
        print_forecast_table(net, fc)
    return 0


def _load_readings(net: Any, path: str):
    from tracer.readings import load_readings_csv

    if not Path(path).exists():
        raise CliError(f"{path}: no such file")
    res = load_readings_csv(path, known_stations=set(net.stations))
    if res.rejected:
        print(f"{len(res.rejected)} reading row problem(s) rejected, the rest kept:", file=sys.stderr)
        for r in res.rejected[:20]:
            print(f"  {r}", file=sys.stderr)
        if len(res.rejected) > 20:
            print(f"  ... and {len(res.rejected) - 20} more", file=sys.stderr)
    if len(res.readings) == 0:
        raise CliError(f"{path}: no usable readings", 1)
    return res


def _ts(t: Any) -> str | None:
    return None if t is None else t.isoformat()


def cmd_detect(args: argparse.Namespace) -> int:
    from tracer.detection import detect
    from tracer.trace import station_contexts

    net = load_valid_network(args.network)
    res = _load_readings(net, args.readings)
    det = detect(res.readings, station_contexts(net))
    doc = {
        "rejected": [{"row": r.row_number, "field": r.field, "value": r.value, "reason": r.reason} for r in res.rejected],
        "faults": [{"station": f.station_id, "parameter": f.parameter, "kind": f.kind, "start": _ts(f.start),
                    "end": _ts(f.end), "message": f.message} for f in det.faults],
        "anomalies": [{"station": a.station_id, "parameter": a.parameter, "rule": a.rule, "start": _ts(a.start),
                       "end": _ts(a.end), "detected_at": _ts(a.detected_at), "severity": a.severity,
                       "level": a.level, "value": a.value, "threshold": a.threshold, "message": a.message}
                      for a in det.anomalies],
        "incidents": [{"id": i.id, "stations": list(i.station_ids), "parameters": list(i.parameters),
                       "start": _ts(i.start), "end": _ts(i.end), "detected_at": _ts(i.detected_at),
                       "severity": i.severity, "level": i.level, "anomalies": len(i.anomalies)} for i in det.incidents],
    }
    if args.json:
        print(json.dumps(doc, ensure_ascii=False, indent=1, default=str))
    else:
        print(f"{len(det.incidents)} incident(s), {len(det.anomalies)} anomalies, {len(det.faults)} sensor fault(s)")
        for i in doc["incidents"]:
            print(f"  {i['id']}: {', '.join(i['stations'])} {', '.join(i['parameters'])} from {i['start']} ({i['level']})")
        for f in doc["faults"]:
            print(f"  fault {f['station']} {f['parameter']} {f['kind']}: {f['message']}")
    return 0


def _operations(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    from tracer.priors import OperationsEvidence

    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        return {k: OperationsEvidence(**v) for k, v in raw.items()}
    except (OSError, ValueError, TypeError) as err:
        raise CliError(f"--operations {path}: {err} (expected {{discharger id: {{production_on_treatment_off: "
                       "bool, effluent_exceedance: bool, violations: int}}}})") from err


def trace_json(res: Any) -> dict[str, Any]:
    """The JSON object of ``rivertrace trace --json``: candidates in rank order."""
    def iv(pair: Any) -> list[Any] | None:
        if pair is None:
            return None
        return [_ts(v) if isinstance(v, datetime) else v for v in pair]

    return {
        "station": res.station, "parameter": res.parameter, "model": res.model,
        "stations_saw": list(res.stations_saw), "stations_silent": list(res.stations_silent),
        "nearest_upstream_discharger": res.nearest_upstream_discharger, "notes": list(res.notes),
        "candidates": [{
            "id": c.id, "kind": c.kind, "probability": c.probability, "distance_m": round(c.distance_m, 1),
            "travel_time_s": round(c.travel_time_s, 1), "release_start": _ts(c.release_start),
            "release_start_interval": iv(c.release_start_interval), "mass_kg": c.mass_kg,
            "mass_kg_interval": iv(c.mass_kg_interval), "rate_kg_s": c.rate_kg_s,
            "rate_kg_s_interval": iv(c.rate_kg_s_interval), "evidence": c.evidence, "explanation": c.explanation,
        } for c in res.candidates],
    }


def cmd_trace(args: argparse.Namespace) -> int:
    from hydrology.oxygen_network import DOConditions
    from tracer.trace import trace

    net = load_valid_network(args.network)
    res = _load_readings(net, args.readings)
    out = trace(net, res.readings, args.station, args.parameter, operations=_operations(args.operations),
                horizon_s=args.horizon_h * 3600.0, do_conditions=DOConditions(temperature_c=args.temperature_c),
                release=None if args.release == "auto" else args.release)
    doc = trace_json(out)
    if args.json:
        print(json.dumps(doc, ensure_ascii=False, indent=1))
    else:
        print(f"{out.station} {out.parameter} ({out.model} model); saw: {', '.join(out.stations_saw) or '-'}; "
              f"silent: {', '.join(out.stations_silent) or '-'}")
        for rank, c in enumerate(doc["candidates"][:args.top], 1):
            size = f"{c['mass_kg']:.3g} kg" if c["mass_kg"] is not None else (
                f"{c['rate_kg_s']:.3g} kg/s" if c["rate_kg_s"] is not None else "-")
            print(f"{rank:>2}. {c['id']:<18} {c['kind']:<16} p={c['probability']:.3f}  {c['distance_m'] / 1000:6.2f} km "
                  f"{c['travel_time_s'] / 3600:6.2f} h  start {c['release_start'] or '-'}  {size}")
        print(f"nearest upstream discharger (baseline): {out.nearest_upstream_discharger}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from tracer.scenarios import puhe_replay, ruxi_replay

    rp = {"ruxi": ruxi_replay, "puhe": puhe_replay}[args.incident](seed=args.seed)
    f = rp.readings.frame.copy()
    f["time"] = f["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    f["unit"] = ["degC" if p == "temperature" else "mg/L" for p in f["parameter"]]
    f[["station_id", "parameter", "time", "value", "unit", "flag"]].to_csv(args.output, index=False)
    print(f"wrote {len(f)} readings to {args.output}: {rp.description}; anomaly at {rp.station} ({rp.parameter})",
          file=sys.stderr)
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from hydrology.oxygen_network import DOConditions
    from tracer.planner import PlanInput, Suspect, plan
    from tracer.policy import load_policy
    from tracer.trace import plan_input_from_trace, trace

    net = load_valid_network(args.network)
    policy = load_policy(args.policy)
    now = _parse_time(args.now) if args.now else None
    if args.readings:
        if not (args.station and args.parameter):
            raise CliError("with READINGS.csv give --station and --parameter (trace first, then plan)")
        res = _load_readings(net, args.readings)
        cond = DOConditions(temperature_c=args.temperature_c)
        traced = trace(net, res.readings, args.station, args.parameter, do_conditions=cond)
        inp = plan_input_from_trace(net, res.readings, traced, now=now, do_conditions=cond)
    else:
        if not (args.discharger and args.mass_kg and args.pollutant):
            raise CliError("give --discharger, --mass-kg and --pollutant (a known release), or READINGS.csv with "
                           "--station and --parameter")
        args.reach = args.chainage_m = None
        if args.start is None:
            raise CliError("give --start (when the release began, ISO 8601 with offset)")
        release = build_release(net, args)
        inp = PlanInput(f"{args.discharger}/{release.pollutant.name}/{args.start}", now or release.start,
                        (Suspect(args.discharger, 1.0, "given release"),), release)
    checklist = plan(net, inp, policy)
    if args.json:
        print(json.dumps(checklist.as_dict(), ensure_ascii=False, indent=1))
    else:
        print(checklist.markdown(args.lang))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    from server.app import serve
    from server.config import ConfigError, load_config

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config, db=args.db, port=args.port, host=args.host, hj212_port=args.hj212_port)
    except ConfigError as err:
        raise CliError(str(err)) from err
    return serve(config)


def cmd_demo(args: argparse.Namespace) -> int:
    from server.demo import run_demo

    return run_demo(lang=args.lang)


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rivertrace",
        description="River pollution source-tracing and water-quality forecasting. Units are SI and named in "
                    "every flag (m, s, kg, m3/s, mg/L = g/m3); times are ISO 8601 with an offset.",
        epilog="NETWORK is a JSON network document (see README, 'Network format'), a GeoPackage or shapefile "
               "directory with the same field names, or a bundled demo basin: demo:ruxi, demo:puhe.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    v = sub.add_parser("validate", help="check a network for errors (exit 1 if any) and warnings",
                       description="Check a network: cycles, dangling or duplicate ids, non-positive or NaN "
                                   "lengths/slopes/widths, features outside their reach, split fractions, "
                                   "disconnected parts, missing discharge. Each problem names element, id and field.")
    v.add_argument("network", metavar="NETWORK")
    v.add_argument("--layer", help="GeoPackage layer prefix (default: the network's own layer names)")
    v.add_argument("--json", action="store_true", help="machine-readable output")
    v.set_defaults(func=cmd_validate)

    i = sub.add_parser("import", help="import NHDPlus flowlines or network layers into a JSON network document",
                       description="Import an NHDPlusV2 flowline GeoPackage (QE_MA cfs -> m3/s, VE_MA ft/s -> m/s, "
                                   "LENGTHKM -> m; -9998/-9999 handled explicitly, gauges become stations) or "
                                   "GeoPackage/shapefile layers in the network's own field names.")
    i.add_argument("source", metavar="SOURCE", help="NHDPlus .gpkg, network .gpkg, or a shapefile directory")
    i.add_argument("-o", "--output", required=True, help="network document to write (.json)")
    i.add_argument("--format", choices=("auto", "nhdplus", "layers"), default="auto")
    i.add_argument("--layer", help="flowline layer name (NHDPlus; default NHDFlowline_Network or the only line layer)")
    i.set_defaults(func=cmd_import)

    f = sub.add_parser("forecast", help="forecast a plume from one release to every downstream receptor",
                       description="Forecast arrival (first time above the threshold), peak, and end (last time "
                                   "above) at every downstream station and intake. Times in seconds after the release "
                                   "start; concentrations in mg/L. The threshold is the receptor's GB 3838-2002 "
                                   "limit for the pollutant (station target class; class III for intakes) unless "
                                   "--threshold-mg-l is given; for 'tracer' (no standard) edges are at 1%% of the "
                                   "receptor's peak.")
    f.add_argument("network", metavar="NETWORK")
    where = f.add_argument_group("where (either a discharger, or a reach and chainage)")
    where.add_argument("--discharger", metavar="ID", help="release at this registered discharger")
    where.add_argument("--reach", metavar="ID", help="reach id of the release")
    where.add_argument("--chainage-m", type=float, metavar="X", help="metres from the reach's upstream end")
    what = f.add_argument_group("what")
    what.add_argument("--mass-kg", type=float, required=True, metavar="M",
                      help="mass released [kg]; instantaneous unless --duration-s is given")
    what.add_argument("--duration-s", type=float, metavar="T", help="release duration [s] (constant rate M/T)")
    what.add_argument("--pollutant", required=True, metavar="NAME",
                      help="GB 3838 item (COD, NH3-N, petroleum, TP, ...) or 'tracer' (conservative, no standard)")
    what.add_argument("--decay-per-day", type=float, metavar="K",
                      help="first-order decay rate [1/day] (default 0: conservative)")
    what.add_argument("--start", metavar="ISO8601", help="release start, e.g. 2025-07-14T09:30+08:00 (labels absolute times)")
    what.add_argument("--wind-ms", type=float, default=0.0, metavar="W",
                      help="along-stream 10 m wind [m/s] for floating pollutants (default 0)")
    how = f.add_argument_group("how")
    how.add_argument("--threshold-mg-l", type=float, metavar="C", help="arrival/end threshold [mg/L] for every receptor")
    how.add_argument("--engine", choices=("analytic", "numerical"), default="analytic",
                     help="analytic: moment chaining with exact closed forms (fast); numerical: finite-volume "
                          "solver on the network (full curves)")
    how.add_argument("--kinds", default="station,intake", help="receptor kinds, comma-separated "
                     "(station, intake, site, structure, discharger)")
    how.add_argument("--json", action="store_true", help="print one JSON object (receptors list)")
    how.add_argument("--netcdf", metavar="PATH", help="write the concentration curves (time x receptor) as CF netCDF")
    f.set_defaults(func=cmd_forecast)

    t = sub.add_parser("detect", help="find anomalies, sensor faults and incidents in station readings",
                       description="Detect water events (GB 3838 exceedance, persistence, N-day daily means, sudden "
                                   "change against a daily-cycle baseline, upstream-downstream increments) and label "
                                   "sensor faults. READINGS is a CSV with columns station_id, parameter, time "
                                   "(ISO 8601 with offset), value, unit (mg/L, ug/L, degC, m3/s...), flag.")
    t.add_argument("network", metavar="NETWORK")
    t.add_argument("readings", metavar="READINGS.csv")
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=cmd_detect)

    r = sub.add_parser("trace", help="rank the upstream sources of an anomaly",
                       description="Rank every registered discharger upstream of the station and an unregistered "
                                   "source on every upstream reach, with posterior probability, distance [m], travel "
                                   "time [s], fitted release start and mass [kg] (pulse) or rate [kg/s] (a continuous "
                                   "release still going on, or the steady DO model), and the evidence terms.")
    r.add_argument("network", metavar="NETWORK")
    r.add_argument("readings", metavar="READINGS.csv")
    r.add_argument("--station", required=True, help="station where the anomaly is seen")
    r.add_argument("--parameter", required=True, help="the anomalous item (petroleum, NH3-N, DO, ...)")
    r.add_argument("--horizon-h", type=float, default=72.0, help="travel-time horizon of the search [h] (default 72)")
    r.add_argument("--temperature-c", type=float, default=25.0, help="water temperature for the DO model [degC]")
    r.add_argument("--release", choices=("auto", "pulse", "continuous"), default="auto",
                   help="release model (not DO): a pulse (fit start and mass), a continuous release (start and "
                        "rate), or auto (default): continuous when the excess at the station rises to a plateau "
                        "that lasts to the end of the record")
    r.add_argument("--operations", metavar="JSON", help="power-meter / effluent-monitor evidence per discharger")
    r.add_argument("--top", type=int, default=10, help="candidates to print (text output)")
    r.add_argument("--json", action="store_true", help="print one JSON object (candidates in rank order)")
    r.set_defaults(func=cmd_trace)

    rp = sub.add_parser("replay", help="write the readings of a reference incident (model-generated) as CSV",
                        description="Synthesise the station readings of the Ruxi oil or Puhe DO incident on the "
                                    "bundled basins (seeded; see tracer/scenarios.py for the assumptions).")
    rp.add_argument("incident", choices=("ruxi", "puhe"))
    rp.add_argument("-o", "--output", required=True, help="CSV to write")
    rp.add_argument("--seed", type=int, default=0)
    rp.set_defaults(func=cmd_replay)

    pl = sub.add_parser("plan", help="the disposal checklist: actions, departments, deadlines",
                        description="Plan the response to a known release (--discharger, --mass-kg, --pollutant, --start) "
                                    "or to an anomaly in readings (READINGS.csv --station --parameter: trace first). "
                                    "Actions: halt_discharge, interception, dilution_release, intake_suspension, "
                                    "monitoring, notify; each with department, target, deadline, time window, priority, "
                                    "rationale with the numbers used, and status. Times are ISO 8601; the Markdown form "
                                    "shows Asia/Shanghai time.")
    pl.add_argument("network", metavar="NETWORK")
    pl.add_argument("readings", metavar="READINGS.csv", nargs="?")
    pl.add_argument("--station", help="anomaly station (with READINGS.csv)")
    pl.add_argument("--parameter", help="anomalous item (with READINGS.csv)")
    pl.add_argument("--discharger", metavar="ID", help="a known release at this discharger")
    pl.add_argument("--mass-kg", type=float, metavar="M", help="released mass [kg]")
    pl.add_argument("--duration-s", type=float, metavar="T", help="release duration [s] (constant rate M/T)")
    pl.add_argument("--pollutant", metavar="NAME", help="GB 3838 item or 'tracer'")
    pl.add_argument("--decay-per-day", type=float, metavar="K", help="first-order decay [1/day] (default 0)")
    pl.add_argument("--wind-ms", type=float, default=0.0, help=argparse.SUPPRESS)
    pl.add_argument("--start", metavar="ISO8601", help="release start (known release)")
    pl.add_argument("--now", metavar="ISO8601", help="when the plan is made (default: detection time or release start)")
    pl.add_argument("--temperature-c", type=float, default=25.0, help="water temperature for DO [degC]")
    pl.add_argument("--policy", metavar="JSON", help="policy overrides (margins [s], thresholds, roles)")
    form = pl.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="machine form (actions list)")
    form.add_argument("--markdown", action="store_true", help="human form (default)")
    pl.add_argument("--lang", choices=("zh", "en"), default="zh", help="language of the Markdown form (default zh)")
    pl.set_defaults(func=cmd_plan)

    from hydrology.gis_output import add_plot_parser

    add_plot_parser(sub, load_network=load_valid_network, build_release=build_release)

    from hydrology.calibration import add_calibrate_parser
    from hydrology.ensemble import add_ensemble_parser
    from hydrology.sweep import add_sweep_parser

    add_calibrate_parser(sub)
    add_sweep_parser(sub, load_network=load_valid_network)
    add_ensemble_parser(sub, load_network=load_valid_network)

    sv = sub.add_parser("serve", help="run the gRPC service",
                        description="Run the rivertrace gRPC service (network, monitoring; health checking and "
                                    "reflection, so grpcurl works). Embedded defaults: SQLite file rivertrace.db "
                                    "(WAL), 127.0.0.1:50051, open mode (no tokens; loopback only). See server/config.py "
                                    "for the TOML config (tokens with roles, TLS).")
    sv.add_argument("--config", metavar="FILE.toml")
    sv.add_argument("--db", metavar="PATH", help="SQLite file (default rivertrace.db)")
    sv.add_argument("--host", help="address to bind (default 127.0.0.1)")
    sv.add_argument("--port", type=int, help="port (default 50051; 0 picks a free one)")
    sv.add_argument("--hj212-port", type=int, metavar="N", help="also run the HJ 212 gateway for online monitors "
                    "on TCP port N (0 picks a free one); see [hj212] in server/config.py")
    sv.set_defaults(func=cmd_serve)

    d = sub.add_parser("demo", help="run the bundled Ruxi and Puhe incident basins end to end",
                       description="Forecast the two incidents of the design brief on the bundled demo basins and "
                                   "print what a duty officer would see.")
    d.add_argument("--lang", choices=("zh", "en", "both"), default="both")
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except CliError as err:
        print(f"rivertrace {args.command}: {err}", file=sys.stderr)
        return err.code
    except (NetworkFormatError, NetworkValidationError) as err:
        print(f"rivertrace {args.command}: {err}", file=sys.stderr)
        _print_problems(err.problems)
        return 1
    except HydrologyError as err:
        print(f"rivertrace {args.command}: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. piped into `head`
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

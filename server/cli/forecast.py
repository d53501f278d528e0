"""``rivertrace forecast`` and ``plot``: one release, every downstream receptor."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from functools import partial
from typing import Any

from . import common
from .common import add_release_arguments, build_release, lazy, load_valid_network


def _iso(start: Any, seconds: float | None, tz: Any) -> str | None:
    """ISO 8601 with the UTC offset of the network's zone ``tz``, to the minute."""
    if start is None or seconds is None:
        return None
    return (start + timedelta(seconds=seconds)).astimezone(tz).isoformat(timespec="minutes")


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def forecast_json(net: Any, fc: Any) -> dict[str, Any]:
    """The JSON object of ``rivertrace forecast --json`` (mg/L = g/m3, seconds after release start;
    clock times ISO 8601 with the UTC offset of the network's ``timezone``, which is named)."""
    from hydrology.timezones import network_zone

    rel = fc.release
    tz = network_zone(net)
    out: dict[str, Any] = {
        "network": net.name, "engine": fc.engine, "timezone": tz.key,
        "release": {"reach": rel.reach, "chainage_m": rel.chainage_m, "pollutant": rel.pollutant.name,
                    "behaviour": rel.pollutant.behaviour,
                    "kind": ("inflow_curve" if rel.is_boundary else "rate_curve" if rel.rate_curve is not None
                             else "pulse" if rel.mass_kg is not None else "box"),
                    "mass_kg": None if rel.is_boundary else rel.total_mass_kg,
                    "duration_s": rel.duration_s if rel.rate_curve is None else rel.active_s,
                    "decay_per_s": rel.pollutant.decay_per_s,
                    "start": _iso(rel.start, 0.0, tz) if rel.start else None},
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
            "arrival_time": _iso(rel.start, r.arrival_s, tz), "peak_time": _iso(rel.start, r.peak_s, tz),
            "end_time": _iso(rel.start, r.end_s, tz),
        })
    return out


def _hm(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    m = round(seconds / 60)
    return f"{m // 60}h{m % 60:02d}"


def print_forecast_table(net: Any, fc: Any, stream: Any = None) -> None:
    """Human-readable forecast: one line a receptor, times as h:mm after the release."""
    stream = stream or sys.stdout
    rel = fc.release
    amount = ("an observed inflow curve" if rel.is_boundary else
              f"{rel.total_mass_kg:g} kg" + (" (rate curve)" if rel.rate_curve is not None else ""))
    print(f"{net.name}: {rel.pollutant.name} ({rel.pollutant.behaviour}), {amount} at reach "
          f"{rel.reach} +{rel.chainage_m:g} m, engine {fc.engine}", file=stream)
    if rel.start is not None:
        from hydrology.timezones import local_time, network_zone

        tz = network_zone(net)
        print(f"release start {local_time(rel.start, tz)} ({tz.key}); times below are h:mm after it", file=stream)
    print(f"{'receptor':<16}{'kind':<9}{'dist km':>8}{'arrive':>8}{'peak':>8}{'end':>8}{'peak mg/L':>11}  threshold",
          file=stream)
    for r in fc.receptors:
        thr = f"{r.threshold_g_m3:g} ({r.threshold_basis})" if r.threshold_g_m3 is not None else r.threshold_basis
        print(f"{r.id:<16}{r.kind:<9}{r.distance_m / 1000:>8.2f}{_hm(r.arrival_s):>8}{_hm(r.peak_s):>8}"
              f"{_hm(r.end_s):>8}{r.peak_g_m3:>11.4g}  {thr}", file=stream)


def run_forecast(net: Any, release: Any, args: argparse.Namespace):
    from hydrology.transport.engines import run_engine

    # mg/L = g/m3: the threshold needs no conversion
    return run_engine(args.engine, net, release, kinds=tuple(k.strip() for k in args.kinds.split(",")),
                      threshold_g_m3=args.threshold_mg_l, wind_ms=args.wind_ms)


def cmd_forecast(args: argparse.Namespace) -> int:
    net = load_valid_network(args.network)
    release = build_release(net, args)
    fc, ds = run_forecast(net, release, args)
    if args.netcdf:
        from hydrology.io.netcdf import write_curves

        write_curves(net, ds, args.netcdf, start=release.start)
        print(f"wrote curves to {args.netcdf}", file=sys.stderr)
    bands = None
    if args.bands:
        if args.engine != "analytic":
            raise common.CliError("--bands: computed with the analytic engine (the exact kernel); drop --engine numerical")
        from hydrology.forecast_bands import receptor_bands

        bands = receptor_bands(net, release, threshold_g_m3=args.threshold_mg_l)
    if args.json:
        out = forecast_json(net, fc)
        if bands is not None:
            out["bands"] = bands_json(bands)
        print(json.dumps(out, ensure_ascii=False, indent=1))
    else:
        print_forecast_table(net, fc)
        if bands is not None:
            print_bands(bands)
    return 0


def bands_json(bands: Any) -> dict[str, Any]:
    """Quantile bands of ``forecast --bands`` (seconds after release start, mg/L), per receptor."""
    from hydrology.forecast_bands import suspension_window

    def q(d: dict[float, float | None], digits: int = 1) -> dict[str, float | None]:
        return {f"p{round(k * 100):02d}": None if v is None else round(v, digits) for k, v in d.items()}

    rec = {}
    for rid, b in bands.receptors.items():
        rec[rid] = {"kind": b.kind, "p_arrival": round(b.p_arrival, 4), "arrival_s": q(b.arrival_s),
                    "peak_s": q(b.peak_s), "peak_mg_l": q(b.peak_g_m3, 6), "end_s": q(b.end_s)}
        if b.kind == "intake":
            w = suspension_window(b)
            rec[rid]["suspension_window_s"] = None if w is None else [round(w[0], 1), None if w[1] is None else round(w[1], 1)]
    return {"flow_sd_ln": bands.flow_sd_ln, "dispersion_sd_ln": bands.dispersion_sd_ln,
            "quantiles": list(bands.quantiles), "receptors": rec}


def print_bands(bands: Any, stream: Any = None) -> None:
    """The bands as text: P10 / P50 / P90 of arrival, peak time and end (h:mm after the release)."""
    from hydrology.forecast_bands import suspension_window

    stream = stream or sys.stdout
    print(f"uncertainty (flow factor sd ln {bands.flow_sd_ln:.2f}, dispersion factor sd ln "
          f"{bands.dispersion_sd_ln:.2f}): P10 / P50 / P90", file=stream)
    for rid, b in bands.receptors.items():
        def t(d: dict[float, float | None]) -> str:
            return " / ".join(_hm(d[k]) for k in bands.quantiles)

        line = f"{rid:<16}arrive {t(b.arrival_s):<20} peak {t(b.peak_s):<20} end {t(b.end_s)}"
        if b.p_arrival < 0.995:
            line += f" P(arrives) {b.p_arrival:.2f}"
        w = suspension_window(b) if b.kind == "intake" else None
        if w is not None:
            line += f" suspend intake {_hm(w[0])} - {_hm(w[1])}"
        print(line, file=stream)


def add_forecast_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    f = sub.add_parser("forecast", help="forecast a plume from one release to every downstream receptor",
                       description="Forecast arrival (first time above the threshold), peak, and end (last time "
                                   "above) at every downstream station and intake. Times in seconds after the release "
                                   "start; concentrations in mg/L. The threshold is the receptor's GB 3838-2002 "
                                   "limit for the pollutant (station target class; class III for intakes) unless "
                                   "--threshold-mg-l is given; for 'tracer' (no standard) edges are at 1 % of the "
                                   "receptor's peak.")
    f.add_argument("network", metavar="NETWORK", help="network .json, .gpkg, shapefile directory or demo:NAME")
    add_release_arguments(f, start_help="release start, ISO 8601 with offset, e.g. 2025-07-14T09:30+08:00 "
                                        "(labels absolute times)", curves=True)
    how = f.add_argument_group("how")
    how.add_argument("--engine", choices=("analytic", "numerical"), default="analytic",
                     help="analytic: moment chaining with exact closed forms (fast); numerical: finite-volume "
                          "solver on the network (full curves)")
    how.add_argument("--kinds", default="station,intake", help="receptor kinds, comma-separated "
                     "(station, intake, site, structure, discharger; default station,intake)")
    how.add_argument("--json", action="store_true", help="print one JSON object (receptors list)")
    how.add_argument("--bands", action="store_true",
                     help="also P10/P50/P90 of arrival, peak and end at every receptor, from the spread of the flow "
                          "(lognormal, sd ln 0.25) and dispersion (sd ln ln 2) estimates, and each intake's "
                          "suspension window (P10 arrival - 30 min to P90 end); analytic engine")
    how.add_argument("--netcdf", metavar="PATH.nc", help="write the concentration curves [mg/L] (time x receptor) as "
                     "CF-1.8 netCDF (featureType timeSeries)")
    f.set_defaults(func=cmd_forecast, outputs={"netcdf": "--netcdf"})
    return f


def add_plot_parser(sub: argparse._SubParsersAction, *, load_network: Any = None,
                    build_release: Any = None) -> argparse.ArgumentParser:
    """Add ``rivertrace plot``; the work is :func:`hydrology.gis_output.cmd_plot` (imported when it runs)."""
    pp = sub.add_parser("plot", help="plume map with arrival isochrones, breakthrough curves, GeoPackage",
                        description="Draw the plume of one release (analytic engine): a map of the network with "
                                    "reaches coloured by leading-edge arrival time and labelled isochrones (--map), "
                                    "concentration curves at the receptors with the standard dashed (--curves), and "
                                    "a GeoPackage of reaches with arrival_s, peak_s, peak_mg_l plus the receptors "
                                    "for QGIS (--gpkg). Times in hours on the figures, seconds (and, with --start, "
                                    "datetimes) in the GeoPackage. Labels in Chinese or English (--lang).")
    pp.add_argument("network", metavar="NETWORK", help="network .json, .gpkg, shapefile directory or demo:NAME")
    add_release_arguments(pp, start_help="release start, ISO 8601 with offset (adds local clock times)")
    out = pp.add_argument_group("outputs (at least one)")
    out.add_argument("--map", metavar="PNG", help="isochrone map to write")
    out.add_argument("--curves", metavar="PNG", help="breakthrough curves to write")
    out.add_argument("--gpkg", metavar="GPKG", help="GeoPackage (layers reaches, receptors, release) to write")
    out.add_argument("--kinds", default="station,intake", help="receptor kinds, comma-separated (default station,intake)")
    out.add_argument("--receptors", metavar="IDS", help="receptor ids for the curves, comma-separated (default all)")
    out.add_argument("--isochrone-step-h", type=float, metavar="H", help="isochrone spacing [h] (default automatic)")
    out.add_argument("--title", help="map title (default: pollutant, mass and source)")
    out.add_argument("--lang", choices=("zh", "en"), default="en", help="language of titles, labels and legends "
                     "(default en; zh needs a CJK font, found or bundled: see README)")
    run = lazy("hydrology.gis_output", "cmd_plot")
    pp.set_defaults(func=partial(run, load_network=load_network or common.load_valid_network,
                                 build_release=build_release or common.build_release),
                    outputs={"map": "--map", "curves": "--curves", "gpkg": "--gpkg"})
    return pp


def register(sub: argparse._SubParsersAction) -> None:
    add_forecast_parser(sub)
    add_plot_parser(sub)

"""``rivertrace validate``, ``import`` and ``export``: the network document in and out."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .common import CliError, add_release_arguments, lazy, print_problems, read_any_document


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
            print_problems(errors, sys.stdout)
        if warnings:
            print("warnings:")
            print_problems(warnings, sys.stdout)
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

        doc, report = import_nhdplus(src, layer=args.layer, timezone=args.timezone)
        print(report, file=sys.stderr)
    else:
        from hydrology.gpkg import read_network_layers

        doc = read_network_layers(src)
        if args.timezone:  # checked with the rest of the document below
            doc["timezone"] = args.timezone
    _net, problems = validate_document(doc)
    errors = [p for p in problems if p.severity == "error"]
    write_network(doc, args.output)
    print(f"wrote {args.output}: {len(doc.get('reaches', []))} reaches, {len(doc.get('stations', []))} stations; "
          f"{len(errors)} validation error(s), {len(problems) - len(errors)} warning(s)", file=sys.stderr)
    print_problems(problems[:20])
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


def register(sub: argparse._SubParsersAction) -> None:
    v = sub.add_parser("validate", help="check a network for errors (exit 1 if any) and warnings",
                       description="Check a network: cycles, dangling or duplicate ids, non-positive or NaN "
                                   "lengths/slopes/widths, features outside their reach, split fractions, "
                                   "disconnected parts, missing discharge. Each problem names element, id and field.")
    v.add_argument("network", metavar="NETWORK", help="network .json, .gpkg, shapefile directory or demo:NAME")
    v.add_argument("--layer", help="GeoPackage layer prefix (default: the network's own layer names)")
    v.add_argument("--json", action="store_true", help="machine-readable output")
    v.set_defaults(func=cmd_validate)

    i = sub.add_parser("import", help="import NHDPlus flowlines or network layers into a JSON network document",
                       description="Import an NHDPlusV2 flowline GeoPackage (QE_MA cfs -> m3/s, VE_MA ft/s -> m/s, "
                                   "LENGTHKM -> m; -9998/-9999 handled explicitly, gauges become stations) or "
                                   "GeoPackage/shapefile layers in the network's own field names.")
    i.add_argument("source", metavar="SOURCE", help="NHDPlus .gpkg, network .gpkg, or a shapefile directory")
    i.add_argument("-o", "--output", required=True, metavar="NETWORK.json", help="network document to write (.json)")
    i.add_argument("--format", choices=("auto", "nhdplus", "layers"), default="auto",
                   help="input kind (default auto: NHDPlus when a layer has COMID, FromNode and ToNode)")
    i.add_argument("--layer", help="flowline layer name (NHDPlus; default NHDFlowline_Network or the only line layer)")
    i.add_argument("--timezone", metavar="ZONE", help="IANA time zone of the basin, written as the document's "
                   "'timezone' (e.g. America/New_York; NHDPlus has none; default for display: Asia/Shanghai)")
    i.set_defaults(func=cmd_import, outputs={"output": "--output"})

    e = sub.add_parser("export", help="write a network, and optionally a forecast, as GeoPackage and GeoJSON",
                       description="Write the network's layers (nodes, reaches, stations, dischargers, intakes, "
                                   "structures, sites, ...) for GIS. With release flags (--discharger or --reach/"
                                   "--chainage-m, --mass-kg, --pollutant) the plume forecast (analytic engine) is "
                                   "added: layers plume_reaches (arrival along every reach), plume_receptors and "
                                   "plume_release, with times in seconds after the release (*_s) and, with --start, "
                                   "as datetime fields (*_time, UTC); concentrations in mg/L (*_mg_l). GeoJSON is "
                                   "RFC 7946: lon/lat on WGS 84, one FeatureCollection with a 'layer' property.")
    e.add_argument("network", metavar="NETWORK", help="network .json, .gpkg, shapefile directory or demo:NAME")
    e.add_argument("--gpkg", metavar="PATH.gpkg", help="GeoPackage to write")
    e.add_argument("--geojson", metavar="PATH.geojson", help="GeoJSON FeatureCollection to write")
    e.add_argument("--kinds", default="station,intake", help="receptor kinds of the forecast, comma-separated "
                   "(default station,intake)")
    add_release_arguments(e, start_help="release start, ISO 8601 with offset (adds datetime fields)", optional=True)
    e.set_defaults(func=lazy("server.cli.export", "cmd_export"), outputs={"gpkg": "--gpkg", "geojson": "--geojson"})

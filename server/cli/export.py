"""``rivertrace export``: the network, and optionally a plume forecast, as GeoPackage and GeoJSON.

Imported only when the command runs (it needs geopandas). The network's layers are those of
:func:`hydrology.gpkg.network_layers` (the document's own field names, so a GeoPackage written here
reads back as the same network with ``rivertrace validate``); the forecast's are those of
:func:`hydrology.gis_output.plume_layers`, prefixed ``plume_``.
"""

from __future__ import annotations

import argparse
import sys

from .common import CliError, build_release, load_valid_network, read_any_document


def cmd_export(args: argparse.Namespace) -> int:
    from hydrology.document import network_from_document
    from hydrology.gis_output import PLUME_GEOMETRY, plume_layers
    from hydrology.gpkg import _GEOMETRY, network_layers
    from hydrology.io.layers import write_geojson, write_gpkg
    from hydrology.validate import require_valid

    if not (args.gpkg or args.geojson):
        raise CliError("nothing to write: give --gpkg PATH.gpkg and/or --geojson PATH.geojson")
    doc = read_any_document(args.network)
    net = require_valid(network_from_document(doc))
    layers = network_layers(doc)
    geometry = dict(_GEOMETRY)
    release_flags = (args.discharger, args.reach, args.chainage_m, args.mass_kg, args.pollutant)
    if any(v is not None for v in release_flags):
        if args.mass_kg is None or not args.pollutant:
            raise CliError("a forecast needs --mass-kg and --pollutant besides --discharger or --reach/--chainage-m")
        from hydrology.transport.analytic import forecast

        fc = forecast(net, build_release(net, args), kinds=tuple(k.strip() for k in args.kinds.split(",")),
                      threshold_g_m3=args.threshold_mg_l, wind_ms=args.wind_ms)  # mg/L = g/m3
        layers.update(plume_layers(net, fc, wind_ms=args.wind_ms, prefix="plume_"))
        geometry.update({f"plume_{k}": v for k, v in PLUME_GEOMETRY.items()})
    if args.gpkg:
        write_gpkg(layers, args.gpkg, geometry_types=geometry)
        print(f"wrote GeoPackage {args.gpkg}: layers {', '.join(layers)}", file=sys.stderr)
    if args.geojson:
        write_geojson(layers, args.geojson, name=net.name or "")
        print(f"wrote GeoJSON {args.geojson} (WGS 84 lon/lat)", file=sys.stderr)
    return 0


__all__ = ["cmd_export", "load_valid_network"]

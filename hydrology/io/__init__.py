"""Writers of the files that other tools open: CF netCDF (:mod:`.netcdf`) and GeoJSON (:mod:`.geojson`).

The GeoPackage writers are still :mod:`hydrology.gpkg` (network layers) and
:mod:`hydrology.gis_output` (plume layers); they move here as that part is touched.
"""

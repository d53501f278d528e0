"""A small network built for the separation tests: two food plants on one 6 km stretch (R1) with no
station between them, a control station above both and one station 11 km below; a bridge on R2.

Readings: 200 kg COD released by P-A over 30 min, from the finite-volume engine (attribution uses the
transport kernel: no inverse crime), on a 6 mg/L background with 5 % multiplicative noise, every 5 min.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from hydrology.document import network_from_document
from hydrology.network import RiverNetwork
from hydrology.pollutants import pollutant
from hydrology.transport.analytic import Release
from hydrology.transport.numerical import simulate
from tracer.readings import Readings, readings_from_frame

RELEASE_START = datetime(2025, 6, 1, 2, 0, tzinfo=UTC)
MASS_KG = 200.0
DURATION_S = 1800.0


def _reach(i: int, a: str, b: str, length: float) -> dict[str, Any]:
    return {"id": f"R{i}", "from_node": a, "to_node": b, "length_m": length, "slope": 0.001, "manning_n": 0.035,
            "bottom_width_m": 15.0, "side_slope": 2.0}


def _plant(pid: str, reach: str, x: float) -> dict[str, Any]:
    return {"id": pid, "name": f"food plant {pid}", "reach": reach, "chainage_m": x, "kind": "food_processing",
            "pollutants": ["COD"], "effluent_discharge_m3s": 0.01, "max_load_kg_s": {"COD": 1.0}}


DOC: dict[str, Any] = {
    "format": "rivertrace-network", "version": 1, "name": "two plants on one stretch",
    "nodes": [{"id": f"N{i}", "x": 0.0, "y": 0.01 * i} for i in range(4)],
    "reaches": [_reach(1, "N0", "N1", 6000.0), _reach(2, "N1", "N2", 4000.0), _reach(3, "N2", "N3", 4000.0)],
    "inflows": [{"node": "N0", "discharge_m3s": 5.0}],
    "stations": [{"id": "S-UP", "reach": "R1", "chainage_m": 200.0, "target_class": "III", "parameters": ["COD"]},
                 {"id": "S-DOWN", "reach": "R3", "chainage_m": 3000.0, "target_class": "III", "parameters": ["COD"]}],
    "dischargers": [_plant("P-A", "R1", 1500.0), _plant("P-B", "R1", 4000.0)],
    "sites": [{"id": "BR-1", "name": "village bridge", "reach": "R2", "chainage_m": 2000.0, "kind": "bridge",
               "build_time_s": 3600.0}],
}


def network(extra_sites: list[dict[str, Any]] | None = None) -> RiverNetwork:
    doc = copy.deepcopy(DOC)
    doc["sites"] += extra_sites or []
    return network_from_document(doc)


def readings(net: RiverNetwork) -> Readings:
    rel = Release("R1", 1500.0, pollutant("COD"), rate_kg_s=MASS_KG / DURATION_S, duration_s=DURATION_S,
                  start=RELEASE_START)
    ds = simulate(net, rel, t_end_s=12 * 3600.0, kinds=("station",), record_every_s=300.0)
    t = np.arange(-72, 12 * 12 + 1) * 300.0
    rng = np.random.default_rng(3)
    rows = []
    for sid in net.stations:
        plume = (np.interp(t, ds["time"].values.astype(float), ds["concentration"].sel(receptor=sid).values, left=0.0)
                 if sid in ds["receptor"].values else np.zeros(t.size))
        v = (6.0 + plume) * (1 + 0.05 * rng.standard_normal(t.size))
        rows += [(sid, "COD", (RELEASE_START + timedelta(seconds=float(x))).isoformat(), float(y), "mg/L")
                 for x, y in zip(t, v)]
    res = readings_from_frame(pd.DataFrame(rows, columns=["station_id", "parameter", "time", "value", "unit"]))
    assert not res.rejected
    return res.readings

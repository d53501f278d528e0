"""Regenerate tests/data/tracer/ruxi_dye.csv (see tests/data/README.md)."""
from datetime import datetime, timedelta

import numpy as np

from hydrology.pollutants import Pollutant
from hydrology.transport.analytic import Release
from hydrology.transport.engines import run_engine
from server.cli import load_valid_network

start = datetime.fromisoformat("2025-05-01T08:00:00+08:00")
net = load_valid_network("demo:ruxi")
fc, ds = run_engine("numerical", net, Release("RX-R03", 0.0, Pollutant("tracer"), mass_kg=5.0, start=start),
                    kinds=("station",))
rng = np.random.default_rng(0)
t = np.asarray(ds["time"].values, float)
rows = ["station_id,time,concentration_mg_l"]
for j, sid in enumerate(ds["receptor"].values):
    c = np.asarray(ds["concentration"].values[:, j], float)
    grid = np.arange(0.0, t[-1], 300.0)  # a sample every 5 minutes
    ci = np.interp(grid, t, c)
    keep = ci >= 0.01 * ci.max()
    noisy = ci * (1 + 0.02 * rng.standard_normal(ci.size))  # 2 % multiplicative sensor noise
    for s, v in zip(grid[keep], noisy[keep]):
        rows.append(f"{sid},{(start + timedelta(seconds=float(s))).isoformat()},{v:.5f}")
with open("tests/data/tracer/ruxi_dye.csv", "w", encoding="utf-8") as fh:
    fh.write("\n".join(rows) + "\n")
print(len(rows) - 1, "rows")

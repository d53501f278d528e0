"""The network and runs of the numerical engine's grid and time-step refinement study.

Shared by the fast check of the defaults (tests/hydrology/test_numerical_convergence.py) and the full
study (tests/bench/test_bench_numerical_convergence.py, which writes the table).
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from hydrology.pollutants import Pollutant
from hydrology.transport.analytic import Release, forecast
from hydrology.transport.numerical import simulate, summarize

TRAP = {"slope": 5e-4, "manning_n": 0.035, "side_slope": 2.0}
TRACER = Pollutant("tracer")


def study_doc() -> dict:
    """Two confluences, a storage reach and a fully mixed lake.

    Main stem M1 (5 km) meets tributary T1 (4 km) at N2; M2 (6 km) has an OTIS storage zone
    (beta 0.3, alpha 1e-4 /s: a mean delay of 30 % and a long tail); LK is a lake, 1.5 km with
    residence time 3 h (velocity 0.139 m/s stated, as NHDPlus states TOTMA); M3 (4 km) meets
    tributary T2 (3 km) at N5; M4 (6 km) to the outlet. Manning trapezoids elsewhere, dispersion
    from the network's default estimator. Stations just below both confluences (50 m), in the
    storage reach, in the lake, below the lake, 500 m below the spill, and an intake near the outlet.
    """
    reaches = [
        {"id": "M1", "from_node": "N1", "to_node": "N2", "length_m": 5000.0, "bottom_width_m": 12.0, **TRAP},
        {"id": "T1", "from_node": "NT1", "to_node": "N2", "length_m": 4000.0, "bottom_width_m": 8.0, **TRAP},
        {"id": "M2", "from_node": "N2", "to_node": "N3", "length_m": 6000.0, "bottom_width_m": 16.0,
         "storage_ratio": 0.3, "storage_exchange_per_s": 1e-4, **TRAP},
        {"id": "LK", "from_node": "N3", "to_node": "N4", "length_m": 1500.0, "velocity_ms": 1500.0 / 10800.0,
         "dispersion_m2s": 0.5 * 1500.0 ** 2 / 10800.0, "fully_mixed": True, "bottom_width_m": 200.0, **TRAP},
        {"id": "M3", "from_node": "N4", "to_node": "N5", "length_m": 4000.0, "bottom_width_m": 16.0, **TRAP},
        {"id": "T2", "from_node": "NT2", "to_node": "N5", "length_m": 3000.0, "bottom_width_m": 8.0, **TRAP},
        {"id": "M4", "from_node": "N5", "to_node": "N6", "length_m": 6000.0, "bottom_width_m": 20.0, **TRAP},
    ]
    return {
        "name": "numerical convergence study",
        "nodes": [{"id": n} for n in ("N1", "NT1", "N2", "N3", "N4", "NT2", "N5", "N6")],
        "reaches": reaches,
        "inflows": [{"node": "N1", "discharge_m3s": 5.0}, {"node": "NT1", "discharge_m3s": 3.0},
                    {"node": "NT2", "discharge_m3s": 4.0}],
        "stations": [{"id": "S-near", "reach": "M1", "chainage_m": 1500.0},
                     {"id": "S-M1", "reach": "M1", "chainage_m": 3000.0},
                     {"id": "S-conf1", "reach": "M2", "chainage_m": 50.0},
                     {"id": "S-storage", "reach": "M2", "chainage_m": 4000.0},
                     {"id": "S-lake", "reach": "LK", "chainage_m": 750.0},
                     {"id": "S-below-lake", "reach": "M3", "chainage_m": 1000.0},
                     {"id": "S-conf2", "reach": "M4", "chainage_m": 50.0}],
        "intakes": [{"id": "I-out", "reach": "M4", "chainage_m": 5500.0, "population": 50000}],
    }


#: the study's releases: a 20-minute spill on the main stem, a pulse on a tributary 550 m above
#: the first confluence's station (near-field receptors are where a grid is tested hardest)
RELEASES = {
    "spill-M1": {"reach": "M1", "chainage_m": 1000.0, "rate_kg_s": 10.0 / 1200.0, "duration_s": 1200.0},
    "pulse-T1": {"reach": "T1", "chainage_m": 3500.0, "mass_kg": 10.0},
}


def run_end_s(net, release: Release) -> float:
    """Run length [s]: past the analytic engine's latest receptor end (plus its peak again)."""
    ana = forecast(net, release)
    return float(max((r.end_s or r.peak_s) + r.peak_s for r in ana.receptors))


def peaks(net, release: Release, t_end_s: float, record_every_s: float, **kw) -> tuple[dict, float, dict]:
    """Peak time [s] and concentration [g/m3] per receptor of one numerical run, its wall time [s]
    and the run's grid attributes."""
    t0 = time.perf_counter()
    ds = simulate(net, release, t_end_s=t_end_s, record_every_s=record_every_s, **kw)
    el = time.perf_counter() - t0
    with warnings.catch_warnings():  # only the peaks are used: a tail that outlasts the run does not matter
        warnings.simplefilter("ignore", RuntimeWarning)
        out = {r.id: (r.peak_s, r.peak_g_m3) for r in summarize(ds)}
    return out, el, {"n_cells": int(ds.attrs["n_cells"]), "dt_s": float(ds.attrs["dt_s"])}


def deviations(run: dict, ref: dict) -> dict:
    """Relative deviation of peak time and peak concentration per receptor: run / ref - 1."""
    return {k: (run[k][0] / ref[k][0] - 1.0, run[k][1] / ref[k][1] - 1.0) for k in ref}


def richardson(f1: float, f2: float, f4: float) -> tuple[float, float]:
    """Observed order p and extrapolated value from three levels refined by 2 (Richardson)."""
    d1, d2 = f1 - f2, f2 - f4
    if d1 == 0 or d2 == 0 or d1 / d2 <= 0:
        return float("nan"), f4
    p = float(np.log2(d1 / d2))
    return p, f4 + d2 / (2.0 ** p - 1.0) if p > 0 else f4

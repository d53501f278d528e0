"""Grid and time-step refinement study of the numerical engine (issue 10, part 3).

On the study network of tests/hydrology/convergence_cases.py (two confluences, an OTIS storage
reach, a fully mixed lake; a 20-minute spill on the main stem and a pulse on a tributary 550 m
above a confluence station), the engine runs at its default grid and time step and at cells and
steps 2, 4 and 8 times finer (``refine``; dx and dt halved together at the default Courant number
0.9), then at the default grid with the Courant number halved three times. At every receptor: peak
time and peak concentration against the finest run, the observed order of convergence and the
Richardson extrapolation from the three finest levels, and the wall time of each run. On the two
demo basins every discharger releases the same spill, at the default and at refine=4.

Writes tests/bench/results/numerical_convergence.json and prints the markdown table of
hydrology/transport/NUMERICAL_CONVERGENCE.md.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hydrology"))  # the shared study cases

from convergence_cases import (
    RELEASES,
    TRACER,
    deviations,
    peaks,
    richardson,
    run_end_s,
    study_doc,
)

from hydrology.document import load_network, network_from_document
from hydrology.transport.analytic import Release
from hydrology.transport.numerical import COURANT_MAX

RESULTS = Path(__file__).parent / "results"
DEMO = Path(__file__).resolve().parents[2] / "hydrology" / "data" / "demo"
GRID_LEVELS = (1.0, 2.0, 4.0, 8.0)
COURANTS = (COURANT_MAX, COURANT_MAX / 2, COURANT_MAX / 4, COURANT_MAX / 8)
#: the brief's criterion for the defaults against the engine's own refined solution
PEAK_TIME_RTOL, PEAK_CONC_RTOL = 0.01, 0.02


def _study_release(name: str) -> dict:
    net = network_from_document(study_doc())
    rel = Release(pollutant=TRACER, **RELEASES[name])
    t_end = run_end_s(net, rel)
    grid = {lv: peaks(net, rel, t_end, None, refine=lv) for lv in GRID_LEVELS}
    steps = {c: peaks(net, rel, t_end, None, courant=c) for c in COURANTS}
    # the cost of the defaults: the median of three more runs (the machine is shared and noisy)
    default_s = sorted(peaks(net, rel, t_end, None)[1] for _ in range(3))[1]
    finest = grid[GRID_LEVELS[-1]][0]
    receptors = {}
    for k in finest:
        row: dict = {"finest_peak_s": finest[k][0], "finest_peak_g_m3": finest[k][1]}
        for lv in GRID_LEVELS:
            d = deviations(grid[lv][0], finest)[k]
            row[f"refine_{lv:g}"] = {"dt_peak": d[0], "dc_peak": d[1]}
        for c in COURANTS:
            d = deviations(steps[c][0], finest)[k]
            row[f"courant_{c:g}"] = {"dt_peak": d[0], "dc_peak": d[1]}
        for i, what in ((0, "time"), (1, "conc")):
            f1, f2, f4 = (grid[lv][0][k][i] for lv in GRID_LEVELS[1:])
            p, extra = richardson(f1, f2, f4)
            row[f"richardson_{what}"] = {"order": p, "extrapolated": extra,
                                         "finest_vs_extrapolated": finest[k][i] / extra - 1.0,
                                         "default_vs_extrapolated": grid[1.0][0][k][i] / extra - 1.0}
        receptors[k] = row
    return {"release": RELEASES[name], "t_end_s": t_end, "receptors": receptors, "default_median_s": default_s,
            "runs": {**{f"refine_{lv:g}": {"seconds": grid[lv][1], **grid[lv][2]} for lv in GRID_LEVELS},
                     **{f"courant_{c:g}": {"seconds": steps[c][1], **steps[c][2]} for c in COURANTS}}}


def _demo() -> dict:
    out = {}
    for basin in ("ruxi", "puhe"):
        net = load_network(DEMO / f"{basin}.json")
        for f in net.iter_features(("discharger",)):
            rel = Release(f.reach, f.chainage_m, TRACER, rate_kg_s=10.0 / 1200.0, duration_s=1200.0)
            t_end = run_end_s(net, rel)
            a, _, ga = peaks(net, rel, t_end, None)
            ta = sorted(peaks(net, rel, t_end, None)[1] for _ in range(3))[1]  # median of three
            b, tb, gb = peaks(net, rel, t_end, None, refine=4.0)
            out[f"{basin}:{f.id}"] = {"default": {"seconds": ta, **ga}, "refine_4": {"seconds": tb, **gb},
                                      "receptors": {k: {"dt_peak": v[0], "dc_peak": v[1]}
                                                    for k, v in deviations(a, b).items()}}
    return out


def _markdown(study: dict, demo: dict) -> str:
    lines = []
    for name, s in study.items():
        lines += [(f"**{name}** (run length {s['t_end_s'] / 3600:.1f} h): deviation of peak time / peak concentration "
                   "from the finest run (refine 8), per receptor"), "",
                  ("| receptor | finest peak [h] | finest peak [g/m3] | default | refine 2 | refine 4 | "
                   "Courant 0.45 | Courant 0.225 | order (t / c) | refine 8 vs Richardson (t / c) |"),
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for k, r in s["receptors"].items():
            def pair(key: str, r: dict = r) -> str:
                return f"{100 * r[key]['dt_peak']:+.2f} / {100 * r[key]['dc_peak']:+.2f} %"
            rt, rc = r["richardson_time"], r["richardson_conc"]
            lines.append(f"| {k} | {r['finest_peak_s'] / 3600:.3f} | {r['finest_peak_g_m3']:.4g} | "
                         f"{pair('refine_1')} | "
                         f"{pair('refine_2')} | {pair('refine_4')} | {pair(f'courant_{COURANT_MAX / 2:g}')} | "
                         f"{pair(f'courant_{COURANT_MAX / 4:g}')} | {rt['order']:.1f} / {rc['order']:.1f} | "
                         f"{100 * rt['finest_vs_extrapolated']:+.3f} / "
                         f"{100 * rc['finest_vs_extrapolated']:+.3f} % |")
        lines += ["", (f"Default run: median of three {s['default_median_s']:.2f} s. "
                       "Single runs (noisy, shared machine):"), "",
                  "| run | cells | dt [s] | seconds |", "|---|---|---|---|"]
        for run, v in s["runs"].items():
            lines.append(f"| {run} | {v['n_cells']} | {v['dt_s']:.1f} | {v['seconds']:.2f} |")
        lines.append("")
    lines += ["**Demo basins**: a 20-minute spill at every discharger; default against refine 4", "",
              ("| release | receptors | max abs dev. peak time | max abs dev. peak conc. "
               "| seconds default (median of 3) / refine 4 |"),
              "|---|---|---|---|---|"]
    for k, v in demo.items():
        rs = v["receptors"].values()
        lines.append(f"| {k} | {len(v['receptors'])} | {100 * max(abs(r['dt_peak']) for r in rs):.2f} % | "
                     f"{100 * max(abs(r['dc_peak']) for r in rs):.2f} % | "
                     f"{v['default']['seconds']:.2f} / {v['refine_4']['seconds']:.2f} |")
    return "\n".join(lines) + "\n"


@pytest.mark.bench
def test_numerical_convergence_study():
    t0 = time.perf_counter()
    study = {name: _study_release(name) for name in RELEASES}
    demo = _demo()
    table = _markdown(study, demo)
    RESULTS.mkdir(exist_ok=True)
    record = {"benchmark": "numerical_convergence", "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
              "study_seconds": time.perf_counter() - t0, "study": study, "demo": demo, "table_md": table}
    (RESULTS / "numerical_convergence.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print("\n" + table)
    for s in study.values():
        for k, r in s["receptors"].items():
            # the defaults within the brief's budget of the finest run, at every receptor
            assert abs(r["refine_1"]["dt_peak"]) < PEAK_TIME_RTOL, (k, r)
            assert abs(r["refine_1"]["dc_peak"]) < PEAK_CONC_RTOL, (k, r)
    for rel, v in demo.items():
        for k, r in v["receptors"].items():
            assert abs(r["dt_peak"]) < PEAK_TIME_RTOL and abs(r["dc_peak"]) < PEAK_CONC_RTOL, (rel, k, r)

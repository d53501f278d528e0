"""The two transport engines at every receptor of the four NHDPlus imports and both demo basins.

Issue 10: "the engines within 1 % peak time and 2 % peak concentration at every receptor of the four
NHDPlus imports (lakes included) and both demo basins". The analytic engine (the Laplace-domain
kernel) is exact for the linear problem under its junction assumption; the numerical engine runs at
its defaults. Releases and networks: tests/hydrology/engine_cases.py (20-minute spills from
headwaters covering every receptor; on the demo basins from every discharger; lake flowlines are
fully mixed tanks). Slow (Walker's lakes hold water for weeks: ~10^5 steps), hence a benchmark.
Receptors whose analytic peak comes after engine_cases.MAX_RUN_S (30 days; lakes on the
sample_natseamless and Petapsco imports hold water for months to years) are not compared: they are
counted as skipped in the results, with the earliest such peak, and the test does not claim them.
Writes tests/bench/results/engine_comparison.json.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hydrology"))  # the shared cases

from engine_cases import DEMO, NHDPLUS, compare, network, releases

RESULTS = Path(__file__).parent / "results"
#: the issue's criterion, not loosened: the table says where it fails and the report why
PEAK_TIME_RTOL, PEAK_CONC_RTOL = 0.01, 0.02


@pytest.mark.bench
def test_engines_agree_at_every_receptor():
    per_network, rows_all = {}, []
    for name in (*NHDPLUS, *DEMO):
        net = network(name)
        rows, t_ana, t_num = [], [], []
        for rel in releases(name, net):
            r, ta, tn = compare(net, rel)
            rows += r
            t_ana.append(ta)
            t_num.append(tn)
        done = [x for x in rows if not x["skipped"]]
        worst_t = max(done, key=lambda x: abs(x["dt_peak"]))
        worst_c = max(done, key=lambda x: abs(x["dc_peak"]))
        per_network[name] = {
            "releases": len(t_num), "receptor_rows": len(rows), "compared": len(done),
            "lake_receptor_rows": sum(x["lake"] for x in done),
            "skipped_beyond_max_run": len(rows) - len(done),
            "earliest_skipped_peak_h": min([x["analytic_peak_s"] / 3600 for x in rows if x["skipped"]], default=None),
            "max_abs_dt_peak": abs(worst_t["dt_peak"]), "at_t": worst_t["receptor"],
            "max_abs_dc_peak": abs(worst_c["dc_peak"]), "at_c": worst_c["receptor"],
            "analytic_seconds": sum(t_ana), "numerical_seconds": sum(t_num)}
        rows_all += [{"network": name, **x} for x in rows]
    RESULTS.mkdir(exist_ok=True)
    bad = [x for x in rows_all if not x["skipped"]
           and (abs(x["dt_peak"]) >= PEAK_TIME_RTOL or abs(x["dc_peak"]) >= PEAK_CONC_RTOL)]
    # JSON has no infinity: an analytic peak at t = 0 (infinite relative deviation) is written as null
    for x in [*rows_all, *per_network.values()]:
        for key in ("dt_peak", "dc_peak", "max_abs_dt_peak", "max_abs_dc_peak"):
            if key in x and not math.isfinite(x[key]):
                x[key], x["analytic_peak_at_t0"] = None, True
    record = {"benchmark": "engine_comparison", "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
              "networks": per_network, "rows": rows_all}
    (RESULTS / "engine_comparison.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print("\n" + json.dumps(per_network, indent=1))
    assert not bad, [(x["network"], x["receptor"], x["release_reach"], x["dt_peak"], x["dc_peak"]) for x in bad]

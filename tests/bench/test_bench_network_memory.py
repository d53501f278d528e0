"""Issue 13, "Scale": what loading a big network document costs in CPU and resident memory.

Each measurement runs in a fresh subprocess so that resident memory is that of one load alone:
RSS after imports, RSS kept after the load (network alive, document text freed, ``gc.collect``)
and the peak (``VmHWM``; not ``ru_maxrss``, which a process started by ``subprocess`` (vfork + exec)
inherits from the parent's high-water mark: the pytest process that generated the 1M document, so
peaks below it read as it); then the first use that every trace and forecast makes (topological
order, steady discharge, steady reach state) and the RSS kept after it. ``before`` loads with the
hydrology package of commit 8002823 (an object per reach, dicts of lists; ``git archive 8002823
hydrology`` extracted to a temporary directory, first on ``sys.path``);
``after`` with the working tree. Not in CI:
``python -m pytest -m bench -s tests/bench/test_bench_network_memory.py``. Results:
``tests/bench/results/network_memory.json``. Set ``RIVERTRACE_BENCH_SIZES=100000`` to skip 1M.
"""

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from bench_util import write_results

from hydrology.synthetic import generate_network, write_network

pytestmark = pytest.mark.bench
REPO = Path(__file__).resolve().parents[2]
BEFORE_COMMIT = "8002823"
#: issue 13 budget for 1M reaches
BUDGET_1M_S, BUDGET_1M_MB = 30.0, 1500.0

_PROBE = r"""
import gc, json, sys, time
sys.path.insert(0, sys.argv[1])
def rss_mb(field="VmRSS:"):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
def peak_mb():  # VmHWM: this process's high-water mark (ru_maxrss would start at the parent's, see above)
    return rss_mb("VmHWM:")
import hydrology.document as d
gc.collect()
base = rss_mb()
t, cpu = time.perf_counter(), time.process_time()
net = d.load_network(sys.argv[2])
wall, cpu = time.perf_counter() - t, time.process_time() - cpu
gc.collect()
kept = rss_mb() - base
peak = peak_mb() - base
use_cpu = time.process_time()
order, q, state = net.reach_order, net.steady_discharge, net.reach_state()
use_cpu = time.process_time() - use_cpu
gc.collect()
print(json.dumps({"module": d.__file__, "n_reaches": len(net.reaches), "wall_s": round(wall, 2),
                  "cpu_s": round(cpu, 2), "rss_kept_mb": round(kept, 1), "rss_peak_added_mb": round(peak, 1),
                  "first_use_cpu_s": round(use_cpu, 2), "rss_kept_after_use_mb": round(rss_mb() - base, 1),
                  "rss_peak_after_use_mb": round(peak_mb() - base, 1),
                  "check": [len(order), round(sum(q.values()), 3), round(float(state.travel_time_s().sum()), 1)]}))
"""


def _before_tree(tmp: Path) -> Path:
    archive = tmp / "before.tar"
    with archive.open("wb") as f:
        subprocess.run(["git", "archive", BEFORE_COMMIT, "hydrology"], cwd=REPO, stdout=f, check=True)
    out = tmp / "before"
    with tarfile.open(archive) as tar:
        tar.extractall(out, filter="data")
    return out


def _probe(root: Path, doc_path: Path) -> dict:
    run = subprocess.run([sys.executable, "-c", _PROBE, str(root), str(doc_path)], capture_output=True,
                         text=True, check=True, timeout=1800)
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_network_load_memory(tmp_path):
    sizes = [int(s) for s in os.environ.get("RIVERTRACE_BENCH_SIZES", "100000,1000000").split(",")]
    before_root = _before_tree(tmp_path)
    figures = {"network": {"generator": "hydrology.synthetic.generate_network(n, seed=1)", "features": "none",
                           "n_reaches": sizes},
               "before_commit": BEFORE_COMMIT, "load_average_1min_at_start": round(os.getloadavg()[0], 2)}
    for n in sizes:
        doc_path = write_network(generate_network(n, seed=1), tmp_path / f"net{n}.json")
        before, after = _probe(before_root, doc_path), _probe(REPO, doc_path)
        assert before["n_reaches"] == after["n_reaches"] == n
        # the same network: as many reaches in order, total discharge and travel time to the rounding
        assert before["check"] == after["check"]
        assert str(before_root) in before["module"] and str(REPO) in after["module"]
        figures[str(n)] = {"document_mb": round(doc_path.stat().st_size / 1e6, 1), "before": before, "after": after}
        doc_path.unlink()
    figures["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    write_results("network_memory", figures)
    if "1000000" in figures:  # issue 13 budget: on what is kept once loaded, and on the peak of the load
        after = figures["1000000"]["after"]
        assert after["cpu_s"] <= BUDGET_1M_S and after["rss_kept_mb"] <= BUDGET_1M_MB, after
        assert after["rss_peak_added_mb"] <= BUDGET_1M_MB, after

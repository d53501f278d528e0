"""Start-up of the command line (issue 14: `rivertrace --help` and `rivertrace CMD --help` in <= 0.5 s).

Run with `python -m pytest -m bench -s tests/bench/test_bench_cli.py`; figures go to
tests/bench/results/cli_help.json. Each command is the installed `rivertrace` console script run
as a fresh process (what a user types), wall time, median of 7 runs after one warm-up (the page
cache); the maximum is reported too because the 2 cores are shared. The suite's deterministic
guard is tests/server/test_cli_usage.py::test_help_does_not_import_the_science.
"""

import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from bench_util import write_results

pytestmark = pytest.mark.bench
BUDGET_S = 0.5
RUNS = 7


def _timed(argv: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, timeout=60)
    return time.perf_counter() - t


def test_help_starts_within_budget():
    from server.cli import build_parser

    exe = shutil.which("rivertrace") or str(Path(sys.executable).with_name("rivertrace"))
    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    figures = {}
    for cmd in [None, *sub.choices]:
        argv = [exe, "--help"] if cmd is None else [exe, cmd, "--help"]
        _timed(argv)  # warm-up
        times = [_timed(argv) for _ in range(RUNS)]
        figures[cmd or "(top)"] = {"median_s": round(float(np.median(times)), 4), "max_s": round(max(times), 4)}
    write_results("cli_help", {"budget_s": BUDGET_S, "runs": RUNS, "help": figures})
    slow = {k: v for k, v in figures.items() if v["median_s"] > BUDGET_S}
    assert slow == {}

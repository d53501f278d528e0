"""Health and reads answer while 500 watchers and 100 idle ingest streams are open (issue 13,
DESIGN.md section 6). Not in CI: ``python -m pytest -m bench -s tests/bench/test_bench_streams.py``.

Same harness as the CI test (tests/server/test_streams.py, 100 + 30 streams) at the issue's scale;
everything on 127.0.0.1, bounded, stops by itself. Results: ``tests/bench/results/streams.json``.
"""

import sys
from pathlib import Path

import pytest
from bench_util import write_results

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from test_streams import PROBE_BUDGET_S, run_with_streams

pytestmark = pytest.mark.bench


def test_probes_answer_with_500_watchers_and_100_idle_ingest_streams(tmp_path):
    figures = run_with_streams(tmp_path, 500, 100, n_probes=50)
    figures.update({"budget_ms": PROBE_BUDGET_S * 1e3,
                    "baseline": "issue 13: with 16 streams open, 0 of 8 Health/GetNetwork probes answered in 20 s"})
    write_results("streams", figures)
    assert figures["probe_max_ms"] <= PROBE_BUDGET_S * 1e3

"""Screening throttle: a run starts no sooner than DUTY_FACTOR x the last run's duration after the last start.

Reference: the wall clock (time.monotonic) around a stub run of known duration; no store is needed.
"""

from __future__ import annotations

import time

from server import pipeline


def test_next_screening_waits_duty_factor_times_last_duration(monkeypatch):
    monkeypatch.setattr(pipeline, "MIN_INTERVAL_S", 0.01)  # so the duty factor, not the floor, sets the gap
    starts: list[float] = []
    run_s = 0.2

    def slow_run(self, network):
        starts.append(time.monotonic())
        time.sleep(run_s)
        return []

    monkeypatch.setattr(pipeline.Pipeline, "run_once", slow_run)
    p = pipeline.Pipeline(None, None, None, None)  # type: ignore[arg-type]  # run_once is stubbed
    try:
        p.notify("n")
        assert p.wait_idle(10)
        p.notify("n")
        assert p.wait_idle(10)
    finally:
        p.stop()
    assert len(starts) == 2
    # gap >= DUTY_FACTOR * measured duration (>= run_s); 1 ms slack for clock granularity
    assert starts[1] - starts[0] >= pipeline.DUTY_FACTOR * run_s - 1e-3

"""CPU time of the station neighbourhoods (issue 13: 228 s at 100,000 reaches), the first version
(every pair of reached stations tested with a graph search; copied in
tests/tracer/test_station_contexts.py) against tracer.neighbours, on the budget network and on
10,000 and 30,000 reaches with the same feature density. Not in CI:
``python -m pytest -m bench -s tests/bench/test_bench_station_contexts.py``. Results:
``tests/bench/results/station_contexts.json``.

The old version gets at most OLD_CPU_LIMIT_S of process CPU per size (a profiling timer stops it);
where it finishes, the two results must be equal.
"""

import importlib.util
import os
import signal
import time
from pathlib import Path

import pytest
from bench_util import BUDGET_NETWORK, write_results

from hydrology.document import network_from_document
from hydrology.synthetic import generate_network
from tracer.trace import station_contexts

pytestmark = pytest.mark.bench
OLD_CPU_LIMIT_S = 300.0
_REF = Path(__file__).resolve().parents[1] / "tracer" / "test_station_contexts.py"


def _reference():
    spec = importlib.util.spec_from_file_location("station_contexts_reference", _REF)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.reference_station_contexts


class _OutOfTime(Exception):
    pass


def _timed_old(old, net):
    """Process CPU seconds of the old version, or None past OLD_CPU_LIMIT_S."""
    def stop(_sig, _frame):
        raise _OutOfTime

    prev = signal.signal(signal.SIGPROF, stop)
    signal.setitimer(signal.ITIMER_PROF, OLD_CPU_LIMIT_S)
    t = time.process_time()
    try:
        res = old(net)
        return time.process_time() - t, res
    except _OutOfTime:
        return None, None
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, prev)


def test_station_contexts_old_and_new(big_network):
    old = _reference()
    sizes = {}
    for n in (10_000, 30_000, BUDGET_NETWORK["n_reaches"]):
        if n == BUDGET_NETWORK["n_reaches"]:
            net = big_network[0]
        else:
            scale = n / BUDGET_NETWORK["n_reaches"]
            net = network_from_document(generate_network(
                n, n_dischargers=int(BUDGET_NETWORK["n_dischargers"] * scale),
                n_stations=int(BUDGET_NETWORK["n_stations"] * scale),
                n_intakes=int(BUDGET_NETWORK["n_intakes"] * scale), seed=BUDGET_NETWORK["seed"]))
        net.reach_state()  # the hydraulic state is cached per network: not part of either figure
        t = time.process_time()
        new = station_contexts(net)
        new_cpu = time.process_time() - t
        t = time.process_time()
        station_contexts(net)  # a second run: the routing caches are warm for both versions now
        new_cpu_2 = time.process_time() - t
        old_cpu, ref = _timed_old(old, net)
        if ref is not None:
            assert ref == new
        sizes[str(n)] = {"n_stations": len(net.stations),
                         "neighbour_pairs": sum(len(c.downstream_neighbours) for c in new.values()),
                         "new_cpu_s_first": round(new_cpu, 3), "new_cpu_s_second": round(new_cpu_2, 3),
                         "old_cpu_s": None if old_cpu is None else round(old_cpu, 2),
                         "old_stopped_at_cpu_s": None if old_cpu is not None else OLD_CPU_LIMIT_S,
                         "equal": ref is not None}
        old_text = f"> {OLD_CPU_LIMIT_S:.0f}" if old_cpu is None else f"{old_cpu:.2f}"
        print(f"\n{n} reaches: new {new_cpu:.3f} s (second run {new_cpu_2:.3f} s), old {old_text} s CPU", flush=True)
    write_results("station_contexts", {
        "sizes": sizes, "clock": "time.process_time (whole process CPU)",
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "note": "old = first version of station_contexts (pairwise is_upstream); the new one's first run "
                "includes building the routing caches (reach moments, node divisors, receptor index), "
                "which the old run then reuses; features scale with n as in the budget network"})

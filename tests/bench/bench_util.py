"""Shared fixtures for the benchmarks: the seeded 100,000-reach network of DESIGN.md section 6."""

import json
import os
import platform
import time
from pathlib import Path

import pytest

RESULTS = Path(__file__).parent / "results"
BUDGET_NETWORK = {"n_reaches": 100_000, "n_dischargers": 20_000, "n_stations": 2_000, "n_intakes": 500, "seed": 1}


@pytest.fixture(scope="session")
def big_network():
    from hydrology.document import network_from_document
    from hydrology.synthetic import generate_network

    timings = {}
    t = time.perf_counter()
    doc = generate_network(BUDGET_NETWORK["n_reaches"], n_dischargers=BUDGET_NETWORK["n_dischargers"],
                           n_stations=BUDGET_NETWORK["n_stations"], n_intakes=BUDGET_NETWORK["n_intakes"],
                           seed=BUDGET_NETWORK["seed"])
    timings["generate_s"] = time.perf_counter() - t
    t = time.perf_counter()
    net = network_from_document(doc)
    timings["parse_s"] = time.perf_counter() - t
    return net, timings


def write_results(name: str, figures: dict) -> Path:
    """Write a benchmark's figures with the machine they were measured on; print them."""
    RESULTS.mkdir(exist_ok=True)
    record = {"benchmark": name, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
              "network": BUDGET_NETWORK, **figures}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"\n{name}: " + json.dumps(figures, indent=1))
    return path

"""Station neighbourhoods (tracer.neighbours, via tracer.trace.station_contexts) against the first
version of station_contexts, kept here as the reference: it tests every pair of reached stations
with a graph search (RiverNetwork.is_upstream). The two must agree exactly: the same neighbours in
the same order, and the same travel-time floats.

Networks: both demo basins, the NHDPlus test networks with stations added, synthetic dendritic
networks with braids (generate_network), and random DAGs drawn with hypothesis that have splits,
diversions (less water leaves a node than arrives), confluences, several outlets and stations at
tied chainages (reach ends, shared positions) so that tied travel times occur.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hydrology.document import load_network, network_from_document
from hydrology.network import RiverNetwork
from hydrology.pollutants import Pollutant
from hydrology.synthetic import generate_network
from hydrology.transport.analytic import route_moments
from tracer.detection import StationContext
from tracer.trace import station_contexts

REPO = Path(__file__).resolve().parents[2]
DEMOS = sorted((REPO / "hydrology" / "data" / "demo").glob("*.json"))
NHDPLUS = REPO / "tests" / "data" / "nhdplus"


def reference_station_contexts(net: RiverNetwork) -> dict[str, StationContext]:
    """The first version of tracer.trace.station_contexts, unchanged (issue 13's 228 s at 100k)."""
    st_ = net.reach_state()
    tracer = Pollutant("tracer")
    down: dict[str, list[tuple[str, float]]] = {s: [] for s in net.stations}
    for s in net.stations.values():
        routed = route_moments(net, st_, s.reach, s.chainage_m, tracer, ("station",))
        reached = {f.id: mean for f, _frac, _x, mean, _var in routed}
        for fid, mean in reached.items():
            between = [g for g in reached if g != fid and reached[g] < mean
                       and net.is_upstream(net.feature(g), net.feature(fid))]
            if not between:
                down[s.id].append((fid, mean))
    up: dict[str, list[tuple[str, float]]] = {s: [] for s in net.stations}
    for sid, lst in down.items():
        for fid, mean in lst:
            up[fid].append((sid, mean))
    return {
        sid: StationContext(sid, s.get("target_class"), tuple(u for u, _ in up[sid]), tuple(d for d, _ in down[sid]),
                            tuple(t for _, t in up[sid]))
        for sid, s in net.stations.items()
    }


def assert_same(net: RiverNetwork) -> dict[str, StationContext]:
    """Both versions on fresh copies of nothing cached; equal field by field, floats bit for bit."""
    ref = reference_station_contexts(net)
    new = station_contexts(net)
    assert list(new) == list(ref)
    for sid in ref:
        a, b = new[sid], ref[sid]
        assert (a.id, a.target_class, a.upstream_neighbours, a.downstream_neighbours) == \
               (b.id, b.target_class, b.upstream_neighbours, b.downstream_neighbours), sid
        # travel times: identical floats (repr compares NaN too)
        assert [repr(float(t)) for t in a.upstream_travel_times_s] == [repr(float(t)) for t in b.upstream_travel_times_s], sid
    return ref


@pytest.mark.parametrize("path", DEMOS, ids=lambda p: p.stem)
def test_demo_basins(path):
    ref = assert_same(load_network(path))
    assert any(c.downstream_neighbours for c in ref.values())  # the comparison saw neighbours


@pytest.mark.parametrize("name", ["new_hope.gpkg", "walker.gpkg"])
def test_nhdplus_networks_with_stations(name):
    """Real NHDPlus topology (confluences, NHDPlus divergences where present), 40 stations placed
    by a seeded draw, several on one reach and at reach ends."""
    from hydrology.nhdplus import import_nhdplus

    doc, _report = import_nhdplus(NHDPLUS / name)
    rng = random.Random(7)
    reaches = doc["reaches"]
    stations = []
    for i in range(40):
        r = rng.choice(reaches[: max(1, len(reaches) // 4)] if i % 5 == 0 else reaches)
        c = rng.choice([0.0, float(r["length_m"]), 0.5 * float(r["length_m"]), rng.uniform(0, float(r["length_m"]))])
        stations.append({"id": f"S{i}", "reach": r["id"], "chainage_m": c, "target_class": "III"})
    doc = {**doc, "stations": stations}
    ref = assert_same(network_from_document(doc))
    assert sum(len(c.downstream_neighbours) for c in ref.values()) > 10


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(20, 300), seed=st.integers(0, 10_000), share=st.sampled_from([0.0, 0.2, 0.5]),
       outlets=st.integers(1, 3), stations=st.integers(2, 40))
def test_synthetic_braided_networks(n, seed, share, outlets, stations):
    try:
        doc = generate_network(n, n_stations=stations, seed=seed, n_outlets=outlets, split_fraction_share=share)
    except Exception as e:  # too few reaches for the braids and outlets asked for: not this test's concern
        if type(e).__name__ == "SyntheticNetworkError":
            return
        raise
    assert_same(network_from_document(doc))


REACH = {"slope": 0.001, "manning_n": 0.035, "bottom_width_m": 8.0, "side_slope": 2.0}


def random_dag(rng: random.Random, n_nodes: int, n_stations: int, extra_edges: int) -> dict:
    """A random river DAG: node i drains to a later node (a tree), plus extra reaches from a node to
    a later one (splits, and confluences where they land). Every reach has its own discharge, so
    some nodes lose water (diversions) and some gain it."""
    nodes = [{"id": f"N{i}", "x": float(i), "y": 0.0} for i in range(n_nodes)]
    pairs = set()
    for i in range(n_nodes - 1):
        if rng.random() < 0.1 and i > 0:
            continue  # an extra outlet (only if nothing else leaves: checked below)
        pairs.add((i, rng.randint(i + 1, min(n_nodes - 1, i + 4))))
    for _ in range(extra_edges):
        i = rng.randint(0, n_nodes - 2)
        pairs.add((i, rng.randint(i + 1, min(n_nodes - 1, i + 6))))
    reaches = []
    for k, (i, j) in enumerate(sorted(pairs)):
        length = rng.choice([500.0, 1000.0, 2500.0, rng.uniform(100.0, 5000.0)])
        reaches.append({"id": f"R{k}", "from_node": f"N{i}", "to_node": f"N{j}", "length_m": length,
                        "discharge_m3s": rng.choice([1.0, 2.0, rng.uniform(0.5, 10.0)]), **REACH})
    has_in = {r["to_node"] for r in reaches}
    inflows = [{"node": n["id"], "discharge_m3s": 1.0} for n in nodes if n["id"] not in has_in]
    used = {r["from_node"] for r in reaches} | has_in
    nodes = [n for n in nodes if n["id"] in used]
    inflows = [f for f in inflows if f["node"] in used]
    stations = []
    spots: list[tuple[str, float]] = []
    for i in range(n_stations):
        if spots and rng.random() < 0.15:  # a second station at an existing position: tied times
            rid, c = rng.choice(spots)
        else:
            r = rng.choice(reaches)
            rid, c = r["id"], rng.choice([0.0, r["length_m"], r["length_m"] / 2, rng.uniform(0.0, r["length_m"])])
            spots.append((rid, c))
        stations.append({"id": f"S{i}", "reach": rid, "chainage_m": c, "target_class": rng.choice(["II", "III", None])})
    return {"format": "rivertrace-network", "version": 1, "name": "random", "nodes": nodes, "reaches": reaches,
            "inflows": inflows, "stations": stations}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n_nodes=st.integers(3, 40), n_stations=st.integers(1, 30),
       extra=st.integers(0, 25))
def test_random_dags_with_splits_diversions_and_ties(seed, n_nodes, n_stations, extra):
    doc = random_dag(random.Random(seed), n_nodes, n_stations, extra)
    assert_same(network_from_document(doc))

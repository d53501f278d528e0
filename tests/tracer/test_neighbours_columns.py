"""tracer.neighbours over the columns (issue 13: the first screening after a network change) against
the per-reach versions it replaces: the node divisors equal hydrology.transport.routing.node_divisors
float for float, and the routing given the shared divisors and to_nodes reaches the same stations at
the same times as without them (the end-to-end equality with the first station_contexts is
tests/tracer/test_station_contexts.py)."""

from pathlib import Path

import pytest

from hydrology.document import load_network, network_from_document
from hydrology.synthetic import generate_network
from hydrology.transport.routing import node_divisors
from tracer.neighbours import _stations_by_reach, node_divisors_by_rows, reached_stations

DEMO = sorted((Path(__file__).resolve().parents[2] / "hydrology" / "data" / "demo").glob("*.json"))


def _networks():
    for seed, share in ((1, 0.0), (2, 0.15), (3, 0.3)):
        yield network_from_document(generate_network(600, n_stations=8, seed=seed, n_outlets=2,
                                                     split_fraction_share=share))
    for path in DEMO:
        yield load_network(path)


@pytest.mark.parametrize("net", list(_networks()), ids=lambda n: n.name or "synthetic")
def test_divisors_and_routing_equal_the_per_reach_versions(net):
    st = net.reach_state()
    got = node_divisors_by_rows(net, st)
    expected = node_divisors(net, st)
    assert list(got) == list(expected)
    assert all(got[k].hex() == float(expected[k]).hex() for k in expected)  # bit for bit
    by_reach = _stations_by_reach(net)
    bit = {sid: i for i, sid in enumerate(net.stations)}
    to_nodes = [net.reaches[rid].to_node for rid in st.ids]
    for s in net.stations.values():
        assert reached_stations(net, st, s, by_reach, bit, None, got, to_nodes) == \
            reached_stations(net, st, s, by_reach, bit, None)

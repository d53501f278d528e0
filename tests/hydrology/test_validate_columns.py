"""validate_network over the columns (issue 13, "Cost and memory") against two references:

- a crafted bad document whose problems were counted by hand (below, one line per problem, in the
  order a loop over nodes, reaches, inflows, topology, flows, features, departments gives them);
- the element-by-element validation it replaced (tests/hydrology/validate_reference.py), on seeded
  synthetic networks with random corruptions: the same problems, messages and order;
- the number of disconnected parts against networkx's weakly connected components.
"""

import random

import networkx as nx
import pytest
from validate_reference import reference_validate_network

from hydrology.document import network_from_document
from hydrology.synthetic import generate_network
from hydrology.validate import _count_parts, validate_network


def _bad_doc():
    trap = {"slope": 5e-4, "manning_n": 0.03, "bottom_width_m": 20.0, "side_slope": 2.0}
    return {
        "nodes": [{"id": "a", "x": 1e9}, {"id": "b"}, {"id": "c"}, {"id": "d"}, {"id": "lonely"}],
        "reaches": [
            {"id": "r1", "from_node": "a", "to_node": "b", "length_m": 2e6, **trap},                 # length
            {"id": "r2", "from_node": "b", "to_node": "c", "length_m": 100.0, "slope": 5e-4},        # velocity
            {"id": "r3", "from_node": "c", "to_node": "d", "length_m": 100.0, **trap, "storage_ratio": 0.5,
             "bottom_width_m": 0.0, "side_slope": 0.0},                                          # width, storage
            {"id": "r4", "from_node": "b", "to_node": "d", "length_m": 50.0, **trap, "geometry": [[0, 0], [2e8, 0]]},
        ],
        "inflows": [{"node": "a", "discharge_m3s": 4e5}],                                          # inflow range
        "stations": [{"id": "S1", "reach": "r2", "chainage_m": 150.0},                             # off its reach
                     {"id": "S0", "reach": "r1", "chainage_m": -1.0},                              # negative
                     {"id": "S2", "reach": "nope", "chainage_m": 1.0, "target_class": "VI"}],      # reach, class
        "departments": [{"id": "D", "name": "d", "owns": ["r1", "S1", "ghost"]}],                  # unknown owns
    }


#: the problems of _bad_doc, counted by hand: (severity, element, id, field)
HAND_COUNTED = [
    ("error", "nodes", "a", "x"),
    ("error", "reaches", "r1", "length_m"),
    ("error", "reaches", "r2", "velocity_ms"),
    ("error", "reaches", "r3", "bottom_width_m"),
    ("error", "reaches", "r3", "storage_exchange_per_s"),
    ("error", "reaches", "r4", "geometry"),
    ("error", "inflows", "a", "discharge_m3s"),
    # node b splits into r2 and r4 and neither has a flow_fraction: both get no share of the flow
    # (in topological order), so r3 below r2 has no discharge either
    ("error", "reaches", "r2", "discharge_m3s"),
    ("error", "reaches", "r4", "discharge_m3s"),
    ("error", "reaches", "r3", "discharge_m3s"),
    ("error", "stations", "S1", "chainage_m"),
    ("error", "stations", "S0", "chainage_m"),
    ("error", "stations", "S2", "reach"),
    ("error", "stations", "S2", "target_class"),
    ("warning", "nodes", "lonely", ""),
    ("warning", "departments", "D", "owns"),
]


def test_a_crafted_bad_document_gives_the_hand_counted_problems():
    net = network_from_document(_bad_doc())
    got = validate_network(net)
    assert [(p.severity, p.element, p.id, p.field) for p in got] == HAND_COUNTED
    assert got == reference_validate_network(net)  # and the messages of the old loop, word for word


def _corrupt(doc, rng):
    """A few random problems of every kind the validation knows."""
    reaches, nodes = doc["reaches"], doc["nodes"]
    for _ in range(rng.randint(1, 12)):
        r = rng.choice(reaches)
        kind = rng.randrange(11)
        if kind == 0:
            r[rng.choice(["length_m", "slope", "manning_n", "velocity_ms", "width_exp", "dispersion_m2s"])] = \
                rng.choice([-1.0, 0.0, 1.0, 2e6, 1e-300, 5.0])
        elif kind == 1:
            for k in ("velocity_ms", "manning_n", "drainage_area_m2", "width_coef"):
                r.pop(k, None)
        elif kind == 2:
            r["to_node"] = rng.choice([r["from_node"], "ghost"])
        elif kind == 3:
            r["bottom_width_m"], r["side_slope"] = 0.0, rng.choice([0.0, 1.0])
        elif kind == 4:
            r["storage_ratio"] = rng.choice([0.0, 0.3, 200.0])
            r.pop("storage_exchange_per_s", None)
        elif kind == 5:
            r["geometry"] = [[0.0, 0.0], [rng.choice([1.0, 1e9]), 2.0]]
        elif kind == 6:
            rng.choice(nodes)[rng.choice(["x", "y"])] = rng.choice([0.5, -2e8])
        elif kind == 7:
            doc["inflows"].append({"node": rng.choice([nodes[0]["id"], "elsewhere"]),
                                   "discharge_m3s": rng.choice([-1.0, 1.0, 5e5])})
        elif kind == 8:
            if "flow_fraction" in r:
                r["flow_fraction"] = rng.choice([0.1, 0.999, 1.5])
        elif kind == 9:
            nodes.append({"id": f"iso{rng.randrange(1000)}"})
        elif kind == 10 and doc.get("stations"):
            s = rng.choice(doc["stations"])
            s.update(rng.choice([{"chainage_m": 1e7}, {"chainage_m": -5.0}, {"reach": "nowhere"}, {"target_class": "VII"}]))
    return doc


@pytest.mark.parametrize("seed", range(12))
def test_corrupted_networks_give_the_problems_of_the_element_loop(seed):
    rng = random.Random(seed)
    doc = generate_network(400, n_stations=6, n_dischargers=4, seed=seed, n_outlets=rng.choice([1, 3]),
                           split_fraction_share=0.1)
    doc["departments"] = [{"id": "D", "name": "d", "owns": [doc["reaches"][0]["id"], "unknown-thing"]}]
    ids = {n["id"] for n in doc["nodes"]}
    doc["nodes"] = [n for n in doc["nodes"] if n["id"] in ids]
    net = network_from_document(_corrupt(doc, rng))
    got = validate_network(net)
    assert got == reference_validate_network(net)
    if seed == 0:
        assert any(p.severity == "error" for p in got)


def test_valid_synthetic_networks_have_no_problems_either_way():
    net = network_from_document(generate_network(500, n_stations=5, n_dischargers=5, seed=4, n_outlets=3))
    got = validate_network(net)
    assert got == reference_validate_network(net)
    assert [p.message for p in got] == ["the network has 3 disconnected parts"]


@pytest.mark.parametrize("seed", (1, 2))
def test_disconnected_parts_equal_networkx(seed):
    doc = generate_network(300, seed=seed, n_outlets=4)
    doc["nodes"].append({"id": "alone"})  # touched by no reach: not a part
    net = network_from_document(doc)
    g = nx.MultiDiGraph()
    g.add_edges_from((r["from_node"], r["to_node"]) for r in doc["reaches"])
    assert _count_parts(net) == nx.number_weakly_connected_components(g) == 4

"""The columnar network (issue 13, "Cost and memory") against references it does not use.

- the reaches and nodes it hands out equal value objects built straight from the document's dicts;
- graph queries equal networkx's on a graph built here from the document (ancestors, descendants,
  topological constraints), on seeded synthetic networks with braids (split reaches) and 2 outlets;
- steady discharge on a tree equals the analytic continuity sum: the inflows at and above a reach's
  from_node, found here with networkx;
- nothing the network keeps is an object of the parsed document (so the document's memory can go).
"""

import math
import pickle

import networkx as nx
import numpy as np
import pytest
from numpy.testing import assert_allclose

from hydrology.document import network_from_document
from hydrology.exceptions import NetworkTopologyError, UnknownElementError
from hydrology.network import REACH_NUM_FIELDS, Node, Reach, RiverNetwork
from hydrology.synthetic import generate_network

SEEDS = (1, 2, 3)


def _doc(seed, braids=0.1):
    return generate_network(300, n_stations=5, n_dischargers=5, seed=seed, n_outlets=2,
                            split_fraction_share=braids)


def _reference_graph(doc):
    g = nx.MultiDiGraph()
    g.add_nodes_from(n["id"] for n in doc["nodes"])
    for r in doc["reaches"]:
        g.add_edge(r["from_node"], r["to_node"], key=r["id"])
    return g


@pytest.mark.parametrize("seed", SEEDS)
def test_reaches_and_nodes_equal_value_objects_built_from_the_document(seed):
    doc = _doc(seed)
    doc["reaches"][3]["name"] = "清水河"
    doc["reaches"][4]["geometry"] = [[1.0, 2.0], [3.5, 4.0, 9.0]]  # a z value is dropped
    doc["reaches"][5]["fully_mixed"] = True
    doc["reaches"][6]["survey"] = {"by": "bureau"}  # an unknown field lands in extra
    doc["nodes"][7]["name"] = "confluence 7"
    net = network_from_document(doc)
    for r in doc["reaches"]:
        expected = Reach(
            id=r["id"], from_node=r["from_node"], to_node=r["to_node"], length_m=float(r["length_m"]),
            name=r.get("name"), fully_mixed=bool(r.get("fully_mixed", False)),
            geometry=tuple((float(p[0]), float(p[1])) for p in r["geometry"]) if r.get("geometry") else None,
            extra={k: v for k, v in r.items() if k == "survey"},
            **{k: (float(r[k]) if r.get(k) is not None else None) for k in REACH_NUM_FIELDS})
        got = net.reaches[r["id"]]
        assert got == expected
        assert got.extra == expected.extra
    assert list(net.reaches) == [r["id"] for r in doc["reaches"]]  # document order
    assert [r.id for r in net.reaches.values()] == list(net.reaches)
    assert all(rid == r.id for rid, r in net.reaches.items())
    assert len(net.nodes) == len(doc["nodes"])
    for n in doc["nodes"]:
        assert net.nodes[n["id"]] == Node(n["id"], n.get("x"), n.get("y"), n.get("name"))
    assert dict(net.inflows) == {f["node"]: f["discharge_m3s"] for f in doc["inflows"]}


@pytest.mark.parametrize("seed", SEEDS)
def test_graph_queries_equal_networkx_on_the_document(seed):
    doc = _doc(seed)
    net = network_from_document(doc)
    g = _reference_graph(doc)
    frm = {r["id"]: r["from_node"] for r in doc["reaches"]}
    to = {r["id"]: r["to_node"] for r in doc["reaches"]}
    assert any(len(net.reaches_out_of(n)) > 1 for n in net.nodes)  # the case has splits
    # every reach after all reaches entering its from_node: a topological order of the line graph
    pos = {rid: i for i, rid in enumerate(net.reach_order)}
    assert sorted(pos) == sorted(frm)
    for rid, node in frm.items():
        assert all(pos[u] < pos[rid] for _a, _b, u in g.in_edges(node, keys=True))
    for rid in list(frm)[::7]:
        up_nodes = nx.ancestors(g, frm[rid]) | {frm[rid]}
        assert net.all_upstream(rid) == {k for k in frm if to[k] in up_nodes}
        down_nodes = nx.descendants(g, to[rid]) | {to[rid]}
        assert net.all_downstream(rid) == {k for k in frm if frm[k] in down_nodes}
        assert net.downstream_reaches(rid) == [k for _a, _b, k in g.out_edges(to[rid], keys=True)]
        assert net.upstream_reaches(rid) == [k for _a, _b, k in g.in_edges(frm[rid], keys=True)]
    assert sorted(net.outlets()) == sorted(n for n in g if g.out_degree(n) == 0)
    assert set(net.graph.edges(keys=True)) == set(g.edges(keys=True))
    assert net.find_cycle() is None


@pytest.mark.parametrize("seed", SEEDS)
def test_steady_discharge_on_a_tree_is_the_sum_of_inflows_above(seed):
    doc = _doc(seed, braids=0.0)
    for r in doc["reaches"]:
        r.pop("discharge_m3s", None)
    net = network_from_document(doc)
    g = _reference_graph(doc)
    inflow = {f["node"]: f["discharge_m3s"] for f in doc["inflows"]}
    q = net.steady_discharge
    for r in doc["reaches"]:
        above = nx.ancestors(g, r["from_node"]) | {r["from_node"]}
        expected = sum(inflow.get(n, 0.0) for n in above)
        assert_allclose(q[r["id"]], expected, rtol=1e-12)  # the same sum in another order: round-off only


def test_split_reaches_share_the_flow_by_their_fractions():
    doc = _doc(2, braids=0.2)
    net = network_from_document(doc)
    splits = [n for n in net.nodes if len(net.reaches_out_of(n)) > 1]
    assert splits
    for n in splits:
        outs = net.reaches_out_of(n)
        assert_allclose(sum(net.split_fraction(o) for o in outs), 1.0, rtol=1e-12)  # shares of one flow


def test_nothing_kept_is_an_object_of_the_document():
    doc = _doc(1)
    doc["reaches"][2]["name"] = "a reach name"
    doc["nodes"][2]["name"] = "a node name"
    net = network_from_document(doc)
    doc_objects = {id(v) for item in doc["reaches"] + doc["nodes"] + doc["inflows"] for v in item.values()}
    doc_objects |= {id(v) for d in doc["departments"] for v in [*d.values(), *d.get("owns", ())]}
    doc_objects |= {id(v) for s in doc["stations"] for v in s.values()}
    kept = [*net.reaches.id_index.ids, *net.nodes.id_index.ids, *net.inflows, *net.reach_order]
    kept += [v for r in net.reaches.values() for v in (r.from_node, r.to_node, r.name)]
    kept += [net.nodes["n2"].name] if "n2" in net.nodes else []
    kept += [v for d in net.departments.values() for v in (d.id, d.name, *d.owns)]
    kept += [v for f in net.iter_features() for v in (f.id, f.reach, *f.attrs.values())]
    shared = [v for v in kept if isinstance(v, str) and len(v) > 1 and id(v) in doc_objects]
    assert shared == []
    assert net.reaches["r2"].name == "a reach name"


def test_with_discharges_changes_a_copy_only():
    net = network_from_document(_doc(1))
    rid = net.reach_order[10]
    before = net.reaches[rid].discharge_m3s
    other = net.with_discharges({rid: 123.0})
    assert other.reaches[rid].discharge_m3s == 123.0
    assert net.reaches[rid].discharge_m3s == before
    assert other.reaches[net.reach_order[11]] == net.reaches[net.reach_order[11]]
    with pytest.raises(UnknownElementError):
        net.with_discharges({"nope": 1.0})


def test_a_network_built_from_value_objects_equals_the_parsed_one():
    net = network_from_document(_doc(3))
    again = RiverNetwork(dict(net.nodes), dict(net.reaches), inflows=dict(net.inflows))
    assert dict(again.reaches) == dict(net.reaches)
    assert again.reach_order == net.reach_order
    assert again.steady_discharge == net.steady_discharge


def test_ids_only_reaches_name_are_not_nodes_but_still_route():
    reaches = {"a": Reach("a", "x", "y", 100.0, discharge_m3s=1.0), "b": Reach("b", "y", "z", 50.0)}
    net = RiverNetwork({"x": Node("x")}, reaches, inflows={"w": 2.0})
    assert list(net.nodes) == ["x"] and "y" not in net.nodes and "w" not in net.nodes
    assert net.reaches_out_of("y") == ["b"] and net.reaches_into("y") == ["a"]
    assert net.reach_order == ["a", "b"]
    assert net.steady_discharge == {"a": 1.0, "b": 1.0}
    assert dict(net.inflows) == {"w": 2.0}


def test_a_cycle_is_found_and_named():
    reaches = {k: Reach(k, a, b, 10.0) for k, a, b in (("s", "src", "p"), ("c1", "p", "q"), ("c2", "q", "p"))}
    net = RiverNetwork({n: Node(n) for n in ("src", "p", "q")}, reaches)
    assert sorted(net.find_cycle()) == ["c1", "c2"]
    with pytest.raises(NetworkTopologyError, match="cycle"):
        _ = net.reach_order


def test_unset_fields_are_none_and_columns_are_nan():
    net = network_from_document(_doc(1))
    r = net.reaches["r0"]
    assert r.velocity_ms is None and r.bottom_width_m is None
    col = net.reaches.column("velocity_ms")
    assert col.shape == (len(net.reaches),) and np.isnan(col).all()
    assert math.isclose(net.reaches.column("length_m")[0], r.length_m)


def test_a_used_network_pickles_for_process_pools():
    net = network_from_document(_doc(1))
    net.reaches["r1"], net.reaches_into(net.reaches["r1"].from_node), net.reach_state(), net.inflows.get("n1")
    again = pickle.loads(pickle.dumps(net))
    assert again.reaches["r1"] == net.reaches["r1"]
    assert again.reach_order == net.reach_order
    assert again.reaches_into(net.reaches["r1"].to_node) == net.reaches_into(net.reaches["r1"].to_node)

"""Tests of the synthetic dendritic network generator (hydrology.synthetic).

Topology and flows are checked with networkx and small routines written here, independently of the
generator's numpy level loops: acyclicity, drainage to outlets, flow accumulation from ``inflows``,
Strahler orders and Horton's bifurcation ratio.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from numpy.testing import assert_allclose

from hydrology.synthetic import BUDGET, SyntheticNetworkError, generate_network, main, write_network

REPO = Path(__file__).resolve().parents[2]
FEATURES = ("dischargers", "stations", "intakes", "structures", "sites")
DISCHARGER_KINDS = {"sewage_plant", "industrial_plant", "food_processing", "outfall", "livestock", "other"}


def _graph(doc: dict) -> nx.DiGraph:
    """Directed graph of the reaches; an edge per reach (braids never duplicate a node pair)."""
    g = nx.DiGraph()
    g.add_nodes_from(n["id"] for n in doc["nodes"])
    for r in doc["reaches"]:
        g.add_edge(r["from_node"], r["to_node"], reach=r)
    assert g.number_of_edges() == len(doc["reaches"]), "two reaches join the same pair of nodes"
    return g


def _accumulated_discharge(doc: dict, g: nx.DiGraph) -> dict[str, float]:
    """Steady discharge of every reach from the inflows alone [m3/s]: a node's outflow is its inflow
    plus the flow of the reaches entering it, shared by flow_fraction when it splits."""
    inflow: dict[str, float] = defaultdict(float)
    for f in doc["inflows"]:
        inflow[f["node"]] += f["discharge_m3s"]
    q: dict[str, float] = {}
    for node in nx.topological_sort(g):
        total = inflow[node] + sum(q[d["reach"]["id"]] for _u, _v, d in g.in_edges(node, data=True))
        outs = [d["reach"] for _u, _v, d in g.out_edges(node, data=True)]
        for r in outs:
            q[r["id"]] = total * (r["flow_fraction"] if len(outs) > 1 else 1.0)
    return q


def _strahler(g: nx.DiGraph) -> dict[str, int]:
    """Strahler (1952) order of every reach of a tree: 1 at sources; below a confluence the largest
    incoming order, plus one when two or more incoming reaches share it."""
    order: dict[str, int] = {}
    for node in nx.topological_sort(g):
        incoming = sorted((order[d["reach"]["id"]] for _u, _v, d in g.in_edges(node, data=True)),
                          reverse=True)
        k = 1 if not incoming else incoming[0] + (len(incoming) > 1 and incoming[1] == incoming[0])
        for _u, _v, d in g.out_edges(node, data=True):
            order[d["reach"]["id"]] = k
    return order


@pytest.fixture(scope="module")
def net10k() -> dict:
    return generate_network(10_000, n_dischargers=2_000, n_stations=200, n_intakes=50,
                            n_structures=20, n_sites=100, seed=7)


@pytest.fixture(scope="module")
def braided() -> dict:
    return generate_network(3_000, n_dischargers=300, n_stations=30, n_intakes=10, n_structures=5,
                            n_sites=10, seed=11, n_outlets=3, split_fraction_share=0.2)


@pytest.fixture(scope="module", params=["net10k", "braided"])
def doc(request: pytest.FixtureRequest) -> dict:
    return request.getfixturevalue(request.param)


def test_same_seed_gives_identical_document() -> None:
    kwargs = {"n_dischargers": 50, "n_stations": 5, "n_intakes": 2, "n_structures": 2, "n_sites": 3,
              "n_outlets": 2, "split_fraction_share": 0.1}
    a = generate_network(500, seed=3, **kwargs)
    b = generate_network(500, seed=3, **kwargs)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_different_seed_gives_different_network() -> None:
    a, b = generate_network(500, seed=3), generate_network(500, seed=4)
    assert [r["length_m"] for r in a["reaches"]] != [r["length_m"] for r in b["reaches"]]
    assert [r["to_node"] for r in a["reaches"]] != [r["to_node"] for r in b["reaches"]]


def test_river_does_not_depend_on_feature_counts() -> None:
    bare = generate_network(800, seed=5, split_fraction_share=0.1)
    busy = generate_network(800, seed=5, split_fraction_share=0.1, n_dischargers=100, n_stations=10)
    for key in ("nodes", "reaches", "inflows"):
        assert bare[key] == busy[key]


@pytest.mark.parametrize("n_reaches, n_outlets, share", [
    (1, 1, 0.0), (2, 1, 0.0), (3, 1, 0.0), (4, 2, 0.0), (999, 1, 0.0), (1000, 1, 0.0),
    (1000, 7, 0.0), (1001, 4, 0.3), (30, 1, 0.5),
])
def test_counts_are_exact(n_reaches: int, n_outlets: int, share: float) -> None:
    counts = {"n_dischargers": 17, "n_stations": 5, "n_intakes": 3, "n_structures": 2, "n_sites": 4}
    doc = generate_network(n_reaches, seed=1, n_outlets=n_outlets, split_fraction_share=share, **counts)
    assert len(doc["reaches"]) == n_reaches
    for key in FEATURES:
        assert len(doc[key]) == counts[f"n_{key}"]
    g = _graph(doc)
    assert sum(1 for n in g if g.out_degree(n) == 0) == n_outlets
    n_splits = sum(1 for n in g if g.out_degree(n) > 1)
    assert n_splits == round(share * n_reaches / 3)


def test_ids_unique_and_references_resolve(doc: dict) -> None:
    ids: dict[str, set[str]] = {}
    for key in ("nodes", "reaches", "departments", *FEATURES):
        values = [item["id"] for item in doc[key]]
        assert len(values) == len(set(values)), f"duplicate {key} ids"
        ids[key] = set(values)
    for r in doc["reaches"]:
        assert r["from_node"] in ids["nodes"] and r["to_node"] in ids["nodes"]
    assert {f["node"] for f in doc["inflows"]} <= ids["nodes"]
    for key in FEATURES:
        assert {f["reach"] for f in doc[key]} <= ids["reaches"]
    assert {f["department"] for f in doc["dischargers"]} <= ids["departments"]
    for d in doc["departments"]:
        assert set(d.get("owns", ())) <= ids["reaches"]


def test_dag_draining_to_outlets(doc: dict) -> None:
    g = _graph(doc)
    assert nx.is_directed_acyclic_graph(g)
    outlets = [n for n in g if g.out_degree(n) == 0]
    assert len(outlets) == nx.number_weakly_connected_components(g)
    drains = set(outlets).union(*(nx.ancestors(g, o) for o in outlets))
    assert drains == set(g), "a node does not drain to an outlet"
    # every reach belongs to a reach-disjoint basin: one per outlet
    assert all(g.in_degree(n) + g.out_degree(n) > 0 for n in g), "isolated node"


def test_discharge_equals_accumulated_inflows(doc: dict) -> None:
    g = _graph(doc)
    expected = _accumulated_discharge(doc, g)
    actual = {r["id"]: r["discharge_m3s"] for r in doc["reaches"]}
    ids = sorted(actual)
    # different summation order and the rounded split fractions (3 decimals, applied to the same
    # flow both ways) leave only floating-point noise
    assert_allclose([actual[i] for i in ids], [expected[i] for i in ids], rtol=1e-9)
    assert all(f["discharge_m3s"] > 0 for f in doc["inflows"])


def test_flow_grows_downstream_except_at_splits(doc: dict) -> None:
    g = _graph(doc)
    for node in g:
        ins = [d["reach"] for _u, _v, d in g.in_edges(node, data=True)]
        outs = [d["reach"] for _u, _v, d in g.out_edges(node, data=True)]
        if len(outs) == 1:
            for r in ins:
                assert outs[0]["discharge_m3s"] >= r["discharge_m3s"], (r["id"], outs[0]["id"])
        elif len(outs) > 1:
            assert_allclose(sum(r["flow_fraction"] for r in outs), 1.0, rtol=1e-12)  # float rounding only
            assert all(0 < r["flow_fraction"] < 1 for r in outs)


def test_braids_rejoin(braided: dict) -> None:
    g = _graph(braided)
    splits = [n for n in g if g.out_degree(n) > 1]
    assert splits
    for node in splits:
        a, b = (v for _u, v in g.out_edges(node))
        assert ({a} | nx.descendants(g, a)) & ({b} | nx.descendants(g, b)), f"split at {node} never rejoins"


def test_features_lie_on_their_reach(doc: dict) -> None:
    length = {r["id"]: r["length_m"] for r in doc["reaches"]}
    for key in FEATURES:
        for f in doc[key]:
            assert 0.0 <= f["chainage_m"] <= length[f["reach"]], (key, f["id"])


def test_reach_fields_complete_and_physical(doc: dict) -> None:
    for r in doc["reaches"]:
        for field in ("length_m", "slope", "manning_n", "width_coef", "width_exp", "depth_coef",
                      "depth_exp", "drainage_area_m2", "mean_annual_discharge_m3s", "discharge_m3s"):
            assert isinstance(r[field], float) and math.isfinite(r[field]) and r[field] > 0, (r["id"], field)
        assert 0.03 <= r["manning_n"] <= 0.05
    q = np.array([r["discharge_m3s"] for r in doc["reaches"]])
    width = np.array([r["width_coef"] * r["discharge_m3s"] ** r["width_exp"] for r in doc["reaches"]])
    depth = np.array([r["depth_coef"] * r["discharge_m3s"] ** r["depth_exp"] for r in doc["reaches"]])
    velocity = q / (width * depth)
    # mean-flow velocities of natural rivers: ~0.1 to ~3 m/s
    assert velocity.min() > 0.1 and velocity.max() < 3.0
    assert width.max() < 2_000.0 and depth.max() < 30.0


def test_reach_lengths_like_nhdplus(net10k: dict) -> None:
    length = np.array([r["length_m"] for r in net10k["reaches"]])
    # brief: lognormal around 1-3 km (NHDPlusV2 flowline medians in tests/data/nhdplus are 1.2-2.0 km)
    assert 1_000.0 < np.median(length) < 3_000.0


def test_node_layout_consistent_with_lengths(doc: dict) -> None:
    xy = {n["id"]: (n["x"], n["y"]) for n in doc["nodes"]}
    for r in doc["reaches"]:
        (x0, y0), (x1, y1) = xy[r["from_node"]], xy[r["to_node"]]
        # a river is never shorter than the straight line; 0.2 m covers rounding to 0.1 m
        assert math.hypot(x1 - x0, y1 - y0) <= r["length_m"] + 0.2, r["id"]


def test_horton_bifurcation_ratio(net10k: dict) -> None:
    g = _graph(net10k)
    order = _strahler(g)
    reach = {r["id"]: r for r in net10k["reaches"]}
    # a stream of order k starts where no reach of order k enters its first reach's upstream node
    streams = Counter(
        k for rid, k in order.items()
        if all(order[d["reach"]["id"]] != k for _u, _v, d in g.in_edges(reach[rid]["from_node"], data=True)))
    ks = np.array(sorted(streams))
    n_k = np.array([streams[k] for k in ks])
    assert n_k[-1] == 1 and np.all(np.diff(n_k) < 0)
    slope = np.polyfit(ks, np.log10(n_k), 1)[0]
    rb = 10 ** -slope
    # Horton's law: natural networks have R_B of 3-5 (Strahler 1957); random topology tends to 4
    assert 3.0 <= rb <= 5.0, f"bifurcation ratio {rb:.2f}"


def test_slope_falls_downstream(net10k: dict) -> None:
    g = _graph(net10k)
    order = _strahler(g)
    by_order = defaultdict(list)
    for r in net10k["reaches"]:
        by_order[order[r["id"]]].append(r["slope"])
    medians = [np.median(by_order[k]) for k in sorted(by_order)]
    assert np.all(np.diff(medians) < 0), medians
    area = np.array([r["drainage_area_m2"] for r in net10k["reaches"]])
    slope = np.array([r["slope"] for r in net10k["reaches"]])
    theta = -np.polyfit(np.log(area), np.log(slope), 1)[0]
    # Flint (1974) concavity index of real rivers: about 0.4-0.6
    assert 0.35 < theta < 0.6


def test_discharger_profiles(net10k: dict) -> None:
    ds = net10k["dischargers"]
    assert {d["kind"] for d in ds} <= DISCHARGER_KINDS
    assert {"sewage_plant", "industrial_plant", "food_processing", "outfall", "livestock"} <= {d["kind"] for d in ds}
    q = {r["id"]: r["discharge_m3s"] for r in net10k["reaches"]}
    for d in ds:
        assert d["pollutants"] and set(d["max_load_kg_s"]) == set(d["pollutants"])
        assert 0 < d["effluent_discharge_m3s"] <= q[d["reach"]]
        assert all(v > 0 for v in d["max_load_kg_s"].values())
        assert isinstance(d["violations"], int) and d["violations"] >= 0
    by_kind = defaultdict(list)
    for d in ds:
        by_kind[d["kind"]].append(d)
    assert all("NH3-N" in d["pollutants"] for d in by_kind["sewage_plant"])
    assert all("petroleum" in d["pollutants"] for d in by_kind["food_processing"])
    assert np.median([d["effluent_discharge_m3s"] for d in by_kind["sewage_plant"]]) > \
        np.median([d["effluent_discharge_m3s"] for d in by_kind["food_processing"]])


def test_other_features(net10k: dict) -> None:
    assert {s["target_class"] for s in net10k["stations"]} <= {"II", "III", "IV"}
    assert all(isinstance(i["population"], int) and i["population"] > 0 for i in net10k["intakes"])
    q = np.array([r["discharge_m3s"] for r in net10k["reaches"]])
    q_of = {r["id"]: r["discharge_m3s"] for r in net10k["reaches"]}
    for s in net10k["structures"]:
        assert q_of[s["reach"]] >= np.quantile(q, 0.5), "structures belong on the larger rivers"
        assert s["max_release_m3s"] >= s["normal_release_m3s"] > 0
    assert all(s["build_time_s"] > 0 for s in net10k["sites"])
    levels = {d["level"] for d in net10k["departments"]}
    assert levels == {"city", "district"}
    roles = {role for d in net10k["departments"] for role in d["roles"]}
    assert {"enforcement", "water_resources", "drinking_water", "local_government"} <= roles


@pytest.mark.parametrize("kwargs, field", [
    ({"n_reaches": 0}, "n_reaches=0"),
    ({"n_reaches": -5}, "n_reaches"),
    ({"n_reaches": 10.5}, "n_reaches"),
    ({"n_reaches": 10, "n_dischargers": -1}, "n_dischargers"),
    ({"n_reaches": 10, "n_outlets": 0}, "n_outlets"),
    ({"n_reaches": 3, "n_outlets": 4}, "n_reaches=3"),
    ({"n_reaches": 10, "split_fraction_share": 1.0}, "split_fraction_share"),
    ({"n_reaches": 10, "split_fraction_share": -0.1}, "split_fraction_share"),
    ({"n_reaches": 6, "n_outlets": 3, "split_fraction_share": 0.9}, "braid"),
])
def test_bad_arguments_raise(kwargs: dict, field: str) -> None:
    with pytest.raises(SyntheticNetworkError, match=field) as err:
        generate_network(**kwargs)
    assert isinstance(err.value, ValueError)


def test_write_and_main_round_trip(tmp_path: Path) -> None:
    doc = generate_network(300, n_dischargers=20, n_stations=3, seed=9, split_fraction_share=0.1)
    path = write_network(doc, tmp_path / "net.json")
    assert json.loads(path.read_text(encoding="utf-8")) == doc
    out = tmp_path / "cli.json"
    assert main(["--reaches", "300", "--dischargers", "20", "--stations", "3", "--seed", "9",
                 "--split-share", "0.1", "-o", str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8")) == doc


def test_module_entry_point(tmp_path: Path) -> None:
    out = tmp_path / "net.json"
    run = subprocess.run([sys.executable, "-m", "hydrology.synthetic", "--reaches", "50", "--seed", "2",
                          "-o", str(out)], cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    assert json.loads(out.read_text(encoding="utf-8")) == generate_network(50, seed=2)


def test_project_validator_accepts_the_network(braided: dict) -> None:
    validate = pytest.importorskip("hydrology.validate")
    _net, problems = validate.validate_document(braided)
    assert [p for p in problems if p.severity == "error"] == []


def test_budget_network_builds_fast() -> None:
    t0 = time.perf_counter()
    doc = generate_network(**BUDGET, seed=1)
    elapsed = time.perf_counter() - t0
    assert len(doc["reaches"]) == 100_000 and len(doc["dischargers"]) == 20_000
    assert len(doc["stations"]) == 2_000 and len(doc["intakes"]) == 500
    # brief: < 20 s; measured ~1 s on the 2-core project machine
    assert elapsed < 20.0, f"{elapsed:.1f} s"

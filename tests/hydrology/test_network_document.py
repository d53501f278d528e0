"""Network document parsing, validation and graph queries: every problem names element and field."""

import copy
import json

import pytest
from net_cases import chain_doc, confluence_doc

from hydrology.document import load_network, network_from_document, network_to_document, read_document, write_network
from hydrology.exceptions import HydraulicsError, NetworkFormatError, NetworkTopologyError, NetworkValidationError
from hydrology.validate import require_valid, validate_document


def _problems(doc):
    _net, problems = validate_document(doc)
    return [(p.severity, p.element, p.id, p.field) for p in problems], problems


def test_valid_networks_have_no_problems():
    for doc in (chain_doc(), confluence_doc()):
        assert _problems(doc)[0] == []


def test_round_trip_keeps_everything(tmp_path):
    doc = confluence_doc()
    doc["reaches"][0]["source"] = {"slope": "survey 2024"}  # unknown fields survive
    doc["stations"][0]["target_class"] = "II"
    doc["departments"] = [{"id": "EEB", "name": "生态环境局", "roles": ["enforcement"], "owns": ["m1"]}]
    net = network_from_document(doc)
    path = tmp_path / "n.json"
    write_network(net, path)
    again = load_network(path)
    assert network_to_document(again) == network_to_document(net)
    assert again.reaches["m1"].extra["source"] == {"slope": "survey 2024"}
    assert "生态环境局" in path.read_text(encoding="utf-8")  # readable, not \\u-escaped


# (mutation, expected (severity, element, id, field)) -- the validation catalogue
def _set(path, value):
    def f(doc):
        coll, idx, fld = path
        doc[coll][idx][fld] = value
    return f


CASES = {
    "negative length": (_set(("reaches", 0, "length_m"), -5.0), ("error", "reaches", "m1", "length_m")),
    "zero slope": (_set(("reaches", 1, "slope"), 0.0), ("error", "reaches", "t1", "slope")),
    "negative width": (_set(("reaches", 2, "bottom_width_m"), -1.0), ("error", "reaches", "m2", "bottom_width_m")),
    "station off its reach": (_set(("stations", 1, "chainage_m"), 6000.5), ("error", "stations", "S-m1", "chainage_m")),
    "station on unknown reach": (_set(("stations", 1, "reach"), "nope"), ("error", "stations", "S-m1", "reach")),
    "dangling node": (_set(("reaches", 5, "to_node"), "ghost"), ("error", "reaches", "m3", "to_node")),
    "split fractions": (_set(("reaches", 4, "flow_fraction"), 0.5), ("error", "reaches", "b1", "flow_fraction")),
    "fraction out of range": (_set(("reaches", 4, "flow_fraction"), 1.5), ("error", "reaches", "b2", "flow_fraction")),
    "bad class": (_set(("stations", 0, "target_class"), "VI"), ("error", "stations", "S-up", "target_class")),
    "negative population": (_set(("intakes", 0, "population"), -3), ("error", "intakes", "I-1", "population")),
}


@pytest.mark.parametrize("name", list(CASES))
def test_validation_catalogue(name):
    mutate, expected = CASES[name]
    doc = confluence_doc()
    mutate(doc)
    keys, problems = _problems(doc)
    assert expected in keys, [str(p) for p in problems]
    assert any(expected[2] in str(p) and expected[3] in str(p) for p in problems)


def test_cycle_is_an_error_and_graph_queries_refuse_it():
    doc = chain_doc(n=3)
    doc["reaches"].append({**doc["reaches"][0], "id": "back", "from_node": "n3", "to_node": "n1"})
    keys, problems = _problems(doc)
    assert any(k[0] == "error" and "cycle" in p.message for k, p in zip(keys, problems))
    with pytest.raises(NetworkTopologyError, match="cycle"):
        network_from_document(doc).reach_order  # noqa: B018


def test_missing_discharge_is_reported_per_reach():
    doc = chain_doc(n=2)
    doc["inflows"] = []
    keys, _ = _problems(doc)
    assert ("error", "reaches", "r0", "discharge_m3s") in keys and ("error", "reaches", "r1", "discharge_m3s") in keys
    with pytest.raises(HydraulicsError, match="'r0'"):
        network_from_document(doc).steady_discharge  # noqa: B018


def test_no_velocity_method_is_an_error():
    doc = chain_doc(n=1)
    for k in ("manning_n", "bottom_width_m", "side_slope"):
        del doc["reaches"][0][k]
    keys, _ = _problems(doc)
    assert ("error", "reaches", "r0", "velocity_ms") in keys


def test_disconnected_parts_and_isolated_nodes_are_warnings():
    doc = confluence_doc()
    doc["nodes"] += [{"id": "x1"}, {"id": "x2"}, {"id": "lonely"}]
    doc["reaches"].append({**doc["reaches"][0], "id": "other", "from_node": "x1", "to_node": "x2"})
    doc["inflows"].append({"node": "x1", "discharge_m3s": 1.0})
    keys, _ = _problems(doc)
    assert ("warning", "network", "", "reaches") in keys
    assert ("warning", "nodes", "lonely", "") in keys
    assert not [k for k in keys if k[0] == "error"]


@pytest.mark.parametrize("mutate,where", [
    (lambda d: d["reaches"][0].pop("length_m"), "reaches[m1].length_m"),
    (lambda d: d["reaches"][0].update(length_m="12 km"), "reaches[m1].length_m"),
    (lambda d: d["reaches"][0].update(length_m=float("nan")), "reaches[m1].length_m"),
    (lambda d: d["reaches"][0].update(slope=True), "reaches[m1].slope"),
    (lambda d: d["stations"].append(copy.deepcopy(d["stations"][0])), "stations[S-up].id"),
    (lambda d: d["reaches"].append(5), "reaches[#6]"),
    (lambda d: d.pop("nodes"), "network.nodes"),
    (lambda d: d.update(version=7), "network.version"),
    (lambda d: d["stations"][1].update(hj212_mn=42), "stations[S-m1].hj212_mn"),
    (lambda d: [s.update(hj212_mn="MN1") for s in d["stations"][:2]], "stations[S-m1].hj212_mn"),   # one MN, one feature
    (lambda d: d["stations"][1].update(hj212_mn="MN-1"), "stations[S-m1].hj212_mn"),    # not an HJ 212 MN
])
def test_structural_errors_name_element_and_field(mutate, where):
    doc = confluence_doc()
    mutate(doc)
    with pytest.raises(NetworkFormatError) as info:
        network_from_document(doc)
    assert any(where in str(p) for p in info.value.problems), [str(p) for p in info.value.problems]


def test_invalid_json_file_gives_line_and_column(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('{"nodes": [}', encoding="utf-8")
    with pytest.raises(NetworkFormatError, match="line 1 column"):
        read_document(p)


def test_require_valid_lists_all_errors():
    doc = confluence_doc()
    doc["reaches"][4]["length_m"] = -1.0  # b2 carries no feature, so no consequential chainage error
    doc["stations"][0]["reach"] = "zzz"
    with pytest.raises(NetworkValidationError) as info:
        require_valid(network_from_document(doc))
    assert len(info.value.problems) == 2


def test_hj212_mn_is_kept_on_stations_and_dischargers():
    doc = confluence_doc()
    doc["stations"][0]["hj212_mn"] = "010000A8900016F000169DC0"
    net = network_from_document(doc)
    assert net.stations["S-up"].attrs["hj212_mn"] == "010000A8900016F000169DC0"
    assert network_to_document(net)["stations"][0]["hj212_mn"] == "010000A8900016F000169DC0"


def test_graph_queries():
    net = network_from_document(confluence_doc())
    assert net.all_upstream("m2") == {"m1", "t1"}
    assert net.all_downstream("t1") == {"m2", "b1", "b2", "m3"}
    assert net.reach_order.index("m1") < net.reach_order.index("m2") < net.reach_order.index("b2") < net.reach_order.index("m3")
    assert net.outlets() == ["o"]
    q = net.steady_discharge
    assert q["m2"] == 12.0 and q["b1"] == pytest.approx(8.4) and q["m3"] == pytest.approx(12.0)
    assert net.split_fraction("b2") == pytest.approx(0.3)
    assert net.is_upstream(net.feature("S-trib"), net.feature("I-1"))
    assert not net.is_upstream(net.feature("I-1"), net.feature("S-trib"))
    net2 = net.with_discharges({"m1": 20.0})
    assert net2.steady_discharge["m2"] == 24.0 and net.steady_discharge["m2"] == 12.0


def test_demo_basins_are_valid():
    from server.cli import demo_basin_path

    for name in ("ruxi", "puhe"):
        doc = json.loads(demo_basin_path(name).read_text(encoding="utf-8"))
        net, problems = validate_document(doc)
        assert problems == [], [str(p) for p in problems]
        net.reach_state()  # hydraulics computable on every reach

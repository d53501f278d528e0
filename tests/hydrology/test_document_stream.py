"""Reading a network file in chunks (hydrology.document_stream) gives what parsing it whole gives.

The reference is :func:`network_from_document` on ``json.loads`` of the same text: the same network
(compared as documents, so every field, order and unknown field counts) for valid files, and the same
problems for invalid ones (the fast path gives up and the whole parse reports them).
"""

import json

import pytest

import hydrology.document_stream as stream
from hydrology.document import load_network, network_from_document, network_to_document
from hydrology.exceptions import NetworkFormatError
from hydrology.synthetic import generate_network


def _doc(seed=1):
    doc = generate_network(200, n_stations=4, n_dischargers=4, n_intakes=2, seed=seed, n_outlets=2,
                           split_fraction_share=0.1)
    doc["reaches"][3]["name"] = "清水河"
    doc["reaches"][4]["geometry"] = [[1.0, 2.0], [3.5, 4.0]]
    doc["reaches"][5]["survey"] = {"by": "bureau", "year": 2024}
    doc["nodes"][6]["name"] = "weir"
    doc["inflows"].append(dict(doc["inflows"][0]))  # two inflows at one node add up
    return doc


def _write(tmp_path, doc, **kw):
    path = tmp_path / "net.json"
    path.write_text(json.dumps(doc, ensure_ascii=False, **kw), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(stream, "CHUNK", 7)  # many chunks, and a last one that is not full


@pytest.mark.parametrize(("seed", "indent"), [(1, None), (2, 1), (3, 4)])
def test_a_valid_file_streams_to_the_network_of_the_whole_parse(tmp_path, seed, indent):
    doc = _doc(seed)
    path = _write(tmp_path, doc, indent=indent)
    streamed = stream.stream_network(path.read_text(encoding="utf-8"))
    assert streamed is not None  # the fast path applied
    whole = network_from_document(json.loads(path.read_text(encoding="utf-8")))
    assert network_to_document(streamed) == network_to_document(whole)
    assert streamed.reach_order == whole.reach_order
    assert streamed.steady_discharge == whole.steady_discharge
    assert network_to_document(load_network(path)) == network_to_document(whole)


def _reaches_first(doc):
    return {"reaches": doc.pop("reaches"), **doc}


def _dup_reach(doc):
    doc["reaches"].append(dict(doc["reaches"][0]))
    return doc


def _ghost(doc):
    doc["reaches"][0]["to_node"] = "nowhere"
    return doc


def _bad_length(doc):
    doc["reaches"][9]["length_m"] = "long"
    return doc


def _bad_station(doc):
    doc["stations"][0]["chainage_m"] = None
    return doc


@pytest.mark.parametrize("mutate", [_reaches_first, _dup_reach, _ghost, _bad_length])
def test_what_the_fast_path_refuses_is_parsed_whole(tmp_path, mutate):
    text = _write(tmp_path, mutate(_doc())).read_text(encoding="utf-8")
    assert stream.stream_network(text) is None
    try:
        whole = network_to_document(network_from_document(json.loads(text)))
    except NetworkFormatError as err:
        with pytest.raises(NetworkFormatError) as got:
            load_network(tmp_path / "net.json")
        assert got.value.problems == err.problems
    else:
        assert network_to_document(load_network(tmp_path / "net.json")) == whole


def test_problems_outside_the_arrays_are_those_of_the_whole_parse(tmp_path):
    path = _write(tmp_path, _bad_station(_doc()))
    with pytest.raises(NetworkFormatError) as whole:
        network_from_document(json.loads(path.read_text(encoding="utf-8")))
    with pytest.raises(NetworkFormatError) as got:
        load_network(path)
    assert got.value.problems == whole.value.problems
    assert [(p.element, p.field) for p in got.value.problems] == [("stations", "chainage_m")]


@pytest.mark.parametrize("text", [
    '{"nodes": [], "reaches": [1,]}',            # trailing comma: a JSON error
    '{"nodes": [], "nodes": [], "reaches": []}',  # a repeated key (json.loads keeps the last)
    '{"nodes": [], "reaches": []} x',            # text after the document
    '[]',
])
def test_odd_text_is_left_to_the_whole_parse(text):
    assert stream.stream_network(text) is None

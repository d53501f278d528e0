"""The chunked msgspec reader (hydrology.document_stream) against the reference it replaces:
``network_from_document(json.loads(text))``, the path every document took before.

- good documents load to identical columns (every array compared exactly, NaN where unset) and equal
  features, departments and top-level fields, with chunks of a few items so that every list spans
  many chunks and a chunk boundary falls inside each;
- bad documents raise the same NetworkFormatError with the same problems in the same order, including
  what msgspec refuses and json.loads takes (NaN, 1e400, a lone surrogate) and duplicate ids split
  across chunks;
- decimal strings that are hard to round (17-25 significant digits, subnormals, halfway cases) decode to
  the float ``json.loads`` gives, bit for bit;
- no more than a chunk of items is decoded at a time.
"""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hydrology import document_columns
from hydrology.document import load_network, network_from_document, network_to_document, parse_json
from hydrology.document_stream import network_from_json
from hydrology.exceptions import NetworkFormatError
from hydrology.synthetic import generate_network

#: items per chunk in these tests: 300-reach documents then span ~40 chunks
SMALL_CHUNK = 7


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(document_columns, "CHUNK_ITEMS", SMALL_CHUNK)


def _doc(seed=1):
    doc = generate_network(300, n_stations=5, n_dischargers=5, n_intakes=2, seed=seed, n_outlets=2,
                           split_fraction_share=0.1)
    doc["reaches"][3]["name"] = "清水河"
    doc["reaches"][4]["geometry"] = [[1.0, 2.0], [3.5, 4.0, 9.0]]
    doc["reaches"][5]["fully_mixed"] = True
    doc["reaches"][6]["survey"] = {"by": "bureau", "year": 2024}
    doc["reaches"][8]["velocity_ms"] = 1  # an int where a float is usual
    doc["nodes"][7]["name"] = "confluence 7"
    doc["nodes"][9]["elevation_m"] = 12.5
    doc["inflows"].append({"node": doc["inflows"][0]["node"], "discharge_m3s": 0.25})  # two inflows at one node
    doc["departments"] = [{"id": "EEB", "name": "生态环境局", "owns": [r["id"] for r in doc["reaches"][:50]],
                           "roles": ["enforcement"], "phone": "12369"}]
    doc["survey_date"] = "2026-11-30"
    return doc


def _encode(doc):
    return json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8")


def _assert_same_columns(a, b):
    ra, rb = a.reaches, b.reaches
    assert ra.id_index.ids == rb.id_index.ids
    np.testing.assert_array_equal(ra.num, rb.num)  # NaN == NaN here: unset fields match
    assert ra.num.dtype == rb.num.dtype == np.float64
    for name in ("from_row", "to_row", "fully_mixed"):
        np.testing.assert_array_equal(getattr(ra, name), getattr(rb, name))
        assert getattr(ra, name).dtype == getattr(rb, name).dtype
    assert ra.names == rb.names and ra.extras == rb.extras
    assert ra.geometry.keys() == rb.geometry.keys()
    for k in ra.geometry:
        np.testing.assert_array_equal(ra.geometry[k], rb.geometry[k])
    na, nb = a.nodes, b.nodes
    assert na.id_index.ids == nb.id_index.ids and na.n_declared == nb.n_declared
    np.testing.assert_array_equal(na.x, nb.x)
    np.testing.assert_array_equal(na.y, nb.y)
    assert na.names == nb.names and na.extras == nb.extras
    np.testing.assert_array_equal(a.inflows.rows, b.inflows.rows)
    np.testing.assert_array_equal(a.inflows.discharge_m3s, b.inflows.discharge_m3s)
    assert a.features == b.features and a.departments == b.departments
    for kind in a.features:
        for fid, f in a.features[kind].items():
            assert f.attrs == b.features[kind][fid].attrs
    assert (a.name, a.crs, a.notes, a.extra) == (b.name, b.crs, b.notes, b.extra)


@pytest.mark.parametrize("seed", (1, 2))
def test_good_documents_load_to_identical_columns(seed):
    doc = _doc(seed)
    data = _encode(doc)
    reference = network_from_document(json.loads(data))
    got = network_from_json(data)
    assert len(got.reaches) == 300 and len(got.reaches) > 10 * SMALL_CHUNK
    _assert_same_columns(got, reference)
    assert network_to_document(got) == network_to_document(reference)


def test_load_network_reads_files_through_the_stream(tmp_path):
    doc = _doc()
    path = tmp_path / "n.json"
    path.write_bytes(_encode(doc))
    _assert_same_columns(load_network(path), network_from_document(json.loads(path.read_text(encoding="utf-8"))))


def _problems_both_ways(data):
    with pytest.raises(NetworkFormatError) as ref:
        network_from_document(json.loads(data))
    with pytest.raises(NetworkFormatError) as got:
        network_from_json(data)
    return ref.value.problems, got.value.problems


def _mutated(mutate):
    doc = _doc()
    mutate(doc)
    return _encode(doc)


BAD = {
    "duplicate reach ids in different chunks": lambda d: d["reaches"][250].update(id=d["reaches"][2]["id"]),
    "duplicate node ids in different chunks": lambda d: d["nodes"][200].update(id=d["nodes"][1]["id"]),
    "a string length": lambda d: d["reaches"][40].update(length_m="12"),
    "a missing from_node and a bad slope": lambda d: (d["reaches"][41].pop("from_node"),
                                                       d["reaches"][41].update(slope=True)),
    "a reach that is not an object": lambda d: d["reaches"].insert(100, 5),
    "nodes not a list": lambda d: d.update(nodes={"a": 1}),
    "reaches missing": lambda d: d.pop("reaches"),
    "a bad inflow": lambda d: d["inflows"][3].update(discharge_m3s=None),
    "a 400-digit number": lambda d: d["reaches"][42].update(length_m=10 ** 400),
    "a bad station and a bad department": lambda d: (d["stations"][0].update(chainage_m="x"),
                                                     d["departments"][0].pop("name")),
    "a bad version": lambda d: d.update(version=2),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_documents_give_the_same_problems(name):
    ref, got = _problems_both_ways(_mutated(BAD[name]))
    assert ref  # the mutation is a problem at all
    assert got == ref


@pytest.mark.parametrize("text, expected", [
    ('NaN', "must be finite"), ('Infinity', "must be finite"), ('1e400', "must be finite"),
])
def test_numbers_msgspec_refuses_give_the_json_loads_problems(text, expected):
    data = _encode(_doc()).replace(b'"length_m": ', b'"length_m": ' + text.encode() + b', "x_": ', 1)
    ref, got = _problems_both_ways(data)
    assert got == ref
    assert ref[0].field == "length_m" and expected in ref[0].message


def test_a_lone_surrogate_and_invalid_json_are_handled_as_before():
    data = _encode(_doc()).replace(b'"id": "r5"', b'"id": "r5\\ud800"', 1)
    assert b"\\ud800" in data
    reference = network_from_document(json.loads(data))
    _assert_same_columns(network_from_json(data), reference)
    with pytest.raises(NetworkFormatError) as ref:
        parse_json(b'{"nodes": [1,}')  # json.loads with the message every caller gave before
    with pytest.raises(NetworkFormatError) as got:
        network_from_json(b'{"nodes": [1,}')
    assert got.value.problems == ref.value.problems and "line 1 column" in got.value.problems[0].message
    ref2, got2 = _problems_both_ways(b"[1, 2]")  # not an object
    assert got2 == ref2


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.from_regex(r"-?[1-9][0-9]{16,24}(\.[0-9]{1,5})?([eE][-+]?[0-9]{1,3})?", fullmatch=True),
    st.from_regex(r"[0-9]\.[0-9]{15,22}e-3[0-2][0-9]", fullmatch=True),  # subnormals and near the bottom
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
))
def test_hard_decimals_decode_to_the_json_loads_float(text):
    expected = json.loads(text)
    if isinstance(expected, float) and not np.isfinite(expected):
        return  # beyond the float range: the json.loads path decides (test above)
    data = b'{"nodes": [{"id": "a"}, {"id": "b"}], "reaches": [{"id": "r", "from_node": "a", "to_node": "b", ' \
           b'"length_m": 1.0, "slope": ' + text.encode() + b'}]}'
    got = network_from_json(data).reaches.column("slope")[0]
    assert float(got).hex() == float(expected).hex()


def test_no_more_than_a_chunk_is_decoded_at_a_time(monkeypatch):
    decoded = []
    original = document_columns.ItemChunks.chunks

    def spy(self):
        for part in original(self):
            decoded.append(len(part))
            yield part

    monkeypatch.setattr(document_columns.ItemChunks, "chunks", spy)
    doc = _doc()
    network_from_json(_encode(doc))
    assert max(decoded) == SMALL_CHUNK
    assert sum(decoded) == len(doc["nodes"]) + len(doc["reaches"]) + len(doc["inflows"])

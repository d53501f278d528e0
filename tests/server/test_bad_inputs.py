"""A catalogue of bad inputs: each gets the right status and a message naming the field; afterwards
the server is healthy and its state unchanged (no half-applied write).

Issue 13 extended it to the testers' catalogue (over 300 cases): every numeric field of the network
document with absurd values (1e308, negative, zero where the range is open, strings, booleans,
lists, 400-digit numbers, nulls), malformed document structure, readings with times in year 1 or
2286 and absurd values (rejected by row, the stream goes on), unary requests out of range, and
bytes that are not valid protobuf or UTF-8. None may be INTERNAL."""

import copy
import json
import time

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from service_util import TOKENS, make_server

from hydrology.validate import REACH_RANGES
from server.cli import demo_basin_path
from server.client import RivertraceClient, field_violations
from server.convert import timestamp
from server.generated.rivertrace.v1 import alerts_pb2, common_pb2, incidents_pb2, monitoring_pb2, network_pb2
from tracer.scenarios import ruxi_replay

RUXI = json.loads(demo_basin_path("ruxi").read_text(encoding="utf-8"))
T0 = timestamp(1752540000 * 10**9)
C = grpc.StatusCode


def doc_with(mutate):
    d = copy.deepcopy(RUXI)
    mutate(d)
    return json.dumps(d)


def put_doc(text):
    return lambda c: c.networks.PutNetwork(network_pb2.PutNetworkRequest(name="ruxi", document_json=text), **c._kw())


def _reach(d, i, **kw):
    d["reaches"][i].update(kw)


NETWORK_CASES = {
    "cycle": (put_doc(doc_with(lambda d: d["reaches"].append({**d["reaches"][-1], "id": "back", "from_node": d["reaches"][-1]["to_node"], "to_node": d["reaches"][-1]["from_node"]}))), C.INVALID_ARGUMENT, "cycle"),
    "dangling node": (put_doc(doc_with(lambda d: _reach(d, 0, to_node="ghost"))), C.INVALID_ARGUMENT, "to_node"),
    "duplicate reach id": (put_doc(doc_with(lambda d: d["reaches"].append(copy.deepcopy(d["reaches"][0])))), C.INVALID_ARGUMENT, "duplicate"),
    "negative length": (put_doc(doc_with(lambda d: _reach(d, 1, length_m=-3))), C.INVALID_ARGUMENT, "length_m"),
    "NaN length": (put_doc(doc_with(lambda d: _reach(d, 1, length_m=float("nan")))), C.INVALID_ARGUMENT, "length_m"),
    "string length": (put_doc(doc_with(lambda d: _reach(d, 1, length_m="3 km"))), C.INVALID_ARGUMENT, "length_m"),
    "missing length": (put_doc(doc_with(lambda d: d["reaches"][1].pop("length_m"))), C.INVALID_ARGUMENT, "length_m"),
    "zero slope": (put_doc(doc_with(lambda d: _reach(d, 2, slope=0))), C.INVALID_ARGUMENT, "slope"),
    "station off its reach": (put_doc(doc_with(lambda d: d["stations"][0].update(chainage_m=1e6))), C.INVALID_ARGUMENT, "chainage_m"),
    "station on unknown reach": (put_doc(doc_with(lambda d: d["stations"][0].update(reach="nope"))), C.INVALID_ARGUMENT, "reach"),
    "bad target class": (put_doc(doc_with(lambda d: d["stations"][0].update(target_class="VII"))), C.INVALID_ARGUMENT, "target_class"),
    "negative population": (put_doc(doc_with(lambda d: d["intakes"][0].update(population=-1))), C.INVALID_ARGUMENT, "population"),
    "no discharge anywhere": (put_doc(doc_with(lambda d: d.update(inflows=[]))), C.INVALID_ARGUMENT, "discharge_m3s"),
    "wrong format version": (put_doc(doc_with(lambda d: d.update(version=9))), C.INVALID_ARGUMENT, "version"),
    "not JSON": (put_doc("{nodes: ["), C.INVALID_ARGUMENT, "document_json"),
    "JSON array": (put_doc("[1, 2]"), C.INVALID_ARGUMENT, "document_json"),
    "empty name": (lambda c: c.networks.PutNetwork(network_pb2.PutNetworkRequest(name="", document_json=json.dumps(RUXI)), **c._kw()), C.INVALID_ARGUMENT, "name"),
    "no source": (lambda c: c.networks.PutNetwork(network_pb2.PutNetworkRequest(name="x"), **c._kw()), C.INVALID_ARGUMENT, "source"),
    "bad geopackage": (lambda c: c.networks.PutNetwork(network_pb2.PutNetworkRequest(name="x", geopackage=b"not sqlite"), **c._kw()), C.INVALID_ARGUMENT, "geopackage"),
    "unknown network": (lambda c: c.networks.GetNetwork(network_pb2.GetNetworkRequest(name="atlantis"), **c._kw()), C.NOT_FOUND, "atlantis"),
    "unknown version": (lambda c: c.networks.GetNetwork(network_pb2.GetNetworkRequest(name="ruxi", version=99), **c._kw()), C.NOT_FOUND, "version 99"),
    "features of unknown network": (lambda c: c.networks.ListFeatures(network_pb2.ListFeaturesRequest(name="atlantis"), **c._kw()), C.NOT_FOUND, "atlantis"),
    "flows: unknown reach": (lambda c: c.networks.UpdateFlows(network_pb2.UpdateFlowsRequest(name="ruxi", reach_flows=[network_pb2.ReachFlow(reach_id="nope", discharge_m3s=3)]), **c._kw()), C.INVALID_ARGUMENT, "reach_flows[0].reach_id"),
    "flows: negative": (lambda c: c.networks.UpdateFlows(network_pb2.UpdateFlowsRequest(name="ruxi", reach_flows=[network_pb2.ReachFlow(reach_id="RX-R03", discharge_m3s=-2)]), **c._kw()), C.INVALID_ARGUMENT, "reach_flows[0].discharge_m3s"),
    "flows: unknown structure": (lambda c: c.networks.UpdateFlows(network_pb2.UpdateFlowsRequest(name="ruxi", structure_releases=[network_pb2.StructureRelease(structure_id="nope", release_m3s=3)]), **c._kw()), C.INVALID_ARGUMENT, "structure_releases[0].structure_id"),
    "flows: unknown network": (lambda c: c.networks.UpdateFlows(network_pb2.UpdateFlowsRequest(name="atlantis"), **c._kw()), C.NOT_FOUND, "atlantis"),
}


BIG = "1" * 400  # a 400-digit integer literal, spliced into the JSON text
ABSURD = {"1e308": 1e308, "negative": -1.0, "string": "3 km", "true": True, "list": [], "object": {}, "400 digits": "__BIG__"}


def doc_text_with(mutate):
    """The mutated document as JSON text, with "__BIG__" replaced by a 400-digit number."""
    return doc_with(mutate).replace('"__BIG__"', BIG)


def _set(collection, i, field, value):
    def m(d):
        if value is None and field in d[collection][i]:
            d[collection][i][field] = None
        else:
            d[collection][i][field] = value
    return m


def _doc_case(collection, i, field, value, text):
    return (put_doc(doc_text_with(_set(collection, i, field, value))), C.INVALID_ARGUMENT, text)


# every reach field with every absurd value; zero where the range excludes it
for _f, (_lo, _hi, _lo_open, _hi_open, _u) in REACH_RANGES.items():
    for _name, _v in ABSURD.items():
        NETWORK_CASES[f"reach {_f} = {_name}"] = _doc_case("reaches", 1, _f, _v, f".{_f}")
    if _lo_open:
        NETWORK_CASES[f"reach {_f} = 0"] = _doc_case("reaches", 1, _f, 0, f".{_f}")
for _f in ("id", "from_node", "to_node", "length_m"):
    NETWORK_CASES[f"reach {_f} = null"] = _doc_case("reaches", 1, _f, None, _f)
NETWORK_CASES["reach width 0 with vertical sides"] = (put_doc(doc_with(lambda d: _reach(d, 1, bottom_width_m=0, side_slope=0))),
                                                      C.INVALID_ARGUMENT, "bottom_width_m")
NETWORK_CASES["reach geometry with 1e308"] = _doc_case("reaches", 1, "geometry", [[1e308, 1], [2, 3]], "geometry")
NETWORK_CASES["reach geometry not points"] = _doc_case("reaches", 1, "geometry", [1, 2], "geometry")
for _f in ("x", "y"):
    for _name in ("1e308", "string", "true", "400 digits"):
        NETWORK_CASES[f"node {_f} = {_name}"] = _doc_case("nodes", 0, _f, ABSURD[_name], f".{_f}")
for _name, _v in (("null", None), ("number", 5), ("empty", "")):
    NETWORK_CASES[f"node id = {_name}"] = _doc_case("nodes", 0, "id", _v, "id")
# features: placement and own fields
for _coll in ("stations", "dischargers", "intakes", "structures", "sites"):
    for _name in ("1e308", "negative", "string", "true", "400 digits"):
        NETWORK_CASES[f"{_coll} chainage_m = {_name}"] = _doc_case(_coll, 0, "chainage_m", ABSURD[_name], "chainage_m")
    NETWORK_CASES[f"{_coll} chainage_m = null"] = _doc_case(_coll, 0, "chainage_m", None, "chainage_m")
    for _name, _v in (("null", None), ("number", 5), ("empty", ""), ("unknown", "nope")):
        NETWORK_CASES[f"{_coll} reach = {_name}"] = _doc_case(_coll, 0, "reach", _v, "reach")
    for _name, _v in (("null", None), ("number", 5), ("empty", "")):
        NETWORK_CASES[f"{_coll} id = {_name}"] = _doc_case(_coll, 0, "id", _v, "id")
OWN_FIELD_CASES = {
    ("dischargers", "effluent_discharge_m3s"): {"1e308": 1e308, "negative": -1.0, "string": "x", "400 digits": "__BIG__"},
    ("dischargers", "violations"): {"negative": -1, "fraction": 1.5, "huge": 10**7, "400 digits": "__BIG__"},
    ("dischargers", "kind"): {"null": None, "number": 5, "empty": ""},
    ("dischargers", "pollutants"): {"string": "COD", "numbers": [1]},
    ("dischargers", "permit_limits_mg_l"): {"number": 5, "list": ["COD"]},
    ("intakes", "population"): {"negative": -1, "fraction": 1.5, "1e308": 1e308, "ten billion": 10**10, "400 digits": "__BIG__"},
    ("intakes", "standard_class"): {"VI": "VI", "number": 3},
    ("stations", "target_class"): {"VII": "VII", "number": 3, "empty": ""},
    ("stations", "parameters"): {"string": "COD"},
    ("structures", "normal_release_m3s"): {"negative": -1.0, "1e308": 1e308},
    ("structures", "max_release_m3s"): {"negative": -1.0, "1e308": 1e308, "below normal": 0.5},
    ("sites", "build_time_s"): {"negative": -1.0, "1e308": 1e308, "null": None, "string": "1h", "a year": 3.2e7},
    ("sites", "kind"): {"null": None, "number": 5},
}
for (_coll, _f), _vals in OWN_FIELD_CASES.items():
    for _name, _v in _vals.items():
        NETWORK_CASES[f"{_coll} {_f} = {_name}"] = _doc_case(_coll, 0, _f, _v, _f)
for _name, _v in (("1e308", 1e308), ("negative", -1.0), ("zero", 0), ("string", "x"), ("null", None), ("400 digits", "__BIG__")):
    NETWORK_CASES[f"inflow discharge_m3s = {_name}"] = _doc_case("inflows", 0, "discharge_m3s", _v, "discharge_m3s")
NETWORK_CASES["inflow at unknown node"] = _doc_case("inflows", 0, "node", "ghost", "node")
NETWORK_CASES["department without name"] = _doc_case("departments", 0, "name", None, "name")
NETWORK_CASES["department roles a string"] = _doc_case("departments", 0, "roles", "x", "roles")
# document structure
for _key, _v in (("sites", 1), ("sites", "x"), ("reaches", 1), ("reaches", [1]), ("nodes", {}), ("nodes", [None]),
                 ("stations", "x"), ("stations", [[]]), ("departments", 5), ("inflows", {}), ("dischargers", True)):
    NETWORK_CASES[f"document {_key} = {json.dumps(_v)}"] = (put_doc(doc_with(lambda d, k=_key, v=_v: d.update({k: v}))),
                                                            C.INVALID_ARGUMENT, _key)
NETWORK_CASES["no reaches key"] = (put_doc(doc_with(lambda d: d.pop("reaches"))), C.INVALID_ARGUMENT, "reaches")
NETWORK_CASES["format unknown"] = (put_doc(doc_with(lambda d: d.update(format="shapefile"))), C.INVALID_ARGUMENT, "format")
NETWORK_CASES["version a string"] = (put_doc(doc_with(lambda d: d.update(version="1"))), C.INVALID_ARGUMENT, "version")
NETWORK_CASES["empty object"] = (put_doc("{}"), C.INVALID_ARGUMENT, "nodes")
for _name, _text in (("null", "null"), ("string", '"network"'), ("number", "123"), ("empty text", ""),
                     ("trailing garbage", json.dumps(RUXI) + "}"), ("single quotes", "{'nodes': []}")):
    NETWORK_CASES[f"document_json {_name}"] = (put_doc(_text), C.INVALID_ARGUMENT, "document_json")
NETWORK_CASES["nested 100,000 deep"] = (put_doc("[" * 100_000 + "]" * 100_000), C.INVALID_ARGUMENT, "document_json")
NETWORK_CASES["nested 40 deep in notes"] = (put_doc(doc_with(lambda d: d.update(notes=json.loads("[" * 40 + "]" * 40)))),
                                            C.INVALID_ARGUMENT, "nests deeper")
NETWORK_CASES["400 digits in notes"] = (put_doc(doc_text_with(lambda d: d.update(extra_field="__BIG__"))), C.INVALID_ARGUMENT,
                                        "extra_field")
NETWORK_CASES["NaN in an extra field"] = (put_doc(doc_with(lambda d: d.update(extra_field=float("nan")))), C.INVALID_ARGUMENT,
                                          "extra_field")
NETWORK_CASES["Infinity in a source note"] = (put_doc(doc_with(lambda d: d["reaches"][0].update(source={"x": float("inf")}))),
                                              C.INVALID_ARGUMENT, "reaches[0].source.x")
NETWORK_CASES["digits beyond Python's limit"] = (put_doc('{"nodes": ' + "9" * 5000 + "}"), C.INVALID_ARGUMENT, "document_json")
NETWORK_CASES["name of 10,000 characters"] = (lambda c: c.networks.PutNetwork(network_pb2.PutNetworkRequest(
    name="n" * 10_000, document_json=json.dumps(RUXI)), **c._kw()), C.INVALID_ARGUMENT, "name")
NETWORK_CASES["validate: nested 100,000 deep"] = (lambda c: c.networks.ValidateNetwork(network_pb2.ValidateNetworkRequest(
    document_json="[" * 100_000 + "]" * 100_000), **c._kw()), C.INVALID_ARGUMENT, "document_json")
NETWORK_CASES["validate: not JSON"] = (lambda c: c.networks.ValidateNetwork(network_pb2.ValidateNetworkRequest(
    document_json="{"), **c._kw()), C.INVALID_ARGUMENT, "document_json")
NETWORK_CASES["get: name of 10,000 characters"] = (lambda c: c.networks.GetNetwork(network_pb2.GetNetworkRequest(
    name="n" * 10_000), **c._kw()), C.INVALID_ARGUMENT, "name")
NETWORK_CASES["get: no name"] = (lambda c: c.networks.GetNetwork(network_pb2.GetNetworkRequest(), **c._kw()),
                                 C.INVALID_ARGUMENT, "name")
NETWORK_CASES["get: negative version"] = (lambda c: c.networks.GetNetwork(network_pb2.GetNetworkRequest(
    name="ruxi", version=-1), **c._kw()), C.NOT_FOUND, "version -1")
for _k in (99, -1, 2**31 - 1):
    NETWORK_CASES[f"features: kind {_k}"] = (lambda c, k=_k: c.networks.ListFeatures(network_pb2.ListFeaturesRequest(
        name="ruxi", kind=k), **c._kw()), C.INVALID_ARGUMENT, "kind")


def _flows(**kw):
    return lambda c: c.networks.UpdateFlows(network_pb2.UpdateFlowsRequest(name="ruxi", **kw), **c._kw())


for _name, _v in (("1e308", 1e308), ("NaN", float("nan")), ("inf", float("inf")), ("zero", 0.0), ("minus zero", -0.0),
                  ("a million", 1e6)):
    NETWORK_CASES[f"flows: discharge {_name}"] = (_flows(reach_flows=[network_pb2.ReachFlow(reach_id="RX-R03",
                                                   discharge_m3s=_v)]), C.INVALID_ARGUMENT, "reach_flows[0].discharge_m3s")
for _name, _v in (("1e308", 1e308), ("NaN", float("nan")), ("negative", -1.0)):
    NETWORK_CASES[f"flows: release {_name}"] = (_flows(structure_releases=[network_pb2.StructureRelease(
        structure_id="RX-RES", release_m3s=_v)]), C.INVALID_ARGUMENT, "structure_releases[0].release_m3s")
NETWORK_CASES["flows: no name"] = (lambda c: c.networks.UpdateFlows(network_pb2.UpdateFlowsRequest(), **c._kw()),
                                   C.INVALID_ARGUMENT, "name")


def ingest_one(network="ruxi", **reading):
    r = {"station_id": "RX-UP", "parameter": "petroleum", "time": T0, "value": 0.02, "unit": "mg/L", **reading}
    r = {k: v for k, v in r.items() if v is not None}
    return lambda c: list(c.monitoring.IngestReadings(iter([monitoring_pb2.ReadingBatch(
        network=network, batch_id=1, readings=[monitoring_pb2.Reading(**r)])]), **c._kw()))


STREAM_CASES = {
    "ingest: unknown network": (ingest_one(network="atlantis"), C.NOT_FOUND, "atlantis"),
    "ingest: no network": (ingest_one(network=""), C.INVALID_ARGUMENT, "network"),
    "readings of unknown network": (lambda c: c.monitoring.ListReadings(monitoring_pb2.ListReadingsRequest(network="atlantis"), **c._kw()), C.NOT_FOUND, "atlantis"),
}
# rows refused inside an acknowledged batch: (reading fields, field named in the rejection)
ROW_CASES = {
    "unknown station": ({"station_id": "NOPE"}, "station_id"),
    "unknown parameter": ({"parameter": "unobtainium"}, "parameter"),
    "unparseable unit": ({"unit": "furlongs"}, "unit"),
    "wrong unit for the item": ({"unit": "degC"}, "unit"),
    "negative concentration": ({"value": -0.5}, "value"),
    "DO above 25 mg/L": ({"parameter": "DO", "value": 40.0}, "value"),
    "NaN value": ({"value": float("nan")}, "value"),
    "missing time": ({"time": None}, "time"),
    "time in year 1": ({"time": Timestamp(seconds=-62135596800)}, "time"),
    "time in year 2286": ({"time": Timestamp(seconds=9_999_999_999)}, "time"),
    "time in year 9999": ({"time": Timestamp(seconds=253402300799)}, "time"),
    "time 2^40 s": ({"time": Timestamp(seconds=2**40)}, "time"),
    "time a week ahead": ({"time": "week ahead"}, "time"),
    "time before 1970": ({"time": Timestamp(seconds=-86400)}, "time"),
    "value 1e308": ({"value": 1e308}, "value"),
    "value -1e308": ({"value": -1e308}, "value"),
    "value inf": ({"value": float("inf")}, "value"),
    "value 1e6 mg/L": ({"value": 1e6}, "value"),
    "value 1e308 in g/L": ({"value": 1e308, "unit": "g/L"}, "value"),
    "discharge a million m3/s": ({"parameter": "discharge", "unit": "m3/s", "value": 1e6}, "value"),
    "discharge -1e308": ({"parameter": "discharge", "unit": "m3/s", "value": -1e308}, "value"),
    "temperature 1e308": ({"parameter": "temperature", "unit": "degC", "value": 1e308}, "value"),
    "temperature -50": ({"parameter": "temperature", "unit": "degC", "value": -50.0}, "value"),
    "DO 1e308": ({"parameter": "DO", "value": 1e308}, "value"),
    "empty station": ({"station_id": ""}, "station_id"),
    "station id of 200 characters": ({"station_id": "S" * 200}, "station_id"),
    "parameter of 200 characters": ({"parameter": "P" * 200}, "parameter"),
    "unit of 200 characters": ({"unit": "u" * 200}, "unit"),
    "flag of 200 characters": ({"flag": "f" * 200}, "flag"),
    "empty unit": ({"unit": ""}, "unit"),
    "empty parameter": ({"parameter": ""}, "parameter"),
}
INCIDENT_CASES = {
    "unknown incident": (lambda c: c.incident("nope"), C.NOT_FOUND, "nope"),
    "trace: unknown station": (lambda c: c.trace("ruxi", "NOPE", "petroleum"), C.NOT_FOUND, "NOPE"),
    "trace: nothing seen": (lambda c: c.trace("ruxi", "RX-UP", "petroleum"), C.FAILED_PRECONDITION, "nothing to trace"),
    "trace: unknown parameter": (lambda c: c.trace("ruxi", "RX-OILSPOT", "unobtainium"), C.INVALID_ARGUMENT, "unobtainium"),
    "trace: unknown network": (lambda c: c.trace("atlantis", "RX-OILSPOT", "petroleum"), C.NOT_FOUND, "atlantis"),
    "forecast: unknown discharger": (lambda c: c.forecast("ruxi", "nope", 1.0, "COD"), C.NOT_FOUND, "nope"),
    "forecast: negative mass": (lambda c: c.forecast("ruxi", "RX-FOOD-1", -1.0, "COD"), C.INVALID_ARGUMENT, "mass_kg"),
    "forecast: no pollutant": (lambda c: c.forecast("ruxi", "RX-FOOD-1", 1.0, ""), C.INVALID_ARGUMENT, "pollutant"),
    "forecast: unknown pollutant": (lambda c: c.forecast("ruxi", "RX-FOOD-1", 1.0, "unobtainium"), C.INVALID_ARGUMENT, "unobtainium"),
    "forecast: off its reach": (lambda c: c.incident_service.Forecast(incidents_pb2.ForecastRequest(network="ruxi", location=common_pb2.Location(reach_id="RX-R03", chainage_m=1e6), mass_kg=1, pollutant="COD"), **c._kw()), C.INVALID_ARGUMENT, "outside reach"),
    "forecast: unknown reach": (lambda c: c.incident_service.Forecast(incidents_pb2.ForecastRequest(network="ruxi", location=common_pb2.Location(reach_id="nope"), mass_kg=1, pollutant="COD"), **c._kw()), C.NOT_FOUND, "nope"),
    "forecast: no location": (lambda c: c.incident_service.Forecast(incidents_pb2.ForecastRequest(network="ruxi", mass_kg=1, pollutant="COD"), **c._kw()), C.INVALID_ARGUMENT, "where"),
    "plan: unknown incident": (lambda c: c.incident_service.Plan(incidents_pb2.PlanRequest(incident_id="nope"), **c._kw()), C.NOT_FOUND, "nope"),
    "action: unknown incident": (lambda c: c.update_action("nope", "a", "done"), C.NOT_FOUND, "nope"),
    "action: no status": (lambda c: c.incident_service.UpdateAction(incidents_pb2.UpdateActionRequest(incident_id="x", action_id="a"), **c._kw()), C.INVALID_ARGUMENT, "status"),
    "close: unknown incident": (lambda c: c.close_incident("nope"), C.NOT_FOUND, "nope"),
    "target: bad address": (lambda c: c.register_hub("h", grpc_address="not an address"), C.INVALID_ARGUMENT, "grpc_address"),
    "target: bad url": (lambda c: c.register_hub("h", webhook_url="ftp://hub"), C.INVALID_ARGUMENT, "webhook_url"),
    "target: no endpoint": (lambda c: c.register_hub("h"), C.INVALID_ARGUMENT, "endpoint"),
    "target: no id": (lambda c: c.register_hub("", grpc_address="127.0.0.1:1"), C.INVALID_ARGUMENT, "id"),
    "remove unknown target": (lambda c: c.alerts.RemoveTarget(alerts_pb2.RemoveTargetRequest(id="nope"), **c._kw()), C.NOT_FOUND, "nope"),
    "remove target without id": (lambda c: c.alerts.RemoveTarget(alerts_pb2.RemoveTargetRequest(), **c._kw()), C.INVALID_ARGUMENT, "id"),
    "target: 100 departments": (lambda c: c.alerts.RegisterTarget(alerts_pb2.RegisterTargetRequest(
        id="h", grpc_address="127.0.0.1:1", departments=[f"d{i}" for i in range(100)]), **c._kw()), C.INVALID_ARGUMENT, "departments"),
    "target: department of 10,000 characters": (lambda c: c.alerts.RegisterTarget(alerts_pb2.RegisterTargetRequest(
        id="h", grpc_address="127.0.0.1:1", departments=["d" * 10_000]), **c._kw()), C.INVALID_ARGUMENT, "departments[0]"),
    "target: empty department": (lambda c: c.alerts.RegisterTarget(alerts_pb2.RegisterTargetRequest(
        id="h", grpc_address="127.0.0.1:1", departments=[""]), **c._kw()), C.INVALID_ARGUMENT, "departments[0]"),
    "target: id of 10,000 characters": (lambda c: c.register_hub("h" * 10_000, grpc_address="127.0.0.1:1"), C.INVALID_ARGUMENT, "id"),
    "target: network of 10,000 characters": (lambda c: c.register_hub("h", grpc_address="127.0.0.1:1", network="n" * 10_000),
                                              C.INVALID_ARGUMENT, "network"),
    "target: secret of 10,000 characters": (lambda c: c.register_hub("h", webhook_url="http://127.0.0.1/x", secret="s" * 10_000),
                                             C.INVALID_ARGUMENT, "webhook_secret"),
    "target: SSRF to a documentation address": (lambda c: c.register_hub("h", webhook_url="http://192.0.2.1/hook"),
                                                C.INVALID_ARGUMENT, "webhook_url"),
    "target: port 99999": (lambda c: c.register_hub("h", webhook_url="http://127.0.0.1:99999/"), C.INVALID_ARGUMENT, "webhook_url"),
    "target: bare http://": (lambda c: c.register_hub("h", webhook_url="http://"), C.INVALID_ARGUMENT, "webhook_url"),
    "deliveries: state 99": (lambda c: c.alerts.ListDeliveries(alerts_pb2.ListDeliveriesRequest(state=99), **c._kw()),
                             C.INVALID_ARGUMENT, "state"),
    "action: status 99": (lambda c: c.incident_service.UpdateAction(incidents_pb2.UpdateActionRequest(
        incident_id="x", action_id="a", status=99), **c._kw()), C.INVALID_ARGUMENT, "status"),
    "close: unknown incident with a long note": (lambda c: c.close_incident("nope", note="n" * 10_000), C.NOT_FOUND, "nope"),
    "operations: unknown network": (lambda c: c.monitoring.ReportOperations(monitoring_pb2.ReportOperationsRequest(
        network="atlantis"), **c._kw()), C.NOT_FOUND, "atlantis"),
    "operations: no network": (lambda c: c.monitoring.ReportOperations(monitoring_pb2.ReportOperationsRequest(), **c._kw()),
                               C.INVALID_ARGUMENT, "network"),
    "readings: no network": (lambda c: c.monitoring.ListReadings(monitoring_pb2.ListReadingsRequest(), **c._kw()),
                             C.INVALID_ARGUMENT, "network"),
    "readings: year 1 to 9999 of an unknown network": (lambda c: c.monitoring.ListReadings(monitoring_pb2.ListReadingsRequest(
        network="atlantis", window=common_pb2.TimeWindow(start=Timestamp(seconds=-62135596800), end=Timestamp(seconds=253402300799))),
        **c._kw()), C.NOT_FOUND, "atlantis"),
}


def _trace(**kw):
    req = {"network": "ruxi", "station_id": "RX-OILSPOT", "parameter": "petroleum", **kw}
    return lambda c: c.incident_service.Trace(incidents_pb2.TraceRequest(**req), **c._kw())


for _name, _d in (("negative", Duration(seconds=-3600)), ("zero", Duration()), ("a century", Duration(seconds=100 * 365 * 86400)),
                  ("max", Duration(seconds=315576000000))):
    INCIDENT_CASES[f"trace: horizon {_name}"] = (_trace(horizon=_d), C.INVALID_ARGUMENT, "horizon")
for _name, _v in (("1e308", 1e308), ("NaN", float("nan")), ("-300", -300.0), ("inf", float("inf"))):
    INCIDENT_CASES[f"trace: temperature {_name}"] = (_trace(temperature_c=_v), C.INVALID_ARGUMENT, "temperature_c")
INCIDENT_CASES["trace: network of 10,000 characters"] = (_trace(network="n" * 10_000), C.INVALID_ARGUMENT, "network")
INCIDENT_CASES["trace: no network"] = (_trace(network=""), C.INVALID_ARGUMENT, "network")


def _forecast(**kw):
    req = {"network": "ruxi", "discharger_id": "RX-FOOD-1", "mass_kg": 10.0, "pollutant": "COD", **kw}
    return lambda c: c.incident_service.Forecast(incidents_pb2.ForecastRequest(**req), **c._kw())


FORECAST_CASES = {
    "mass_kg": {"1e308": 1e308, "NaN": float("nan"), "inf": float("inf"), "zero": 0.0},
    "decay_per_day": {"negative": -1.0, "NaN": float("nan"), "1e308": 1e308},
    "duration": {"negative": Duration(seconds=-5), "a century": Duration(seconds=100 * 365 * 86400)},
    "threshold_mg_l": {"negative": -1.0, "NaN": float("nan"), "1e308": 1e308, "zero": 0.0},
    "start": {"year 1": Timestamp(seconds=-62135596800), "year 9999": Timestamp(seconds=253402300799)},
}
for _f, _vals in FORECAST_CASES.items():
    for _name, _v in _vals.items():
        INCIDENT_CASES[f"forecast: {_f} {_name}"] = (_forecast(**{_f: _v}), C.INVALID_ARGUMENT, _f)
for _name, _v in (("NaN", float("nan")), ("negative", -1.0), ("1e308", 1e308)):
    INCIDENT_CASES[f"forecast: chainage {_name}"] = (lambda c, v=_v: c.incident_service.Forecast(incidents_pb2.ForecastRequest(
        network="ruxi", location=common_pb2.Location(reach_id="RX-R03", chainage_m=v), mass_kg=1, pollutant="COD"), **c._kw()),
        C.INVALID_ARGUMENT, "chainage_m")
INCIDENT_CASES["forecast: no mass"] = (lambda c: c.incident_service.Forecast(incidents_pb2.ForecastRequest(
    network="ruxi", discharger_id="RX-FOOD-1", pollutant="COD"), **c._kw()), C.INVALID_ARGUMENT, "mass_kg")
INCIDENT_CASES["forecast: pollutant of 10,000 characters"] = (_forecast(pollutant="p" * 10_000), C.INVALID_ARGUMENT, "pollutant")
INCIDENT_CASES["forecast: no network"] = (_forecast(network=""), C.INVALID_ARGUMENT, "network")

# bytes that are not a valid message (invalid UTF-8 in a string field, truncated fields)
BAD_UTF8_NAME = b"\x0a\x02\xff\xfe"   # field 1 (a string) holding two bytes that are not UTF-8
TRUNCATED = b"\x0a\x50ab"              # field 1 announcing 80 bytes, carrying 2
RAW_METHODS = ("/rivertrace.v1.NetworkService/PutNetwork", "/rivertrace.v1.NetworkService/GetNetwork",
               "/rivertrace.v1.NetworkService/ListFeatures", "/rivertrace.v1.NetworkService/UpdateFlows",
               "/rivertrace.v1.IncidentService/Trace", "/rivertrace.v1.IncidentService/GetIncident",
               "/rivertrace.v1.AlertService/RegisterTarget", "/rivertrace.v1.MonitoringService/ListReadings")


def _raw(method, payload):
    return lambda c: c.channel.unary_unary(method)(payload, **c._kw())


for _m in RAW_METHODS:
    INCIDENT_CASES[f"invalid UTF-8 to {_m.rsplit('/', 1)[1]}"] = (_raw(_m, BAD_UTF8_NAME), C.INVALID_ARGUMENT, "request")
    INCIDENT_CASES[f"truncated bytes to {_m.rsplit('/', 1)[1]}"] = (_raw(_m, TRUNCATED), C.INVALID_ARGUMENT, "request")
INCIDENT_CASES["invalid UTF-8 in an ingest stream"] = (
    lambda c: list(c.channel.stream_stream("/rivertrace.v1.MonitoringService/IngestReadings")(iter([BAD_UTF8_NAME]), **c._kw())),
    C.INVALID_ARGUMENT, "request")
INCIDENT_CASES["invalid UTF-8 to WatchIncidents"] = (
    lambda c: list(c.channel.unary_stream("/rivertrace.v1.IncidentService/WatchIncidents")(BAD_UTF8_NAME, **c._kw())),
    C.INVALID_ARGUMENT, "request")
AUTH_CASES = {  # (token, call, code)
    "no token": (None, lambda c: c.get_network("ruxi"), C.UNAUTHENTICATED),
    "unknown token": ("guess", lambda c: c.get_network("ruxi"), C.UNAUTHENTICATED),
    "hub changes the network": ("t-hub", lambda c: c.put_network("ruxi", RUXI), C.PERMISSION_DENIED),
    "hub ingests readings": ("t-hub", ingest_one(), C.PERMISSION_DENIED),
    "hub traces": ("t-hub", lambda c: c.trace("ruxi", "RX-OILSPOT", "petroleum"), C.PERMISSION_DENIED),
    "bureau registers a hub": ("t-bureau", lambda c: c.register_hub("h", grpc_address="127.0.0.1:1"), C.PERMISSION_DENIED),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = make_server(tmp_path_factory.mktemp("bad"), TOKENS)
    with RivertraceClient(f"127.0.0.1:{running.port}", token="t-admin", max_message_mb=8) as admin:
        admin.put_network("ruxi", RUXI)
        frame = ruxi_replay().readings.frame.assign(unit="mg/L")
        admin.ingest("ruxi", frame)
        running.pipeline.wait_idle(60)
        yield running, admin
    running.stop(grace=1.0)


def _state(running):
    st = running.store
    return (st._reader().execute("SELECT COUNT(*), MAX(version) FROM networks").fetchone(), st.count_readings(),
            len(running.outbox.targets()), len(running.outbox.incidents()))


ALL = {**NETWORK_CASES, **STREAM_CASES, **INCIDENT_CASES}


def test_catalogue_size():
    assert len(ALL) + len(ROW_CASES) + len(AUTH_CASES) + 2 >= 300  # + oversize + deadline (issue 13: >= 300)


@pytest.mark.parametrize("name", list(ALL))
def test_bad_request_gets_the_right_status_and_names_the_field(server, name):
    running, admin = server
    before = _state(running)
    call, code, text = ALL[name]
    with pytest.raises(grpc.RpcError) as info:
        call(admin)
    err = info.value
    assert err.code() == code, (err.code(), err.details())
    named = err.details() + " " + " ".join(f"{f} {d}" for f, d in field_violations(err))
    assert text in named, named
    assert _state(running) == before  # nothing half-applied
    assert err.code() != C.INTERNAL


@pytest.mark.parametrize("name", list(ROW_CASES))
def test_bad_row_is_rejected_by_field_and_the_rest_kept(server, name):
    running, admin = server
    fields, field = ROW_CASES[name]
    before = running.store.count_readings()
    good = {"station_id": "RX-UP", "parameter": "petroleum", "value": 0.02, "unit": "mg/L"}
    bad = {**good, "time": timestamp(1752540000 * 10**9 + 7), **fields}
    if bad["time"] == "week ahead":  # relative to now: beyond the default window of reading_future_s = 1 day
        bad["time"] = timestamp(time.time_ns() + 7 * 86400 * 10**9)
    batch = monitoring_pb2.ReadingBatch(network="ruxi", batch_id=3, readings=[
        monitoring_pb2.Reading(**{k: v for k, v in bad.items() if v is not None}),
        monitoring_pb2.Reading(**good, time=timestamp(1752540000 * 10**9 + hash(name) % 10**6 * 1000 + 11))])
    (ack,) = list(admin.monitoring.IngestReadings(iter([batch]), **admin._kw()))
    assert [(p.id, p.field) for p in ack.rejected] == [("#0", field)]
    assert ack.stored == 1 and running.store.count_readings() == before + 1


@pytest.mark.parametrize("name", list(AUTH_CASES))
def test_unauthenticated_and_wrong_roles(server, name):
    running, _admin = server
    token, call, code = AUTH_CASES[name]
    before = _state(running)
    with RivertraceClient(f"127.0.0.1:{running.port}", token=token) as c, pytest.raises(grpc.RpcError) as info:
        call(c)
    assert info.value.code() == code
    assert _state(running) == before


def test_oversize_message_and_deadline(server):
    _running, admin = server
    huge = copy.deepcopy(RUXI)
    huge["notes"] = "x" * (5 << 20)  # the test server accepts 4 MB
    with pytest.raises(grpc.RpcError) as info:
        admin.put_network("ruxi", huge)
    assert info.value.code() == C.RESOURCE_EXHAUSTED
    with pytest.raises(grpc.RpcError) as info:
        admin.incident_service.Trace(incidents_pb2.TraceRequest(network="ruxi", station_id="RX-OILSPOT", parameter="petroleum"),
                                     timeout=0.0001, metadata=admin.metadata)
    assert info.value.code() == C.DEADLINE_EXCEEDED


def test_still_healthy_afterwards(server):
    _running, admin = server
    h = health_pb2_grpc.HealthStub(admin.channel)
    assert h.Check(health_pb2.HealthCheckRequest(), timeout=5).status == health_pb2.HealthCheckResponse.SERVING
    assert admin.get_network("ruxi")["name"].startswith("Ruxi")

"""The network's ``timezone`` over gRPC: kept by PutNetwork/GetNetwork, a bad zone refused naming the field."""

import json

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from service_util import put, stubs

from server.generated.rivertrace.v1 import network_pb2


def test_zone_round_trips_and_bad_zone_is_invalid_argument_naming_the_field(service, ruxi_doc):
    _running, ch = service
    net, _mon = stubs(ch)
    ruxi_doc["timezone"] = "America/New_York"
    put(ch, ruxi_doc)
    got = json.loads(net.GetNetwork(network_pb2.GetNetworkRequest(name="ruxi"), timeout=10).document_json)
    assert got["timezone"] == "America/New_York"
    ruxi_doc["timezone"] = "Mars/Olympus"
    with pytest.raises(grpc.RpcError) as err:
        put(ch, ruxi_doc)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    st = rpc_status.from_call(err.value)
    fields = []
    for d in st.details if st else []:
        br = error_details_pb2.BadRequest()
        if d.Unpack(br):
            fields += [(v.field, v.description) for v in br.field_violations]
    assert [f for f, _ in fields] == ["network.timezone"] and "Mars/Olympus" in fields[0][1]
    check = net.ValidateNetwork(network_pb2.ValidateNetworkRequest(document_json=json.dumps(ruxi_doc)), timeout=10)
    assert not check.valid and [e.field for e in check.errors] == ["timezone"]

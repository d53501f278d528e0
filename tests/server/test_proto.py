"""The API: generated code matches proto/ (one command regenerates it), and the science stays out of it."""

from server.codegen import is_stale


def test_generated_code_is_up_to_date():
    assert is_stale() == [], "run `python -m server.codegen` and commit server/generated"


def test_messages_carry_units_in_field_names():
    from server.generated.rivertrace.v1 import alerts_pb2, common_pb2, incidents_pb2, monitoring_pb2, network_pb2

    fields = {f.name for m in (network_pb2.ReachFlow, incidents_pb2.Candidate, incidents_pb2.ReceptorArrival,
                               incidents_pb2.ForecastRequest) for f in m.DESCRIPTOR.fields}
    assert {"discharge_m3s", "distance_m", "mass_kg", "rate_kg_s", "peak_mg_l", "threshold_mg_l"} <= fields
    # every enum starts with an _UNSPECIFIED zero value (protobuf style guide)
    enums = [e for m in (alerts_pb2, common_pb2, incidents_pb2, monitoring_pb2, network_pb2)
             for e in m.DESCRIPTOR.enum_types_by_name.values()]
    assert len(enums) >= 5
    for enum in enums:
        assert enum.values[0].number == 0 and enum.values[0].name.endswith("_UNSPECIFIED"), enum.name

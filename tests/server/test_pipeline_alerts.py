"""The automatic pipeline end to end, over real loopback channels with a real receiver."""

import time

import grpc
import numpy as np
import pandas as pd
import pytest
from service_util import make_server, put, stubs, wait_for

from server.convert import timestamp
from server.generated.rivertrace.v1 import (
    alerts_pb2,
    alerts_pb2_grpc,
    incidents_pb2,
    incidents_pb2_grpc,
    monitoring_pb2,
)
from server.hub import SampleHub, start_hub
from tracer.scenarios import puhe_replay, ruxi_replay


def ingest(channel, replay, network, size=500):
    f = replay.readings.frame.sort_values("time", kind="stable")  # stations report as time goes on
    batches = (monitoring_pb2.ReadingBatch(network=network, batch_id=i, readings=[
        monitoring_pb2.Reading(station_id=s, parameter=p, time=timestamp(t), value=v, unit="mg/L")
        for s, p, t, v in zip(part["station_id"], part["parameter"], part["time"], part["value"])])
        for i, part in ((i, f.iloc[i:i + size]) for i in range(0, len(f), size)))
    return list(stubs(channel)[1].IngestReadings(batches, timeout=60))


def register(channel, target_id, address, network):
    return alerts_pb2_grpc.AlertServiceStub(channel).RegisterTarget(
        alerts_pb2.RegisterTargetRequest(id=target_id, grpc_address=address, network=network), timeout=10)


def _assert_cap(alert, msg_type="Alert", references=None):
    """The alert's CAP document: valid CAP 1.2 (the OASIS XSD in tests/data/cap), its identifier the
    alert id, its msgType, an info block in zh-CN and one in en, and for an Update or Cancel a
    reference to the earlier alert."""
    import xml.etree.ElementTree as ET
    from pathlib import Path

    xmlschema = pytest.importorskip("xmlschema", reason="xmlschema is in the test extra")
    xsd = Path(__file__).resolve().parents[1] / "data" / "cap" / "CAP-v1.2-schema.xsd"
    assert alert.cap_xml, "the opening alert has no CAP document"
    xmlschema.XMLSchema(str(xsd)).validate(alert.cap_xml)
    ns = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
    root = ET.fromstring(alert.cap_xml)
    assert root.findtext("cap:identifier", namespaces=ns) == alert.alert_id
    assert root.findtext("cap:msgType", namespaces=ns) == msg_type
    assert {i.findtext("cap:language", namespaces=ns) for i in root.findall("cap:info", ns)} == {"zh-CN", "en"}
    if references is not None:
        assert root.findtext("cap:references", namespaces=ns).split(",")[1] == references
    if msg_type == "Cancel":
        assert {r.text for r in root.iter(f"{{{ns['cap']}}}responseType")} == {"AllClear"}


def test_replayed_incidents_reach_the_hub(tmp_path, ruxi_doc):
    hub_server, hub_port, hub = start_hub()
    running = make_server(tmp_path)
    ch = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    try:
        put(ch, ruxi_doc, name="ruxi")
        register(ch, "city-hub", f"127.0.0.1:{hub_port}", "ruxi")
        replay = ruxi_replay()
        replay_frame = replay.readings.frame
        ingest(ch, replay, "ruxi")
        assert running.pipeline.wait_idle(60)
        assert wait_for(lambda: len(hub.alerts) >= 1)
        alert = hub.alerts[0]
        inc = alert.incident
        assert inc.state == incidents_pb2.INCIDENT_STATE_RESPONDING and inc.network_version == 1
        assert inc.candidates[0].id == "RX-FOOD-1" and inc.candidates[0].probability > 0.5
        intake = next(a for a in inc.arrivals if a.id == "RX-INTAKE")
        assert intake.HasField("arrival") and intake.peak_mg_l > 0
        kinds = {a.kind for a in inc.checklist.actions}
        assert incidents_pb2.ACTION_KIND_HALT_DISCHARGE in kinds and incidents_pb2.ACTION_KIND_INTAKE_SUSPENSION in kinds
        assert "RX-FOOD-1" in alert.summary and alert.sequence == 1
        # the alert carries itself as CAP 1.2, valid against the OASIS schema, and GetAlert returns it
        _assert_cap(alert)
        alert_stub = alerts_pb2_grpc.AlertServiceStub(ch)
        assert alert_stub.GetAlert(alerts_pb2.GetAlertRequest(alert_id=alert.alert_id), timeout=10).cap_xml == alert.cap_xml
        with pytest.raises(grpc.RpcError) as missing:
            alert_stub.GetAlert(alerts_pb2.GetAlertRequest(alert_id="no-such-alert"), timeout=10)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        # the incident is queryable, and its delivery state too
        inc_stub = incidents_pb2_grpc.IncidentServiceStub(ch)
        got = inc_stub.GetIncident(incidents_pb2.GetIncidentRequest(id=inc.id), timeout=10)
        assert got.id == inc.id
        deliveries = alerts_pb2_grpc.AlertServiceStub(ch).ListDeliveries(alerts_pb2.ListDeliveriesRequest(), timeout=10)
        assert [(d.target_id, d.state) for d in deliveries.deliveries] == [("city-hub", alerts_pb2.DELIVERY_STATE_DELIVERED)]
        # the hub acknowledges an action: it is stored, audited and alerted in order
        action = inc.checklist.actions[0]
        inc_stub.UpdateAction(incidents_pb2.UpdateActionRequest(incident_id=inc.id, action_id=action.id,
                                                                status=incidents_pb2.ACTION_STATUS_ACKNOWLEDGED), timeout=10)
        assert wait_for(lambda: len(hub.alerts) >= 2)
        assert hub.alerts[1].sequence == 2 and hub.alerts[1].incident.checklist.actions[0].status == \
            incidents_pb2.ACTION_STATUS_ACKNOWLEDGED
        _assert_cap(hub.alerts[1], "Update", references=alert.alert_id)
        # closing needs the station back within its class on its last readings
        last = max(replay_frame["time"])
        late = [(last + pd.Timedelta(minutes=5 * (i + 1)), v) for i, v in enumerate((0.4, 0.01, 0.01))]

        def send(points):
            batch = monitoring_pb2.ReadingBatch(network="ruxi", batch_id=99, readings=[
                monitoring_pb2.Reading(station_id="RX-OILSPOT", parameter="petroleum", time=timestamp(t), value=v, unit="mg/L")
                for t, v in points])
            list(stubs(ch)[1].IngestReadings(iter([batch]), timeout=30))

        send(late)  # 0.4 mg/L two readings before the end: not yet normal
        with pytest.raises(grpc.RpcError) as info:
            inc_stub.CloseIncident(incidents_pb2.CloseIncidentRequest(id=inc.id), timeout=10)
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        send([(last + pd.Timedelta(minutes=20), 0.01)])  # three normal readings in a row
        closed = inc_stub.CloseIncident(incidents_pb2.CloseIncidentRequest(id=inc.id), timeout=10)
        assert closed.state == incidents_pb2.INCIDENT_STATE_CLOSED
        assert wait_for(lambda: len(hub.alerts) >= 3) and hub.alerts[2].alert_id.endswith("/closed")
        _assert_cap(hub.alerts[2], "Cancel", references=hub.alerts[1].alert_id)
    finally:
        ch.close()
        running.stop(grace=1.0)
        hub_server.stop(0)


def test_hub_down_for_a_while_gets_everything_in_order_once(tmp_path, ruxi_doc):
    running = make_server(tmp_path)
    ch = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    hub_server = None
    try:
        put(ch, ruxi_doc, name="ruxi")
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            hub_port = s.getsockname()[1]
        register(ch, "city-hub", f"127.0.0.1:{hub_port}", "ruxi")  # nobody listens there yet
        ingest(ch, ruxi_replay(), "ruxi")
        assert running.pipeline.wait_idle(60)
        inc_id = running.outbox.incidents("ruxi")[0][0]
        inc_stub = incidents_pb2_grpc.IncidentServiceStub(ch)
        inc = inc_stub.GetIncident(incidents_pb2.GetIncidentRequest(id=inc_id), timeout=10)
        # four more alerts for the same incident, in order (pending actions: one the planner marked not feasible
        # cannot be acknowledged)
        for a in [a for a in inc.checklist.actions if a.status == incidents_pb2.ACTION_STATUS_PENDING][:4]:
            inc_stub.UpdateAction(incidents_pb2.UpdateActionRequest(incident_id=inc_id, action_id=a.id,
                                                                    status=incidents_pb2.ACTION_STATUS_ACKNOWLEDGED), timeout=10)
        assert wait_for(lambda: any(d[5] >= 1 for d in running.outbox.deliveries()), 20)  # failed attempts recorded
        time.sleep(1.0)
        hub = SampleHub()
        hub_server, _p, hub = start_hub(hub_port, hub)  # the hub comes back
        assert wait_for(lambda: len(hub.alerts) == 5, 90)
        assert [a.sequence for a in hub.alerts] == [1, 2, 3, 4, 5]
        assert len({a.alert_id for a in hub.alerts}) == 5
    finally:
        ch.close()
        running.stop(grace=1.0)
        if hub_server is not None:
            hub_server.stop(0)


def test_pending_deliveries_resume_after_a_server_restart(tmp_path):
    import json

    from server.cli import demo_basin_path

    doc = json.loads(demo_basin_path("puhe").read_text(encoding="utf-8"))
    running = make_server(tmp_path)  # first life: queue the alert, never deliver it
    ch = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    hub_server, hub_port, hub = start_hub()
    hub_server.stop(0)  # registered address, but the hub is down during the first life
    try:
        put(ch, doc, name="puhe")
        register(ch, "hub", f"127.0.0.1:{hub_port}", "puhe")
        ingest(ch, puhe_replay(), "puhe")
        assert running.pipeline.wait_idle(60)
        assert running.outbox.deliveries() and all(d[4] != "delivered" for d in running.outbox.deliveries())
    finally:
        ch.close()
        running.stop(grace=1.0)
    hub_server, _p, hub = start_hub(hub_port)
    again = make_server(tmp_path)  # second life, same SQLite file
    try:
        assert wait_for(lambda: len(hub.alerts) >= 1, 90)  # backoff is at most a few seconds this early
        inc = hub.alerts[0].incident
        assert {c.id for c in inc.candidates[:2]} == {"PH-STP-A", "PH-STP-B"}
        _assert_cap(hub.alerts[0])  # a DO sag: an observed station below its minimum, as CAP
        assert any(a.kind == incidents_pb2.ACTION_KIND_DILUTION_RELEASE and a.target == "PH-HPS" for a in inc.checklist.actions)
    finally:
        again.stop(grace=1.0)
        hub_server.stop(0)


def test_two_networks_reusing_station_ids_get_two_incidents_with_one_id_each(tmp_path, ruxi_doc):
    """Issue 12: a second network that reuses station ids opened nothing (incident ids ignored the network),
    and one incident carried two ids (seconds in the alert, minutes in its checklist's action ids)."""
    running = make_server(tmp_path)
    ch = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    try:
        replay = ruxi_replay()
        for name in ("ruxi", "ruxi-copy"):
            put(ch, ruxi_doc, name=name)
            ingest(ch, replay, name)
            assert running.pipeline.wait_idle(60)
        listed = incidents_pb2_grpc.IncidentServiceStub(ch).ListIncidents(incidents_pb2.ListIncidentsRequest(),
                                                                          timeout=10).incidents
        by_network = {i.network: i for i in listed}
        assert set(by_network) == {"ruxi", "ruxi-copy"}
        for name, inc in by_network.items():
            assert inc.id.startswith(f"{name}:RX-OILSPOT/petroleum/")
            assert inc.checklist.actions and all(a.id.startswith(inc.id + "/") for a in inc.checklist.actions)
            alerts = running.outbox.store._reader().execute(
                "SELECT alert_id FROM alerts WHERE incident_id = ?", (inc.id,)).fetchall()
            assert alerts and all(a[0].startswith(inc.id + "/") for a in alerts)
    finally:
        ch.close()
        running.stop(grace=1.0)


def test_do_sag_is_traced_at_the_measured_water_temperature(tmp_path):
    """Issue 12: the pipeline traced DO sags at a fixed 25 degC although stations report water temperature.
    With 8 degC reported at the sag's station the stored candidates are the ones the science gives at 8 degC
    (tracer.trace called directly), not those at 25 degC."""
    import json

    from hydrology.oxygen_network import DOConditions
    from hydrology.validate import load_valid
    from server.cli import demo_basin_path
    from server.client import RivertraceClient
    from tracer.readings import Readings
    from tracer.trace import trace

    replay = puhe_replay()
    do = replay.readings.frame.assign(unit="mg/L")
    temp = do[do["station_id"] == replay.station].assign(parameter="temperature", unit="degC")
    temp["value"] = np.random.default_rng(3).uniform(7.8, 8.2, len(temp))  # winter water, 8 degC +- sensor noise
    frame = pd.concat([do, temp], ignore_index=True).sort_values("time", kind="stable")
    running = make_server(tmp_path)
    try:
        with RivertraceClient(f"127.0.0.1:{running.port}") as c:
            c.put_network("puhe", json.loads(demo_basin_path("puhe").read_text(encoding="utf-8")))
            c.ingest("puhe", frame)
            assert running.pipeline.wait_idle(60)
            (inc,) = [i for i in c.incidents("puhe") if "DO" in i.parameters]
        net = load_valid(demo_basin_path("puhe"))
        readings = Readings(frame[["station_id", "parameter", "time", "value", "flag"]].reset_index(drop=True))
        cold = trace(net, readings, replay.station, "DO", do_conditions=DOConditions(temperature_c=8.0))
        warm = trace(net, readings, replay.station, "DO", do_conditions=DOConditions(temperature_c=25.0))
        assert inc.candidates, "the DO incident was not traced"
        rate = {c.id: c.rate_kg_s for c in inc.candidates}
        top = cold.candidates[0]
        assert inc.candidates[0].id == top.id
        # the pipeline takes the median over the incident's window: within ~0.05 degC of 8, ~0.3 % in rate
        assert rate[top.id] == pytest.approx(top.rate_kg_s, rel=0.02)
        # and the incident says where the temperature came from
        assert inc.conditions["water_temperature_c"].endswith(f"degC: median of {replay.station}'s readings")
        assert 7.9 <= float(inc.conditions["water_temperature_c"].split()[0]) <= 8.1
        warm_rate = next(c.rate_kg_s for c in warm.candidates if c.id == top.id)
        assert abs(warm_rate - top.rate_kg_s) > 0.05 * top.rate_kg_s  # the test can tell the two apart
    finally:
        running.stop(grace=1.0)


def test_service_checklist_names_what_cannot_be_told_apart(tmp_path):
    """Issue 11, deliverable 3, in the automatic pipeline: when the first group of candidates (Bayes factor
    within 10) has several registered dischargers, the stored checklist asks for an operations check at each
    of them. On the Puhe sag the stations cannot tell the plants apart (the groups come from the science,
    called directly)."""
    import json

    from hydrology.validate import load_valid
    from server.cli import demo_basin_path
    from server.client import RivertraceClient
    from tracer.trace import trace

    replay = puhe_replay()
    running = make_server(tmp_path)
    try:
        with RivertraceClient(f"127.0.0.1:{running.port}") as c:
            c.put_network("puhe", json.loads(demo_basin_path("puhe").read_text(encoding="utf-8")))
            c.ingest("puhe", replay.readings.frame.sort_values("time").assign(unit="mg/L"))
            assert running.pipeline.wait_idle(60)
            (inc,) = c.incidents("puhe")
        first = trace(load_valid(demo_basin_path("puhe")), replay.readings, replay.station, "DO").groups[0]
        registered = {cand.id for cand in first if cand.kind != "unregistered"}
        assert len(registered) >= 2  # the case under test
        checks = {a.target for a in inc.checklist.actions if "/operations/" in a.id}
        assert checks == registered
    finally:
        running.stop(grace=1.0)

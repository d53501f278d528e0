"""UpdateAction over real gRPC on loopback with a real SQLite file: atomic per action under concurrent
clients, refused on a closed incident, moves only as tracer.incident.actions allows, one alert per change.

The incident is the one the automatic pipeline opens on the Ruxi replay (as in test_pipeline_alerts).
Alerts are counted straight from the SQLite file with a connection of the test's own, not through the
service under test.
"""

import sqlite3
import threading

import grpc
import pytest
from google.protobuf import json_format
from service_util import make_server, put
from test_pipeline_alerts import ingest

from server.convert import incident_record
from server.errors import _violations, status_for
from server.generated.rivertrace.v1 import incidents_pb2, incidents_pb2_grpc
from tracer.incident.actions import IllegalTransition, InvalidIncidentArgument
from tracer.scenarios import ruxi_replay

S = incidents_pb2
#: synthetic actions added to the real checklist so that 100 calls are 100 distinct changes [-]
N_ACTIONS = 50
N_THREADS = 5


@pytest.fixture
def opened(tmp_path, ruxi_doc):
    """(running server, channel, incident id, db path): Ruxi replayed until the pipeline opened its incident."""
    running = make_server(tmp_path)
    ch = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    try:
        put(ch, ruxi_doc, name="ruxi")
        ingest(ch, ruxi_replay(), "ruxi")
        assert running.pipeline.wait_idle(60)
        rows = running.outbox.incidents("ruxi")
        assert len(rows) == 1
        yield running, ch, rows[0][0], tmp_path / "rt.db"
    finally:
        ch.close()
        running.stop(grace=1.0)


def _alerts(db, incident_id):
    """alert_id -> sequence of every alert queued for the incident, read from the file directly."""
    with sqlite3.connect(db) as con:
        return dict(con.execute("SELECT alert_id, sequence FROM alerts WHERE incident_id = ?", (incident_id,)))


def _action_alerts(db, incident_id, action_id):
    return sorted(a for a in _alerts(db, incident_id) if a.startswith(f"{incident_id}/action/{action_id}/"))


def _audited_updates(db):
    with sqlite3.connect(db) as con:
        return con.execute("SELECT COUNT(*) FROM audit WHERE method = 'UpdateAction'").fetchone()[0]


def _pending(ch, iid):
    """Id of the first action still pending."""
    return next(a.id for a in _get(ch, iid).checklist.actions if a.status == S.ACTION_STATUS_PENDING)


def _status(ch, iid, aid):
    return next(a.status for a in _get(ch, iid).checklist.actions if a.id == aid)


def _update(stub, iid, aid, status):
    return stub.UpdateAction(S.UpdateActionRequest(incident_id=iid, action_id=aid, status=status), timeout=30)


def _get(ch, iid):
    return incidents_pb2_grpc.IncidentServiceStub(ch).GetIncident(S.GetIncidentRequest(id=iid), timeout=10)


def test_100_concurrent_updates_from_several_clients_are_all_stored_with_one_alert_each(opened):
    running, ch, iid, db = opened
    # widen the real checklist to N_ACTIONS actions (copies of the real ones under new ids), so that the 100
    # calls (acknowledge then done, per action) are 100 real changes of 50 different actions
    _network, _version, _state, payload = running.outbox.get_incident(iid)
    inc = json_format.Parse(payload, S.Incident())
    real = list(inc.checklist.actions)
    del inc.checklist.actions[:]
    for k in range(N_ACTIONS):
        a = inc.checklist.actions.add()
        a.CopyFrom(real[k % len(real)])
        a.id = f"{a.id}-{k}"
        a.status = S.ACTION_STATUS_PENDING  # the planner may have marked the original not feasible
    running.outbox.put_incident(incident_record(inc))
    ids = [a.id for a in inc.checklist.actions]
    before = len(_alerts(db, iid))

    errors, barrier = [], threading.Barrier(N_THREADS)

    def client(mine):
        chan = grpc.insecure_channel(f"127.0.0.1:{running.port}")  # each client its own connection
        stub = incidents_pb2_grpc.IncidentServiceStub(chan)
        try:
            barrier.wait(30)
            for status in (S.ACTION_STATUS_ACKNOWLEDGED, S.ACTION_STATUS_DONE):
                for aid in mine:
                    _update(stub, iid, aid, status)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            chan.close()

    threads = [threading.Thread(target=client, args=(ids[i::N_THREADS],)) for i in range(N_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:3]
    stored = {a.id: a.status for a in _get(ch, iid).checklist.actions}
    lost = [aid for aid in ids if stored.get(aid) != S.ACTION_STATUS_DONE]
    assert lost == [], f"{len(lost)} of {N_ACTIONS} actions lost their update"
    # exactly one alert per change: 2 per action (acknowledged, done), sequences contiguous and unique
    alerts = _alerts(db, iid)
    assert len(alerts) - before == 2 * N_ACTIONS
    for aid in ids:
        assert _action_alerts(db, iid, aid) == [f"{iid}/action/{aid}/acknowledged", f"{iid}/action/{aid}/done"]
    assert sorted(alerts.values()) == list(range(1, len(alerts) + 1))
    assert _audited_updates(db) == 2 * N_ACTIONS
    # the queryable rows say the same as the record, read from the file directly (issue 12: data one can query)
    with sqlite3.connect(db) as con:
        rows = dict(con.execute("SELECT action_id, status FROM incident_actions WHERE incident_id = ?", (iid,)))
    assert rows == {aid: "done" for aid in ids}


def test_update_on_a_closed_incident_is_refused_naming_the_incident(opened):
    _running, ch, iid, db = opened
    stub = incidents_pb2_grpc.IncidentServiceStub(ch)
    aid = _pending(ch, iid)
    stub.CloseIncident(S.CloseIncidentRequest(id=iid, force=True), timeout=10)
    n = len(_alerts(db, iid))
    with pytest.raises(grpc.RpcError) as info:
        _update(stub, iid, aid, S.ACTION_STATUS_ACKNOWLEDGED)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert iid in info.value.details() and "closed" in info.value.details()
    assert len(_alerts(db, iid)) == n
    assert _status(ch, iid, aid) == S.ACTION_STATUS_PENDING


def test_ack_done_ack_done_refuses_the_move_back_and_alerts_each_change_once(opened):
    _running, ch, iid, db = opened
    stub = incidents_pb2_grpc.IncidentServiceStub(ch)
    aid = _pending(ch, iid)
    assert _update(stub, iid, aid, S.ACTION_STATUS_ACKNOWLEDGED).status == S.ACTION_STATUS_ACKNOWLEDGED
    assert _update(stub, iid, aid, S.ACTION_STATUS_DONE).status == S.ACTION_STATUS_DONE
    with pytest.raises(grpc.RpcError) as info:  # done -> acknowledged is not a legal move
        _update(stub, iid, aid, S.ACTION_STATUS_ACKNOWLEDGED)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert iid in info.value.details() and "done -> acknowledged" in info.value.details()
    assert _update(stub, iid, aid, S.ACTION_STATUS_DONE).status == S.ACTION_STATUS_DONE  # a repeat: OK, no change
    assert _action_alerts(db, iid, aid) == [f"{iid}/action/{aid}/acknowledged", f"{iid}/action/{aid}/done"]
    assert _audited_updates(db) == 2
    assert _status(ch, iid, aid) == S.ACTION_STATUS_DONE


def test_a_repeated_identical_update_changes_nothing(opened):
    _running, ch, iid, db = opened
    stub = incidents_pb2_grpc.IncidentServiceStub(ch)
    aid = _pending(ch, iid)
    _update(stub, iid, aid, S.ACTION_STATUS_ACKNOWLEDGED)
    first = _get(ch, iid)
    n = len(_alerts(db, iid))
    again = _update(stub, iid, aid, S.ACTION_STATUS_ACKNOWLEDGED)
    assert again.status == S.ACTION_STATUS_ACKNOWLEDGED
    assert len(_alerts(db, iid)) == n  # no second alert
    assert _audited_updates(db) == 1  # and no second change recorded
    assert _get(ch, iid).updated_at == first.updated_at  # the stored incident was not rewritten


def test_domain_errors_map_to_statuses_in_the_one_table():
    bad = InvalidIncidentArgument("status: unknown action state 'x'")
    assert status_for(bad) == grpc.StatusCode.INVALID_ARGUMENT  # not FAILED_PRECONDITION (it is a TracerError too)
    assert _violations(bad) == [("status", str(bad))]
    assert status_for(IllegalTransition("action a: done -> acknowledged")) == grpc.StatusCode.FAILED_PRECONDITION


def test_each_change_is_kept_in_the_action_history_and_alerted_as_kind_action(opened):
    """Per-action history (issue 12, the incident model): when, to what, why; an idempotent repeat adds nothing."""
    from server.generated.rivertrace.v1 import alerts_pb2

    running, ch, iid, _db = opened
    stub = incidents_pb2_grpc.IncidentServiceStub(ch)
    aid = _pending(ch, iid)
    for status, note in ((S.ACTION_STATUS_ACKNOWLEDGED, "crew on the way"), (S.ACTION_STATUS_ACKNOWLEDGED, "repeat"),
                         (S.ACTION_STATUS_DONE, "boom in place 11:05")):
        stub.UpdateAction(S.UpdateActionRequest(incident_id=iid, action_id=aid, status=status, note=note), timeout=30)
    action = next(a for a in _get(ch, iid).checklist.actions if a.id == aid)
    assert [(h.status, h.note) for h in action.history] == [(S.ACTION_STATUS_ACKNOWLEDGED, "crew on the way"),
                                                            (S.ACTION_STATUS_DONE, "boom in place 11:05")]
    assert action.history[0].at.ToNanoseconds() <= action.history[1].at.ToNanoseconds()
    alert = alerts_pb2.Alert.FromString(running.outbox.alert(f"{iid}/action/{aid}/done"))
    assert alert.kind == "action"

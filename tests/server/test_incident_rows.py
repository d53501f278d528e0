"""Issue 12: the incident is stored as data one can query, not only as one opaque record. After the Ruxi
replay through the real pipeline (a real SQLite file), the rows are read back with plain SQL, by a
connection of the test's own, and compared with the record (the Incident message the service returns):
key figures, the checklist's actions, the ranking, the versions. An incident stored before the rows existed
(schema 3: no rows, version NULL) is indexed at the next start."""

import sqlite3

from replay_util import ruxi_frame, start
from service_util import make_server

from server.convert import ACTION_KIND_NAME, ACTION_STATUS_NAME, INCIDENT_STATE_NAME


def _check_rows_match(db, inc):
    with sqlite3.connect(db) as con:
        row = con.execute("SELECT state, first_station, parameter, start_ns, version, top_candidate, top_probability, "
                          "merged_into FROM incidents WHERE id = ?", (inc.id,)).fetchone()
        actions = {r[0]: r[1:] for r in con.execute(
            "SELECT action_id, kind, department, target, status FROM incident_actions WHERE incident_id = ?", (inc.id,))}
        ranking = [r[0] for r in con.execute(
            "SELECT candidate_id FROM incident_candidates WHERE incident_id = ? ORDER BY rank", (inc.id,))]
        versions = [r[0] for r in con.execute(
            "SELECT version FROM incident_versions WHERE incident_id = ? ORDER BY version", (inc.id,))]
    assert row == (INCIDENT_STATE_NAME[inc.state], inc.station_ids[0], inc.parameters[0],
                   inc.start.ToNanoseconds(), inc.version, inc.candidates[0].id, inc.candidates[0].probability,
                   inc.merged_into or None)
    assert actions == {a.id: (ACTION_KIND_NAME[a.kind], a.department or None, a.target, ACTION_STATUS_NAME[a.status])
                       for a in inc.checklist.actions}
    assert ranking == [c.id for c in inc.candidates]
    assert versions == [v.version for v in inc.versions]


def _replayed(tmp_path):
    """The Ruxi replay through the pipeline into tmp_path/rt.db: (run, its one incident)."""
    run = start(tmp_path)
    try:
        run.add(ruxi_frame())
        [inc] = run.incidents().values()
    finally:
        run.pipeline.stop()
    return run, inc


def test_incident_rows_match_the_record_and_answer_sql_questions(tmp_path):
    run, inc = _replayed(tmp_path)
    db = tmp_path / "rt.db"
    _check_rows_match(db, inc)
    with sqlite3.connect(db) as con:
        # "which open actions does the enforcement department have?" and "which incidents name RX-FOOD-1 first?"
        halts = con.execute("SELECT action_id FROM incident_actions WHERE kind = 'halt_discharge' AND status = 'pending'")
        assert [r[0] for r in halts] == [a.id for a in inc.checklist.actions if ACTION_KIND_NAME[a.kind] == "halt_discharge"
                                         and ACTION_STATUS_NAME[a.status] == "pending"]
        named = con.execute("SELECT incident_id FROM incident_candidates WHERE candidate_id = 'RX-FOOD-1' AND rank = 1")
        assert [r[0] for r in named] == [inc.id]
    assert run.outbox.incidents_naming("RX-FOOD-1") == [(inc.id, 1, inc.candidates[0].probability)]
    assert {a.action_id for a in run.outbox.actions(network="ruxi")} == {a.id for a in inc.checklist.actions}


def test_an_incident_stored_before_the_rows_existed_is_indexed_at_the_next_start(tmp_path):
    _run, inc = _replayed(tmp_path)
    db = tmp_path / "rt.db"
    with sqlite3.connect(db) as con:  # as a schema-3 file left it: the record, no rows
        con.execute("UPDATE incidents SET version = NULL, top_candidate = NULL")
        for table in ("incident_actions", "incident_candidates", "incident_versions"):
            con.execute(f"DELETE FROM {table}")
    running = make_server(tmp_path)
    try:
        _check_rows_match(db, inc)
    finally:
        running.stop(grace=1.0)

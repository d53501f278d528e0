"""Reconciling detection with stored incidents (tracer.incident.reconcile), without a service.

References: detection over the complete readings (an independent one-shot run) is what every order of
arrival must end in; the evidence digest is checked against permutations of the same rows (hypothesis).
"""

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracer.detection import detect
from tracer.incident.reconcile import (
    SETTLE,
    Known,
    Picture,
    evidence,
    evidence_digest,
    material_changes,
    passed_stations,
    reconcile,
)
from tracer.readings import Readings
from tracer.scenarios import ruxi_replay
from tracer.trace import station_contexts

T0 = pd.Timestamp("2025-07-15T02:00Z")


def _known(iid, keys, start, end, closed=False, digest=""):
    return Known(iid, frozenset(keys), pd.Timestamp(start), pd.Timestamp(end), closed, digest)


@pytest.fixture(scope="module")
def ruxi():
    replay = ruxi_replay()
    return replay, station_contexts(replay.network)


def _detect(replay, contexts, frame):
    return detect(Readings(frame.reset_index(drop=True)), contexts).incidents


def test_new_plume_opens_under_its_canonical_id(ruxi):
    replay, ctx = ruxi
    [inc] = _detect(replay, ctx, replay.readings.frame)
    [step] = reconcile([inc], [], "ruxi", {inc.id: "d"})
    assert (step.kind, step.id, step.merge) == ("open", f"ruxi:{inc.id}", ())
    assert step.id.startswith("ruxi:RX-OILSPOT/petroleum/")


def test_same_evidence_is_unchanged_new_evidence_is_an_update(ruxi):
    replay, ctx = ruxi
    [inc] = _detect(replay, ctx, replay.readings.frame)
    known = [_known(f"ruxi:{inc.id}", {("RX-OILSPOT", "petroleum")}, inc.start, inc.end, digest="d1")]
    assert reconcile([inc], known, "ruxi", {inc.id: "d1"})[0].kind == "unchanged"
    assert reconcile([inc], known, "ruxi", {inc.id: "d2"})[0].kind == "update"


def test_downstream_first_then_upstream_backlog_merges(ruxi):
    """RX-MID's backlog arrives first and opens an incident there; RX-OILSPOT's backlog then shows the
    plume began upstream: the canonical incident opens and takes the first one in."""
    replay, ctx = ruxi
    f = replay.readings.frame
    [early] = _detect(replay, ctx, f[f.station_id == "RX-MID"])
    assert early.station_ids == ("RX-MID",)
    known = [_known(f"ruxi:{early.id}", {("RX-MID", "petroleum")}, early.start, early.end, digest="x")]
    [full] = _detect(replay, ctx, f)
    [step] = reconcile([full], known, "ruxi", {full.id: "y"})
    assert step.kind == "open" and step.id == f"ruxi:{full.id}" and step.merge == (f"ruxi:{early.id}",)
    # the canonical incident stored, the early one merged away: the next screening is quiet
    known = [_known(step.id, {(s, "petroleum") for s in full.station_ids}, full.start, full.end, digest="y")]
    assert reconcile([full], known, "ruxi", {full.id: "y"})[0].kind == "unchanged"


def test_an_incident_an_operator_closed_is_not_reopened(ruxi):
    replay, ctx = ruxi
    [inc] = _detect(replay, ctx, replay.readings.frame)
    closed_same = [_known(f"ruxi:{inc.id}", {("RX-OILSPOT", "petroleum")}, inc.start, inc.end, closed=True)]
    assert reconcile([inc], closed_same, "ruxi", {inc.id: "d"}) == []
    closed_partial = [_known("ruxi:RX-MID/petroleum/20250715T035500Z", {("RX-MID", "petroleum")}, inc.start, inc.end,
                             closed=True)]
    assert reconcile([inc], closed_partial, "ruxi", {inc.id: "d"}) == []


def test_an_old_incident_at_the_same_station_is_not_merged(ruxi):
    """Same station and parameter, but weeks earlier: a different plume."""
    replay, ctx = ruxi
    [inc] = _detect(replay, ctx, replay.readings.frame)
    old = [_known("ruxi:RX-OILSPOT/petroleum/20250601T000000Z", {("RX-OILSPOT", "petroleum")},
                  "2025-06-01T00:00Z", "2025-06-01T06:00Z")]
    [step] = reconcile([inc], old, "ruxi", {inc.id: "d"})
    assert step.kind == "open" and step.merge == ()


def _frame(rows):
    f = pd.DataFrame(rows, columns=["station_id", "parameter", "time", "value", "flag"])
    return f.astype({"time": "datetime64[ns, UTC]"})


@settings(max_examples=40, deadline=None)
@given(st.permutations(list(range(12))))
def test_evidence_digest_ignores_row_order(order):
    rows = [(f"S{i % 3}", "petroleum", T0 + pd.Timedelta(minutes=5 * i), float(i) * 0.1, None if i % 4 else "x")
            for i in range(12)]
    a = evidence_digest(Readings(_frame(rows)))
    b = evidence_digest(Readings(_frame([rows[i] for i in order])))
    assert a == b


def test_evidence_digest_sees_one_changed_value():
    rows = [("S", "petroleum", T0 + pd.Timedelta(minutes=5 * i), 0.1, None) for i in range(6)]
    other = rows[:3] + [("S", "petroleum", rows[3][2], 0.1000001, None)] + rows[4:]
    assert evidence_digest(Readings(_frame(rows))) != evidence_digest(Readings(_frame(other)))


def test_evidence_window_and_passed_stations(ruxi):
    replay, ctx = ruxi
    f = replay.readings.frame
    [inc] = _detect(replay, ctx, f)
    ev = evidence(replay.readings, inc).frame
    assert ev["time"].max() <= inc.end + SETTLE
    assert set(passed_stations(replay.readings, inc)) == set(inc.station_ids)  # 24 h of readings: all passed
    cut = f[f["time"] <= inc.start + pd.Timedelta(minutes=30)]
    [young] = _detect(replay, ctx, cut)
    assert passed_stations(Readings(cut.reset_index(drop=True)), young) == ()  # still above the standard


def test_material_changes_say_what_changed():
    before = Picture(("A",), (), ("X", "Y", "Z"), {"I": (0.0, 3600.0, 7200.0)}, ("a1",))
    assert material_changes(None, before) == []
    assert material_changes(before, before) == []
    swap = Picture(("A",), (), ("X", "Z", "Y"), {"I": (0.0, 3600.0, 7200.0)}, ("a1",))
    assert material_changes(before, swap) == []  # second and third swapped: noise
    after = Picture(("A", "B"), ("A",), ("Y", "X", "Z"), {"I": (0.0, 3600.0 + 1800.0, 7200.0)}, ("a1", "a2"))
    en = [c.en for c in material_changes(before, after)]
    assert "new station B sees the plume" in en and "the plume has passed A" in en
    assert any(e.startswith("ranking now Y, X, Z") for e in en)
    assert any(e.startswith("I arrival") and "(+30 min)" in e for e in en)
    assert "1 action(s) added" in en
    small = Picture(("A",), (), ("X", "Y", "Z"), {"I": (0.0, 3600.0 + 600.0, 7200.0)}, ("a1",))
    assert material_changes(before, small) == []  # 10 min < ARRIVAL_MOVE_S


def test_cancel_only_when_all_evidence_is_still_screened(ruxi):
    """A stored incident detection no longer finds is cancelled only when its whole evidence window lies in
    the screened readings; one whose readings merely left the screening window stays as it is."""
    replay, ctx = ruxi
    [inc] = _detect(replay, ctx, replay.readings.frame)
    gone = _known("ruxi:RX-UP/petroleum/20250715T120000Z", {("RX-UP", "petroleum")}, "2025-07-15T12:00Z", "2025-07-15T13:00Z")
    steps = reconcile([inc], [gone], "ruxi", {inc.id: "d"}, screened_from=pd.Timestamp("2025-07-05T00:00Z"))
    assert [(s.kind, s.id) for s in steps] == [("open", f"ruxi:{inc.id}"), ("cancel", gone.id)]
    assert [s.kind for s in reconcile([inc], [gone], "ruxi", {inc.id: "d"})] == ["open"]  # no window: no cancel
    late = pd.Timestamp("2025-07-14T00:00Z")  # the window starts inside its 3-day lookback
    assert [s.kind for s in reconcile([inc], [gone], "ruxi", {inc.id: "d"}, screened_from=late)] == ["open"]
    closed = _known(gone.id, gone.keys, gone.start, gone.end, closed=True)
    assert [s.kind for s in reconcile([], [closed], "ruxi", {}, screened_from=pd.Timestamp("2025-07-05T00:00Z"))] == []

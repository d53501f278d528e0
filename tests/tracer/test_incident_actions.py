"""Incident ids round-trip and the action state machine (legal paths, refusals, idempotent repeats)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tracer.incident.actions import (
    ACKNOWLEDGED,
    DONE,
    NOT_FEASIBLE,
    OPEN,
    ActionState,
    IllegalTransition,
    InvalidIncidentArgument,
    action_id,
    alert_id,
    incident_id,
    parse_incident_id,
    transition,
)

T = datetime(2024, 6, 1, 8, 5, 9, tzinfo=timezone(timedelta(hours=8)))


def test_ids_round_trip_in_utc() -> None:
    iid = incident_id("ruxi", "RX-OILSPOT", "COD", T)
    assert iid == "ruxi:RX-OILSPOT/COD/20240601T000509Z"
    assert parse_incident_id(iid) == ("ruxi", "RX-OILSPOT", "COD", datetime(2024, 6, 1, 0, 5, 9, tzinfo=UTC))
    assert action_id(iid, "sample", "RX-FOOD-1") == iid + "/sample/RX-FOOD-1"
    assert alert_id(iid, 7) == iid + "/alert/0007"
    for bad in ("ruxi/RX/COD/20240601T000509Z", "ruxi:RX/COD/2024", "ruxi:RX/COD/20240601T000509Z/x"):
        with pytest.raises(InvalidIncidentArgument):
            parse_incident_id(bad)
    with pytest.raises(InvalidIncidentArgument, match="first_station"):
        incident_id("ruxi", "A/B", "COD", T)


def test_transitions() -> None:
    a = ActionState("x")
    b, changed = transition(a, ACKNOWLEDGED, now=T)
    assert changed and b.state == ACKNOWLEDGED and b.version == 1
    same, changed = transition(b, ACKNOWLEDGED, now=T)
    assert not changed and same is b  # repeat: nothing stored, no second alert
    c, _ = transition(b, DONE, now=T, note="sampled")
    assert c.history[-1][1:] == (DONE, "sampled") and c.version == 2
    with pytest.raises(IllegalTransition):
        transition(c, NOT_FEASIBLE, now=T)
    with pytest.raises(IllegalTransition):
        transition(c, OPEN, now=T)
    with pytest.raises(IllegalTransition, match="closed"):
        transition(a, DONE, now=T, incident_closed=True)
    with pytest.raises(InvalidIncidentArgument, match="status"):
        transition(a, "finished", now=T)

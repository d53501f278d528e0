"""One identifier scheme and the state machine of checklist actions.

Ids (one id everywhere: storage, gRPC, alerts, reports):
incident ``{network}:{first_station}/{parameter}/{YYYYmmddTHHMMSSZ}``, action ``{incident_id}/{kind}/{target}``,
alert ``{incident_id}/alert/{seq:04d}``.

Action states: ``open`` → ``acknowledged`` → ``done``; ``open``/``acknowledged`` → ``not_feasible``.
Repeating the transition that produced the current state is idempotent (no change, no new alert);
any other move out of a final state, or any update on a closed incident, is refused.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from tracer.exceptions import TracerError


class IncidentError(TracerError):
    """Base of the incident domain errors (the server maps each subclass to a gRPC status)."""


class InvalidIncidentArgument(IncidentError, ValueError):
    """A malformed id or unknown state (INVALID_ARGUMENT)."""


class IllegalTransition(IncidentError):
    """The move is not allowed from the current state, or the incident is closed (FAILED_PRECONDITION)."""


OPEN, ACKNOWLEDGED, DONE, NOT_FEASIBLE = "open", "acknowledged", "done", "not_feasible"
STATES = (OPEN, ACKNOWLEDGED, DONE, NOT_FEASIBLE)
_ALLOWED = {OPEN: {ACKNOWLEDGED, DONE, NOT_FEASIBLE}, ACKNOWLEDGED: {DONE, NOT_FEASIBLE}, DONE: set(), NOT_FEASIBLE: set()}


def _part(name: str, value: str) -> str:
    if not value or "/" in value or ":" in value or value != value.strip():
        raise InvalidIncidentArgument(f"{name}: {value!r} must be non-empty without '/', ':' or surrounding spaces")
    return value


def incident_id(network: str, first_station: str, parameter: str, start: datetime) -> str:
    if start.tzinfo is None:
        raise InvalidIncidentArgument("start: a timezone-aware datetime is required")
    stamp = start.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{_part('network', network)}:{_part('first_station', first_station)}/{_part('parameter', parameter)}/{stamp}"


def parse_incident_id(iid: str) -> tuple[str, str, str, datetime]:
    """(network, first_station, parameter, start UTC) of an incident id; InvalidIncidentArgument otherwise."""
    try:
        network, rest = iid.split(":", 1)
        station, parameter, stamp = rest.split("/")
        start = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise InvalidIncidentArgument(f"incident_id: {iid!r} is not network:station/parameter/YYYYmmddTHHMMSSZ") from exc
    if incident_id(network, station, parameter, start) != iid:
        raise InvalidIncidentArgument(f"incident_id: {iid!r} is not in canonical form")
    return network, station, parameter, start


def action_id(iid: str, kind: str, target: str) -> str:
    parse_incident_id(iid)
    return f"{iid}/{_part('kind', kind)}/{_part('target', target)}"


def alert_id(iid: str, seq: int) -> str:
    parse_incident_id(iid)
    if not 0 <= seq <= 9999:
        raise InvalidIncidentArgument(f"seq: {seq} outside 0..9999")
    return f"{iid}/alert/{seq:04d}"


@dataclass(frozen=True)
class ActionState:
    """State of one checklist action; ``history`` holds (time UTC, state, note) of every real change."""

    id: str
    state: str = OPEN
    version: int = 0
    history: tuple[tuple[datetime, str, str], ...] = ()


def transition(action: ActionState, new: str, *, now: datetime, note: str = "",
               incident_closed: bool = False) -> tuple[ActionState, bool]:
    """(next state, changed). ``changed`` False means an idempotent repeat: store nothing, alert nothing."""
    if new not in STATES:
        raise InvalidIncidentArgument(f"status: unknown action state {new!r}; one of {STATES}")
    if incident_closed:
        raise IllegalTransition(f"action {action.id}: the incident is closed")
    if new == action.state and action.history:
        return action, False
    if new not in _ALLOWED[action.state]:
        raise IllegalTransition(f"action {action.id}: {action.state} -> {new} is not allowed")
    return replace(action, state=new, version=action.version + 1,
                   history=(*action.history, (now.astimezone(UTC), new, note))), True

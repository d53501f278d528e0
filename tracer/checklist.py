"""The disposal checklist: actions with department, target, deadline, rationale, status.

Machine form (:meth:`Checklist.as_dict`, JSON-ready, ISO 8601 times with the network's UTC offset) and
human form (:meth:`Checklist.markdown`, Chinese or English, short lines for a phone, every time with
date, time and zone). Times are held in UTC; ``Checklist.timezone`` (the network's IANA zone,
:mod:`hydrology.timezones`) is only how they are written.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from hydrology.timezones import DEFAULT_ZONE, iso_local, local_time, zone, zone_note
from hydrology.units import DISPLAY_TZ

ActionKind = Literal["halt_discharge", "interception", "dilution_release", "intake_suspension", "monitoring", "notify"]
Status = Literal["pending", "acknowledged", "done", "not_feasible"]
Priority = Literal["critical", "high", "medium", "low"]
#: the default display zone (Asia/Shanghai); kept for callers of ``tracer.checklist.CHINA``. A checklist
#: is written in its own ``timezone``.
CHINA = DISPLAY_TZ

KIND_NAMES = {
    "halt_discharge": ("停产/排查令", "halt / inspect order"),
    "interception": ("应急拦截", "interception"),
    "dilution_release": ("调水稀释", "dilution release"),
    "intake_suspension": ("取水口停止取水", "intake suspension"),
    "monitoring": ("加密监测", "extra monitoring"),
    "notify": ("通报", "notification"),
}
STATUS_NAMES = {"pending": ("待办", "pending"), "acknowledged": ("已签收", "acknowledged"),
                "done": ("已完成", "done"), "not_feasible": ("不可行", "NOT FEASIBLE")}
PRIORITY_NAMES = {"critical": ("特急", "critical"), "high": ("紧急", "high"), "medium": ("一般", "medium"), "low": ("低", "low")}


@dataclass(frozen=True, slots=True)
class Action:
    """One step of the response. Times are UTC; ``rationale`` carries the numbers used."""

    id: str
    kind: ActionKind
    department: str | None
    target: str
    target_location: dict[str, Any]
    deadline: datetime | None
    window_start: datetime | None
    window_end: datetime | None
    priority: Priority
    rationale: tuple[str, str]  # (Chinese, English)
    status: Status = "pending"
    numbers: dict[str, Any] = field(default_factory=dict)

    def as_dict(self, timezone: str = DEFAULT_ZONE) -> dict[str, Any]:
        """JSON-ready; times ISO 8601 with the UTC offset of ``timezone`` (an IANA name)."""
        tz = zone(timezone)
        iso = (lambda t: None if t is None else iso_local(t, tz))
        return {"id": self.id, "kind": self.kind, "department": self.department, "target": self.target,
                "target_location": self.target_location, "deadline": iso(self.deadline),
                "window_start": iso(self.window_start), "window_end": iso(self.window_end),
                "priority": self.priority, "rationale": self.rationale[1], "rationale_zh": self.rationale[0],
                "status": self.status, "numbers": self.numbers}


@dataclass(frozen=True, slots=True)
class Checklist:
    """All actions for one incident, in the order a duty officer works through them."""

    incident: str
    created_at: datetime
    actions: tuple[Action, ...]
    summary: tuple[str, str]
    departments: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # id -> (zh, en)
    #: the IANA zone its times are written in (the network's ``timezone``)
    timezone: str = DEFAULT_ZONE

    def by_kind(self, kind: str) -> list[Action]:
        return [a for a in self.actions if a.kind == kind]

    def with_status(self, action_id: str, status: Status) -> Checklist:
        """A copy with one action's status changed (acknowledged, done...)."""
        if not any(a.id == action_id for a in self.actions):
            raise KeyError(f"no action {action_id!r} in checklist {self.incident!r}")
        return replace(self, actions=tuple(replace(a, status=status) if a.id == action_id else a for a in self.actions))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready; times ISO 8601 with the offset of the checklist's zone, which is named too."""
        return {"incident": self.incident, "timezone": self.timezone,
                "created_at": iso_local(self.created_at, zone(self.timezone)), "summary": self.summary[1],
                "summary_zh": self.summary[0], "departments": sorted({a.department for a in self.actions if a.department}),
                "actions": [a.as_dict(self.timezone) for a in self.actions]}

    def markdown(self, lang: Literal["zh", "en"] = "zh") -> str:
        """The checklist for a phone: one block per action; every time with date, time and zone
        (``2025-05-01 08:00 EDT``), and one line naming the zone and its UTC offsets."""
        k = 0 if lang == "zh" else 1
        tz = zone(self.timezone)
        when = (lambda t: "-" if t is None else local_time(t, tz, lang))
        title = "处置清单" if k == 0 else "Disposal checklist"
        shown = [self.created_at, *(t for a in self.actions for t in (a.deadline, a.window_start, a.window_end))]
        made = (f"编制时间：{when(self.created_at)}。" if k == 0 else f"Made at {when(self.created_at)}.")
        lines = [f"# {title}: {self.incident}", "", self.summary[k], "", f"{made} {zone_note(tz, shown, lang)}", ""]
        labels = (("负责", "截止", "时段", "优先级", "状态"), ("Owner", "Deadline", "Window", "Priority", "Status"))[k]
        for i, a in enumerate(self.actions, 1):
            dep = self.departments.get(a.department or "", (a.department or "?", a.department))
            dep_name = dep[k] or dep[0] if k else dep[0]
            lines.append(f"## {i}. {KIND_NAMES[a.kind][k]}: {a.target}")
            lines.append(f"- {labels[0]}: {dep_name or ('未指定' if k == 0 else 'unassigned')}")
            if a.deadline is not None:
                lines.append(f"- {labels[1]}: {when(a.deadline)}")
            if a.window_start is not None or a.window_end is not None:
                lines.append(f"- {labels[2]}: {when(a.window_start)} – {when(a.window_end)}")
            lines.append(f"- {labels[3]}: {PRIORITY_NAMES[a.priority][k]} · {labels[4]}: {STATUS_NAMES[a.status][k]}")
            lines.append(f"- {a.rationale[k]}")
            lines.append("")
        return "\n".join(lines)


def utc(t: datetime) -> datetime:
    """A timezone-aware time in UTC (naive times are refused: never guess a zone)."""
    if t.tzinfo is None:
        raise ValueError(f"time {t!r} has no time zone")
    return t.astimezone(UTC)

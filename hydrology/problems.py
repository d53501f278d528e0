"""A problem found in a network document or network: what, where, how bad."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem, naming the element and field so a user can find and fix it.

    ``element`` is the collection ("reaches", "stations", "network"...), ``id`` the element id (or
    its index as ``#3`` when it has no usable id), ``field`` the offending field ("" for the element).
    """

    severity: Severity
    element: str
    id: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.element}[{self.id}]" if self.id else self.element
        if self.field:
            where += f".{self.field}"
        return f"{self.severity}: {where}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {"severity": self.severity, "element": self.element, "id": self.id,
                "field": self.field, "message": self.message}

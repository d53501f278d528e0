"""Response policy: margins, thresholds and which department role does what (data, not code).

Defaults are stated here with their reasoning; a bureau overrides any of them with a JSON file
(``load_policy``) whose keys are the field names. Times are seconds; concentrations g/m3.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .exceptions import TracerError


class PolicyError(TracerError, ValueError):
    """A policy file that cannot be used (unknown key, wrong type)."""


@dataclass(frozen=True, slots=True)
class Policy:
    """How the planner turns a forecast into actions.

    Attributes
    ----------
    halt_probability : float
        Candidates at or above this posterior probability get a halt/inspect order [-].
    max_halt_orders : int
        At most this many halt orders (the top candidates) [-].
    interception_margin_s : float
        A site must be ready this long before the plume's leading edge reaches it [s] (crew travel,
        set-up checks).
    intake_margin_s : float
        Intake suspension starts this long before the leading edge and ends this long after the
        trailing edge [s].
    release_margin_s : float
        Released water must reach the protected receptor this long before the plume [s].
    do_target_margin_g_m3 : float
        A DO release aims this far above the standard [g/m3] (model and sensor error).
    monitoring_lead_s, monitoring_lag_s : float
        Extra sampling from this long before the predicted arrival to this long after the end [s].
    grab_min_gain_nats : float
        A grab sample is asked for only when it is expected to tell the undecided candidates apart by at
        least this much information [nats] (0.05: 7 % of the ln 2 that settles an even two-way question). A
        plume that has left the stretch between the candidates predicts the same readings for all of them;
        sending a field team there would tell nothing.
    halt_within_s, notify_within_s : float
        Deadlines of halt orders and notifications after the plan is made [s].
    roles : dict
        Action kind -> department roles, first that exists wins; the owner of the target is
        preferred among departments with the role.
    """

    halt_probability: float = 0.15
    max_halt_orders: int = 3
    interception_margin_s: float = 1800.0
    intake_margin_s: float = 3600.0
    release_margin_s: float = 1800.0
    do_target_margin_g_m3: float = 0.2
    monitoring_lead_s: float = 3600.0
    monitoring_lag_s: float = 3600.0
    grab_min_gain_nats: float = 0.05
    halt_within_s: float = 3600.0
    notify_within_s: float = 900.0
    roles: dict[str, tuple[str, ...]] = field(default_factory=lambda: {
        "halt_discharge": ("enforcement",),
        "interception": ("emergency", "local_government", "water_resources"),
        "dilution_release": ("hydropower_dispatch", "water_resources"),
        "intake_suspension": ("drinking_water", "local_government"),
        "monitoring": ("monitoring", "enforcement"),
        "notify": ("governance", "local_government", "water_resources"),
    })


def load_policy(path: str | Path | None) -> Policy:
    """The default policy, with the fields a JSON file gives replaced."""
    if path is None:
        return Policy()
    try:
        raw: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise PolicyError(f"{path}: cannot read the policy: {err}") from err
    known = {f.name for f in dataclasses.fields(Policy)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise PolicyError(f"{path}: unknown policy key(s) {unknown}; known: {sorted(known)}")
    if "roles" in raw:
        raw["roles"] = {**Policy().roles, **{k: tuple(v) for k, v in raw["roles"].items()}}
    for k, v in raw.items():
        if k != "roles" and not isinstance(v, (int, float)):
            raise PolicyError(f"{path}: policy {k} must be a number, got {v!r}")
    return dataclasses.replace(Policy(), **raw)

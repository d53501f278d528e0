"""Non-hydraulic evidence for attribution: signature, feasibility and operations.

Each term is a log factor added to a hypothesis's log posterior, and each is explained in the
answer. The numbers here are expert-judgement weights, stated so a bureau can review and change them
(they are module constants, one table each), not fitted values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from hydrology.network import Feature

#: parameter -> evidence group
PARAMETER_GROUP: dict[str, str] = {
    "petroleum": "oil", "animal-vegetable-oil": "oil",
    "DO": "oxygen", "COD": "oxygen", "CODMn": "oxygen", "BOD5": "oxygen",
    "NH3-N": "nutrient", "TP": "nutrient", "TN": "nutrient",
    "Cu": "metal", "Zn": "metal", "Cr6": "metal", "Pb": "metal", "Cd": "metal", "Hg": "metal", "As": "metal",
}
#: discharger kind x parameter group -> relative likelihood that this kind emits an event of this group
SIGNATURE: dict[str, dict[str, float]] = {
    "sewage_plant": {"oil": 0.1, "oxygen": 1.0, "nutrient": 1.0, "metal": 0.05, "other": 0.3},
    "food_processing": {"oil": 1.0, "oxygen": 0.8, "nutrient": 0.5, "metal": 0.02, "other": 0.3},
    "industrial_plant": {"oil": 0.6, "oxygen": 0.4, "nutrient": 0.2, "metal": 1.0, "other": 0.5},
    "livestock": {"oil": 0.05, "oxygen": 0.7, "nutrient": 1.0, "metal": 0.05, "other": 0.3},
    "outfall": {"oil": 0.3, "oxygen": 0.5, "nutrient": 0.5, "metal": 0.2, "other": 0.3},
}
DEFAULT_SIGNATURE = 0.3
#: a discharger that lists the parameter among its pollutants is this many times likelier;
#: one that lists pollutants but not this one, this many times less likely
LISTED_FACTOR = 2.0
UNLISTED_FACTOR = 0.5
#: prior share of "an unregistered source somewhere" against all registered dischargers [-]
UNREGISTERED_SHARE = 0.2
#: untreated concentration by kind [g/m3], bounding what a discharger can emit when its permit file
#: gives no max_load_kg_s (orders of magnitude: Metcalf & Eddy 2014 table 3-15 for raw sewage;
#: food processing and livestock wastewater several times stronger)
RAW_CONCENTRATION: dict[str, dict[str, float]] = {
    "sewage_plant": {"oxygen": 300.0, "nutrient": 40.0, "oil": 50.0, "metal": 1.0},
    "food_processing": {"oxygen": 3000.0, "nutrient": 100.0, "oil": 1000.0, "metal": 0.5},
    "industrial_plant": {"oxygen": 1000.0, "nutrient": 50.0, "oil": 500.0, "metal": 50.0},
    "livestock": {"oxygen": 5000.0, "nutrient": 800.0, "oil": 50.0, "metal": 5.0},
    "outfall": {"oxygen": 300.0, "nutrient": 40.0, "oil": 100.0, "metal": 5.0},
}
#: a pulse release lasts at most this long at the discharger's maximum rate [s]
MAX_PULSE_DURATION_S = 6 * 3600.0
#: log-normal width of the feasibility penalty once the needed load exceeds capacity [-]
FEASIBILITY_SIGMA_LN = 0.5
#: operational evidence likelihood ratios
LR_PRODUCTION_ON_TREATMENT_OFF = 5.0
LR_EFFLUENT_EXCEEDANCE = 3.0
LR_PER_VIOLATION = 0.25
MAX_VIOLATIONS_COUNTED = 4


@dataclass(frozen=True, slots=True)
class OperationsEvidence:
    """What the power meters and online effluent monitors say about one discharger in the window."""

    production_on_treatment_off: bool = False
    effluent_exceedance: bool = False
    violations: int | None = None


def group_of(parameter: str) -> str:
    return PARAMETER_GROUP.get(parameter, "other")


def log_signature(d: Feature, parameter: str) -> tuple[float, str]:
    """log factor and explanation of how well a discharger's kind and pollutants fit the parameter."""
    group = group_of(parameter)
    kind = d.get("kind", "other")
    w = SIGNATURE.get(kind, {}).get(group, DEFAULT_SIGNATURE)
    listed = d.get("pollutants")
    note = f"{kind} x {group} ({parameter}): weight {w:g}"
    if listed:
        if parameter in listed:
            w *= LISTED_FACTOR
            note += f"; lists {parameter} (x{LISTED_FACTOR:g})"
        else:
            w *= UNLISTED_FACTOR
            note += f"; does not list {parameter} (x{UNLISTED_FACTOR:g})"
    return math.log(w), note


def capacity(d: Feature, parameter: str, pulse: bool) -> float | None:
    """Most the discharger can emit: [kg] for a pulse, [kg/s] for a continuous release (None: unknown)."""
    rate = (d.get("max_load_kg_s") or {}).get(parameter)
    if rate is None:
        q = d.get("effluent_discharge_m3s")
        conc = RAW_CONCENTRATION.get(d.get("kind", ""), {}).get(group_of(parameter))
        if q is None or conc is None:
            return None
        rate = q * conc / 1000.0
    return rate * MAX_PULSE_DURATION_S if pulse else rate


def log_feasibility(needed: float, cap: float | None, unit: str) -> tuple[float, str]:
    """Penalty when the load the data need exceeds what the discharger can emit."""
    if cap is None or not math.isfinite(needed):
        return 0.0, "capacity unknown"
    if cap <= 0:
        return -50.0, f"needs {needed:.3g} {unit}; capacity 0"
    if needed <= cap:
        return 0.0, f"needs {needed:.3g} {unit}, within capacity {cap:.3g} {unit}"
    z = math.log(needed / cap) / FEASIBILITY_SIGMA_LN
    return -0.5 * z * z, f"needs {needed:.3g} {unit}, {needed / cap:.1f}x its capacity {cap:.3g} {unit}"


def log_operations(d: Feature, ops: Mapping[str, OperationsEvidence]) -> tuple[float, str]:
    """Power data, effluent monitors and violation history as likelihood ratios."""
    e = ops.get(d.id, OperationsEvidence())
    total, notes = 0.0, []
    if e.production_on_treatment_off:
        total += math.log(LR_PRODUCTION_ON_TREATMENT_OFF)
        notes.append(f"power data: production on, treatment off (x{LR_PRODUCTION_ON_TREATMENT_OFF:g})")
    if e.effluent_exceedance:
        total += math.log(LR_EFFLUENT_EXCEEDANCE)
        notes.append(f"online effluent monitor exceedance (x{LR_EFFLUENT_EXCEEDANCE:g})")
    v = e.violations if e.violations is not None else d.get("violations")
    if v:
        n = min(int(v), MAX_VIOLATIONS_COUNTED)
        total += math.log(1 + LR_PER_VIOLATION * n)
        notes.append(f"{v} past violation(s) (x{1 + LR_PER_VIOLATION * n:g})")
    return total, "; ".join(notes) or "no operational evidence"


def discharger_terms(features: list[Feature | None], parameter: str, needed: list[float], *, pulse: bool,
                     operations: Mapping[str, OperationsEvidence] | None) -> tuple[list[float], list[float], list[str], list[str]]:
    """Feasibility and operations log factors (with explanations) for each hypothesis.

    ``needed`` is the load each hypothesis needs, in the unit of :func:`capacity` ([kg] for a pulse,
    [kg/s] otherwise); None features (unregistered sources) get 0 and say why.
    """
    unit = "kg" if pulse else "kg/s"
    feas, ops = [0.0] * len(features), [0.0] * len(features)
    feas_notes = ["unregistered: no capacity"] * len(features)
    ops_notes = ["unregistered: none"] * len(features)
    for i, f in enumerate(features):
        if f is not None:
            feas[i], feas_notes[i] = log_feasibility(needed[i], capacity(f, parameter, pulse=pulse), unit)
            ops[i], ops_notes[i] = log_operations(f, operations or {})
    return feas, ops, feas_notes, ops_notes

"""Pollutants: how a substance moves (dissolved, floating, oxygen-demanding) and decays.

The registry maps the standard's item names (GB 3838-2002) and ``tracer`` to a behaviour. Decay
defaults to 0 (conservative: the plume is never under-predicted) unless a rate is given; the
forecast output states the rate used. Rates are SI [1/s]; convert 1/day at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .exceptions import UnknownModelError

Behaviour = Literal["dissolved", "floating", "oxygen_demanding"]

#: surface-to-mean velocity index: mean velocity is ~0.85 of the surface velocity in a logarithmic
#: profile, so floating material moves at U / 0.85 [-]. ISO 748:2007 (velocity-area methods) and
#: USGS Water-Supply Paper 2175 (Rantz 1982, vol. 1, p. 134) use coefficient 0.85 (0.84-0.90).
SURFACE_VELOCITY_INDEX = 0.85
#: wind drift of surface oil, ~3 % of the 10 m wind speed [-] (Fay 1971; ASCE Task Committee on
#: Modeling of Oil Spills 1996, J. Hydraul. Eng. 122(11), 594-609; DESIGN.md section 4).
WIND_DRIFT_FACTOR = 0.03


@dataclass(frozen=True, slots=True)
class Pollutant:
    """A pollutant as the transport engines see it.

    Parameters
    ----------
    name : str
        Standard item name (``COD``, ``NH3-N``, ``petroleum``...) or ``tracer``.
    behaviour : {"dissolved", "floating", "oxygen_demanding"}
        Floating material moves at the surface velocity plus wind drift and does not enter
        transient storage; oxygen-demanding material also drives a DO sag.
    decay_per_s : float
        First-order decay rate [1/s] (0 = conservative).
    standard_item : str or None
        The GB 3838 item whose limit is the receptor threshold (None: no standard, e.g. tracer).
    """

    name: str
    behaviour: Behaviour = "dissolved"
    decay_per_s: float = 0.0
    standard_item: str | None = None

    def __post_init__(self) -> None:
        if not self.decay_per_s >= 0:
            raise ValueError(f"pollutant {self.name!r}: decay rate {self.decay_per_s} 1/s must be >= 0")


_BEHAVIOUR: dict[str, Behaviour] = {
    "tracer": "dissolved",
    "petroleum": "floating",
    "COD": "oxygen_demanding", "CODMn": "oxygen_demanding", "BOD5": "oxygen_demanding",
}


def pollutant(name: str, decay_per_s: float = 0.0, behaviour: Behaviour | None = None) -> Pollutant:
    """Build a :class:`Pollutant` from a standard item name (aliases accepted) or ``tracer``.

    Raises
    ------
    UnknownModelError
        When the name is neither ``tracer`` nor a GB 3838 / GB 18918 item.
    """
    if name.strip().lower() == "tracer":
        return Pollutant("tracer", behaviour or "dissolved", decay_per_s, None)
    from .standards import canonical_item  # deferred: standards loads its tables lazily

    item = canonical_item(name)
    if item is None:  # pragma: no cover - canonical_item raises for unknown names
        raise UnknownModelError(f"unknown pollutant {name!r}")
    return Pollutant(item, behaviour or _BEHAVIOUR.get(item, "dissolved"), decay_per_s, item)

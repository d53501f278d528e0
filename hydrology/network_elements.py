"""The value objects of a river network: nodes, reaches, located features, departments.

Moved out of :mod:`hydrology.network` (which re-exports them) so that the columnar store
(:mod:`hydrology.network_columns`) can build them without an import cycle. Units are SI and named
in the fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

FeatureKind = Literal["station", "discharger", "intake", "structure", "site"]
#: feature collections in document order: document key -> feature kind
FEATURE_COLLECTIONS: dict[str, FeatureKind] = {
    "stations": "station",
    "dischargers": "discharger",
    "intakes": "intake",
    "structures": "structure",
    "sites": "site",
}


@dataclass(frozen=True, slots=True)
class Node:
    """A river node (source, confluence, split or outlet); ``x``, ``y`` in the network's CRS."""

    id: str
    x: float | None = None
    y: float | None = None
    name: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class Reach:
    """A river reach between two nodes.

    Geometry and hydraulics are optional in groups; :mod:`hydrology.reach_state` decides which
    applies (an explicit velocity wins, then a Manning trapezoid, then hydraulic geometry, then
    Jobson 1996) and fails loudly when none does. Units are in the field names.
    """

    id: str
    from_node: str
    to_node: str
    length_m: float
    slope: float | None = None
    manning_n: float | None = None
    bottom_width_m: float | None = None
    side_slope: float | None = None
    width_coef: float | None = None
    width_exp: float | None = None
    depth_coef: float | None = None
    depth_exp: float | None = None
    drainage_area_m2: float | None = None
    mean_annual_discharge_m3s: float | None = None
    discharge_m3s: float | None = None
    velocity_ms: float | None = None
    dispersion_m2s: float | None = None
    storage_ratio: float | None = None
    storage_exchange_per_s: float | None = None
    flow_fraction: float | None = None
    #: a lake or pool that mixes fully: a stirred tank of residence time length / velocity
    fully_mixed: bool = False
    geometry: tuple[tuple[float, float], ...] | None = None
    name: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def has_trapezoid(self) -> bool:
        """True when Manning normal depth can be solved (n, bottom width, side slope, slope)."""
        return None not in (self.manning_n, self.bottom_width_m, self.side_slope, self.slope)

    @property
    def has_hydraulic_geometry(self) -> bool:
        """True when width and depth power laws B = a Q^b, H = c Q^f are given."""
        return None not in (self.width_coef, self.width_exp, self.depth_coef, self.depth_exp)


@dataclass(frozen=True, slots=True)
class Feature:
    """Anything located on a reach: ``kind`` says which; ``attrs`` holds the kind's own fields.

    ``chainage_m`` is measured from the reach's upstream end [m].
    """

    kind: FeatureKind
    id: str
    reach: str
    chainage_m: float
    name: str | None = None
    attrs: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def get(self, key: str, default: Any = None) -> Any:
        """An attribute of the feature's kind (``target_class``, ``population``...)."""
        return self.attrs.get(key, default)


@dataclass(frozen=True, slots=True)
class Department:
    """A department or governance centre that receives actions; ``owns`` lists reach/feature ids."""

    id: str
    name: str
    name_en: str | None = None
    level: str | None = None
    roles: tuple[str, ...] = ()
    owns: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)


#: the optional numeric fields of a :class:`Reach`, in field order (the document's names too)
REACH_NUM_FIELDS: tuple[str, ...] = (
    "slope", "manning_n", "bottom_width_m", "side_slope", "width_coef", "width_exp", "depth_coef",
    "depth_exp", "drainage_area_m2", "mean_annual_discharge_m3s", "discharge_m3s", "velocity_ms",
    "dispersion_m2s", "storage_ratio", "storage_exchange_per_s", "flow_fraction",
)

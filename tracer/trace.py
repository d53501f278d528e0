"""From a river network and readings to detection and attribution: the entry points the CLI and
the service call.

:func:`station_contexts` turns the network into what detection needs (each station's target class
and its nearest stations up- and downstream, with travel times); :func:`trace` picks the
attribution model for the parameter: the steady DO model for dissolved oxygen, the pulse model for
every other item.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from hydrology.forecast import route_moments
from hydrology.oxygen_network import DOConditions
from hydrology.pollutants import Pollutant

from .attribution import DEFAULT_HORIZON_S, AttributionResult, attribute_pulse
from .attribution_do import attribute_do
from .detection import StationContext
from .priors import OperationsEvidence
from .readings import canonical_parameter

if TYPE_CHECKING:
    from hydrology.network import RiverNetwork

    from .readings import Readings


def station_contexts(net: RiverNetwork) -> dict[str, StationContext]:
    """Every station with its target class and nearest stations up- and downstream on the river.

    A downstream neighbour is a station reached from this one with no other station in between
    (several below a split); upstream neighbours are the converse, with the mean travel time of a
    dissolved tracer from each [s].
    """
    st = net.reach_state()
    tracer = Pollutant("tracer")
    down: dict[str, list[tuple[str, float]]] = {s: [] for s in net.stations}
    for s in net.stations.values():
        routed = route_moments(net, st, s.reach, s.chainage_m, tracer, ("station",))
        reached = {f.id: mean for f, _frac, _x, mean, _var in routed}
        for fid, mean in reached.items():
            # nearest: no other reached station lies between s and fid
            between = [g for g in reached if g != fid and reached[g] < mean and net.is_upstream(net.feature(g), net.feature(fid))]
            if not between:
                down[s.id].append((fid, mean))
    up: dict[str, list[tuple[str, float]]] = {s: [] for s in net.stations}
    for sid, lst in down.items():
        for fid, mean in lst:
            up[fid].append((sid, mean))
    return {
        sid: StationContext(sid, s.get("target_class"), tuple(u for u, _ in up[sid]), tuple(d for d, _ in down[sid]),
                            tuple(t for _, t in up[sid]))
        for sid, s in net.stations.items()
    }


def trace(net: RiverNetwork, readings: Readings, station: str, parameter: str, *,
          operations: Mapping[str, OperationsEvidence] | None = None, horizon_s: float = DEFAULT_HORIZON_S,
          do_conditions: DOConditions | None = None) -> AttributionResult:
    """Rank the upstream sources of an anomaly of ``parameter`` at ``station``."""
    p = canonical_parameter(parameter)
    net.feature(station, "station")
    if p == "DO":
        return attribute_do(net, readings, station, conditions=do_conditions, horizon_s=horizon_s, operations=operations)
    return attribute_pulse(net, readings, station, p, horizon_s=horizon_s, operations=operations)

"""From a river network and readings to detection and attribution: the entry points the CLI and
the service call.

:func:`station_contexts` turns the network into what detection needs (each station's target class
and its nearest stations up- and downstream, with travel times); :func:`trace` picks the
attribution model for the parameter: the steady DO model for dissolved oxygen, the pulse model for
every other item.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hydrology.oxygen_network import DOConditions
from hydrology.pollutants import pollutant
from hydrology.transport.analytic import Release

from .attribution import DEFAULT_HORIZON_S, AttributionError, AttributionResult, ReleaseKind, attribute_release
from .attribution_do import attribute_do
from .detection import StationContext
from .grab import GrabSample, OperationsCheck, grab_sample, operations_checks
from .neighbours import station_neighbours
from .planner import DOEvent, PlanInput, Suspect
from .priors import OperationsEvidence
from .readings import canonical_parameter
from .signals import SAW_SIGMAS, station_signals

if TYPE_CHECKING:
    from hydrology.network import RiverNetwork

    from .readings import Readings

#: a release that is still going on is planned as lasting this long beyond the moment of planning,
#: unless the halt order stops it [s]
ONGOING_RELEASE_S = 24 * 3600.0


def station_contexts(net: RiverNetwork) -> dict[str, StationContext]:
    """Every station with its target class and nearest stations up- and downstream on the river.

    A downstream neighbour is a station reached from this one with no other station in between
    (several below a split); upstream neighbours are the converse, with the mean travel time of a
    dissolved tracer from each [s].
    """
    down, up = station_neighbours(net)  # see tracer.neighbours: no path search per station pair
    return {
        sid: StationContext(sid, s.get("target_class"), tuple(u for u, _ in up[sid]), tuple(d for d, _ in down[sid]),
                            tuple(t for _, t in up[sid]))
        for sid, s in net.stations.items()
    }


def trace(net: RiverNetwork, readings: Readings, station: str, parameter: str, *,
          operations: Mapping[str, OperationsEvidence] | None = None, horizon_s: float = DEFAULT_HORIZON_S,
          do_conditions: DOConditions | None = None, release: ReleaseKind | None = None) -> AttributionResult:
    """Rank the upstream sources of an anomaly of ``parameter`` at ``station``.

    DO uses the steady model; other parameters a pulse or continuous release (``release``; default
    decided from the record, :func:`tracer.attribution.release_kind`).
    """
    p = canonical_parameter(parameter)
    net.feature(station, "station")
    if p == "DO":
        return attribute_do(net, readings, station, conditions=do_conditions, horizon_s=horizon_s, operations=operations)
    return attribute_release(net, readings, station, p, kind=release, horizon_s=horizon_s, operations=operations)


def detection_time(readings: Readings, station: str, parameter: str) -> pd.Timestamp:
    """First reading at ``station`` that counts as seeing the event (see :mod:`tracer.signals`) [UTC]."""
    p = canonical_parameter(parameter)
    t_ref = readings.frame["time"].min()
    sig = station_signals(readings, p, [station], t_ref)[station]
    hot = np.flatnonzero(sig.excess > SAW_SIGMAS * sig.noise)
    if not hot.size:
        raise AttributionError(f"station {station!r} shows no {p} excess: no detection time")
    return t_ref + pd.Timedelta(seconds=float(sig.t_s[hot[0]]))


def separation(net: RiverNetwork, readings: Readings, res: AttributionResult,
               now: datetime) -> tuple[tuple[str, ...], GrabSample | None, tuple[OperationsCheck, ...]]:
    """The first group of candidates when it holds more than one (else empty), the grab sample that
    would split them (:func:`tracer.grab.grab_sample`, from ``now``, reading error the anomaly
    station's noise) and the operations checks at their dischargers."""
    group = res.groups[0] if res.groups else ()
    if len(group) < 2:
        return (), None, ()
    grab = None
    if res.model in ("pulse", "continuous"):
        t_ref = readings.frame["time"].min()
        noise = station_signals(readings, res.parameter, [res.station], t_ref)[res.station].noise
        grab = grab_sample(net, res, now, noise_mg_l=float(noise))
    return tuple(c.id for c in group), grab, operations_checks(net, group)


def plan_input_from_trace(net: RiverNetwork, readings: Readings, res: AttributionResult, *,
                          now: datetime | None = None, do_conditions: DOConditions | None = None,
                          separate: bool = False, incident_id: str | None = None,
                          halted: Mapping[str, datetime] | None = None) -> PlanInput:
    """What the planner needs, from an attribution: suspects, and the top candidate's release or DO load.

    ``now`` defaults to the detection time (first reading that saw a pulse at the station), or for a
    DO sag, judged on daily means, the latest reading. ``separate``: also the undecided group, its
    grab sample and operations checks (:func:`separation`). ``incident_id``: the id the checklist's
    action ids start with (the service passes its network-scoped incident id, so that one incident has one
    id everywhere); by default the station, parameter and planning time. ``halted``: discharger id -> when a
    halt order was carried out there (UTC); a release still going on from that discharger ends then instead of
    lasting :data:`ONGOING_RELEASE_S` beyond the planning time.
    """
    if now is not None:
        t_now = now
    elif res.model == "steady_do":  # a sag is judged on daily means: plan on the data at hand
        t_now = readings.series(res.station, "DO").index.max().to_pydatetime()
    else:
        t_now = detection_time(readings, res.station, res.parameter).to_pydatetime()
    suspects = tuple(Suspect(c.id, c.probability, f"{c.kind}, {c.distance_m / 1000:.1f} km upstream")
                     for c in res.candidates if c.kind != "unregistered")
    top = next((c for c in res.candidates if c.kind != "unregistered"), res.candidates[0])
    incident = incident_id or f"{res.station}/{res.parameter}/{pd.Timestamp(t_now).strftime('%Y%m%dT%H%MZ')}"
    undecided, grab, checks = separation(net, readings, res, t_now) if separate else ((), None, ())
    if res.model == "steady_do":
        s = readings.series(res.station, "DO")
        observed = float(s[s.index >= pd.Timestamp(top.release_start)].median()) if top.release_start else float(s.median())
        ev = DOEvent(res.station, observed, top.id, float(top.rate_kg_s or 0.0), do_conditions or DOConditions())
        return PlanInput(incident, t_now, suspects, None, ev, undecided, grab, checks)
    f = net.feature(top.id) if top.kind != "unregistered" else None
    reach, chainage = (f.reach, f.chainage_m) if f is not None else (top.id.split(":", 1)[1], 0.0)
    if res.model == "continuous" and top.rate_kg_s is not None and top.release_start is not None:
        # still going on: planned as lasting ONGOING_RELEASE_S beyond now unless the halt order stops it
        lasted = max((pd.Timestamp(t_now) - pd.Timestamp(top.release_start)).total_seconds(), 0.0)
        duration = lasted + ONGOING_RELEASE_S
        if halted and top.id in halted:  # the halt order was carried out: the release stopped then
            duration = max((pd.Timestamp(halted[top.id]) - pd.Timestamp(top.release_start)).total_seconds(), 60.0)
        rel = Release(reach, chainage, pollutant(res.parameter), rate_kg_s=top.rate_kg_s,
                      duration_s=duration, start=top.release_start)
    else:
        rel = Release(reach, chainage, pollutant(res.parameter), mass_kg=top.mass_kg, start=top.release_start)
    return PlanInput(incident, t_now, suspects, rel, None, undecided, grab, checks)

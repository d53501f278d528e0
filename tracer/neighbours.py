"""Nearest stations up- and downstream of every station, without a path search per station pair.

The definition (kept from the first version of :func:`tracer.trace.station_contexts`): station
``f`` is a downstream neighbour of station ``s`` when a dissolved tracer released at ``s`` reaches
``f`` (:func:`hydrology.transport.analytic.route_moments`, mean travel time ``t_s(f)`` [s]) and no
other station ``g`` reached from ``s`` has ``t_s(g) < t_s(f)`` and lies upstream of ``f``
(:meth:`hydrology.network.RiverNetwork.is_upstream`). Upstream neighbours are the converse, with
the mean travel time from each.

The first version tested every pair of reached stations with a graph search each (``is_upstream``),
O(S x R^2 x N) for S stations reaching R stations each on N reaches: 228 s at 100,000 reaches
(issue 13). Here:

1. one pass over the reaches in topological order gives, for every station, the set of stations
   upstream of it as a bit mask (a Python int; bit i = i-th station), O(N x S / 64) word ops;
2. the travel times still come from ``route_moments`` per station, the same call as before, so
   they are the same floats bit for bit (the routing follows only the reaches below the station);
3. per source, the reached stations sorted by travel time give, for each ``f``, the mask of
   stations reached sooner; ``f`` is a neighbour when that mask and ``f``'s upstream mask do not
   intersect, O(R log R) per source.

Equality with the pairwise definition, including ties (strict ``<``) and NaN travel times (never
less than anything), is checked in ``tests/tracer/test_station_contexts.py`` against a copy of the
first version.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from hydrology.pollutants import Pollutant
from hydrology.transport.analytic import route_moments

if TYPE_CHECKING:
    from hydrology.network import RiverNetwork


def upstream_station_masks(net: RiverNetwork, ids: list[str]) -> dict[str, int]:
    """For each station id, the bit mask of the stations upstream of it (bit i = ``ids[i]``).

    "Upstream" is :meth:`RiverNetwork.is_upstream` on the features the ids name
    (``net.feature(id)``): an earlier chainage on the same reach, or any chainage on a reach from
    which water reaches this one. One pass over ``net.reach_order``.
    """
    located = [net.feature(sid) for sid in ids]
    on_reach: dict[str, list[tuple[float, int]]] = {}
    for i, f in enumerate(located):
        on_reach.setdefault(f.reach, []).append((f.chainage_m, i))
    # above[r]: stations on reaches strictly upstream of reach r
    above: dict[str, int] = {}
    whole: dict[str, int] = {}  # stations on the reach itself
    for r, lst in on_reach.items():
        m = 0
        for _c, i in lst:
            m |= 1 << i
        whole[r] = m
    for rid in net.reach_order:
        m = 0
        for u in net.reaches_into(net.reaches[rid].from_node):
            m |= above.get(u, 0) | whole.get(u, 0)
        if m:
            above[rid] = m
    masks: dict[str, int] = {}
    for r, lst in on_reach.items():
        lst.sort()
        base = above.get(r, 0)
        k = 0
        prefix = 0  # stations on r with chainage strictly less than the current one
        for c, i in lst:
            while lst[k][0] < c:
                prefix |= 1 << lst[k][1]
                k += 1
            masks[ids[i]] = base | prefix
    return masks


def nearest_downstream(reached: dict[str, float], bit: dict[str, int], up_mask: dict[str, int]) -> list[tuple[str, float]]:
    """The reached stations with no other reached station both sooner and upstream of them.

    ``reached`` maps station id to mean travel time [s] from the source, in routing order (the
    order of the result); ``bit`` and ``up_mask`` are as in :func:`upstream_station_masks`.
    """
    timed = sorted((t, g) for g, t in reached.items() if not math.isnan(t))
    sooner: dict[str, int] = {}
    acc = 0  # stations with a time strictly less than the current group
    i = 0
    while i < len(timed):
        j = i
        group = 0
        while j < len(timed) and timed[j][0] == timed[i][0]:
            sooner[timed[j][1]] = acc
            group |= 1 << bit[timed[j][1]]
            j += 1
        acc |= group
        i = j
    # a NaN time is never greater than another: nothing is sooner
    return [(f, t) for f, t in reached.items() if not (sooner.get(f, 0) & up_mask[f])]


def station_neighbours(net: RiverNetwork) -> tuple[dict[str, list[tuple[str, float]]], dict[str, list[tuple[str, float]]]]:
    """Downstream and upstream neighbours of every station, with mean travel times [s].

    Returns
    -------
    down, up : dict
        Station id -> list of (neighbour id, mean travel time of a dissolved tracer between them [s]),
        in the order of the pairwise definition (routing order; upstream lists by source station).
    """
    ids = list(net.stations)
    bit = {sid: i for i, sid in enumerate(ids)}
    up_mask = upstream_station_masks(net, ids)
    st = net.reach_state()
    tracer = Pollutant("tracer")
    down: dict[str, list[tuple[str, float]]] = {s: [] for s in ids}
    for s in net.stations.values():
        routed = route_moments(net, st, s.reach, s.chainage_m, tracer, ("station",))
        reached = {f.id: mean for f, _frac, _x, mean, _var in routed}
        down[s.id] = nearest_downstream(reached, bit, up_mask)
    up: dict[str, list[tuple[str, float]]] = {s: [] for s in ids}
    for sid, lst in down.items():
        for fid, mean in lst:
            up[fid].append((sid, mean))
    return down, up

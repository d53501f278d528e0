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
2. the travel times come from a routing per station that repeats the float operations of
   ``route_moments`` in the same order (so they are the same floats bit for bit), and stops once
   all the remaining mass has passed a station reached sooner (:func:`reached_stations`): on a
   dendritic network it follows the river only to the next station or two, not to the outlet;
3. per source, the reached stations sorted by travel time give, for each ``f``, the mask of
   stations reached sooner; ``f`` is a neighbour when that mask and ``f``'s upstream mask do not
   intersect, O(R log R) per source.

Equality with the pairwise definition, including ties (strict ``<``) and NaN travel times (never
less than anything), is checked in ``tests/tracer/test_station_contexts.py`` against a copy of the
first version.
"""

from __future__ import annotations

import heapq
import math
from typing import TYPE_CHECKING

import numpy as np

from hydrology.exceptions import UnknownElementError
from hydrology.pollutants import Pollutant
from hydrology.transport.routing import ForecastError, node_divisors, reach_moment_arrays

if TYPE_CHECKING:
    from hydrology.network import Feature, RiverNetwork
    from hydrology.reach_state import ReachState

#: a routing from a station stops where all its remaining mass passes one reach whose start is
#: later than a station already reached upstream of that reach by more than this share of that
#: station's mean travel time [-]; it bounds the float rounding the later reaches could undo
#: (a few machine epsilons per reach, 1e-16 x 10^6 reaches = 1e-10)
PRUNE_MARGIN = 1e-6


def upstream_station_masks(net: RiverNetwork, ids: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    """For each station id, the bit mask of the stations upstream of it (bit i = ``ids[i]``).

    "Upstream" is :meth:`RiverNetwork.is_upstream` on the features the ids name
    (``net.feature(id)``): an earlier chainage on the same reach, or any chainage on a reach from
    which water reaches this one. One pass over ``net.reach_order``. Also returns, per reach id, the
    mask of the stations on reaches strictly upstream of it (absent: none).
    """
    located = [net.feature(sid) for sid in ids]
    on_reach: dict[str, list[tuple[float, int]]] = {}
    for i, f in enumerate(located):
        on_reach.setdefault(f.reach, []).append((f.chainage_m, i))
    # whole[r]: stations on the reach itself; above[r]: stations on reaches strictly upstream of reach r
    whole: dict[str, int] = {}
    for r, lst in on_reach.items():
        m = 0
        for _c, i in lst:
            m |= 1 << i
        whole[r] = m
    # over reach rows and the CSR topology (no Reach object built, no id looked up per reach)
    t = net.reaches
    whole_row = [0] * len(t)
    for r, m in whole.items():
        j = t.row(r)
        if j is not None:  # a station on an unknown reach is upstream of nothing
            whole_row[j] = m
    ptr_a, into_a = net.rows_into_nodes()
    ptr, into, frm = ptr_a.tolist(), into_a.tolist(), t.from_row.tolist()
    above_row = [0] * len(t)
    for j in net.reach_order_rows.tolist():
        node = frm[j]
        m = 0
        for u in into[ptr[node]:ptr[node + 1]]:
            m |= above_row[u] | whole_row[u]
        above_row[j] = m
    reach_ids = t.id_index.ids
    above = {reach_ids[j]: m for j, m in enumerate(above_row) if m}
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
    return masks, above


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


def _stations_by_reach(net: RiverNetwork) -> dict[str, list[Feature]]:
    """Stations per reach id, by chainage (stable: document order among equal chainages), as
    ``route_moments`` indexes its receptors."""
    by_reach: dict[str, list[Feature]] = {}
    for f in net.iter_features(("station",)):
        by_reach.setdefault(f.reach, []).append(f)
    for lst in by_reach.values():
        lst.sort(key=lambda f: f.chainage_m)
    return by_reach


def node_divisors_by_rows(net: RiverNetwork, state: ReachState) -> dict[str, float]:
    """:func:`hydrology.transport.routing.node_divisors` over the columns: the same floats (the same
    additions in the same order: a node's inflow, then the discharges [m3/s] of the reaches entering
    it in document order, ``np.add.at`` adding in index order), without building a Reach per reach."""
    t = net.reaches
    n = len(net.nodes.id_index)
    if state.ids == tuple(t.id_index.ids):
        q = np.asarray(state.discharge_m3s, dtype=float)
    else:  # the state's rows are in topological order: put them in document order
        q = np.asarray(state.discharge_m3s, dtype=float)[np.fromiter(map(state.index.__getitem__, t.id_index.ids),
                                                                     np.int64, len(t))]
    arriving = np.zeros(n)
    arriving[net.inflows.rows] = net.inflows.discharge_m3s
    np.add.at(arriving, t.to_row, q)
    leaving = np.zeros(n)
    np.add.at(leaving, t.from_row, q)
    k = net.nodes.n_declared
    divisor = np.where(leaving[:k] > arriving[:k], leaving[:k], arriving[:k])  # max(arriving, leaving), as builtin max
    return dict(zip(net.nodes.id_index.ids[:k], divisor.tolist()))


def reached_stations(net: RiverNetwork, state: ReachState, source: Feature, stations: dict[str, list[Feature]],
                     bit: dict[str, int], above: dict[str, int] | None,
                     divisors: dict[str, float] | None = None, to_nodes: list[str] | None = None) -> dict[str, float]:
    """Mean travel time [s] of a dissolved tracer from ``source`` to the stations below it, in
    routing order: the means of :func:`hydrology.transport.analytic.route_moments`, computed with the
    same float operations in the same order (its mass shares and mean accumulators; distances and
    variances, which the means do not use, are left out).

    With ``above`` (reach id -> mask of the stations strictly upstream of the reach), the routing
    stops at a reach that all the remaining mass passes (nothing else pending) when the mean at the
    reach's start exceeds, by :data:`PRUNE_MARGIN`, the time of a reached station upstream of it:
    every station from there on has that station upstream and reached sooner, so none of them is a
    nearest neighbour, and none lies upstream of a station already reached (they come later in
    topological order).

    ``divisors`` (:func:`node_divisors_by_rows`) and ``to_nodes`` (the to_node of each state row)
    are what a call for every station shares; without them they are looked up per reach.
    """
    if source.reach not in state.index:  # as route_moments
        raise UnknownElementError(f"unknown reach {source.reach!r}")
    i0 = state.index[source.reach]
    chainage_m = source.chainage_m
    L0 = state.length_m[i0]
    if not (0.0 <= chainage_m <= L0):
        raise ForecastError(f"chainage {chainage_m} m lies outside reach {source.reach!r} (0 to {L0} m)")
    mean_r, _var_r = reach_moment_arrays(net, state, Pollutant("tracer"))
    q = state.discharge_m3s
    if divisors is None:  # station_neighbours passes both, computed once over the columns
        divisors = node_divisors(net, state)
    reached: dict[str, float] = {}
    acc: dict[int, list[float]] = {i0: [1.0, 0.0]}  # mass fraction, sum of fraction x mean
    pending = [i0]
    done: set[int] = set()
    frac0 = chainage_m / L0
    while pending:
        j = heapq.heappop(pending)
        if j in done:
            continue
        done.add(j)
        f, sm = acc.pop(j)
        mean0 = sm / f
        rid = state.ids[j]
        if above is not None and j != i0 and not acc and reached:
            mask = above.get(rid, 0)
            block = [t for g, t in reached.items() if mask >> bit[g] & 1 and not math.isnan(t)]
            if block and mean0 > min(block) * (1.0 + PRUNE_MARGIN):
                break
        for feat in stations.get(rid, ()):
            if j == i0 and feat.chainage_m <= chainage_m:
                continue
            fr = feat.chainage_m / state.length_m[j]
            if j == i0:
                fr_rel = (feat.chainage_m - chainage_m) / state.length_m[j]
                reached[feat.id] = fr_rel * mean_r[j]
            else:
                reached[feat.id] = mean0 + fr * mean_r[j]
        end_mean = (1 - frac0) * mean_r[j] if j == i0 else mean0 + mean_r[j]
        node = to_nodes[j] if to_nodes is not None else net.reaches[rid].to_node
        downs = net.reaches_out_of(node)
        if not downs:
            continue
        qdiv = divisors[node]
        for d in downs:
            k = state.index[d]
            share = f * q[k] / qdiv
            a = acc.setdefault(k, [0.0, 0.0])
            a[0] += share
            a[1] += share * end_mean
            heapq.heappush(pending, k)
    return reached


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
    up_mask, above = upstream_station_masks(net, ids)
    st = net.reach_state()
    by_reach = _stations_by_reach(net)
    # "upstream" is judged on net.feature(id): prune only when that is the station itself
    prune = above if all(net.feature(sid) is f for sid, f in net.stations.items()) else None
    divisors = node_divisors_by_rows(net, st)  # once, over the columns
    t = net.reaches
    state_rows = np.fromiter(map(t.id_index.index.__getitem__, st.ids), np.int64, len(st.ids))
    node_ids = net.nodes.id_index.ids
    to_nodes = [node_ids[i] for i in t.to_row[state_rows].tolist()]  # by state row: no Reach built
    down: dict[str, list[tuple[str, float]]] = {s: [] for s in ids}
    for s in net.stations.values():
        reached = reached_stations(net, st, s, by_reach, bit, prune, divisors, to_nodes)
        down[s.id] = nearest_downstream(reached, bit, up_mask)
    up: dict[str, list[tuple[str, float]]] = {s: [] for s in ids}
    for sid, lst in down.items():
        for fid, mean in lst:
            up[fid].append((sid, mean))
    return down, up

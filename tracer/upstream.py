"""Travel-time moments from every upstream point to one station (the reverse of the forecast).

The forecast engine routes moments downstream from one source; attribution needs the opposite: for
one observing station, the mass fraction, distance and mean and variance of travel time from every
point upstream of it. A reverse dynamic programme over the reaches above the station, in reverse
topological order, gives them for every reach end at once; a point at chainage c on reach r adds
the part of r below it. Moments combine as in :func:`hydrology.transport.analytic.route_moments`: means and
variances add along a path; at a split only the share of flow going towards the station arrives; where
branches rejoin, the arrivals mix (mass-weighted mean and variance).

Units: m, s, s2; fractions [-].
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hydrology.transport.analytic import node_divisors, reach_moment_arrays

if TYPE_CHECKING:
    from hydrology.network import Feature, RiverNetwork
    from hydrology.pollutants import Pollutant
    from hydrology.reach_state import ReachState


@dataclass(frozen=True, slots=True)
class UpstreamMoments:
    """Moments from the downstream end of each upstream reach to a station.

    For the station's own reach, "end" means the station itself. Arrays are aligned with
    ``reach_index`` (indices into the network's :class:`~hydrology.reach_state.ReachState`).
    """

    station: str
    station_reach: int
    station_chainage_m: float
    reach_index: np.ndarray
    fraction: np.ndarray
    distance_m: np.ndarray
    mean_s: np.ndarray
    var_s2: np.ndarray
    reach_mean_s: np.ndarray
    reach_var_s2: np.ndarray
    lookup: dict[int, int]

    def at(self, reach_idx: np.ndarray, chainage_m: np.ndarray, length_m: np.ndarray) -> tuple[np.ndarray, ...]:
        """(fraction, distance [m], mean [s], variance [s2]) from points (reach index, chainage) to the station.

        Points not upstream of the station (or beyond the horizon) get fraction 0 and NaN moments.
        """
        n = len(reach_idx)
        out_f = np.zeros(n)
        out_x = np.full(n, np.nan)
        out_m = np.full(n, np.nan)
        out_v = np.full(n, np.nan)
        pos = np.array([self.lookup.get(int(r), -1) for r in reach_idx])
        ok = pos >= 0
        own = ok & (reach_idx == self.station_reach)
        ok &= ~own | (chainage_m < self.station_chainage_m)
        p = pos[ok]
        L = length_m[ok]
        below = np.where(reach_idx[ok] == self.station_reach, self.station_chainage_m, L) - chainage_m[ok]
        share = below / L
        out_f[ok] = self.fraction[p]
        out_x[ok] = self.distance_m[p] + below
        out_m[ok] = self.mean_s[p] + share * self.reach_mean_s[p]
        out_v[ok] = self.var_s2[p] + share * self.reach_var_s2[p]
        return out_f, out_x, out_m, out_v


def upstream_moments(net: RiverNetwork, state: ReachState, station: Feature, pollutant: Pollutant,
                     horizon_s: float = np.inf, wind_ms: float = 0.0, within: set[int] | None = None) -> UpstreamMoments:
    """Reverse moment DP from ``station`` up to ``horizon_s`` of mean travel time [s].

    ``within`` (reach indices) limits the search to reaches that matter to the caller, e.g. the
    hypotheses of an attribution and the river below them; the moments of the reaches it visits are
    unchanged by the limit (a reach's moments depend only on the reaches below it).
    """
    mean_r, var_r = reach_moment_arrays(net, state, pollutant, wind_ms)
    q = state.discharge_m3s
    divisors = node_divisors(net, state)
    s_idx = state.index[station.reach]
    # per reach: [fraction, sum f*mean, sum f*(var + mean^2), sum f*distance] at its downstream end
    acc: dict[int, list[float]] = {s_idx: [1.0, 0.0, 0.0, 0.0]}
    done: dict[int, tuple[float, float, float, float]] = {}
    heap = [-s_idx]  # reverse topological order: largest index first
    while heap:
        j = -heapq.heappop(heap)
        if j in done:
            continue
        f, sm, sm2, sd = acc.pop(j)
        mean = sm / f
        var = max(sm2 / f - mean * mean, 0.0)
        dist = sd / f
        done[j] = (f, dist, mean, var)
        L_here = station.chainage_m if j == s_idx else state.length_m[j]
        share_here = L_here / state.length_m[j]
        start_mean = mean + share_here * mean_r[j]
        if start_mean > horizon_s:
            continue
        start_var = var + share_here * var_r[j]
        start_dist = dist + L_here
        node = net.reaches[state.ids[j]].from_node
        split = q[j] / divisors[node]
        for up in net.reaches_into(node):
            k = state.index[up]
            if within is not None and k not in within:
                continue
            a = acc.setdefault(k, [0.0, 0.0, 0.0, 0.0])
            w = f * split
            a[0] += w
            a[1] += w * start_mean
            a[2] += w * (start_var + start_mean**2)
            a[3] += w * start_dist
            heapq.heappush(heap, -k)
    idx = np.fromiter(done, dtype=int, count=len(done))
    vals = np.array([done[i] for i in idx]).reshape(-1, 4)
    return UpstreamMoments(
        station=station.id, station_reach=s_idx, station_chainage_m=station.chainage_m, reach_index=idx,
        fraction=vals[:, 0], distance_m=vals[:, 1], mean_s=vals[:, 2], var_s2=vals[:, 3],
        reach_mean_s=mean_r[idx], reach_var_s2=var_r[idx], lookup={int(i): p for p, i in enumerate(idx)},
    )

"""Routing a point source through the network: which receptors it reaches, with what share of its
mass, at what distance, and with which travel-time moments.

Used by the transport kernel (:mod:`hydrology.transport.kernel`) to place each receptor's time
window, by the numerical engine to size its grid, and by the tracer to walk the network. Mass
divides by flow at splits and withdrawals (:func:`node_outflow_divisor`); travel-time moments add
along reaches in series and mix, mass-weighted, where two branches from one source meet again.
Units: m, s, m/s, m3/s.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

import numpy as np

from ..exceptions import HydrologyError, UnknownElementError
from ..network import Feature, FeatureKind
from ..pollutants import SURFACE_VELOCITY_INDEX, WIND_DRIFT_FACTOR, Pollutant
from .closed_form import reach_moments

if TYPE_CHECKING:
    from ..network import RiverNetwork
    from ..reach_state import ReachState


class ForecastError(HydrologyError, ValueError):
    """A release that cannot be forecast (off its reach, no mass, bad duration)."""


def path_velocity(state: ReachState, pollutant: Pollutant, wind_ms: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Velocity [m/s] and storage ratio [-] at which a pollutant travels in each reach.

    Floating material moves at the surface velocity, U / :data:`SURFACE_VELOCITY_INDEX`, plus
    :data:`WIND_DRIFT_FACTOR` x the along-stream 10 m wind [m/s], and does not enter storage zones.
    """
    if pollutant.behaviour == "floating":
        u = state.velocity_ms / SURFACE_VELOCITY_INDEX + WIND_DRIFT_FACTOR * wind_ms
        if np.any(u <= 0):
            raise ForecastError(f"an upstream wind of {wind_ms} m/s stops the floating plume")
        return u, np.zeros_like(u)
    return state.velocity_ms, state.storage_ratio


def reach_moment_arrays(net: RiverNetwork, state: ReachState, pollutant: Pollutant,
                        wind_ms: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Mean [s] and variance [s2] of the travel time through every reach for this pollutant's
    behaviour (cached per network state, behaviour and wind: they do not depend on the release)."""
    cache = net.__dict__.setdefault("_moment_cache", {})
    key = (id(state), pollutant.behaviour, wind_ms)
    if key not in cache:
        if any(k[0] != id(state) for k in cache):
            cache.clear()  # one state at a time
        u, beta = path_velocity(state, pollutant, wind_ms)
        cache[key] = (state, *reach_moments(state.length_m, u, state.dispersion_m2s, beta, state.storage_exchange_per_s,
                                            state.lake_mask()))
    return cache[key][1], cache[key][2]


def node_divisors(net: RiverNetwork, state: ReachState) -> dict[str, float]:
    """:func:`node_outflow_divisor` of every node, computed once per network state (cached)."""
    cache = net.__dict__.setdefault("_divisor_cache", {})
    key = id(state)
    if key not in cache:
        q = state.discharge_m3s
        arriving = dict(net.inflows)
        leaving: dict[str, float] = {}
        for rid, r in net.reaches.items():
            qr = float(q[state.index[rid]])
            arriving[r.to_node] = arriving.get(r.to_node, 0.0) + qr
            leaving[r.from_node] = leaving.get(r.from_node, 0.0) + qr
        cache.clear()  # one state at a time: a new state replaces the old one
        cache[key] = (state, {n: max(arriving.get(n, 0.0), leaving.get(n, 0.0)) for n in net.nodes})
    return cache[key][1]


def node_outflow_divisor(net: RiverNetwork, state: ReachState, node: str) -> float:
    """Flow [m3/s] that the mass at a node is shared by: max(water arriving, water leaving).

    A reach leaving the node carries Q_k / divisor of the arriving mass. Where water leaves the river
    at the node (a withdrawal: less flow leaves than arrives) the divisor is the arriving flow, so
    the withdrawn share takes its mass with it; where water joins (inflows, gauged gains) it is the
    leaving flow, so the mass is diluted in it.
    """
    q = state.discharge_m3s
    arriving = net.inflows.get(node, 0.0) + sum(q[state.index[u]] for u in net.reaches_into(node))
    leaving = sum(q[state.index[d]] for d in net.reaches_out_of(node))
    return max(arriving, leaving)


def _receptor_index(net: RiverNetwork, kinds: tuple[FeatureKind, ...]) -> dict[str, list[Feature]]:
    """Features of ``kinds`` per reach, by chainage (cached per network: its features are fixed)."""
    cache = net.__dict__.setdefault("_receptor_cache", {})
    if kinds not in cache:
        cache[kinds] = _build_receptor_index(net, kinds)
    return cache[kinds]


def _build_receptor_index(net: RiverNetwork, kinds: tuple[FeatureKind, ...]) -> dict[str, list[Feature]]:
    by_reach: dict[str, list[Feature]] = {}
    for f in net.iter_features(kinds):
        by_reach.setdefault(f.reach, []).append(f)
    for lst in by_reach.values():
        lst.sort(key=lambda f: f.chainage_m)
    return by_reach


def route_moments(net: RiverNetwork, state: ReachState, reach: str, chainage_m: float, pollutant: Pollutant,
                  kinds: tuple[FeatureKind, ...], wind_ms: float = 0.0) -> list[tuple[Feature, float, float, float, float]]:
    """Travel-time moments from a point to every feature of ``kinds`` downstream of it.

    Returns
    -------
    list of (feature, mass fraction [-], distance [m], mean travel time [s], variance [s2])
        Mass fraction < 1 below splits. Distance and moments at a point reached by two branches are
        mass-weighted means (the mixture of the two arrivals).
    """
    if reach not in state.index:
        raise UnknownElementError(f"unknown reach {reach!r}")
    i0 = state.index[reach]
    L0 = state.length_m[i0]
    if not (0.0 <= chainage_m <= L0):
        raise ForecastError(f"chainage {chainage_m} m lies outside reach {reach!r} (0 to {L0} m)")
    mean_r, var_r = reach_moment_arrays(net, state, pollutant, wind_ms)
    rec = _receptor_index(net, kinds)
    q = state.discharge_m3s
    divisors = node_divisors(net, state)
    out: list[tuple[Feature, float, float, float, float]] = []

    # accumulators at reach starts: mass fraction, sum f*mean, sum f*(var+mean^2), sum f*distance
    acc: dict[int, list[float]] = {}
    # the source reach: start "virtually" at chainage 0 with moments that put the release at c0
    frac0 = chainage_m / L0
    acc[i0] = [1.0, 0.0, 0.0, 0.0]
    pending = [i0]
    done: set[int] = set()
    while pending:
        j = heapq.heappop(pending)  # topological order = ids order, so a heap on index is safe
        if j in done:
            continue
        done.add(j)
        f, sm, sm2, sd = acc.pop(j)
        mean0, dist0 = sm / f, sd / f
        var0 = 0.0 if j == i0 else max(sm2 / f - mean0**2, 0.0)
        rid = state.ids[j]
        for feat in rec.get(rid, ()):
            if j == i0 and feat.chainage_m <= chainage_m:
                continue
            fr = feat.chainage_m / state.length_m[j]
            if j == i0:
                fr_rel = (feat.chainage_m - chainage_m) / state.length_m[j]
                m, v = fr_rel * mean_r[j], fr_rel * var_r[j]
                out.append((feat, f, feat.chainage_m - chainage_m, m, v))
            else:
                out.append((feat, f, dist0 + feat.chainage_m, mean0 + fr * mean_r[j], var0 + fr * var_r[j]))
        if j == i0:
            end_mean, end_var, end_dist = (1 - frac0) * mean_r[j], (1 - frac0) * var_r[j], L0 - chainage_m
        else:
            end_mean, end_var, end_dist = mean0 + mean_r[j], var0 + var_r[j], dist0 + state.length_m[j]
        node = net.reaches[rid].to_node
        downs = net.reaches_out_of(node)
        if not downs:
            continue
        qdiv = divisors[node]
        for d in downs:
            k = state.index[d]
            share = f * q[k] / qdiv
            a = acc.setdefault(k, [0.0, 0.0, 0.0, 0.0])
            a[0] += share
            a[1] += share * end_mean
            a[2] += share * (end_var + end_mean**2)
            a[3] += share * end_dist
            heapq.heappush(pending, k)
    return out

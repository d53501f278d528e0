"""Vulnerability matrix: every source x every receptor, for a unit and a worst-case release, on Dask.

Moments. Travel-time moments from every point upstream of a receptor to that receptor come from one
reverse pass (as :mod:`tracer.upstream` does), written here as a linear system so that a block of
receptors is solved at once. Number the nodes topologically; let w_k be the share of node n's water
that leaves by reach k (:func:`hydrology.transport.analytic.node_outflow_divisor`) and m_k, v_k the mean and
variance of the travel time through reach k (:func:`hydrology.transport.reach_moments`). The sums
over all paths from node n to receptor r of fraction, fraction x time, fraction x time^2 and
fraction x distance obey

    N0(n) = sum_k w_k N0(to_k)                                        + b0(n)
    N1(n) = sum_k w_k [N1(to_k) + m_k N0(to_k)]                        + b1(n)
    N2(n) = sum_k w_k [N2(to_k) + 2 m_k N1(to_k) + (v_k + m_k^2) N0(to_k)] + b2(n)
    ND(n) = sum_k w_k [ND(to_k) + L_k N0(to_k)]                        + bD(n)

where b holds the part of the receptor's own reach above it. ``I - W`` is unit upper triangular, so
each line is one sparse triangular solve with a column per receptor. A source at chainage c on reach
j adds the part of j below c. Mean = N1/N0, variance = N2/N0 - mean^2, distance = ND/N0: the
mass-weighted mixture moments that :func:`hydrology.transport.analytic.route_moments` accumulates forwards.

Curves. Each pair's curve is the exact transport kernel's (advection, dispersion, decay, OTIS
storage: :mod:`hydrology.transport.kernel`), batched over pairs (:mod:`hydrology.transport.batched`):
pairs are grouped by inversion window (placed by the moments above), the log transforms of all pairs
of a window class come from one pass of path sums over the network per Laplace node, and each curve
is inverted on a uniform grid by one FFT and summarised on its cubic Hermite interpolant. Pairs
whose mass reaches the receptor by more than one path (braids) or through a lake are summarised by
the per-source kernel instead (:func:`hydrology.transport.analytic.forecast`, one call per source and
release), so every pair is the kernel's curve. Near-field pairs whose Fourier series is too short for
their curve are inverted by de Hoog's method on the same transforms
(:mod:`hydrology.transport.batched_exact`).

Releases. The unit release is 1 kg, instantaneous; its arrival and end are where it reaches 1 % of
its own peak (mass-independent: how fast, not how much). The worst case is a release at the rate of
:data:`WORST_CASES` (default: the discharger's ``max_load_kg_s`` for the pollutant) for
:data:`WORST_RELEASE_S`; its arrival, end and duration are those above the receptor's standard.

Work is split into blocks of receptors with similar catchments (the moments), then into window
classes (the curves), one Dask task each, with the problem scattered once; results fill the matrix
as the tasks finish.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Self

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import spsolve_triangular

from .exceptions import HydrologyError, UnknownModelError
from .network_columns import ReachTable
from .pollutants import Pollutant
from .pollutants import pollutant as make_pollutant
from .transport import reach_moments
from .transport.analytic import (
    EDGE_FRACTION_OF_PEAK,
    Release,
    forecast,
    node_outflow_divisor,
    path_velocity,
    receptor_thresholds,
)
from .transport.batched import (
    SINGLE_PATH_RTOL,
    MainForest,
    PairTransforms,
    Reaches,
    class_nodes,
    main_forest,
    pair_windows,
    path_sums,
    summarise_class,
)
from .transport.batched_exact import exact_nodes, summarise_exact
from .transport.kernel import MOMENT_NODES
from .validate import load_valid

if TYPE_CHECKING:
    import xarray as xr

    from .network import Feature, FeatureKind, RiverNetwork
    from .reach_state import ReachState

SourceSet = Literal["dischargers", "reaches"]
ReceptorSet = Literal["intakes", "stations", "all"]
WorstCase = Literal["max_load", "permit"]

#: receptor sets by name -> feature kinds
RECEPTOR_SETS: dict[str, tuple[FeatureKind, ...]] = {
    "intakes": ("intake",), "stations": ("station",), "all": ("station", "intake")}
#: mass of the unit release [kg]
UNIT_MASS_KG = 1.0
#: duration of the worst-case release [s]: an hour of treatment bypass at the discharger's maximum load
WORST_RELEASE_S = 3600.0
#: receptors per Dask task [-]: memory per task ~ 4 x 8 B x nodes x chunk (160 MB at 100,000 nodes)
DEFAULT_CHUNK = 50
#: pairs summarised at a time [-] (a batch's largest arrays: CURVE_BATCH x 4K x 8 B, 12 MB at K = 64)
CURVE_BATCH = 3000

#: the work (sum of receptor catchment sizes) is cut into at least this many tasks [-], so that
#: a few workers finish together
MIN_TASKS = 16


class SweepError(HydrologyError, ValueError):
    """Bad sweep arguments (unknown source or receptor set, non-positive chunk size, bad scheduler)."""


def _load_from_feature(feature: Feature, item: str, field: str) -> float | None:
    table = feature.get(field) or {}
    value = table.get(item)
    return None if value is None else float(value)


def _max_load(feature: Feature, item: str) -> float | None:
    """``max_load_kg_s[item]`` [kg/s]: the most the discharger can emit (e.g. untreated at peak flow)."""
    return _load_from_feature(feature, item, "max_load_kg_s")


def _permit_load(feature: Feature, item: str) -> float | None:
    """``effluent_discharge_m3s`` x ``permit_limits_mg_l[item]`` / 1000 [kg/s]: discharging at the permit limit."""
    limit = _load_from_feature(feature, item, "permit_limits_mg_l")
    flow = feature.get("effluent_discharge_m3s")
    return None if limit is None or flow is None else float(flow) * limit / 1000.0


#: worst-case release rate [kg/s] of a discharger for a pollutant, by name; None where it gives nothing
WORST_CASES: dict[str, Callable[[Feature, str], float | None]] = {"max_load": _max_load, "permit": _permit_load}


# --------------------------------------------------------------------------------------------- graph
@dataclass(frozen=True, slots=True)
class ReachGraph:
    """Reaches (``reaches``: indices into :class:`~hydrology.reach_state.ReachState`, ascending) as
    edges between nodes numbered topologically (every reach goes from a lower to a higher number).

    ``share`` is w_k = Q_k / max(water arriving at, water leaving) its from-node [-].
    """

    n_nodes: int
    from_node: np.ndarray
    to_node: np.ndarray
    share: np.ndarray
    reaches: np.ndarray


def reach_graph(net: RiverNetwork, state: ReachState, reaches: np.ndarray | None = None) -> ReachGraph:
    """Topological node numbering and split shares of ``net``, or of the ``reaches`` (state indices) given.

    Shares always count all the water of the full network (a tributary outside ``reaches`` dilutes).
    """
    idx = np.arange(len(state.ids)) if reaches is None else np.sort(np.asarray(reaches, dtype=np.int64))
    n = idx.size
    if reaches is None and isinstance(net.reaches, ReachTable):
        return _reach_graph_columns(net, net.reaches, state, idx)
    frm = [net.reaches[state.ids[i]].from_node for i in idx]
    to = [net.reaches[state.ids[i]].to_node for i in idx]
    first_out: dict[str, int] = {}
    for i, node in enumerate(frm):  # a node's first leaving reach precedes every reach below it
        first_out.setdefault(node, i)
    outlets = [node for node in dict.fromkeys(to) if node not in first_out]
    rank = {**first_out, **{node: n + j for j, node in enumerate(outlets)}}
    number = {node: i for i, node in enumerate(sorted(rank, key=rank.__getitem__))}
    f = np.fromiter((number[x] for x in frm), dtype=np.int64, count=n)
    t = np.fromiter((number[x] for x in to), dtype=np.int64, count=n)
    q = state.discharge_m3s[idx]
    if reaches is None:
        inflow = np.zeros(len(number))
        for node, value in net.inflows.items():
            if node in number:
                inflow[number[node]] += value
        arriving = inflow + np.bincount(t, weights=q, minlength=len(number))
        divisor = np.maximum(arriving, np.bincount(f, weights=q, minlength=len(number)))[f]
    else:
        by_node = {node: node_outflow_divisor(net, state, node) for node in first_out}
        divisor = np.array([by_node[x] for x in frm])
    return ReachGraph(len(number), f, t, q / divisor, idx)


def _reach_graph_columns(net: RiverNetwork, table: ReachTable, state: ReachState, idx: np.ndarray) -> ReachGraph:
    """:func:`reach_graph` of the whole network from the reach table's node columns: the same numbering
    (nodes by the first reach that leaves them, then outlets by the first reach that reaches them),
    without building a reach object per reach (1.3 s of a sweep on the 100,000-reach network)."""
    n = idx.size
    rows = np.fromiter((table.id_index.index[state.ids[i]] for i in idx), dtype=np.int64, count=n)
    fr, to = np.asarray(table.from_row)[rows], np.asarray(table.to_row)[rows]
    n_all = len(table.nodes.id_index.ids)
    unset = np.iinfo(np.int64).max
    rank = np.full(n_all, unset, dtype=np.int64)
    left, first = np.unique(fr, return_index=True)
    rank[left] = first
    cand = np.flatnonzero(rank[to] == unset)  # reaches into an outlet
    outlets, seen = np.unique(to[cand], return_index=True)
    rank[outlets[np.argsort(cand[seen])]] = n + np.arange(outlets.size)
    used = np.flatnonzero(rank != unset)
    number = np.full(n_all, -1, dtype=np.int64)
    number[used[np.argsort(rank[used])]] = np.arange(used.size)
    f, t = number[fr], number[to]
    q = state.discharge_m3s[idx]
    inflow = np.zeros(used.size)
    for node, value in net.inflows.items():
        r = table.nodes.id_index.index.get(node)
        if r is not None and number[r] >= 0:
            inflow[number[r]] += value
    arriving = inflow + np.bincount(t, weights=q, minlength=used.size)
    divisor = np.maximum(arriving, np.bincount(f, weights=q, minlength=used.size))[f]
    return ReachGraph(int(used.size), f, t, q / divisor, idx)


def _edge_matrix(g: ReachGraph, values: np.ndarray) -> sparse.csr_array:
    """W[from_k, to_k] = w_k x values_k (duplicates, i.e. parallel reaches, add up)."""
    return sparse.csr_array((g.share * values, (g.from_node, g.to_node)), shape=(g.n_nodes, g.n_nodes))


# --------------------------------------------------------------------------------------------- problem
@dataclass(frozen=True, slots=True)
class SweepProblem:
    """Everything a sweep task needs, as arrays (scattered once to the Dask workers). SI units."""

    system: sparse.csc_array
    w_mean: sparse.csr_array
    w_second: sparse.csr_array
    w_length: sparse.csr_array
    graph: ReachGraph
    reach_mean_s: np.ndarray
    reach_var_s2: np.ndarray
    length_m: np.ndarray
    src_reach: np.ndarray
    src_chainage_m: np.ndarray
    src_rate_kg_s: np.ndarray
    rec_reach: np.ndarray
    rec_chainage_m: np.ndarray
    rec_discharge_m3s: np.ndarray
    rec_threshold_g_m3: np.ndarray
    decay_per_s: float
    worst_release_s: float
    reaches: Reaches
    forest: MainForest
    log_share_path: np.ndarray
    lakes_path: np.ndarray


def _receptor_moments(p: SweepProblem, rec: np.ndarray) -> tuple[np.ndarray, ...]:
    """Row of each node (-1 where not upstream of any receptor in ``rec``) and (N0, N1, N2, ND) on
    those rows, each of shape (rows, len(rec)).

    Only nodes that drain to a receptor of the block have N != 0, and their equations involve only
    each other, so the system is solved on that set alone (one single-column solve finds it).
    """
    g = p.graph
    rr = p.rec_reach[rec]
    c = p.rec_chainage_m[rec]
    frac = c / p.length_m[rr]
    m, v, w = frac * p.reach_mean_s[rr], frac * p.reach_var_s2[rr], g.share[rr]
    hit = np.zeros(g.n_nodes)
    hit[g.from_node[rr]] = 1.0
    nodes = np.flatnonzero(spsolve_triangular(p.system, hit, lower=False, unit_diagonal=True) > 0)
    at = np.full(g.n_nodes, -1)
    at[nodes] = np.arange(nodes.size)
    system = p.system[nodes][:, nodes]
    w_mean, w_second, w_length = (a[nodes][:, nodes] for a in (p.w_mean, p.w_second, p.w_length))
    own = (at[g.from_node[rr]], np.arange(rec.size))  # one entry per column: the receptor's own reach

    def solve(b: np.ndarray, values: np.ndarray) -> np.ndarray:
        b[own] += w * values
        return spsolve_triangular(system, b, lower=False, unit_diagonal=True, overwrite_b=True)

    n0 = solve(np.zeros((nodes.size, rec.size)), np.ones_like(c))
    n1 = solve(w_mean @ n0, m)
    b = w_mean @ n1
    b *= 2.0
    b += w_second @ n0
    n2 = solve(b, v + m * m)
    nd = solve(w_length @ n0, c)
    return at, n0, n1, n2, nd


def pair_moments(p: SweepProblem, rec: np.ndarray) -> dict[str, np.ndarray]:
    """Moments for every (source, receptor in ``rec``) pair with mass passing.

    Returns arrays over those pairs: ``source``, ``receptor`` (indices), ``mass_fraction`` [-],
    ``distance_m`` [m], ``mean_s`` [s], ``var_s2`` [s2].
    """
    at, n0, n1, n2, nd = _receptor_moments(p, rec)
    sr, cs = p.src_reach, p.src_chainage_m
    row = at[p.graph.to_node[sr]]
    up = np.flatnonzero(row >= 0)  # sources whose reach ends above a receptor of the block
    r, L = row[up], p.length_m[sr[up]]
    rest = L - cs[up]
    m, v = (rest / L * p.reach_mean_s[sr[up]])[:, None], (rest / L * p.reach_var_s2[sr[up]])[:, None]
    s0 = n0[r]
    i, j = np.nonzero(s0 > 0.0)
    f, mi, vi = s0[i, j], m[i, 0], v[i, 0]
    n1ij = n1[r[i], j]
    s1 = n1ij + mi * f
    s2 = n2[r[i], j] + 2.0 * mi * n1ij + (vi + mi * mi) * f
    sd = nd[r[i], j] + rest[i] * f
    i = up[i]
    # a receptor lower on the source's own reach: the direct path (N there is 0: the DAG has no other)
    rr, rc = p.rec_reach[rec], p.rec_chainage_m[rec]
    di, dj = np.nonzero((sr[:, None] == rr[None, :]) & (cs[:, None] < rc[None, :]))
    dx = rc[dj] - cs[di]
    share = dx / p.length_m[sr[di]]
    dm = share * p.reach_mean_s[sr[di]]
    i, j = np.r_[i, di], np.r_[j, dj]
    f = np.r_[f, np.ones(di.size)]
    mean = np.r_[s1, dm] / f
    var = np.r_[s2, share * p.reach_var_s2[sr[di]] + dm * dm] / f - mean * mean
    return {"source": i.astype(np.int32), "receptor": rec[j].astype(np.int32), "mass_fraction": f,
            "distance_m": np.r_[sd, dx] / f, "mean_s": mean, "var_s2": np.maximum(var, 0.0)}


def _single_path(p: SweepProblem, out: dict[str, np.ndarray]) -> np.ndarray:
    """Pairs whose mass all travels one path of channels (no lake): the batched kernel applies
    (:mod:`hydrology.transport.batched`); the rest go to the per-source kernel."""
    g, f = p.graph, p.forest
    sr, rr = p.src_reach[out["source"]], p.rec_reach[out["receptor"]]
    a, b = g.from_node[rr], g.to_node[sr]
    on_path = (f.tin[a] <= f.tin[b]) & (f.tout[b] <= f.tout[a])
    frac = out["mass_fraction"]
    with np.errstate(over="ignore", invalid="ignore"):
        main_frac = np.exp(p.log_share_path[b] - p.log_share_path[a]) * g.share[rr]
    single = on_path & (np.abs(main_frac - frac) <= SINGLE_PATH_RTOL * frac) & (p.lakes_path[b] == p.lakes_path[a])
    single |= sr == rr  # a receptor lower on the source's own reach
    lake = p.reaches.lake
    return single & ~lake[sr] & ~lake[rr]


def sweep_block(p: SweepProblem, rec: np.ndarray) -> dict[str, np.ndarray]:
    """One Dask task of the first stage: moments and inversion windows of every pair with receptors ``rec``.

    Returns the arrays of :func:`pair_moments` (less ``var_s2``), each pair's window ``t0_s`` [s],
    ``period_s`` [s] and ``terms`` [-] (:func:`hydrology.transport.batched.pair_windows`),
    ``single_path`` (the batched kernel applies), and ``columns``: ``rec`` itself (the receptors
    whose matrix columns this block fills).
    """
    out = pair_moments(p, rec)
    single = out["single_path"] = _single_path(p, out)
    n = single.size
    out["t0_s"], out["period_s"], out["terms"] = np.zeros(n), np.ones(n), np.zeros(n, np.int64)
    sel = np.flatnonzero(single)
    if sel.size:
        src, rec_ = out["source"][sel], out["receptor"][sel]
        pt = PairTransforms(p.forest, p.graph.share, p.reaches, p.graph.from_node, p.graph.to_node, MOMENT_NODES,
                            src, rec_, p.src_reach, p.src_chainage_m, p.rec_reach, p.rec_chainage_m)
        for a in range(0, sel.size, CURVE_BATCH):
            rows = sel[a:a + CURVE_BATCH]
            out["t0_s"][rows], out["period_s"][rows], out["terms"][rows] = pair_windows(pt.rows(slice(a, a + CURVE_BATCH)))
    del out["var_s2"]  # not reported: less to send back from the workers
    out["columns"] = rec
    return out


def sweep_class(p: SweepProblem, job: dict[str, Any]) -> dict[str, np.ndarray]:
    """One Dask task of the second stage: the curve summaries of the pairs of one window class.

    ``job``: ``period_s`` [s] and ``terms`` [-] of the class, and per pair ``source``, ``receptor``
    (indices) and ``t0_s`` [s]. Returns ``source``, ``receptor`` and the summaries of
    :func:`hydrology.transport.batched.summarise_class`, :data:`CURVE_BATCH` pairs at a time.
    """
    g = p.graph
    period, terms = float(job["period_s"]), int(job["terms"])
    gamma, s = class_nodes(period, terms)
    src, rec = job["source"], job["receptor"]
    pt = PairTransforms(p.forest, g.share, p.reaches, g.from_node, g.to_node, s, src, rec, p.src_reach,
                        p.src_chainage_m, p.rec_reach, p.rec_chainage_m)
    parts = []
    for a in range(0, max(src.size, 1), CURVE_BATCH):
        sl = slice(a, a + CURVE_BATCH)
        part = summarise_class(pt.rows(sl), gamma, s, period, terms, job["t0_s"][sl], UNIT_MASS_KG,
                               p.src_rate_kg_s[src[sl]], p.worst_release_s, p.rec_threshold_g_m3[rec[sl]],
                               EDGE_FRACTION_OF_PEAK)
        # windows from the release whose series is too short (low Peclet numbers next to the source):
        # the same transforms at the de Hoog nodes, summarised as the per-source kernel does
        slow = np.flatnonzero(~part.pop("series_converged") & (job["t0_s"][sl] == 0.0))
        if slow.size:
            pick = np.arange(src.size)[sl][slow]
            exact = PairTransforms(p.forest, g.share, p.reaches, g.from_node, g.to_node, exact_nodes(period)[1],
                                   src[pick], rec[pick], p.src_reach, p.src_chainage_m, p.rec_reach, p.rec_chainage_m)
            fixed = summarise_exact(exact.rows(slice(None)), period, job["t0_s"][pick], UNIT_MASS_KG,
                                    p.src_rate_kg_s[src[pick]], p.worst_release_s, p.rec_threshold_g_m3[rec[pick]],
                                    EDGE_FRACTION_OF_PEAK)
            for key, v in fixed.items():
                part[key][slow] = v
        parts.append(part)
    out = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    out["source"], out["receptor"] = src, rec
    return out


def class_jobs(pairs: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """The single-path pairs grouped by window class (length, terms), the largest class first."""
    keep = np.flatnonzero(pairs["single_path"])
    if not keep.size:
        return []
    period, terms = pairs["period_s"][keep], pairs["terms"][keep]
    # pairs by (length, terms), each class in pair order: two stable sorts (np.unique over the rows of a
    # 2-column array sorted 2.3 million pairs as structured records: 2.4 s of the 100k sweep)
    by_terms = np.argsort(terms, kind="stable")
    order = by_terms[np.argsort(period[by_terms], kind="stable")]
    ps, ts = period[order], terms[order]
    cuts = np.r_[0, np.flatnonzero((ps[1:] != ps[:-1]) | (ts[1:] != ts[:-1])) + 1, order.size]
    jobs = []
    for c in range(cuts.size - 1):
        sel = keep[order[cuts[c]:cuts[c + 1]]]
        jobs.append({"period_s": float(ps[cuts[c]]), "terms": int(ts[cuts[c]]), "source": pairs["source"][sel],
                     "receptor": pairs["receptor"][sel], "t0_s": pairs["t0_s"][sel]})
    return sorted(jobs, key=lambda j: -j["source"].size * j["terms"])


# --------------------------------------------------------------------------------------------- driver
#: output variables over (source, receptor): block key -> (name, units, long name)
VARIABLES: dict[str, tuple[str, str, str]] = {
    "mass_fraction": ("mass_fraction", "1", "share of the released mass that passes the receptor"),
    "distance_m": ("distance_m", "m", "distance along the river, source to receptor (mass-weighted mean)"),
    "mean_s": ("mean_travel_time_s", "s", "mean travel time, source to receptor"),
    "arrival_s": ("arrival_s", "s", "unit release: leading edge (1% of its peak) after the release"),
    "peak_s": ("peak_s", "s", "unit release: time of the peak concentration after the release"),
    "peak_g_m3": ("peak_g_m3", "g m-3", "unit release: peak concentration"),
    "end_s": ("end_s", "s", "unit release: trailing edge (1% of its peak) after the release"),
    "worst_arrival_s": ("worst_arrival_s", "s", "worst-case release: first time above the receptor threshold"),
    "worst_peak_s": ("worst_peak_s", "s", "worst-case release: time of the peak concentration"),
    "worst_peak_g_m3": ("worst_peak_g_m3", "g m-3", "worst-case release: peak concentration"),
    "worst_end_s": ("worst_end_s", "s", "worst-case release: last time above the receptor threshold"),
    "worst_duration_s": ("worst_duration_s", "s", "worst-case release: time above the receptor threshold"),
}
LOCAL_SCHEDULERS = ("threads", "synchronous")


def _sources(net: RiverNetwork, which: str, item: str, worst: Callable[[Feature, str], float | None]
             ) -> tuple[list[tuple[str, str, str, float]], np.ndarray]:
    if which == "reaches":
        return [(rid, "reach", rid, 0.0) for rid in net.reach_order], np.full(len(net.reaches), np.nan)
    feats = list(net.dischargers.values())
    rates = [worst(f, item) for f in feats]
    return ([(f.id, str(f.get("kind", "discharger")), f.reach, f.chainage_m) for f in feats],
            np.array([np.nan if r is None else r for r in rates], float))


def build_problem(net: RiverNetwork, *, sources: SourceSet = "dischargers", receptors: ReceptorSet = "intakes",
                  pollutant: Pollutant, worst_case: WorstCase = "max_load", worst_release_s: float = WORST_RELEASE_S,
                  threshold_g_m3: float | None = None, wind_ms: float = 0.0, state: ReachState | None = None
                  ) -> tuple[SweepProblem, list[tuple[str, str, str, float]], list[Feature], list[tuple[float | None, str]]]:
    """The arrays of a sweep (see :func:`vulnerability_matrix`), with source rows and receptor features."""
    if sources not in ("dischargers", "reaches"):
        raise SweepError(f"unknown source set {sources!r}; choose 'dischargers' or 'reaches'")
    if receptors not in RECEPTOR_SETS:
        raise SweepError(f"unknown receptor set {receptors!r}; choose one of {sorted(RECEPTOR_SETS)}")
    if worst_case not in WORST_CASES:
        raise UnknownModelError(f"unknown worst case {worst_case!r}; known: {sorted(WORST_CASES)}")
    if not (worst_release_s > 0 and np.isfinite(worst_release_s)):
        raise SweepError(f"worst-case release duration {worst_release_s} s must be positive and finite")
    st = state if state is not None else net.reach_state()
    rows, rates = _sources(net, sources, pollutant.name, WORST_CASES[worst_case])
    feats = list(net.iter_features(RECEPTOR_SETS[receptors]))
    if not rows or not feats:
        raise SweepError(f"network {net.name!r} has {len(rows)} {sources} and {len(feats)} {receptors}: nothing to sweep")
    u, beta = path_velocity(st, pollutant, wind_ms)
    mean, var = reach_moments(st.length_m, u, st.dispersion_m2s, beta, st.storage_exchange_per_s)
    g = reach_graph(net, st)
    thr = receptor_thresholds(net, feats, pollutant, threshold_g_m3)
    ri = np.array([st.index[f.reach] for f in feats])
    system = (sparse.eye_array(g.n_nodes, format="csr") - _edge_matrix(g, np.ones_like(mean))).tocsc()
    lake = st.lake_mask()
    forest = main_forest(g.n_nodes, g.from_node, g.to_node, g.share)
    has = forest.main_reach >= 0
    main = np.maximum(forest.main_reach, 0)
    with np.errstate(divide="ignore"):
        log_share_path = path_sums(forest, np.where(has, np.log(g.share[main]), 0.0))
    lakes_path = path_sums(forest, np.where(has, lake[g.reaches[main]], False).astype(float))
    reaches = Reaches(st.length_m, u, st.dispersion_m2s, beta, st.storage_exchange_per_s, lake, st.discharge_m3s,
                      pollutant.decay_per_s)
    problem = SweepProblem(
        system=system, w_mean=_edge_matrix(g, mean), w_second=_edge_matrix(g, var + mean * mean),
        w_length=_edge_matrix(g, st.length_m), graph=g, reach_mean_s=mean, reach_var_s2=var,
        length_m=st.length_m, src_reach=np.array([st.index[r[2]] for r in rows]),
        src_chainage_m=np.array([r[3] for r in rows], float), src_rate_kg_s=rates, rec_reach=ri,
        rec_chainage_m=np.array([f.chainage_m for f in feats], float), rec_discharge_m3s=st.discharge_m3s[ri],
        rec_threshold_g_m3=np.array([np.nan if v is None else v for v, _ in thr], float),
        decay_per_s=pollutant.decay_per_s, worst_release_s=float(worst_release_s), reaches=reaches, forest=forest,
        log_share_path=log_share_path, lakes_path=lakes_path)
    return problem, rows, feats, thr


def _catchment_size(p: SweepProblem) -> np.ndarray:
    """Reaches above each receptor's reach (counted once per path: an ordering heuristic) [-]."""
    g = p.graph
    into = sparse.csr_array((np.ones(g.to_node.size), (g.to_node, g.from_node)), shape=(g.n_nodes, g.n_nodes))
    count = spsolve_triangular((sparse.eye_array(g.n_nodes, format="csr") - into).tocsc(),
                               np.bincount(g.to_node, minlength=g.n_nodes).astype(float), lower=True, unit_diagonal=True)
    return count[g.from_node[p.rec_reach]]


def _blocks(size: np.ndarray, chunk_size: int) -> list[np.ndarray]:
    """Receptors grouped by catchment size (similar catchments share the nodes solved on), at most
    ``chunk_size`` and about 1/:data:`MIN_TASKS` of the total work per block; biggest first."""
    order = np.argsort(size, kind="stable")
    cap = max(float(np.sum(size + 1.0)) / MIN_TASKS, float(np.max(size + 1.0)))
    blocks: list[list[int]] = [[]]
    work = 0.0
    for r in order:
        if blocks[-1] and (len(blocks[-1]) == chunk_size or work + size[r] + 1.0 > cap):
            blocks.append([])
            work = 0.0
        blocks[-1].append(int(r))
        work += size[r] + 1.0
    return [np.array(b) for b in blocks[::-1]]


Collect = Callable[[dict[str, np.ndarray]], None]


class _Runner:
    """Runs tasks ``fn(problem, item)`` on a local Dask scheduler or a cluster, the problem shared
    (scattered once to a cluster), handing each result to ``collect`` as it finishes."""

    def __init__(self, problem: SweepProblem, scheduler: Any) -> None:
        self.problem, self.scheduler = problem, scheduler
        self.local = scheduler is None or scheduler in LOCAL_SCHEDULERS
        self.client: Any = None
        self.own = False

    def __enter__(self) -> Self:
        if not self.local:
            from distributed import Client

            self.own = not isinstance(self.scheduler, Client)
            if self.own:
                try:
                    self.client = Client(self.scheduler)
                except (OSError, ValueError, TypeError) as err:
                    raise SweepError(f"cannot use Dask scheduler {self.scheduler!r}: {err}") from err
            else:
                self.client = self.scheduler
            # a fresh key: no race with an earlier release
            self.data = self.client.scatter(self.problem, broadcast=True, hash=False)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.own:
            self.client.close()

    def run(self, fn: Callable[[SweepProblem, Any], dict[str, np.ndarray]], items: list[Any], collect: Collect) -> None:
        if self.local:
            self._run_local(fn, items, collect)
            return
        from distributed import as_completed

        futures = [self.client.submit(fn, self.data, item, pure=False) for item in items]
        for fut in as_completed(futures):  # fill the matrix while the other tasks are computed
            collect(fut.result())
            fut.release()

    def _run_local(self, fn: Callable[[SweepProblem, Any], dict[str, np.ndarray]], items: list[Any], collect: Collect) -> None:
        import dask
        from dask.callbacks import Callback

        data = dask.delayed(self.problem, traverse=False)  # one graph node: the problem is shared, not copied
        keys = [f"sweep-{fn.__name__}-{uuid.uuid4().hex}-{i}" for i in range(len(items))]
        tasks = [dask.delayed(fn, pure=False)(data, item, dask_key_name=k) for item, k in zip(items, keys)]
        wanted = set(keys)

        class _Collect(Callback):  # type: ignore[misc]
            def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
                if key in wanted:  # runs in the scheduling thread while the workers go on
                    collect(result)

        with _Collect():
            dask.compute(*tasks, scheduler=self.scheduler or "threads")


def kernel_fallback(net: RiverNetwork, pairs: dict[str, np.ndarray], rows: list[tuple[str, str, str, float]],
                    feats: list[Feature], pol: Pollutant, rates: np.ndarray, worst_release_s: float,
                    threshold_g_m3: float | None, wind_ms: float, state: ReachState | None,
                    kinds: tuple[FeatureKind, ...]) -> dict[str, np.ndarray]:
    """Summaries of ``pairs`` (``source``, ``receptor`` indices) from :func:`forecast`: the per-source
    kernel, for pairs with a lake or more than one path (one unit and one worst-case call per source)."""
    tracer = Pollutant("tracer", pol.behaviour, pol.decay_per_s)  # same transport, edges at 1 % of peak
    col = {f.id: j for j, f in enumerate(feats)}
    src, rec = pairs["source"], pairs["receptor"]
    out = {key: np.full(src.size, np.nan) for key in ("arrival_s", "peak_s", "peak_g_m3", "end_s")}
    out.update({f"worst_{key}": np.full(src.size, np.nan) for key in list(out)})
    for i in np.unique(src):
        _, _, reach, chainage = rows[i]
        here = np.flatnonzero(src == i)
        where = {int(rec[k]): k for k in here}
        runs: list[tuple[str, Release, float | None]] = [("", Release(reach, chainage, tracer, mass_kg=UNIT_MASS_KG), None)]
        if np.isfinite(rates[i]):
            runs.append(("worst_", Release(reach, chainage, pol, rate_kg_s=float(rates[i]), duration_s=worst_release_s),
                         threshold_g_m3))
        for prefix, rel, thr in runs:
            fc = forecast(net, rel, kinds=kinds, threshold_g_m3=thr, wind_ms=wind_ms, state=state)
            for r in fc.receptors:
                k = where.get(col.get(r.id, -1))
                if k is None:
                    continue
                out[f"{prefix}arrival_s"][k] = np.nan if r.arrival_s is None else r.arrival_s
                out[f"{prefix}end_s"][k] = np.nan if r.end_s is None else r.end_s
                out[f"{prefix}peak_s"][k], out[f"{prefix}peak_g_m3"][k] = r.peak_s, r.peak_g_m3
    out["source"], out["receptor"] = src, rec
    return out


def vulnerability_matrix(net: RiverNetwork, *, sources: SourceSet = "dischargers", receptors: ReceptorSet = "intakes",
                         pollutant: str | Pollutant = "tracer", scheduler: Any = None, chunk_size: int = DEFAULT_CHUNK,
                         progress: bool = True, worst_case: WorstCase = "max_load",
                         worst_release_s: float = WORST_RELEASE_S, threshold_g_m3: float | None = None,
                         wind_ms: float = 0.0, state: ReachState | None = None) -> xr.Dataset:
    """Every source x every receptor: arrival, peak, duration for a unit and a worst-case release.

    Parameters
    ----------
    net : RiverNetwork
        A valid network.
    sources : {"dischargers", "reaches"}
        Registered dischargers, or the upstream end (chainage 0) of every reach.
    receptors : {"intakes", "stations", "all"}
        Drinking-water intakes, monitoring stations, or both.
    pollutant : str or Pollutant
        GB 3838 item or ``tracer``; sets the behaviour (floating oil moves at the surface), the
        decay and each receptor's threshold (its standard).
    scheduler : None, str or distributed.Client
        None or ``"threads"``: Dask's in-process threaded scheduler; ``"synchronous"``: one thread;
        an address (``tcp://host:8786``) or a ``Client``: a Dask cluster (its workers must be able to
        import :mod:`hydrology`).
    chunk_size : int
        Receptors per task [-].
    progress : bool
        Show a tqdm progress bar (stderr), one tick per task, for either scheduler.
    worst_case : {"max_load", "permit"}
        Worst-case release rate: ``max_load_kg_s[pollutant]`` (what the discharger can emit, e.g.
        untreated at peak flow) or ``effluent_discharge_m3s`` x ``permit_limits_mg_l[pollutant]``
        (discharging at the permit limit), for ``worst_release_s``; NaN where the discharger states
        neither (and for reach sources).
    worst_release_s : float
        Duration of the worst-case release [s].
    threshold_g_m3 : float, optional
        Threshold for every receptor [g/m3]; default each receptor's standard for the pollutant.
    wind_ms : float
        Along-stream 10 m wind [m/s] (floating pollutants).
    state : ReachState, optional
        Precomputed reach state.

    Returns
    -------
    xarray.Dataset
        Dims (source, receptor); the variables of :data:`VARIABLES`, NaN where the receptor is not
        downstream of the source (and worst-case edges NaN where the peak stays below the threshold
        or no threshold applies); per receptor ``threshold_g_m3``; per source ``worst_rate_kg_s``.
        Times are seconds after the release starts.

    Notes
    -----
    Dask workers started with distributed's default ``MALLOC_TRIM_THRESHOLD_=65536`` map and fault in
    every large temporary afresh; on the 100,000-reach benchmark they ran the sweep up to 1.4 x slower
    (8.7 s against 6.3 s with one worker). Unset it for sweeps
    (``distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_: null``).
    """
    import xarray as xr
    from tqdm.auto import tqdm

    if not (isinstance(chunk_size, (int, np.integer)) and chunk_size >= 1):
        raise SweepError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if not (scheduler is None or isinstance(scheduler, str) or hasattr(scheduler, "submit")):
        raise SweepError(f"scheduler must be None, a name, an address or a distributed.Client, got {scheduler!r}")
    pol = make_pollutant(pollutant) if isinstance(pollutant, str) else pollutant
    t0 = time.perf_counter()
    problem, rows, feats, thr = build_problem(
        net, sources=sources, receptors=receptors, pollutant=pol, worst_case=worst_case,
        worst_release_s=worst_release_s, threshold_g_m3=threshold_g_m3, wind_ms=wind_ms, state=state)
    blocks = _blocks(_catchment_size(problem), chunk_size)
    n_src = len(rows)
    # receptor-major (Fortran order): a block's receptors are whole, contiguous columns, so its pairs
    # land close together; pages are touched (NaN-filled) block by block while the workers go on
    matrix = {key: np.empty((n_src, len(feats)), order="F") for key in VARIABLES}
    columns = {key: m.T for key, m in matrix.items()}  # (receptor, source) C-contiguous views

    moments = ("mass_fraction", "distance_m", "mean_s")
    found: list[dict[str, np.ndarray]] = []

    def collect_moments(block: dict[str, np.ndarray]) -> None:
        rec = block["columns"]
        flat = block["receptor"].astype(np.int64) * n_src + block["source"]
        for key in VARIABLES:
            col = columns[key]
            col[rec] = np.nan
            if key in moments:
                col.reshape(-1)[flat] = block[key]  # a view: C-contiguous
        found.append({key: block[key] for key in ("source", "receptor", "t0_s", "period_s", "terms", "single_path")})
        bar.update()

    def collect_curves(block: dict[str, np.ndarray]) -> None:
        flat = block["receptor"].astype(np.int64) * n_src + block["source"]
        block["worst_duration_s"] = block["worst_end_s"] - block["worst_arrival_s"]
        for key in VARIABLES:
            if key not in moments:
                columns[key].reshape(-1)[flat] = block[key]
        bar.update()

    bar = tqdm(total=len(blocks), desc="sweep", unit="task", disable=not progress, file=sys.stderr)
    try:
        with _Runner(problem, scheduler) as runner:
            runner.run(sweep_block, blocks, collect_moments)
            pairs = {key: np.concatenate([f[key] for f in found]) for key in found[0]}
            found.clear()
            jobs = class_jobs(pairs)
            bar.total = len(blocks) + len(jobs) + 1
            bar.refresh()
            runner.run(sweep_class, jobs, collect_curves)
        other = np.flatnonzero(~pairs["single_path"])
        if other.size:  # braids and lakes: the per-source kernel
            collect_curves(kernel_fallback(net, {"source": pairs["source"][other], "receptor": pairs["receptor"][other]},
                                           rows, feats, pol, problem.src_rate_kg_s, worst_release_s, threshold_g_m3,
                                           wind_ms, state, RECEPTOR_SETS[receptors]))
        else:
            bar.update()
    finally:
        bar.close()
    data: dict[str, Any] = {name: (("source", "receptor"), matrix[key], {"units": units, "long_name": long_name})
                            for key, (name, units, long_name) in VARIABLES.items()}
    data["threshold_g_m3"] = ("receptor", problem.rec_threshold_g_m3,
                              {"units": "g m-3", "long_name": "receptor threshold (worst-case edges)"})
    data["threshold_basis"] = ("receptor", np.array([b for _, b in thr], dtype=object), {"long_name": "source of the threshold"})
    data["worst_rate_kg_s"] = ("source", problem.src_rate_kg_s, {"units": "kg s-1", "long_name": f"worst-case release rate ({worst_case})"})
    coords = {
        "source": ("source", np.array([r[0] for r in rows], dtype=object), {"long_name": "source id"}),
        "source_kind": ("source", np.array([r[1] for r in rows], dtype=object), {"long_name": "discharger kind or 'reach'"}),
        "source_reach": ("source", np.array([r[2] for r in rows], dtype=object), {"long_name": "reach of the source"}),
        "source_chainage_m": ("source", problem.src_chainage_m, {"units": "m", "long_name": "chainage from the reach's upstream end"}),
        "receptor": ("receptor", np.array([f.id for f in feats], dtype=object), {"long_name": "receptor id"}),
        "receptor_kind": ("receptor", np.array([f.kind for f in feats], dtype=object), {"long_name": "feature kind"}),
        "receptor_reach": ("receptor", np.array([f.reach for f in feats], dtype=object), {"long_name": "reach of the receptor"}),
        "receptor_chainage_m": ("receptor", problem.rec_chainage_m, {"units": "m", "long_name": "chainage from the reach's upstream end"}),
    }
    attrs = {
        "Conventions": "CF-1.8", "title": f"vulnerability matrix of {net.name or 'network'}: {sources} x {receptors}",
        "source": "rivertrace hydrology.sweep (moment routing; the exact transport kernel, batched by window class)",
        "pairs_by_per_source_kernel": int(other.size),
        "history": f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} computed in {time.perf_counter() - t0:.1f} s",
        "pollutant": pol.name, "behaviour": pol.behaviour, "decay_per_s": pol.decay_per_s, "wind_ms": float(wind_ms),
        "unit_release_kg": UNIT_MASS_KG, "edge_fraction_of_peak": EDGE_FRACTION_OF_PEAK, "worst_case": worst_case,
        "worst_case_definition": (WORST_CASES[worst_case].__doc__ or "").strip(), "worst_release_s": float(worst_release_s),
        "time_reference": "seconds after the release starts",
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)


# --------------------------------------------------------------------------------------------- output
def matrix_frame(ds: xr.Dataset) -> Any:
    """Long table (pandas DataFrame) of the pairs with mass passing: one row per (source, receptor)."""
    import pandas as pd

    i, j = np.nonzero(ds["mass_fraction"].values > 0)
    cols: dict[str, Any] = {"source": ds["source"].values[i], "source_kind": ds["source_kind"].values[i],
                            "receptor": ds["receptor"].values[j], "receptor_kind": ds["receptor_kind"].values[j]}
    for name, _units, _ in VARIABLES.values():
        cols[name] = ds[name].values[i, j]
    return pd.DataFrame(cols)


def write_matrix(ds: xr.Dataset, path: str, *, csv: str | None = None, net: RiverNetwork | None = None) -> None:
    """Write the matrix as CF-1.8 netCDF-4 (:func:`hydrology.io.netcdf.write_netcdf`, gzip level 1) and,
    with ``csv``, the long table. With ``net``, receptors and sources get ``lon``/``lat`` (``source_lon``...)."""
    from .io.netcdf import add_receptor_coordinates, write_netcdf

    if net is not None:
        ds = add_receptor_coordinates(ds, net)
        ds = add_receptor_coordinates(ds, net, "source", reach="source_reach", chainage="source_chainage_m",
                                      prefix="source_")
    write_netcdf(ds, path)
    if csv:
        matrix_frame(ds).to_csv(csv, index=False, float_format="%.6g")


def worst_case_gaps(ds: xr.Dataset) -> list[str]:
    """Why the worst-case columns of a matrix are all NaN, one reason a line (empty when some are computed).

    The worst-case edges need a threshold at the receptor (its standard for the pollutant, or a
    given one) and a worst-case rate at the source (``max_load_kg_s`` or the permit, for this
    pollutant); a pollutant without a standard, such as ``tracer``, has no threshold.
    """
    if ds.sizes.get("source", 0) == 0 or ds.sizes.get("receptor", 0) == 0:
        return []
    if np.isfinite(ds["worst_peak_g_m3"].values).any():
        return []
    pol, case = ds.attrs.get("pollutant"), ds.attrs.get("worst_case")
    reasons = []
    if not np.isfinite(ds["threshold_g_m3"].values).any():
        reasons.append(f"pollutant {pol!r} has no GB 3838 standard at any receptor: give a pollutant with one "
                       "(COD, NH3-N, ...) or --threshold-mg-l")
    if not np.isfinite(ds["worst_rate_kg_s"].values).any():
        field = "max_load_kg_s" if case == "max_load" else "effluent_discharge_m3s and permit_limits_mg_l"
        reasons.append(f"no source states a worst-case rate for {pol!r} (--worst-case {case} reads the "
                       f"dischargers' {field}; reach sources have none)")
    if not reasons:
        reasons.append("no worst-case release reaches a receptor above its threshold")
    return reasons


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run ``rivertrace sweep``; returns the exit code. Warns on stderr when no worst-case column is computed."""
    from .units import per_day_to_per_s

    if not args.decay_per_day >= 0:
        raise SweepError(f"--decay-per-day must not be negative, got {args.decay_per_day}")
    net = getattr(args, "load_network", None) or load_valid
    net = net(args.network)
    pol = make_pollutant(args.pollutant, per_day_to_per_s(args.decay_per_day))
    ds = vulnerability_matrix(net, sources=args.sources, receptors=args.receptors, pollutant=pol,
                              scheduler=args.scheduler, chunk_size=args.chunk_size, progress=not args.no_progress,
                              worst_case=args.worst_case, worst_release_s=args.worst_release_s,
                              threshold_g_m3=args.threshold_mg_l)  # mg/L = g/m3
    write_matrix(ds, args.output, csv=args.csv, net=net)
    n = int((ds["mass_fraction"].values > 0).sum())
    print(f"wrote {args.output}: {ds.sizes['source']} sources x {ds.sizes['receptor']} receptors, "
          f"{n} downstream pairs" + (f"; {args.csv}" if args.csv else ""), file=sys.stderr)
    for reason in worst_case_gaps(ds):
        print(f"warning: the worst-case columns (worst_*) are all NaN: {reason}", file=sys.stderr)
    return 0

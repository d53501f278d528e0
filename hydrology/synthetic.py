"""Seeded synthetic dendritic river networks, as rivertrace network documents, for benchmarks.

The budget network of DESIGN.md section 6 (100,000 reaches, 20,000 dischargers, 2,000 stations,
500 intakes) is built by :func:`generate_network`; ``python -m hydrology.synthetic --budget -o
net.json`` writes it. The result is a plain JSON-ready dict in the rivertrace network document
format (units in field names, SI), not a parsed network.

The model, step by step (every number is a module constant below, with its source):

1. Topology: Shreve's (1966) random topology model, in which all topologically distinct channel
   networks with the same number of sources are equally likely. A uniform random binary tree is
   grown by Remy's (1985) insertion: pick one of the existing links uniformly and split it by a new
   confluence that also receives a new source link. Several outlets grow as one forest; each basin
   is then a uniform random tree for its size, and basin sizes follow the resulting Polya urn.
   Random topology networks obey Horton's laws with a bifurcation ratio tending to 4 (Shreve 1966;
   Kirchner 1993). One pass-through node is inserted when the reach count needs it (parity).
2. Reach lengths are lognormal and independent of topology, as in Shreve (1969); Horton's length
   ratio then emerges from the number of links per stream.
3. Local catchment area = length x a lognormal "catchment width"; drainage area accumulates
   downstream; mean annual discharge = specific runoff x drainage area. The local runoff enters as
   an inflow at the reach's upstream node, so accumulating ``inflows`` downstream reproduces every
   reach's ``discharge_m3s`` and flow grows monotonically downstream.
4. Slope by Flint's law S = ks A^-theta (Flint 1974) with lognormal scatter.
5. Hydraulic geometry B = a Q^b, H = c Q^f (Leopold & Maddock 1953) and Manning n falling from
   mountain-stream to large-river values (Chow 1959) with discharge.
6. Braids (``split_fraction_share``): a link u->v gets a side channel u->w->v; the two reaches
   leaving u carry ``flow_fraction`` f and 1-f and rejoin at v, so the graph stays acyclic.
7. Planar layout: a radial tree layout where every link owns an angular wedge proportional to its
   Shreve magnitude; the straight distance of a reach is its length over a random sinuosity.
8. Features are scattered over reaches (chainage uniform in [0, length]) with kind-specific
   preferences for large or small rivers; departments own the reaches of spatial districts.

Randomness comes from ``numpy.random.default_rng`` seeded by independent children of
``SeedSequence(seed)``, one per component, so the river itself does not change when only the feature
counts change.

References
----------
Shreve, R. L. (1966), Statistical law of stream numbers, J. Geol. 74(1), 17-37.
Shreve, R. L. (1969), Stream lengths and basin areas in topologically random channel networks,
J. Geol. 77(4), 397-414.
Remy, J.-L. (1985), Un procede iteratif de denombrement d'arbres binaires et son application a leur
generation aleatoire, RAIRO Inform. Theor. 19(2), 179-195.
Kirchner, J. W. (1993), Statistical inevitability of Horton's laws and the apparent randomness of
stream channel networks, Geology 21(7), 591-594.
Flint, J. J. (1974), Stream gradient as a function of order, magnitude, and discharge, Water Resour.
Res. 10(5), 969-973.
Leopold, L. B., and Maddock, T. (1953), The hydraulic geometry of stream channels and some
physiographic implications, USGS Professional Paper 252.
Chow, V. T. (1959), Open-Channel Hydraulics, McGraw-Hill, Table 5-6.
Efraimidis, P. S., and Spirakis, P. G. (2006), Weighted random sampling with a reservoir, Inf.
Process. Lett. 97(5), 181-185.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .exceptions import HydrologyError
from .units import KM2

# ---- parameters (SI; provenance in the comments) ------------------------------------------------
#: median reach length [m]. NHDPlusV2 flowlines in tests/data/nhdplus (measured here): median
#: LENGTHKM 1.66 km (Patapsco), 1.98 km (Walker), 1.18 km (sample_natseamless).
REACH_LENGTH_MEDIAN_M = 1600.0
#: log-standard deviation of reach length [-]; the same NHDPlus subsets give 0.9-1.3, inflated by
#: short stubs at waterbodies that a benchmark network does not need.
REACH_LENGTH_SIGMA_LN = 0.8
#: bounds on reach length [m]
REACH_LENGTH_RANGE_M = (100.0, 20_000.0)
#: median local catchment area per unit reach length [m]; NHDPlusV2 AreaSqKM / LENGTHKM medians in
#: the shipped subsets are 1.0-1.2 km (drainage density 0.5-1.0 km/km2).
LOCAL_WIDTH_MEDIAN_M = 1100.0
#: log-standard deviation of the local catchment width [-]
LOCAL_WIDTH_SIGMA_LN = 0.5
#: specific mean annual runoff [m3/s per m2]: 0.015 m3/s/km2 = 473 mm/yr (humid subtropical;
#: NHDPlus QE_MA/TotDASqKM medians in the shipped subsets are 0.007-0.013 m3/s/km2).
RUNOFF_M3S_PER_M2 = 0.015 / KM2
#: Flint (1974) steepness: slope at a drainage area of 1 km2 [-]
FLINT_KS = 0.015
#: Flint (1974) concavity index theta [-] (typically 0.4-0.6)
FLINT_THETA = 0.45
#: log-standard deviation of slope about Flint's law [-]
SLOPE_SIGMA_LN = 0.35
#: smallest slope [-] (large lowland rivers are ~1e-5 to 1e-4)
SLOPE_MIN = 1.0e-5
#: reference area of Flint's law [m2]
FLINT_AREA_REF_M2 = KM2
#: hydraulic geometry B = a Q^b [m], H = c Q^f [m] with Q [m3/s]. Exponents b = 0.5, f = 0.4 are the
#: Leopold & Maddock (1953) averages; a and c are chosen here (velocity Q^0.1/(a c) is then 0.4 m/s
#: at 0.1 m3/s and 1.0 m/s at 1,000 m3/s).
WIDTH_COEF, WIDTH_EXP = 7.2, 0.5
DEPTH_COEF, DEPTH_EXP = 0.27, 0.4
#: log-standard deviation of a and c between reaches [-]
GEOMETRY_SIGMA_LN = 0.15
#: Manning n [s/m^(1/3)] from mountain streams (0.05) to large clean rivers (0.03), Chow (1959)
MANNING_N_RANGE = (0.03, 0.05)
#: discharges [m3/s] at which n reaches the upper and lower ends of MANNING_N_RANGE
MANNING_N_DISCHARGE_RANGE = (0.01, 1000.0)
#: sinuosity (reach length / straight distance) [-]
SINUOSITY_RANGE = (1.05, 1.5)
#: flow fraction of the main branch of a braid [-]
BRAID_MAIN_FRACTION_RANGE = (0.55, 0.85)
#: side-channel length / main-branch length [-]
BRAID_LENGTH_RATIO_RANGE = (1.05, 1.4)
#: coordinate reference system of node x, y: WGS 84 / UTM zone 48N (Chongqing) [m]
CRS = "EPSG:32648"
#: position of the first outlet [m] (easting, northing), near Qijiang, Chongqing
ORIGIN_XY_M = (660_000.0, 3_212_000.0)
#: angular wedge of each basin, opening northwards [rad]
BASIN_WEDGE_RAD = (np.pi / 6, 5 * np.pi / 6)
#: the project's benchmark network (DESIGN.md section 6)
BUDGET = {"n_reaches": 100_000, "n_dischargers": 20_000, "n_stations": 2_000, "n_intakes": 500,
          "n_structures": 200, "n_sites": 1_000}

_COMPONENTS = ("topology", "reaches", "braids", "layout", "features")


class SyntheticNetworkError(HydrologyError, ValueError):
    """The requested synthetic network cannot be built (a count or share out of range)."""


def _levels(depth: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) index ranges of equal depth in a depth-sorted link array."""
    cuts = np.flatnonzero(np.diff(depth)) + 1
    starts = np.r_[0, cuts]
    stops = np.r_[cuts, depth.size]
    return list(zip(starts.tolist(), stops.tolist()))


def _random_topology(n_leaves: int, n_outlets: int, n_extra: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Downstream link of every link of a random-topology forest (-1 at outlets).

    Remy's (1985) insertion grows uniform random binary trees, i.e. Shreve's (1966) random topology
    model: start with ``n_outlets`` single source links; each step picks an existing link uniformly,
    puts a new confluence link below it, and hangs a new source link on that confluence. Then
    ``n_extra`` random links are split by a pass-through node.

    Returns
    -------
    parent : ndarray of int64
        Index of the link each link flows into, -1 for outlet links. ``2 n_leaves - n_outlets +
        n_extra`` links.
    """
    n_insert = n_leaves - n_outlets
    n_links = 2 * n_leaves - n_outlets
    parent = [-1] * n_links
    existing = n_outlets + 2 * np.arange(n_insert)
    picks = (rng.random(n_insert) * existing).astype(np.int64).tolist()
    k = n_outlets
    for x in picks:  # sequential by nature; ~50,000 steps take a few tens of ms
        parent[k] = parent[x]
        parent[x] = k
        parent[k + 1] = k
        k += 2
    for x in rng.integers(0, n_links, size=n_extra).tolist():
        parent.append(parent[x])
        parent[x] = len(parent) - 1
    return np.asarray(parent, dtype=np.int64)


def _depth(parent: np.ndarray) -> np.ndarray:
    """Number of links between each link and its outlet, by pointer jumping (O(n log depth))."""
    depth = (parent >= 0).astype(np.int64)
    up = parent.copy()
    active = up >= 0
    while active.any():
        idx = np.flatnonzero(active)
        nxt = up[idx]
        depth[idx] += depth[nxt]
        up[idx] = up[nxt]
        active = up >= 0
    return depth


def _accumulate(parent: np.ndarray, levels: list[tuple[int, int]], values: np.ndarray) -> np.ndarray:
    """Each link's value plus the values of all links upstream of it (links sorted by depth)."""
    acc = np.array(values, dtype=float)
    for start, stop in reversed(levels[1:]):
        np.add.at(acc, parent[start:stop], acc[start:stop])
    return acc


def _sum_to_outlet(parent: np.ndarray, levels: list[tuple[int, int]], values: np.ndarray) -> np.ndarray:
    """Each link's value plus the values of all links downstream of it (links sorted by depth)."""
    acc = np.array(values, dtype=float)
    for start, stop in levels[1:]:
        acc[start:stop] += acc[parent[start:stop]]
    return acc


def _weighted_sample(weights: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` distinct indices drawn with probability proportional to ``weights``.

    Efraimidis & Spirakis (2006): keep the k largest keys u^(1/w), computed as log(u)/w.
    """
    keys = np.log(rng.random(weights.size)) / weights
    return np.sort(np.argpartition(-keys, k - 1)[:k]) if k else np.empty(0, dtype=np.int64)


def _tree(n_tree: int, n_outlets: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random-topology forest with exactly ``n_tree`` links, sorted so that parent[i] < i."""
    n_extra = (n_tree + n_outlets) % 2
    parent = _random_topology((n_tree + n_outlets - n_extra) // 2, n_outlets, n_extra, rng)
    depth = _depth(parent)
    order = np.argsort(depth, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    old = parent[order]
    parent = np.full(order.size, -1, dtype=np.int64)
    parent[old >= 0] = rank[old[old >= 0]]
    return parent, depth[order]


def _reach_attributes(parent: np.ndarray, levels: list[tuple[int, int]],
                      rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Lengths, areas, discharges, slopes and hydraulic geometry of the tree links (SI)."""
    n = parent.size
    lo, hi = REACH_LENGTH_RANGE_M
    length = np.clip(np.round(rng.lognormal(np.log(REACH_LENGTH_MEDIAN_M), REACH_LENGTH_SIGMA_LN, n), 1),
                     lo, hi)
    local_area = length * rng.lognormal(np.log(LOCAL_WIDTH_MEDIAN_M), LOCAL_WIDTH_SIGMA_LN, n)
    area = _accumulate(parent, levels, local_area)
    discharge = RUNOFF_M3S_PER_M2 * area
    slope = FLINT_KS * (area / FLINT_AREA_REF_M2) ** -FLINT_THETA * rng.lognormal(0.0, SLOPE_SIGMA_LN, n)
    q_lo, q_hi = np.log10(MANNING_N_DISCHARGE_RANGE)
    big = np.clip((np.log10(discharge) - q_lo) / (q_hi - q_lo), 0.0, 1.0)
    n_lo, n_hi = MANNING_N_RANGE
    manning = np.clip(n_hi - (n_hi - n_lo) * big + rng.uniform(-0.003, 0.003, n), n_lo, n_hi)
    return {
        "length_m": length,
        "local_inflow_m3s": RUNOFF_M3S_PER_M2 * local_area,
        "drainage_area_m2": area,
        "discharge_m3s": discharge,
        "slope": np.maximum(slope, SLOPE_MIN),
        "manning_n": np.round(manning, 4),
        "width_coef": np.round(WIDTH_COEF * rng.lognormal(0.0, GEOMETRY_SIGMA_LN, n), 3),
        "depth_coef": np.round(DEPTH_COEF * rng.lognormal(0.0, GEOMETRY_SIGMA_LN, n), 4),
    }


def _layout(parent: np.ndarray, levels: list[tuple[int, int]], length: np.ndarray, area: np.ndarray,
            n_outlets: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Planar coordinates [m] of each link's upstream node and of the outlets (radial tree layout).

    Every link owns an angular wedge proportional to its Shreve magnitude (number of sources
    upstream) inside its basin's wedge, and points from its downstream node along the middle of its
    wedge (+- a quarter of the wedge); the straight distance is length / sinuosity.

    Returns
    -------
    x, y : ndarray
        Upstream-node coordinates of the links [m].
    outlets : ndarray, shape (n_outlets, 2)
        Outlet coordinates [m].
    """
    n = parent.size
    is_source = np.ones(n, dtype=bool)
    is_source[parent[parent >= 0]] = False
    magnitude = _accumulate(parent, levels, is_source.astype(float))
    # magnitude of earlier siblings: the link's offset inside its parent's wedge
    inner = np.flatnonzero(parent >= 0)
    grouped = inner[np.argsort(parent[inner], kind="stable")]
    before = np.cumsum(magnitude[grouped]) - magnitude[grouped]
    first = np.r_[True, parent[grouped][1:] != parent[grouped][:-1]][:grouped.size]
    offset = np.zeros(n)
    offset[grouped] = before - before[first][np.cumsum(first) - 1]
    basin = np.arange(n)
    for start, stop in levels[1:]:
        basin[start:stop] = basin[parent[start:stop]]
    w_lo, w_hi = BASIN_WEDGE_RAD
    per_source = (w_hi - w_lo) / magnitude[basin]
    start_angle = w_lo + per_source * _sum_to_outlet(parent, levels, offset)
    width = per_source * magnitude
    theta = start_angle + width * (0.5 + rng.uniform(-0.25, 0.25, n))
    dist = length / rng.uniform(*SINUOSITY_RANGE, n)
    # outlets along an east-west line, spaced by the basins' sizes so fans overlap little
    size = np.sqrt(area[:n_outlets])
    centres = np.cumsum(size) - size / 2 - size[0] / 2
    outlets = np.column_stack([ORIGIN_XY_M[0] + centres, np.full(n_outlets, ORIGIN_XY_M[1])])
    x = outlets[basin, 0] + _sum_to_outlet(parent, levels, dist * np.cos(theta))
    y = outlets[basin, 1] + _sum_to_outlet(parent, levels, dist * np.sin(theta))
    return x, y, outlets


def _check_arguments(n_reaches: int, n_outlets: int, share: float, counts: dict[str, int]) -> int:
    """Validate the arguments of :func:`generate_network`; return the number of braids."""
    for name, value in {"n_reaches": n_reaches, "n_outlets": n_outlets, **counts}.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise SyntheticNetworkError(f"{name} must be an integer, got {value!r}")
        if value < 0:
            raise SyntheticNetworkError(f"{name} must not be negative, got {value}")
    if n_outlets < 1:
        raise SyntheticNetworkError(f"n_outlets must be at least 1, got {n_outlets}")
    if not 0.0 <= share < 1.0:
        raise SyntheticNetworkError(f"split_fraction_share must be in [0, 1), got {share!r}")
    n_braids = round(share * n_reaches / 3.0)  # share < 1 keeps n_braids <= tree links
    if n_reaches - 2 * n_braids < n_outlets:
        raise SyntheticNetworkError(
            f"n_reaches={n_reaches} cannot hold {n_outlets} outlet(s) and {n_braids} braid(s) "
            f"(split_fraction_share={share}): each outlet needs a reach, each braid three")
    return n_braids


def generate_network(n_reaches: int, *, n_dischargers: int = 0, n_stations: int = 0,
                     n_intakes: int = 0, n_structures: int = 0, n_sites: int = 0, seed: int = 0,
                     n_outlets: int = 1, split_fraction_share: float = 0.0) -> dict[str, Any]:
    """A seeded synthetic dendritic river network as a rivertrace network document.

    Parameters
    ----------
    n_reaches : int
        Number of reaches [-], exactly.
    n_dischargers, n_stations, n_intakes, n_structures, n_sites : int, default 0
        Number of each feature [-], exactly. Features may share a reach.
    seed : int, default 0
        Seed of ``numpy.random.SeedSequence``; the same seed and arguments give an identical
        document, and the river (nodes, reaches, inflows) does not depend on the feature counts.
    n_outlets : int, default 1
        Number of independent basins, each draining to its own outlet node [-].
    split_fraction_share : float, default 0.0
        Share of the reaches that lie in braids [-], in [0, 1); each braid is three reaches (main
        branch, and a side channel of two reaches) and rejoins downstream.

    Returns
    -------
    doc : dict
        JSON-ready document (format "rivertrace-network", version 1); node coordinates are in
        UTM zone 48N [m]. Every reach has length_m [m], slope [-], manning_n [s/m^(1/3)],
        hydraulic geometry (width_coef/exp, depth_coef/exp for B = a Q^b [m], H = c Q^f [m]),
        drainage_area_m2 [m2], mean_annual_discharge_m3s and discharge_m3s [m3/s] (mean annual
        flow, equal to the accumulated ``inflows``), and braid reaches a flow_fraction [-].

    Raises
    ------
    SyntheticNetworkError
        When a count is negative or not an integer, or the reaches cannot hold the outlets and
        braids.
    """
    counts = {"n_dischargers": n_dischargers, "n_stations": n_stations, "n_intakes": n_intakes,
              "n_structures": n_structures, "n_sites": n_sites}
    n_braids = _check_arguments(n_reaches, n_outlets, split_fraction_share, counts)
    rngs = dict(zip(_COMPONENTS, (np.random.default_rng(s)
                                  for s in np.random.SeedSequence(seed).spawn(len(_COMPONENTS)))))

    parent, depth = _tree(n_reaches - 2 * n_braids, n_outlets, rngs["topology"])
    levels = _levels(depth)
    n_tree = parent.size
    attrs = _reach_attributes(parent, levels, rngs["reaches"])
    x, y, outlets = _layout(parent, levels, attrs["length_m"], attrs["drainage_area_m2"], n_outlets,
                            rngs["layout"])

    # nodes: link i starts at node i; outlet j is node n_tree + j; braid k adds node n_tree+n_outlets+k
    from_node = np.arange(n_tree)
    to_node = np.where(parent >= 0, parent, n_tree + np.arange(n_tree))  # roots are links 0..n_outlets-1
    reaches = {k: v for k, v in attrs.items() if k != "local_inflow_m3s"}
    reaches["flow_fraction"] = np.full(n_tree, np.nan)
    node_x = np.r_[x, outlets[:, 0]]
    node_y = np.r_[y, outlets[:, 1]]
    if n_braids:
        rng = rngs["braids"]
        main = _weighted_sample(np.sqrt(attrs["discharge_m3s"]), n_braids, rng)
        frac = np.round(rng.uniform(*BRAID_MAIN_FRACTION_RANGE, n_braids), 3)
        side_length = attrs["length_m"][main] * rng.uniform(*BRAID_LENGTH_RATIO_RANGE, n_braids)
        cut = rng.uniform(0.35, 0.65, n_braids)
        mid = n_tree + n_outlets + np.arange(n_braids)
        u, v = from_node[main], to_node[main]
        ux, uy, vx, vy = node_x[u], node_y[u], node_x[v], node_y[v]
        # the side channel's node sits at the cut along the chord, 10% of the chord aside; with
        # cut >= 0.35 and sinuosity >= 1.05 neither straight leg exceeds its reach length
        bulge = rng.choice([-0.1, 0.1], n_braids)
        node_x = np.r_[node_x, ux + cut * (vx - ux) - bulge * (vy - uy)]
        node_y = np.r_[node_y, uy + cut * (vy - uy) + bulge * (vx - ux)]
        from_node = np.r_[from_node, u, mid]
        to_node = np.r_[to_node, mid, v]
        side = {
            "length_m": np.r_[np.round(side_length * cut, 1), np.round(side_length * (1 - cut), 1)],
            "slope": np.tile(attrs["slope"][main] * attrs["length_m"][main] / side_length, 2),
            "discharge_m3s": np.tile((1.0 - frac) * attrs["discharge_m3s"][main], 2),
            "flow_fraction": np.r_[np.round(1.0 - frac, 3), np.full(n_braids, np.nan)],
        }
        reaches["discharge_m3s"] = reaches["discharge_m3s"].copy()
        reaches["discharge_m3s"][main] *= frac
        reaches["flow_fraction"][main] = frac
        for key, values in reaches.items():
            reaches[key] = np.r_[values, side[key] if key in side else np.tile(values[main], 2)]
    reaches["mean_annual_discharge_m3s"] = reaches["discharge_m3s"]

    doc = _assemble(seed, n_outlets, n_braids, node_x, node_y, from_node, to_node, reaches,
                    attrs["local_inflow_m3s"])
    _add_features(doc, reaches, node_x, node_y, from_node, to_node, counts, rngs["features"])
    return doc


def _assemble(seed: int, n_outlets: int, n_braids: int, node_x: np.ndarray, node_y: np.ndarray,
              from_node: np.ndarray, to_node: np.ndarray, reaches: dict[str, np.ndarray],
              local_inflow: np.ndarray) -> dict[str, Any]:
    """The document's river part: nodes, reaches and inflows, as JSON-ready Python objects."""
    n = from_node.size
    ids = [f"n{i}" for i in range(node_x.size)]
    nodes = [{"id": i, "x": a, "y": b}
             for i, a, b in zip(ids, np.round(node_x, 1).tolist(), np.round(node_y, 1).tolist())]
    cols = {k: reaches[k].tolist() for k in (
        "length_m", "slope", "manning_n", "width_coef", "depth_coef", "drainage_area_m2",
        "mean_annual_discharge_m3s", "discharge_m3s")}
    cols["drainage_area_m2"] = np.round(reaches["drainage_area_m2"]).tolist()
    fraction = reaches["flow_fraction"].tolist()
    out = []
    for i, fn, tn, ln, s, nn, a, c, da, qa, q, fr in zip(
            range(n), from_node.tolist(), to_node.tolist(), cols["length_m"], cols["slope"],
            cols["manning_n"], cols["width_coef"], cols["depth_coef"], cols["drainage_area_m2"],
            cols["mean_annual_discharge_m3s"], cols["discharge_m3s"], fraction):
        r = {"id": f"r{i}", "from_node": ids[fn], "to_node": ids[tn], "length_m": ln, "slope": s,
             "manning_n": nn, "width_coef": a, "width_exp": WIDTH_EXP, "depth_coef": c,
             "depth_exp": DEPTH_EXP, "drainage_area_m2": da, "mean_annual_discharge_m3s": qa,
             "discharge_m3s": q}
        if not math.isnan(fr):  # a reach leaving a split
            r["flow_fraction"] = fr
        out.append(r)
    inflows = [{"node": ids[i], "discharge_m3s": q} for i, q in enumerate(local_inflow.tolist())]
    notes = (
        f"Synthetic network from hydrology.synthetic (seed {seed}, {n} reaches, {n_outlets} outlet(s), "
        f"{n_braids} braid(s)). Topology: Shreve (1966) random topology model grown by Remy (1985) "
        f"insertion. Reach length lognormal, median {REACH_LENGTH_MEDIAN_M:g} m, sigma_ln "
        f"{REACH_LENGTH_SIGMA_LN:g}. Local area = length x lognormal width (median "
        f"{LOCAL_WIDTH_MEDIAN_M:g} m). Discharge = {RUNOFF_M3S_PER_M2 * KM2:g} m3/s/km2 x drainage "
        f"area (mean annual flow; inflows are the local runoff). Slope = {FLINT_KS:g} (A/1 km2)^"
        f"-{FLINT_THETA:g} x lognormal(0, {SLOPE_SIGMA_LN:g}) (Flint 1974). Hydraulic geometry "
        f"B = {WIDTH_COEF:g} Q^{WIDTH_EXP:g}, H = {DEPTH_COEF:g} Q^{DEPTH_EXP:g} x lognormal(0, "
        f"{GEOMETRY_SIGMA_LN:g}) (Leopold & Maddock 1953 exponents). Features and departments are "
        f"fictitious. Not a real river.")
    return {"format": "rivertrace-network", "version": 1,
            "name": f"synthetic-{n}-seed{seed}", "crs": CRS, "notes": notes,
            "nodes": nodes, "reaches": out, "inflows": inflows}


# ---- features ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DischargerProfile:
    """How one kind of discharger is drawn.

    Parameters
    ----------
    kind : str
        Document ``kind`` (sewage_plant, industrial_plant, food_processing, outfall, livestock).
    share : float
        Share of all dischargers [-].
    effluent_median_m3s, effluent_sigma_ln : float
        Lognormal effluent discharge: median [m3/s] and log-standard deviation [-].
    river_preference : float
        Exponent p of the reach-choice weight length x Q^p [-]: sewage plants sit on larger rivers,
        livestock farms on small streams.
    raw_mg_l : Mapping[str, float]
        Untreated (raw) concentration of each pollutant [g/m3]; bounds the load the discharger
        can emit. Order-of-magnitude values chosen for the benchmark unless a source is named.
    permit_mg_l : Mapping[str, float] or None
        Permit limits [g/m3] from the named Chinese discharge standard; None for unpermitted
        outfalls.
    """

    kind: str
    share: float
    effluent_median_m3s: float
    effluent_sigma_ln: float
    river_preference: float
    raw_mg_l: Mapping[str, float]
    permit_mg_l: Mapping[str, float] | None


#: discharger profiles by name (the name also labels the discharger)
DISCHARGER_PROFILES: dict[str, DischargerProfile] = {
    # permit GB 18918-2002 Class 1A; raw: medium-strength municipal wastewater, Metcalf & Eddy
    # (2003), Wastewater Engineering, 4th ed., Table 3-15; 0.12 m3/s ~ 10,000 m3/d county plant
    "sewage plant": DischargerProfile(
        "sewage_plant", 0.10, 0.12, 0.9, 0.5,
        {"COD": 430.0, "BOD5": 190.0, "NH3-N": 25.0, "TN": 40.0, "TP": 7.0},
        {"COD": 50.0, "BOD5": 10.0, "NH3-N": 5.0, "TN": 15.0, "TP": 0.5}),
    # permit GB 21900-2008 (electroplating) Table 2
    "electroplating plant": DischargerProfile(
        "industrial_plant", 0.06, 0.005, 1.0, 0.3,
        {"COD": 300.0, "NH3-N": 30.0, "petroleum": 20.0, "Cu": 50.0, "Zn": 50.0, "Cr6+": 30.0,
         "Ni": 30.0},
        {"COD": 80.0, "NH3-N": 15.0, "petroleum": 3.0, "Cu": 0.5, "Zn": 1.5, "Cr6+": 0.2, "Ni": 0.5}),
    # permit GB 8978-1996 Grade 1
    "chemical plant": DischargerProfile(
        "industrial_plant", 0.08, 0.01, 1.0, 0.3,
        {"COD": 2000.0, "NH3-N": 100.0, "petroleum": 100.0, "volatile phenol": 50.0},
        {"COD": 100.0, "NH3-N": 15.0, "petroleum": 5.0, "volatile phenol": 0.5}),
    # permit GB 3544-2008 (pulp and paper; paper-making only) Table 2
    "paper mill": DischargerProfile(
        "industrial_plant", 0.06, 0.02, 1.0, 0.3,
        {"COD": 3000.0, "BOD5": 1000.0, "NH3-N": 20.0, "TN": 40.0, "TP": 5.0},
        {"COD": 80.0, "BOD5": 20.0, "NH3-N": 8.0, "TN": 12.0, "TP": 0.8}),
    # permit GB 8978-1996 Grade 1 (animal and vegetable oil 10 mg/L, reported as "petroleum")
    "food processing plant": DischargerProfile(
        "food_processing", 0.15, 0.004, 0.8, 0.2,
        {"COD": 3000.0, "BOD5": 1500.0, "petroleum": 300.0, "NH3-N": 50.0},
        {"COD": 100.0, "BOD5": 20.0, "petroleum": 10.0, "NH3-N": 15.0}),
    # unpermitted outfall: weak municipal wastewater, Metcalf & Eddy (2003) Table 3-15
    "outfall": DischargerProfile(
        "outfall", 0.40, 0.02, 1.2, 0.1,
        {"COD": 250.0, "BOD5": 110.0, "NH3-N": 12.0, "TN": 20.0, "TP": 4.0}, None),
    # permit GB 18596-2001 (livestock and poultry farming); raw: piggery wastewater magnitude
    "livestock farm": DischargerProfile(
        "livestock", 0.15, 0.002, 0.8, -0.2,
        {"COD": 8000.0, "BOD5": 4000.0, "NH3-N": 600.0, "TP": 80.0},
        {"COD": 400.0, "BOD5": 150.0, "NH3-N": 80.0, "TP": 8.0}),
}
#: maximum effluent flow / normal effluent flow [-], for max_load_kg_s = factor Q_eff C_raw
MAX_FLOW_FACTOR = 2.0
#: share of plants (not outfalls) with a power-metering feed [-]
POWER_METER_SHARE = 0.7
#: mean number of recorded violations per discharger (Poisson) [-]
VIOLATIONS_MEAN = 0.3
#: station target classes and their probabilities (GB 3838-2002)
STATION_CLASSES = {"II": 0.3, "III": 0.5, "IV": 0.2}
#: parameter sets of monitoring stations and their probabilities
STATION_PARAMETERS = {
    ("DO", "CODMn", "NH3-N", "TP", "temperature"): 0.6,
    ("DO", "CODMn", "COD", "NH3-N", "TP", "TN", "petroleum", "temperature", "discharge"): 0.4,
}
#: served population of an intake: lognormal median [-], log-sd, bounds
INTAKE_POPULATION = (30_000.0, 1.0, (500, 3_000_000))
#: control structures: kind -> probability; they sit on reaches above this discharge quantile
STRUCTURE_KINDS = {"hydropower": 0.6, "sluice": 0.2, "reservoir": 0.1, "dam": 0.1}
STRUCTURE_MIN_DISCHARGE_QUANTILE = 0.75
#: maximum / normal release of a structure [-] (uniform range)
STRUCTURE_RELEASE_RATIO = (2.0, 6.0)
#: response sites: kind -> (probability, median build time [s], log-sd)
SITE_KINDS = {"interception_dam": (0.5, 4 * 3600.0, 0.4), "boom": (0.3, 3600.0, 0.4),
              "dosing": (0.2, 2 * 3600.0, 0.4)}
SITE_ACCESS = {"road": 0.6, "track": 0.3, "boat": 0.1}
#: reaches per district [-] and the largest number of districts
REACHES_PER_DISTRICT, MAX_DISTRICTS = 5_000, 8
#: city-level departments: id -> (name, name_en, roles)
CITY_DEPARTMENTS = {
    "city-eeb": ("市生态环境局", "Municipal Ecology and Environment Bureau", ["enforcement", "emergency"]),
    "city-wrb": ("市水利局", "Municipal Water Resources Bureau",
                 ["water_resources", "drinking_water", "hydropower_dispatch"]),
    "city-ema": ("市应急管理局", "Municipal Emergency Management Bureau", ["emergency"]),
    "city-hub": ("市城市运行和治理中心", "City Operation and Governance Centre", ["governance"]),
}
#: district departments: id suffix -> (name suffix, name_en suffix, roles)
DISTRICT_DEPARTMENTS = {
    "eeb": ("生态环境局", "Ecology and Environment Bureau", ["enforcement"]),
    "wrb": ("水利局", "Water Resources Bureau", ["water_resources", "drinking_water", "hydropower_dispatch"]),
    "gov": ("人民政府", "People's Government", ["local_government", "governance"]),
}


def _place(weights: np.ndarray, k: int, length: np.ndarray,
           rng: np.random.Generator) -> tuple[np.ndarray, list[float]]:
    """``k`` reach indices drawn (with replacement) proportionally to ``weights``, and chainages
    uniform along each reach [m], rounded to 0.1 m and never beyond the reach end."""
    if k == 0:
        return np.empty(0, dtype=np.int64), []
    idx = rng.choice(weights.size, size=k, p=weights / weights.sum())
    chain = np.minimum(np.round(rng.random(k) * length[idx], 1), length[idx])
    return idx, chain.tolist()


def _pick(table: Mapping[Any, Any], k: int, rng: np.random.Generator) -> list[Any]:
    """``k`` keys of ``table`` drawn with the probabilities in its values (or values[0])."""
    keys = list(table)
    p = np.array([v[0] if isinstance(v, tuple) else v for v in table.values()], dtype=float)
    return [keys[i] for i in rng.choice(len(keys), size=k, p=p / p.sum()).tolist()]


def _departments(mid_x: np.ndarray, mid_y: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """District of every reach (nearest of a few random reach midpoints) and the departments."""
    n = mid_x.size
    k = int(min(MAX_DISTRICTS, max(1, n // REACHES_PER_DISTRICT)))
    seeds = rng.choice(n, size=k, replace=False)
    dist2 = (mid_x[:, None] - mid_x[seeds]) ** 2 + (mid_y[:, None] - mid_y[seeds]) ** 2
    district = np.argmin(dist2, axis=1)
    deps = [{"id": i, "name": zh, "name_en": en, "level": "city", "roles": roles}
            for i, (zh, en, roles) in CITY_DEPARTMENTS.items()]
    for d in range(k):
        owned = [f"r{i}" for i in np.flatnonzero(district == d).tolist()]
        for suffix, (zh, en, roles) in DISTRICT_DEPARTMENTS.items():
            deps.append({"id": f"district{d + 1}-{suffix}", "name": f"第{d + 1}区{zh}",
                         "name_en": f"District {d + 1} {en}", "level": "district", "roles": roles,
                         "owns": owned})
    return district, deps


def _add_features(doc: dict[str, Any], reaches: Mapping[str, np.ndarray], node_x: np.ndarray,
                  node_y: np.ndarray, from_node: np.ndarray, to_node: np.ndarray,
                  counts: Mapping[str, int], rng: np.random.Generator) -> None:
    """Scatter dischargers, stations, intakes, structures and sites; add departments (in place)."""
    length = reaches["length_m"]
    q = reaches["discharge_m3s"]
    district, doc["departments"] = _departments((node_x[from_node] + node_x[to_node]) / 2,
                                                (node_y[from_node] + node_y[to_node]) / 2, rng)
    rid = [f"r{i}" for i in range(length.size)]

    dischargers: list[dict[str, Any]] = []
    names = _pick({k: p.share for k, p in DISCHARGER_PROFILES.items()}, counts["n_dischargers"], rng)
    for label, prof in DISCHARGER_PROFILES.items():
        k = names.count(label)
        idx, chain = _place(length * q ** prof.river_preference, k, length, rng)
        flow = np.minimum(rng.lognormal(np.log(prof.effluent_median_m3s), prof.effluent_sigma_ln, k),
                          q[idx])  # an effluent never exceeds the river's mean flow
        metered = (rng.random(k) < POWER_METER_SHARE) & (prof.kind != "outfall")
        violations = rng.poisson(VIOLATIONS_MEAN, k).tolist()
        for j, (i, ch, f, m, v) in enumerate(zip(idx.tolist(), chain, flow.tolist(), metered.tolist(),
                                                 violations)):
            did = f"d{len(dischargers)}"
            item = {"id": did, "name": f"{label} {len(dischargers)}", "reach": rid[i], "chainage_m": ch,
                    "kind": prof.kind, "pollutants": list(prof.raw_mg_l), "effluent_discharge_m3s": f,
                    "max_load_kg_s": {p: MAX_FLOW_FACTOR * f * c / 1000.0 for p, c in prof.raw_mg_l.items()},
                    "violations": v, "department": f"district{district[i] + 1}-eeb"}
            if prof.permit_mg_l is not None:
                item["permit_limits_mg_l"] = dict(prof.permit_mg_l)
            if m:
                item["power_meter_id"] = f"pm-{did}"
            dischargers.append(item)
    doc["dischargers"] = dischargers

    n = counts["n_stations"]
    idx, chain = _place(length * q ** 0.3, n, length, rng)
    classes = _pick(STATION_CLASSES, n, rng)
    params = _pick(STATION_PARAMETERS, n, rng)
    doc["stations"] = [{"id": f"s{j}", "name": f"station {j}", "reach": rid[i], "chainage_m": ch,
                        "target_class": c, "parameters": list(p)}
                       for j, (i, ch, c, p) in enumerate(zip(idx.tolist(), chain, classes, params))]

    n = counts["n_intakes"]
    idx, chain = _place(length * q ** 0.7, n, length, rng)
    median, sigma, (lo, hi) = INTAKE_POPULATION
    pop = np.clip(np.round(rng.lognormal(np.log(median), sigma, n)), lo, hi).astype(int).tolist()
    cls = rng.choice(["II", "III"], size=n, p=[0.3, 0.7]).tolist()
    doc["intakes"] = [{"id": f"i{j}", "name": f"intake {j}", "reach": rid[i], "chainage_m": ch,
                       "population": p, "operator": f"water works {j}", "standard_class": c}
                      for j, (i, ch, p, c) in enumerate(zip(idx.tolist(), chain, pop, cls))]

    n = counts["n_structures"]
    large = q >= np.quantile(q, STRUCTURE_MIN_DISCHARGE_QUANTILE)
    idx, chain = _place(np.where(large, length * q, 0.0), n, length, rng)
    kinds = _pick(STRUCTURE_KINDS, n, rng)
    ratio = rng.uniform(*STRUCTURE_RELEASE_RATIO, n)
    doc["structures"] = [
        {"id": f"h{j}", "name": f"{kind} {j}", "reach": rid[i], "chainage_m": ch, "kind": kind,
         "normal_release_m3s": qn, "max_release_m3s": qn * r, "operator": f"district{district[i] + 1}-wrb"}
        for j, (i, ch, kind, qn, r) in enumerate(zip(idx.tolist(), chain, kinds, q[idx].tolist(),
                                                     ratio.tolist()))]

    n = counts["n_sites"]
    idx, chain = _place(length * q ** 0.2, n, length, rng)
    kinds = _pick(SITE_KINDS, n, rng)
    build = [float(np.round(SITE_KINDS[k][1] * rng.lognormal(0.0, SITE_KINDS[k][2]))) for k in kinds]
    access = _pick(SITE_ACCESS, n, rng)
    doc["sites"] = [{"id": f"x{j}", "name": f"{kind} site {j}", "reach": rid[i], "chainage_m": ch,
                     "kind": kind, "build_time_s": b, "access": a}
                    for j, (i, ch, kind, b, a) in enumerate(zip(idx.tolist(), chain, kinds, build, access))]


def write_network(doc: dict[str, Any], path: str | Path) -> Path:
    """Write a network document as compact UTF-8 JSON; return the path written."""
    path = Path(path)
    with path.open("w", encoding="utf-8") as fh:
        json.dump(doc, fh, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m hydrology.synthetic --reaches 100000 --seed 1 -o net.json``."""
    p = argparse.ArgumentParser(
        prog="python -m hydrology.synthetic",
        description="Write a seeded synthetic dendritic river network (rivertrace JSON document, SI "
                    "units: lengths m, discharges m3/s, areas m2, coordinates UTM 48N m).")
    p.add_argument("--reaches", type=int, help="number of reaches [-]")
    p.add_argument("--budget", action="store_true",
                   help="the DESIGN.md section 6 benchmark network: " +
                        ", ".join(f"{k}={v}" for k, v in BUDGET.items()) + " (explicit counts win)")
    for name in ("dischargers", "stations", "intakes", "structures", "sites"):
        p.add_argument(f"--{name}", type=int, help=f"number of {name} [-] (default 0)")
    p.add_argument("--outlets", type=int, default=1, help="number of basins / outlet nodes [-]")
    p.add_argument("--split-share", type=float, default=0.0,
                   help="share of reaches lying in braids (flow splits) [-], in [0, 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("-o", "--output", required=True, help="output JSON file")
    args = p.parse_args(argv)
    counts = dict(BUDGET) if args.budget else {"n_reaches": None}
    for name in ("reaches", "dischargers", "stations", "intakes", "structures", "sites"):
        if getattr(args, name) is not None:
            counts[f"n_{name}"] = getattr(args, name)
    if counts.get("n_reaches") is None:
        p.error("give --reaches N or --budget")
    t0 = time.perf_counter()
    doc = generate_network(**counts, seed=args.seed, n_outlets=args.outlets,
                           split_fraction_share=args.split_share)
    t1 = time.perf_counter()
    write_network(doc, args.output)
    t2 = time.perf_counter()
    sizes = ", ".join(f"{len(doc[k])} {k}" for k in (
        "nodes", "reaches", "dischargers", "stations", "intakes", "structures", "sites", "departments"))
    print(f"{args.output}: {sizes}; generated in {t1 - t0:.2f} s, written in {t2 - t1:.2f} s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Fast analytic plume forecast: from one release to every downstream receptor.

Method (the "moment chaining" used by the Rhine Alarm Model and ICWater time-of-travel tools):
travel-time moments add along the path, reach by reach (:func:`hydrology.transport.reach_moments`,
with transient storage); at a split the mass divides in proportion to flow; where two branches
from the same source meet again, moments combine as a mass-weighted mixture; dilution follows from
the receptor's discharge (full mixing at confluences). At each receptor the path is replaced by the
equivalent uniform channel with the same mean and variance of travel time,

    U_e = x / mean,  D_e = variance U_e^3 / (2 x),  A_e = Q_receptor / U_e,

and the concentration curve is the closed form (:func:`~hydrology.transport.gaussian_puff` for an
instantaneous release, :func:`~hydrology.transport.finite_release` for a release of constant rate
and finite duration). On a single uniform reach this is the exact solution; on a network it keeps
the first two moments exact (Nordin & Troutman 1980). Curves are evaluated for all receptors at
once on per-receptor time grids; peaks are refined by a parabola through the three highest points.

Times are seconds after the release start. Concentrations [g/m3] = [mg/L].
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from ..exceptions import HydrologyError, UnknownElementError
from ..network import Feature, FeatureKind
from ..pollutants import SURFACE_VELOCITY_INDEX, WIND_DRIFT_FACTOR, Pollutant
from .closed_form import finite_release, gaussian_puff, reach_moments

if TYPE_CHECKING:
    import xarray as xr

    from ..network import RiverNetwork
    from ..reach_state import ReachState

#: time samples per receptor curve [-]: with the peak refined by a parabola, 400 samples over
#: +-6 standard deviations put the peak time within ~0.1 % of sigma (checked in the tests)
N_TIMES = 400
#: when no standard applies (tracer) the leading/trailing edges are where C = this share of the
#: receptor's own peak [-]; the output says so (threshold_basis = "1% of peak")
EDGE_FRACTION_OF_PEAK = 0.01


class ForecastError(HydrologyError, ValueError):
    """A release that cannot be forecast (off its reach, no mass, bad duration)."""


@dataclass(frozen=True, slots=True)
class Release:
    """A pollutant release at a point on a reach.

    Give ``mass_kg`` for an instantaneous release, or ``rate_kg_s`` and ``duration_s`` for a release
    of constant rate. ``start`` (UTC) only labels absolute times; all results are relative to it.
    """

    reach: str
    chainage_m: float
    pollutant: Pollutant
    mass_kg: float | None = None
    rate_kg_s: float | None = None
    duration_s: float | None = None
    start: datetime | None = None

    def __post_init__(self) -> None:
        instantaneous = self.mass_kg is not None and self.rate_kg_s is None
        continuous = self.rate_kg_s is not None and self.duration_s is not None and self.mass_kg is None
        if not (instantaneous or continuous):
            raise ForecastError("a release needs either mass_kg, or rate_kg_s with duration_s")
        for name in ("mass_kg", "rate_kg_s", "duration_s"):
            v = getattr(self, name)
            if v is not None and not (v > 0 and np.isfinite(v)):
                raise ForecastError(f"release {name} must be positive and finite, got {v}")

    @property
    def total_mass_kg(self) -> float:
        """Mass released [kg]."""
        return self.mass_kg if self.mass_kg is not None else self.rate_kg_s * self.duration_s  # type: ignore[operator]


@dataclass(frozen=True, slots=True)
class ReceptorForecast:
    """Forecast at one receptor; times [s] after the release start, None where never reached."""

    id: str
    kind: FeatureKind
    reach: str
    chainage_m: float
    distance_m: float
    mean_travel_time_s: float
    mass_fraction: float
    discharge_m3s: float
    threshold_g_m3: float | None
    threshold_basis: str
    arrival_s: float | None
    peak_s: float
    peak_g_m3: float
    end_s: float | None

    @property
    def duration_above_s(self) -> float | None:
        """Time above the threshold [s]."""
        if self.arrival_s is None or self.end_s is None:
            return None
        return self.end_s - self.arrival_s


@dataclass(frozen=True, slots=True)
class Forecast:
    """All receptors downstream of a release, nearest first."""

    release: Release
    receptors: tuple[ReceptorForecast, ...]
    engine: str = "analytic"
    # equivalent-channel parameters per receptor, kept to draw curves on demand
    _params: dict = field(default_factory=dict, compare=False, repr=False)

    def receptor(self, rid: str) -> ReceptorForecast:
        for r in self.receptors:
            if r.id == rid:
                return r
        raise UnknownElementError(f"receptor {rid!r} is not downstream of the release")

    def curves(self, times_s: np.ndarray | None = None, n_times: int = 600) -> xr.Dataset:
        """Concentration curves at every receptor as an xarray Dataset (time x receptor), with units."""
        import xarray as xr

        p = self._params
        if times_s is None:
            t_end = float(np.max(p["t_hi"])) if len(self.receptors) else 1.0
            times_s = np.linspace(0.0, t_end, n_times)
        c = _concentration(self.release, p, np.asarray(times_s, float)[None, :]).T
        ds = xr.Dataset(
            {"concentration": (("time", "receptor"), c, {"units": "g m-3", "long_name": f"{self.release.pollutant.name} concentration"}),
             "distance": ("receptor", [r.distance_m for r in self.receptors], {"units": "m"}),
             "threshold": ("receptor", [np.nan if r.threshold_g_m3 is None else r.threshold_g_m3 for r in self.receptors], {"units": "g m-3"})},
            coords={"time": ("time", np.asarray(times_s, float), {"units": "s", "long_name": "time after release start"}),
                    "receptor": [r.id for r in self.receptors],
                    "kind": ("receptor", [r.kind for r in self.receptors])},
            attrs={"engine": self.engine, "pollutant": self.release.pollutant.name,
                   "source_reach": self.release.reach, "source_chainage_m": self.release.chainage_m},
        )
        return ds


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
        cache[key] = (state, *reach_moments(state.length_m, u, state.dispersion_m2s, beta, state.storage_exchange_per_s))
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


def receptor_thresholds(net: RiverNetwork, feats: list[Feature], pollutant: Pollutant, override: float | None) -> list[tuple[float | None, str]]:
    if override is not None:
        return [(override, "given")] * len(feats)
    if pollutant.standard_item is None:
        return [(None, f"{EDGE_FRACTION_OF_PEAK:.0%} of peak")] * len(feats)
    from ..standards import limit

    res: list[tuple[float | None, str]] = []
    for f in feats:
        cls = f.get("target_class") if f.kind == "station" else f.get("standard_class") or "III"
        if cls is None:
            cls = "III"
        lim = limit(pollutant.standard_item, cls)
        if lim.kind != "max":  # DO-like minimum or pH range: a plume of this item has no upper limit
            res.append((None, f"{EDGE_FRACTION_OF_PEAK:.0%} of peak"))
        else:
            value = lim.value_g_m3
            assert not isinstance(value, tuple)  # a "max" limit is one number
            res.append((float(value), f"GB 3838-2002 class {cls}"))
    return res


def _concentration(release: Release, p: dict, t: np.ndarray) -> np.ndarray:
    k = release.pollutant.decay_per_s
    x = p["x"][:, None]
    if release.mass_kg is not None:
        return gaussian_puff(x, t, p["f"][:, None] * release.mass_kg, p["A"][:, None], p["U"][:, None], p["D"][:, None], k)
    assert release.rate_kg_s is not None and release.duration_s is not None  # Release checks this
    c0 = p["f"][:, None] * release.rate_kg_s * 1000.0 / p["Q"][:, None]
    return finite_release(x, t, c0, release.duration_s, p["U"][:, None], p["D"][:, None], k)


def forecast(net: RiverNetwork, release: Release, *, kinds: tuple[FeatureKind, ...] = ("station", "intake"),
             threshold_g_m3: float | None = None, wind_ms: float = 0.0, state: ReachState | None = None,
             n_times: int = N_TIMES) -> Forecast:
    """Forecast arrival, peak and end of a plume at every downstream receptor (analytic engine).

    Parameters
    ----------
    net : RiverNetwork
        A valid network.
    release : Release
        Where, what and how much.
    kinds : tuple of str
        Feature kinds to report ("station", "intake", "site", "structure", "discharger").
    threshold_g_m3 : float, optional
        Concentration defining arrival and end [g/m3]; default the receptor's standard for the
        pollutant (GB 3838 class of a station, class III for an intake unless it states one).
    wind_ms : float
        Along-stream 10 m wind [m/s] (floating pollutants only).
    state : ReachState, optional
        Precomputed reach state (default: the network's cached one).

    Returns
    -------
    Forecast
    """
    st = state if state is not None else net.reach_state()
    routed = route_moments(net, st, release.reach, release.chainage_m, release.pollutant, kinds, wind_ms)
    routed.sort(key=lambda r: (r[3], r[2]))
    if not routed:
        return Forecast(release, (), _params={k: np.zeros(0) for k in ("x", "f", "U", "D", "A", "Q", "t_hi")})
    feats = [r[0] for r in routed]
    f = np.array([r[1] for r in routed])
    x = np.array([r[2] for r in routed])
    mean = np.array([r[3] for r in routed])
    var = np.array([r[4] for r in routed])
    qrec = np.array([st.discharge_m3s[st.index[ft.reach]] for ft in feats])
    U = x / mean
    D = var * U**3 / (2.0 * x)
    sigma = np.sqrt(var)
    dur = release.duration_s or 0.0
    t_lo = np.maximum(mean - 6.0 * sigma, 0.0)
    t_hi = mean + dur + 10.0 * sigma
    p = {"x": x, "f": f, "U": U, "D": D, "A": qrec / U, "Q": qrec, "t_hi": t_hi}
    frac = np.linspace(0.0, 1.0, n_times)[None, :]
    t = t_lo[:, None] + (t_hi - t_lo)[:, None] * frac
    c = _concentration(release, p, t)
    rows = np.arange(len(feats))
    ipk = np.argmax(c, axis=1)
    # parabolic refinement of the peak through the three samples around the maximum
    im = np.clip(ipk, 1, n_times - 2)
    y0, y1, y2 = c[rows, im - 1], c[rows, im], c[rows, im + 1]
    denom = y0 - 2 * y1 + y2
    with np.errstate(divide="ignore", invalid="ignore"):
        off = np.where(denom < 0, 0.5 * (y0 - y2) / denom, 0.0)
    off = np.clip(off, -1.0, 1.0)
    dt = (t_hi - t_lo) / (n_times - 1)
    peak_t = t[rows, im] + off * dt
    peak_c = np.where(denom < 0, y1 - 0.25 * (y0 - y2) * off, c[rows, ipk])
    thr = receptor_thresholds(net, feats, release.pollutant, threshold_g_m3)
    receptors = []
    for i, ft in enumerate(feats):
        level, basis = thr[i]
        cut = level if level is not None else EDGE_FRACTION_OF_PEAK * peak_c[i]
        above = np.flatnonzero(c[i] >= cut)
        arrival = end = None
        if above.size and peak_c[i] >= cut:
            a, b = above[0], above[-1]
            arrival = float(t[i, a] if a == 0 else np.interp(cut, [c[i, a - 1], c[i, a]], [t[i, a - 1], t[i, a]]))
            end = float(t[i, b] if b == n_times - 1 else np.interp(cut, [c[i, b + 1], c[i, b]], [t[i, b + 1], t[i, b]]))
        receptors.append(ReceptorForecast(
            id=ft.id, kind=ft.kind, reach=ft.reach, chainage_m=ft.chainage_m, distance_m=float(x[i]),
            mean_travel_time_s=float(mean[i]), mass_fraction=float(f[i]), discharge_m3s=float(qrec[i]),
            threshold_g_m3=level, threshold_basis=basis, arrival_s=arrival, peak_s=float(peak_t[i]),
            peak_g_m3=float(peak_c[i]), end_s=end))
    return Forecast(release, tuple(receptors), "analytic", p)

"""The analytic forecast engine: from one release to every downstream receptor, exactly.

Each receptor's curve comes from the transport kernel (:mod:`hydrology.transport.kernel`):
per-reach Laplace-domain transfer functions (advection, dispersion, decay, transient storage,
lakes), multiplied along the network from a point injection, mixed at confluences and divided at
splits, inverted numerically (de Hoog et al. 1982) and convolved with the release history (a pulse,
a box, a measured rate curve, or an observed inflow concentration curve). It is exact for the linear
problem up to the inversion's ~1e-9 and the junction assumption stated in the kernel.

Arrival, peak and end are read from each curve on :data:`N_TIMES` samples spanning the receptor's
window (mean - 6 sd to mean + 10 sd of the travel time, plus the release's duration); the peak is
refined on a local grid of :data:`PEAK_REFINE` exact samples and a parabola, then by
:data:`PEAK_ROUNDS` closer parabolas; each crossing of the threshold is bracketed by two samples and
refined on the exact curve by the Illinois variant of regula falsi until its bracket is within
:data:`CROSSING_XTOL` of the sample spacing.

Times are seconds after the release start. Concentrations [g/m3] = [mg/L].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from ..exceptions import UnknownElementError
from ..network import Feature, FeatureKind
from ..pollutants import Pollutant
from .kernel import Responses, SourceHistory, point_source_responses
from .routing import (  # noqa: F401  (re-exported: the routing helpers were part of this module)
    ForecastError,
    _receptor_index,
    node_divisors,
    node_outflow_divisor,
    path_velocity,
    reach_moment_arrays,
    route_moments,
)

if TYPE_CHECKING:
    import xarray as xr

    from ..network import RiverNetwork
    from ..reach_state import ReachState

#: coarse time samples per receptor curve [-] (sd / 4 apart over a 16 sd window: they only bracket the
#: peak and the crossings, which are then refined on the exact curve); a curve behind a lake gets half
#: as many again across its front (the inverted remainder's window)
N_TIMES = 64
#: exact samples across the two coarse intervals around the highest sample [-]; a parabola through
#: the best three then puts the peak time within ~1e-4 sd (checked against the closed-form puff)
PEAK_REFINE = 17
#: further parabolas through three exact samples around the last vertex, a quarter as far apart each
#: time [-]: the vertex's error falls ~16-fold per round (it goes as the spacing squared); one round
#: left a near-field low-Peclet peak 2e-3 of its time off (tests/hydrology/test_near_field_roots.py),
#: and a box's top just after the release ends 9e-6 low (the curve bends sharply there)
PEAK_ROUNDS = 3
#: each threshold crossing is refined on the exact curve until its bracket is narrower than this share
#: of the coarse sample spacing that first brackets it [-] (:func:`illinois`; ~1e-7 sd: below the 0.1 %
#: of DESIGN.md by far, and above the inversion's round-off, ~1e-10 of the peak over a slope of ~1e-2
#: of the peak per sd at a 1 % edge, i.e. ~1e-8 sd). Three fixed regula-falsi steps left the 1 % arrival
#: of a low-Peclet near-field curve 7 % of its peak time off (tests/hydrology/test_near_field_roots.py)
CROSSING_XTOL = 1e-6
#: at most this many steps per crossing [-] (bisection from the coarse bracket would need 20)
CROSSING_MAX_ITERATIONS = 60
#: when no standard applies (tracer) the leading/trailing edges are where C = this share of the
#: receptor's own peak [-]; the output says so (threshold_basis = "1% of peak")
EDGE_FRACTION_OF_PEAK = 0.01

Curve = tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class Release:
    """A pollutant release at a point on a reach.

    Give exactly one of: ``mass_kg`` (instantaneous); ``rate_kg_s`` with ``duration_s`` (constant
    rate); ``rate_curve`` ((time [s], rate [kg/s]) samples, linear between them, 0 outside); or
    ``inflow_curve`` ((time [s], concentration [g/m3]) observed at the point: an upstream boundary
    curve, as at x = 0 of a tracer study). ``start`` (UTC) only labels absolute times; all results
    are relative to it.
    """

    reach: str
    chainage_m: float
    pollutant: Pollutant
    mass_kg: float | None = None
    rate_kg_s: float | None = None
    duration_s: float | None = None
    start: datetime | None = None
    rate_curve: Curve | None = None
    inflow_curve: Curve | None = None

    def __post_init__(self) -> None:
        instantaneous = self.mass_kg is not None and self.rate_kg_s is None
        continuous = self.rate_kg_s is not None and self.duration_s is not None and self.mass_kg is None
        given = [instantaneous, continuous, self.rate_curve is not None, self.inflow_curve is not None]
        if sum(given) != 1 or (self.duration_s is not None and not continuous):
            raise ForecastError("a release needs exactly one of: mass_kg; rate_kg_s with duration_s; a rate curve; "
                                "an inflow curve")
        for name in ("mass_kg", "rate_kg_s", "duration_s"):
            v = getattr(self, name)
            if v is not None and not (v > 0 and np.isfinite(v)):
                raise ForecastError(f"release {name} must be positive and finite, got {v}")
        for name in ("rate_curve", "inflow_curve"):
            curve = getattr(self, name)
            if curve is not None:
                arr = np.asarray(curve, float)
                if arr.ndim != 2 or arr.shape[1] != 2 or len(arr) < 2:
                    raise ForecastError(f"{name}: give at least two (time [s], value) samples")
                if np.any(arr[:, 1] < 0) or not np.any(arr[:, 1] > 0):
                    raise ForecastError(f"{name}: values must not be negative and at least one must be positive")
                SourceHistory.from_samples(arr[:, 0].tolist(), arr[:, 1].tolist())  # checks order and finiteness

    @property
    def is_boundary(self) -> bool:
        """True for an observed inflow concentration curve (a Dirichlet boundary at the point)."""
        return self.inflow_curve is not None

    def source_history(self) -> SourceHistory:
        """The release as a source history (kg, kg/s, kg/s2; g/m3 for an inflow curve)."""
        if self.mass_kg is not None:
            return SourceHistory.pulse(self.mass_kg)
        if self.rate_kg_s is not None:
            return SourceHistory.box(self.rate_kg_s, self.duration_s)
        curve = np.asarray(self.rate_curve if self.rate_curve is not None else self.inflow_curve, float)
        return SourceHistory.from_samples(curve[:, 0].tolist(), curve[:, 1].tolist())

    @property
    def total_mass_kg(self) -> float:
        """Mass released [kg] (NaN for an inflow curve: its mass depends on the flow there)."""
        if self.is_boundary:
            return float("nan")
        return float(self.source_history().total)

    @property
    def active_s(self) -> float:
        """Time from the start of the release to its last change [s] (0 for a pulse)."""
        return self.source_history().end_s


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
    # the kernel's responses and each receptor's time span [s] ("t_hi"), kept to draw curves on demand
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
        if len(self.receptors):
            c = p["responses"].concentration(self.release.source_history(), np.asarray(times_s, float)[None, :]).T
        else:
            c = np.zeros((len(times_s), 0))
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


def _peaks(resp: Responses, src: SourceHistory, t: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Peak time [s] and concentration [g/m3] of each row: the highest coarse sample, then
    :data:`PEAK_REFINE` exact samples across its two neighbouring intervals and a parabola through the
    best three; then :data:`PEAK_ROUNDS` parabolas through three exact samples around the last vertex,
    a quarter as far apart as the last where that vertex lay between its samples."""
    n = t.shape[1]
    rows = np.arange(t.shape[0])
    i = np.clip(np.argmax(c, axis=1), 1, n - 2)
    lo, hi = t[rows, i - 1], t[rows, i + 1]
    fine_t = lo[:, None] + (hi - lo)[:, None] * np.linspace(0.0, 1.0, PEAK_REFINE)[None, :]
    fine_c = resp.concentration(src, fine_t)
    j = np.clip(np.argmax(fine_c, axis=1), 1, PEAK_REFINE - 2)
    h = (hi - lo) / (PEAK_REFINE - 1)
    peak_t, peak_c, off = _vertex(fine_t[rows, j], h, fine_c[rows, j - 1], fine_c[rows, j], fine_c[rows, j + 1])
    for _ in range(PEAK_ROUNDS):
        # a vertex inside its three samples: look closer; one at their edge (the top lies further, as
        # behind a release's end, where the curve bends sharply): step on at the same spacing
        h = np.where(np.abs(off) < 1.0, 0.25 * h, h)
        around = peak_t[:, None] + h[:, None] * np.array([-1.0, 0.0, 1.0])[None, :]
        y = resp.concentration(src, around)
        peak_t, peak_c, off = _vertex(peak_t, h, y[:, 0], y[:, 1], y[:, 2])
    coarse_best = np.max(c, axis=1)
    better = coarse_best > peak_c  # a plateau or a peak at the window's edge: keep the sample
    peak_t = np.where(better, t[rows, np.argmax(c, axis=1)], peak_t)
    return peak_t, np.maximum(peak_c, coarse_best)


def _vertex(tm: np.ndarray, h: np.ndarray, y0: np.ndarray, y1: np.ndarray, y2: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Time and value of the top of the parabola through (tm - h, y0), (tm, y1), (tm + h, y2), and its
    offset from tm in units of h, kept within [-1, 1]; where the three are not concave, the highest."""
    denom = y0 - 2 * y1 + y2
    with np.errstate(divide="ignore", invalid="ignore"):
        off = np.clip(np.where(denom < 0, 0.5 * (y0 - y2) / denom, 0.0), -1.0, 1.0)
    value = np.where(denom < 0, y1 - 0.25 * (y0 - y2) * off, y1)
    side = np.where(y2 > y0, 1.0, -1.0)
    convex_edge = (denom >= 0) & (np.maximum(y0, y2) > y1)
    off = np.where(convex_edge, side, off)
    return tm + off * h, np.where(convex_edge, np.maximum(y0, y2), value), off


def illinois(func: Callable[[np.ndarray, np.ndarray], np.ndarray], xa: np.ndarray, xb: np.ndarray, fa: np.ndarray,
             fb: np.ndarray, xtol: np.ndarray | float, max_iterations: int = CROSSING_MAX_ITERATIONS,
             bounds: tuple[float, float] | None = None) -> np.ndarray:
    """Roots of ``func`` (vectorised, one per row) in the brackets [xa, xb] where ``fa``, ``fb`` are its
    values (of opposite signs), each to within ``xtol`` (per row or one value).

    The Illinois variant of regula falsi (Dowell & Jarratt 1971, BIT 11:168): a secant step inside the
    bracket, and the value at an end that is kept twice is halved, so that both ends close in
    (superlinear, order ~1.44). A row stops when its bracket is narrower than ``xtol`` or its last step
    moved less than a tenth of it; only rows still going are evaluated: ``func(rows, x)`` gets the row
    indices and one abscissa per row.
    A row without a sign change keeps the secant estimate of its bracket (or the end where the
    value is 0). ``bounds`` clip every step (e.g. [0, 1] for a position within an interval).

    Returns
    -------
    ndarray
        The root of each row: the secant point of its final bracket (within ``xtol`` of the root).
    """
    xa, xb = np.array(xa, float), np.array(xb, float)
    fa, fb = np.array(fa, float), np.array(fb, float)
    tol = np.broadcast_to(np.asarray(xtol, float), xa.shape)

    def secant(a: np.ndarray, b: np.ndarray, ya: np.ndarray, yb: np.ndarray) -> np.ndarray:
        mid = 0.5 * (a + b)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            x = np.where(yb != ya, b - yb * (b - a) / (yb - ya), mid)
        inside = np.isfinite(x) & (x >= np.minimum(a, b)) & (x <= np.maximum(a, b))
        x = np.where(inside, x, mid)
        return x if bounds is None else np.clip(x, *bounds)

    last = np.where(np.abs(fa) < np.abs(fb), xa, xb)  # the previous estimate of each root
    live = np.flatnonzero((np.sign(fa) * np.sign(fb) < 0) & (np.abs(xb - xa) > tol))
    for _ in range(max_iterations):
        if not live.size:
            break
        a, b, ya, yb = xa[live], xb[live], fa[live], fb[live]
        x = secant(a, b, ya, yb)
        y = func(live, x)
        keep_a = np.sign(y) == np.sign(yb)  # the root lies between a and x
        fa[live] = np.where(keep_a, 0.5 * ya, yb)
        xa[live] = np.where(keep_a, a, b)
        xb[live], fb[live] = x, y
        step = np.abs(x - last[live])
        last[live] = x
        # done: a root hit, a bracket within the tolerance, or a step of a tenth of it (the iteration
        # converges superlinearly, so the error left is a small fraction of the last step)
        live = live[(y != 0) & (np.abs(x - xa[live]) > tol[live]) & (step > 0.1 * tol[live])]
    return np.where(fb == 0, xb, np.where(fa == 0, xa, secant(xa, xb, fa, fb)))


def _crossings(resp: Responses, src: SourceHistory, t: np.ndarray, c: np.ndarray, cut: np.ndarray,
               peak_c: np.ndarray, rows_of: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """First and last time [s] each row is at or above ``cut`` [g/m3] (NaN: never), bracketed by
    the coarse samples and refined on the exact curve (:func:`illinois`) to :data:`CROSSING_XTOL` of
    the bracket. ``rows_of``: the receptor (row of ``resp``) of each row, when not all rows in order."""
    n_rows, n = c.shape
    rows = np.arange(n_rows)
    receptor = rows if rows_of is None else np.asarray(rows_of, int)
    above = c >= cut[:, None]
    has = above.any(axis=1) & (peak_c >= cut)
    first = np.argmax(above, axis=1)
    last = n - 1 - np.argmax(above[:, ::-1], axis=1)
    # both crossings of every row at once (rising, then falling): one evaluation of the curve per step
    inner = np.r_[first, last]  # at or above the cut
    outer = np.clip(np.r_[first - 1, last + 1], 0, n - 1)
    both, rec2, cut2 = np.r_[rows, rows], np.r_[receptor, receptor], np.r_[cut, cut]
    ta, tb = t[both, outer], t[both, inner]

    def level(sel: np.ndarray, tm: np.ndarray) -> np.ndarray:
        return resp.concentration(src, tm[:, None], rec2[sel])[:, 0] - cut2[sel]

    final = illinois(level, ta, tb, c[both, outer] - cut2, c[both, inner] - cut2, CROSSING_XTOL * np.abs(tb - ta))
    final = np.where(outer == inner, tb, final)  # the crossing lies at the first or last sample: keep it
    final = np.where(np.r_[has, has], final, np.nan)
    return final[:n_rows], final[n_rows:]


def sample_times(resp: Responses, src: SourceHistory, n_times: int = N_TIMES) -> tuple[np.ndarray, np.ndarray]:
    """The coarse times [s] at which each receptor's curve is sampled (rows), and each one's last window time [s]:
    ``n_times`` from mean - 6 sd to mean + 10 sd of the travel time, plus the release's duration."""
    sd = resp.sd_s
    t_lo = np.maximum(resp.mean_s - 6.0 * sd, 0.0) + src.start_s
    t_hi = resp.mean_s + 10.0 * sd + src.end_s
    t = t_lo[:, None] + (t_hi - t_lo)[:, None] * np.linspace(0.0, 1.0, n_times)[None, :]
    if resp.mode_a.shape[1]:
        # a curve behind lakes has a time scale per lake: its front in the remainder's (short) window,
        # then one rise or decay per lake mode; sample the front evenly and the rest geometrically
        w0 = resp.t0_s + src.start_s
        w1 = w0 + resp.period_s + src.end_s - src.start_s
        front = w0[:, None] + (w1 - w0)[:, None] * np.linspace(0.0, 1.0, n_times // 2)[None, :]
        lo, hi = np.log(np.maximum(w1, 1.0)), np.log(np.maximum(t_hi, np.maximum(w1, 1.0)))
        after = np.exp(lo[:, None] + (hi - lo)[:, None] * np.linspace(0.0, 1.0, n_times // 2)[None, :])
        t = np.sort(np.concatenate([t, front, after], axis=1), axis=1)
    return t, t_hi


def level_crossings(fc: Forecast, fractions: np.ndarray) -> np.ndarray:
    """First and last time [s] each receptor's curve of ``fc`` is at ``fractions`` of its own peak:
    shape (receptors, fractions, 2), NaN where it never is (a fraction above 1)."""
    resp = fc._params["responses"]
    n, k = len(fc.receptors), len(fractions)
    if not n:
        return np.zeros((0, k, 2))
    src = fc.release.source_history()
    t, _ = sample_times(resp, src)
    c = resp.concentration(src, t)
    peak = np.array([r.peak_g_m3 for r in fc.receptors])
    rows = np.repeat(np.arange(n), k)
    cut = (peak[:, None] * np.asarray(fractions, float)[None, :]).ravel()
    first, last = _crossings(resp, src, t[rows], c[rows], cut, peak[rows], rows)
    return np.stack([first, last], axis=1).reshape(n, k, 2)


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
    n_times : int
        Coarse samples per receptor curve [-].

    Returns
    -------
    Forecast
    """
    st = state if state is not None else net.reach_state()
    resp = point_source_responses(net, st, release.reach, release.chainage_m, release.pollutant, kinds,
                                  wind_ms=wind_ms, boundary=release.is_boundary)
    if not len(resp):
        return Forecast(release, (), _params={"responses": resp, "t_hi": np.zeros(0)})
    src = release.source_history()
    t, t_hi = sample_times(resp, src, n_times)
    c = resp.concentration(src, t)
    peak_t, peak_c = _peaks(resp, src, t, c)
    feats = list(resp.features)
    thr = receptor_thresholds(net, feats, release.pollutant, threshold_g_m3)
    cut = np.array([lv if lv is not None else EDGE_FRACTION_OF_PEAK * pk for (lv, _b), pk in zip(thr, peak_c)])
    arrival, end = _crossings(resp, src, t, c, cut, peak_c)
    ongoing = src.ongoing
    receptors = []
    for i, ft in enumerate(feats):
        level, basis = thr[i]
        a_i = None if np.isnan(arrival[i]) else float(arrival[i])
        e_i = None if np.isnan(end[i]) or (ongoing and end[i] >= t[i, -1]) else float(end[i])
        receptors.append(ReceptorForecast(
            id=ft.id, kind=ft.kind, reach=ft.reach, chainage_m=ft.chainage_m, distance_m=float(resp.distance_m[i]),
            mean_travel_time_s=float(resp.travel_time_s[i]), mass_fraction=float(resp.mass_fraction[i]),
            discharge_m3s=float(resp.discharge_m3s[i]), threshold_g_m3=level, threshold_basis=basis,
            arrival_s=a_i, peak_s=float(peak_t[i]), peak_g_m3=float(peak_c[i]), end_s=e_i))
    return Forecast(release, tuple(receptors), "analytic", {"responses": resp, "t_hi": t_hi})

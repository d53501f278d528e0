"""The analytic forecast engine: from one release to every downstream receptor, exactly.

Each receptor's curve comes from the transport kernel (:mod:`hydrology.transport.kernel`):
per-reach Laplace-domain transfer functions (advection, dispersion, decay, transient storage,
lakes), multiplied along the network from a point injection, mixed at confluences and divided at
splits, inverted numerically (de Hoog et al. 1982) and convolved with the release history (a pulse,
a box, a measured rate curve, or an observed inflow concentration curve). It is exact for the linear
problem up to the inversion's ~1e-9 and the junction assumption stated in the kernel.

Arrival, peak and end are read from each curve on :data:`N_TIMES` samples spanning the receptor's
window (mean - 6 sd to mean + 10 sd of the travel time, plus the release's duration); the peak is
refined on a local grid of :data:`PEAK_REFINE` exact samples and a parabola; each crossing of the
threshold is bracketed by two samples and refined on the exact curve (regula falsi).

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
#: regula-falsi steps that refine each threshold crossing on the exact curve [-] (from a bracket of
#: sd / 10, three Illinois steps reach ~1e-6 of the bracket)
CROSSING_ITERATIONS = 3
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
    :data:`PEAK_REFINE` exact samples across its two neighbouring intervals and a parabola."""
    n = t.shape[1]
    rows = np.arange(t.shape[0])
    i = np.clip(np.argmax(c, axis=1), 1, n - 2)
    lo, hi = t[rows, i - 1], t[rows, i + 1]
    fine_t = lo[:, None] + (hi - lo)[:, None] * np.linspace(0.0, 1.0, PEAK_REFINE)[None, :]
    fine_c = resp.concentration(src, fine_t)
    j = np.clip(np.argmax(fine_c, axis=1), 1, PEAK_REFINE - 2)
    y0, y1, y2 = fine_c[rows, j - 1], fine_c[rows, j], fine_c[rows, j + 1]
    denom = y0 - 2 * y1 + y2
    with np.errstate(divide="ignore", invalid="ignore"):
        off = np.clip(np.where(denom < 0, 0.5 * (y0 - y2) / denom, 0.0), -1.0, 1.0)
    h = (hi - lo) / (PEAK_REFINE - 1)
    peak_t = fine_t[rows, j] + off * h
    peak_c = np.where(denom < 0, y1 - 0.25 * (y0 - y2) * off, y1)
    coarse_best = np.max(c, axis=1)
    better = coarse_best > peak_c  # a plateau or a peak at the window's edge: keep the sample
    peak_t = np.where(better, t[rows, np.argmax(c, axis=1)], peak_t)
    return peak_t, np.maximum(peak_c, coarse_best)


def illinois(func: Callable[[np.ndarray], np.ndarray], xa: np.ndarray, xb: np.ndarray, fa: np.ndarray,
             fb: np.ndarray, iterations: int, bounds: tuple[float, float] | None = None) -> np.ndarray:
    """Roots of ``func`` (vectorised, one per row) in the brackets [xa, xb] where ``fa``, ``fb`` are its
    values: ``iterations`` steps of the Illinois variant of regula falsi (Dowell & Jarratt 1971, BIT 11:168),
    then one last secant step. A step that is not finite falls back to the midpoint; ``bounds`` clip every
    step (e.g. [0, 1] for a position within an interval)."""
    def step(xa: np.ndarray, xb: np.ndarray, fa: np.ndarray, fb: np.ndarray, fallback: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.where(fb != fa, xb - fb * (xb - xa) / (fb - fa), fallback)
        return np.where(np.isfinite(x), x if bounds is None else np.clip(x, *bounds), fallback)

    for _ in range(iterations):
        xm = step(xa, xb, fa, fb, 0.5 * (xa + xb))
        fm = func(xm)
        same_as_b = np.sign(fm) == np.sign(fb)
        # Illinois: halve the retained end's value so that the bracket shrinks from both sides
        fa = np.where(same_as_b, fa * 0.5, fb)
        xa = np.where(same_as_b, xa, xb)
        xb, fb = xm, fm
    return step(xa, xb, fa, fb, xb)


def _crossings(resp: Responses, src: SourceHistory, t: np.ndarray, c: np.ndarray, cut: np.ndarray,
               peak_c: np.ndarray, iterations: int = CROSSING_ITERATIONS,
               rows_of: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """First and last time [s] each row is at or above ``cut`` [g/m3] (NaN: never), bracketed by
    the coarse samples and refined on the exact curve by the Illinois variant of regula falsi.
    ``rows_of``: the receptor (row of ``resp``) of each row, when not all rows in order."""
    n_rows, n = c.shape
    rows = np.arange(n_rows)
    above = c >= cut[:, None]
    has = above.any(axis=1) & (peak_c >= cut)
    first = np.argmax(above, axis=1)
    last = n - 1 - np.argmax(above[:, ::-1], axis=1)
    out = []
    for idx, rising in ((first, True), (last, False)):
        inner = idx  # at or above the cut
        outer = np.clip(idx - 1 if rising else idx + 1, 0, n - 1)
        edge = outer == inner  # the crossing lies at the first or last sample: keep that sample
        final = illinois(lambda tm: resp.concentration(src, tm[:, None], rows_of)[:, 0] - cut,
                         t[rows, outer], t[rows, inner], c[rows, outer] - cut, c[rows, inner] - cut, iterations)
        final = np.where(edge, t[rows, inner], final)
        out.append(np.where(has, final, np.nan))
    return out[0], out[1]


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


def level_crossings(fc: Forecast, fractions: np.ndarray, iterations: int = 2 * CROSSING_ITERATIONS) -> np.ndarray:
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
    first, last = _crossings(resp, src, t[rows], c[rows], cut, peak[rows], iterations, rows)
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

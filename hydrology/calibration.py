"""Calibration to tracer breakthrough curves, OTIS-P style: nonlinear least squares per reach group.

Per group of reaches that behave alike the fit adjusts a velocity factor (times each reach's
velocity), a dispersion coefficient [m2/s] (or a factor) and, with the numerical engine, transient
storage (area ratio beta [-], exchange alpha [1/s]), as logarithms with
:func:`scipy.optimize.least_squares`. Uncertainty is OTIS-P's linear approximation (Runkel 1998,
USGS WRIR 98-4018; Bates & Watts 1988, Nonlinear Regression Analysis and Its Applications, sec.
2.3.1): theta = ln p, J the residuals' Jacobian at the optimum, Cov(theta) = s^2 (J^T J)^-1 with
s^2 = sum(r^2)/(n - p); SE(p) = p SE(theta); 95 % interval exp(theta +- t_{0.975, n-p} SE(theta)).
It covers measurement noise, not the forward model's own error. Intervals are clipped to each
parameter's bounds (a parameter the curves do not constrain gets its whole range and a warning,
never an overflowing number).

Forward models: ``analytic`` (the exact transport kernel of :mod:`hydrology.transport.kernel`:
advection, dispersion, decay, OTIS storage and lakes, milliseconds per curve, no grid, so the fit
does not depend on any start value's grid), ``numerical`` (:func:`hydrology.transport.numerical.simulate`;
its grid is chosen at the start and the fit is repeated on a finer grid when the fitted plume needs
one). The release may be a tracer injection (pulse or constant rate) or an observed inflow curve
(a concentration measured at the injection point or an upstream section, as at x = 0 of the
Clackamas study). Observations may carry a background concentration [g/m3], added to the model.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from scipy import optimize, stats

from .exceptions import HydrologyError, UnknownElementError, UnknownModelError
from .transport.analytic import Release, forecast

if TYPE_CHECKING:
    from .network import RiverNetwork
    from .reach_state import ReachState

Engine = Literal["analytic", "numerical"]
ErrorModel = Literal["relative", "scaled", "absolute"]
Model = Callable[["ReachState"], list[np.ndarray]]
#: warn when the grid rule at the fitted values wants cells shorter than this x those used [-]
REGRID_RATIO = 0.8
#: optimiser start of the storage parameters where the network states none: beta [-], alpha [1/s]
STORAGE_START = {"storage_ratio": 0.1, "storage_exchange": 1e-4}
#: floor of the relative error model x the station's observed peak [-] (background, detection limit)
RELATIVE_FLOOR = 0.01


class CalibrationError(HydrologyError, ValueError):
    """A calibration that cannot be set up (unidentifiable group or parameter, bad option, no data)."""


class TracerFormatError(HydrologyError, ValueError):
    """Unusable tracer data; ``problems`` lists every bad row as ``"line N: ..."``."""
    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


@dataclass(frozen=True, slots=True)
class ParameterSpec:
    """How a parameter acts on the reach state: multiplies ``field`` or replaces it; CF unit."""
    unit: str
    field: str
    multiplies: bool
    bounds: tuple[float, float]


#: parameter name -> action; bounds bracket tracer studies (Runkel 1998; Fischer et al. 1979, ch. 5)
PARAMETERS: dict[str, ParameterSpec] = {
    "velocity_factor": ParameterSpec("1", "velocity_ms", True, (0.1, 10.0)),
    "dispersion": ParameterSpec("m2 s-1", "dispersion_m2s", False, (1e-3, 1e4)),
    "dispersion_factor": ParameterSpec("1", "dispersion_m2s", True, (1e-2, 1e2)),
    "storage_ratio": ParameterSpec("1", "storage_ratio", False, (1e-4, 10.0)),
    "storage_exchange": ParameterSpec("s-1", "storage_exchange_per_s", False, (1e-7, 1e-1)),
}
STORAGE_PARAMETERS = ("storage_ratio", "storage_exchange")
#: error model -> residuals (modelled, observed, observed peak [g/m3]): ``relative`` (noise ~ C: log
#: residuals ln(C_model + f) - ln(C_obs + f), f = RELATIVE_FLOOR x peak; transform both sides),
#: ``scaled`` (additive noise, each station divided by its peak so all count alike), ``absolute``
#: (additive noise of one size everywhere, residuals in g/m3: OTIS-P's unweighted least squares)
ERROR_MODELS: dict[str, Callable[[np.ndarray, np.ndarray, float], np.ndarray]] = {
    "relative": lambda model, obs, peak: np.log(model + RELATIVE_FLOOR * peak) - np.log(obs + RELATIVE_FLOOR * peak),
    "scaled": lambda model, obs, peak: (model - obs) / peak,
    "absolute": lambda model, obs, peak: model - obs,
}
#: refits of the numerical engine on a finer grid when the fitted plume wants one [-]
MAX_REGRIDS = 2


@dataclass(frozen=True, slots=True)
class Breakthrough:
    """An observed curve at a station: times [s] after the release start, concentration [g/m3]."""
    station: str
    time_s: np.ndarray
    concentration_g_m3: np.ndarray

    def __post_init__(self) -> None:
        t, c, where = np.asarray(self.time_s, float), np.asarray(self.concentration_g_m3, float), self.station
        if t.ndim != 1 or t.shape != c.shape or t.size < 3:
            raise TracerFormatError(f"station {where!r}: needs >= 3 samples, got {t.size} times, {c.size} values")
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(c))):
            raise TracerFormatError(f"station {where!r}: times and concentrations must be finite")
        if np.any(np.diff(t) <= 0) or t[0] < 0:
            raise TracerFormatError(f"station {where!r}: times must increase strictly from >= 0 s after the release")
        if np.any(c < 0) or not np.max(c) > 0:
            raise TracerFormatError(f"station {where!r}: concentrations must be >= 0 with a positive peak")
        object.__setattr__(self, "time_s", t)
        object.__setattr__(self, "concentration_g_m3", c)


@dataclass(frozen=True, slots=True)
class FittedParameter:
    """A fitted value, its standard error and 95 % interval (in ``unit``), and the optimiser start."""
    group: str
    name: str
    unit: str
    value: float
    standard_error: float
    lower_95: float
    upper_95: float
    initial: float


@dataclass(frozen=True, slots=True)
class StationFit:
    """Concentrations [g/m3] at a station's sample times [s]: observed, uncalibrated and fitted model."""
    station: str
    time_s: np.ndarray
    observed: np.ndarray
    uncalibrated: np.ndarray
    fitted: np.ndarray

    def rmse(self, which: Literal["uncalibrated", "fitted"] = "fitted") -> float:
        """Root-mean-square difference from the observed curve [g/m3]."""
        return float(np.sqrt(np.mean((getattr(self, which) - self.observed) ** 2)))


@dataclass(frozen=True, slots=True)
class CalibrationResult:
    """Fitted parameters per group with their correlation, and the curves before and after."""
    groups: Mapping[str, tuple[str, ...]]
    parameters: tuple[FittedParameter, ...]
    engine: str
    error_model: str
    stations: tuple[StationFit, ...]
    n_observations: int
    residual_std: float
    correlation: np.ndarray
    nfev: int
    converged: bool
    message: str
    warnings: tuple[str, ...] = ()

    def value(self, group: str, name: str) -> float:
        """The fitted value of parameter ``name`` in ``group`` (unit as in :data:`PARAMETERS`)."""
        if found := [p.value for p in self.parameters if (p.group, p.name) == (group, name)]:
            return found[0]
        raise UnknownElementError(f"no fitted parameter {name!r} in group {group!r}")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no curves); concentrations in mg/L = g/m3."""
        keys = ("engine", "error_model", "n_observations", "residual_std", "converged", "message", "nfev")
        return {"method": "nonlinear least squares on log-parameters, OTIS-P style (Runkel 1998)",
                **{k: getattr(self, k) for k in keys}, "groups": {g: list(r) for g, r in self.groups.items()},
                "parameters": [{k: getattr(p, k) for k in FittedParameter.__slots__} for p in self.parameters],
                "stations": [{"id": s.station, "rmse_uncalibrated_mg_l": s.rmse("uncalibrated"),
                              "rmse_fitted_mg_l": s.rmse()} for s in self.stations],
                "warnings": list(self.warnings)}


# ----------------------------------------------------------------------------------- tracer CSV
def utc_time(text: str) -> datetime:
    """An ISO 8601 time that states its UTC offset (times are never guessed), in UTC."""
    t = datetime.fromisoformat(text.strip())
    if t.tzinfo is None:
        raise ValueError("no UTC offset (e.g. +08:00); times are never guessed")
    return t.astimezone(UTC)


def read_tracer_csv(path: str | Path, start: datetime | None = None) -> dict[str, Breakthrough]:
    """Read observed breakthrough curves: station id -> :class:`Breakthrough`, sorted by time.

    Columns ``station_id``, ``concentration_mg_l`` (= g/m3) and ``time`` (ISO 8601 with a UTC offset,
    made seconds after ``start``, the timezone-aware release start) or ``time_s`` (seconds after the
    release start). Rows may come in any order; other columns are ignored. Raises
    :class:`TracerFormatError` listing every bad row by line, column and value.
    """
    p = Path(path)
    try:
        with p.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as err:
        raise TracerFormatError(f"{p}: cannot read: {err.strerror or err}") from err
    header = set(rows[0]) if rows else set()
    tcol = "time" if "time" in header else "time_s"
    start = None if tcol == "time_s" else start
    if not rows or {"station_id", "concentration_mg_l", tcol} - header or {"time", "time_s"} <= header:
        raise TracerFormatError(f"{p}: needs rows and columns station_id, concentration_mg_l and one of time, "
                                f"time_s (header {sorted(str(h) for h in header if h is not None)})")
    if tcol == "time" and (start is None or start.tzinfo is None):
        raise TracerFormatError(f"{p}: ISO times need a timezone-aware release start (or seconds in a time_s column)")
    problems: list[str] = []
    data: dict[str, dict[float, float]] = {}
    for line, row in enumerate(rows, start=2):
        sid, raw_t, raw_c = (row.get("station_id") or "").strip(), row.get(tcol) or "", row.get("concentration_mg_l")
        try:
            t = float(raw_t) if start is None else (utc_time(raw_t) - start).total_seconds()
        except ValueError as err:
            problems.append(f"line {line}: {tcol} {raw_t!r}: {err}")
            continue
        try:
            c = float(raw_c or "")
        except ValueError:
            c = math.nan
        if not sid:
            problems.append(f"line {line}: station_id is empty")
        elif not (math.isfinite(t) and t >= 0):
            problems.append(f"line {line}: time {t} s is before the release start (or not finite)")
        elif not (math.isfinite(c) and c >= 0):
            problems.append(f"line {line}: concentration_mg_l {raw_c!r} is not a finite number >= 0")
        elif t in data.setdefault(sid, {}):
            problems.append(f"line {line}: station {sid!r} has a second sample at t = {t} s")
        else:
            data[sid][t] = c
    if problems:
        raise TracerFormatError(f"{p}: {len(problems)} bad row(s); first: {problems[0]}", problems)
    return {sid: Breakthrough(sid, np.array(sorted(s)), np.array([s[t] for t in sorted(s)])) for sid, s in data.items()}


# ----------------------------------------------------------------------------------- forward models
def state_with(base: ReachState, values: Mapping[tuple[str, str], float], members: Mapping[str, np.ndarray]
               ) -> ReachState:
    """``base`` with ``values[(group, parameter)]`` applied to the reaches ``members[group]`` (indices
    into ``base``); the flow area follows continuity, A = Q/U [m2]."""
    arrays = {s.field: getattr(base, s.field).copy() for s in PARAMETERS.values()}
    for (group, name), v in values.items():
        spec, idx = PARAMETERS[name], members[group]
        arrays[spec.field][idx] = getattr(base, spec.field)[idx] * v if spec.multiplies else v
    return replace(base, area_m2=base.discharge_m3s / arrays["velocity_ms"], **arrays)


def _analytic(net: RiverNetwork, release: Release, obs: Sequence[Breakthrough], **_: Any) -> Model:
    from .transport.kernel import point_source_responses

    union, inverse = np.unique(np.concatenate([b.time_s for b in obs]), return_inverse=True)
    cut = np.cumsum([0] + [b.time_s.size for b in obs])
    src = release.source_history()

    def model(state: ReachState) -> list[np.ndarray]:
        resp = point_source_responses(net, state, release.reach, release.chainage_m, release.pollutant, ("station",),
                                      boundary=release.is_boundary)
        row = {f.id: i for i, f in enumerate(resp.features)}
        rows = np.array([row[b.station] for b in obs])
        c = resp.concentration(src, union[None, :], rows)
        return [c[i, inverse[cut[i]:cut[i + 1]]] for i in range(len(obs))]
    return model


def _numerical(net: RiverNetwork, release: Release, obs: Sequence[Breakthrough], *, dx_m: float | None = None,
               **_: Any) -> Model:
    from .transport.numerical import simulate
    t_end = max(float(b.time_s[-1]) for b in obs)

    def model(state: ReachState) -> list[np.ndarray]:
        ds = simulate(net, release, t_end_s=t_end, kinds=("station",), dx_m=dx_m, state=state)
        c, t = ds["concentration"], ds["time"].values
        return [np.interp(b.time_s, t, c.sel(receptor=b.station).values) for b in obs]
    return model


#: engine name -> factory(net, release, observations, **options) -> model(reach state) -> curves
FORWARD_MODELS: dict[str, Callable[..., Model]] = {"analytic": _analytic, "numerical": _numerical}


def numerical_cell_m(net: RiverNetwork, release: Release, state: ReachState) -> float:
    """Mean cell length [m] the numerical engine's grid rule picks for ``state`` (a one-step run)."""
    from .transport.numerical import simulate
    cells = simulate(net, release, t_end_s=1.0, kinds=("station",), state=state).attrs["n_cells"]
    idx = [state.index[r] for r in {release.reach, *net.all_downstream(release.reach)}]
    return float(state.length_m[idx].sum() / cells)


# ----------------------------------------------------------------------------------- calibration
def _check_groups(net: RiverNetwork, groups: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    owner: dict[str, str] = {}
    for g, rids in groups.items():
        if not rids:
            raise CalibrationError(f"reach group {g!r} is empty")
        for rid in rids:
            if owner.setdefault(net.reach(rid).id, g) != g:  # net.reach raises for an unknown id
                raise CalibrationError(f"reach {rid!r} is in two groups, {owner[rid]!r} and {g!r}")
    return {g: tuple(r) for g, r in groups.items()}


def _start_value(name: str, base: ReachState, idx: np.ndarray) -> float:
    if (spec := PARAMETERS[name]).multiplies:
        return 1.0
    cur, w = getattr(base, spec.field)[idx], base.length_m[idx]
    ok = np.isfinite(cur) & (cur > 0)  # length-weighted mean of the stated values
    return float(np.sum(cur[ok] * w[ok]) / np.sum(w[ok])) if ok.any() else STORAGE_START[name]


def _check_options(parameters: Sequence[str], engine: str, error_model: str, names: set[str]) -> None:
    if not parameters or len(set(parameters)) != len(parameters) or set(parameters) - set(PARAMETERS):
        raise UnknownModelError(f"parameters {list(parameters)}: choose distinct names from {sorted(PARAMETERS)}")
    if {"dispersion", "dispersion_factor"} <= set(parameters):
        raise CalibrationError("fit either 'dispersion' or 'dispersion_factor', not both")
    for name, registry, what in ((engine, FORWARD_MODELS, "engine"), (error_model, ERROR_MODELS, "error model")):
        if name not in registry:
            raise UnknownModelError(f"unknown {what} {name!r}; known: {sorted(registry)}")
    if names - set(parameters):
        raise CalibrationError(f"initial values given for {sorted(names - set(parameters))}, which are not fitted")


def calibrate(net: RiverNetwork, observations: Mapping[str, Breakthrough], release: Release, *,
              groups: Mapping[str, Sequence[str]] | None = None,
              parameters: Sequence[str] = ("velocity_factor", "dispersion"), engine: Engine = "analytic",
              error_model: ErrorModel = "relative", initial: Mapping[str, float] | None = None,
              dx_m: float | None = None, background_g_m3: float = 0.0) -> CalibrationResult:
    """Fit per-group transport parameters to observed breakthrough curves (OTIS-P style).

    Parameters
    ----------
    net : RiverNetwork
        A valid network; its current reach state is the starting point.
    observations : mapping
        Station id -> :class:`Breakthrough` (see :func:`read_tracer_csv`).
    release : Release
        The tracer injection (instantaneous, constant rate or a rate curve), or an observed inflow
        concentration curve at a point (``Release.inflow_curve``; the pollutant's decay applies).
    groups : mapping, optional
        Group name -> reach ids sharing parameter values; default one group ``"all"`` of every reach.
    parameters : sequence of str
        From :data:`PARAMETERS` (which holds the bounds): ``velocity_factor`` [-], ``dispersion``
        [m2/s] or ``dispersion_factor`` [-], ``storage_ratio`` [-], ``storage_exchange`` [1/s].
    engine, error_model : str
        Forward model (:data:`FORWARD_MODELS`); residuals (:data:`ERROR_MODELS`).
    initial : mapping, optional
        Start per parameter name; default factors 1, values the group's length-weighted current one
        (else :data:`STORAGE_START`), velocity factor median(modelled mean time / observed centroid).
    dx_m : float, optional
        Numerical cell length [m], fixed during the fit; default the engine's rule at the start,
        refined and refitted (up to :data:`MAX_REGRIDS` times) when the fitted plume wants finer cells.
    background_g_m3 : float
        Concentration the stations read without the tracer [g/m3], added to the modelled curves.

    Raises
    ------
    CalibrationError, UnknownModelError, UnknownElementError
        Storage with the analytic engine, a group no station sees, a station the tracer cannot
        reach, too few observations; an unknown name; a station or reach the network lacks.
    """
    initial = dict(initial or {})
    _check_options(parameters, engine, error_model, set(initial))
    if not observations:
        raise CalibrationError("no observed breakthrough curves")
    obs = sorted(observations.values(), key=lambda b: b.station)
    grp = _check_groups(net, {"all": net.reach_order} if groups is None else groups)
    base = net.reach_state()
    reached = {r.id for r in forecast(net, release, kinds=("station",), state=base).receptors}
    below = {release.reach} | net.all_downstream(release.reach)
    seen: set[str] = set()  # reaches between the release and a station
    for b in obs:
        if b.station not in reached:
            net.feature(b.station, "station")  # UnknownElementError for an unknown id
            raise CalibrationError(f"station {b.station!r} is not downstream of the release on reach "
                                   f"{release.reach!r} at {release.chainage_m} m")
        r = net.stations[b.station].reach
        seen |= ({r} | net.all_upstream(r)) & below
    members = {g: np.array([base.index[r] for r in rids if r in seen], dtype=int) for g, rids in grp.items()}
    if blind := [g for g, idx in members.items() if idx.size == 0]:
        raise CalibrationError(f"no station sees reach group(s) {blind}: none of their reaches lies between the "
                               f"release on {release.reach!r} and a station; drop them or add stations")
    keys = [(g, name) for g in grp for name in parameters]
    if (n_obs := sum(b.time_s.size for b in obs)) <= len(keys):
        raise CalibrationError(f"{n_obs} observations cannot fit {len(keys)} parameters")
    lo, hi = (np.log([PARAMETERS[n].bounds[i] for _, n in keys]) for i in (0, 1))
    x0 = np.log([initial[n] if n in initial else _start_value(n, base, members[g]) for g, n in keys])
    if not np.all(np.isfinite(x0)):
        raise CalibrationError(f"start values must be positive and finite, got {initial}")

    def state_at(x: np.ndarray) -> ReachState:
        return state_with(base, dict(zip(keys, np.exp(x), strict=True)), members)

    if not (math.isfinite(background_g_m3) and background_g_m3 >= 0):
        raise CalibrationError(f"background concentration {background_g_m3} g/m3 must be finite and >= 0")
    if "velocity_factor" in parameters and "velocity_factor" not in initial:
        fc = forecast(net, release, kinds=("station",), state=state_at(x0))
        mean = {r.id: r.mean_travel_time_s for r in fc.receptors}
        half = _release_centroid_s(release)
        def centroid(b: Breakthrough) -> float:
            excess = np.clip(b.concentration_g_m3 - background_g_m3, 0.0, None)
            return float(np.trapezoid(b.time_s * excess, b.time_s) / max(np.trapezoid(excess, b.time_s), 1e-300))
        f0 = float(np.median([mean[b.station] / max(centroid(b) - half, 1e-9) for b in obs]))
        x0 = np.where([n == "velocity_factor" for _, n in keys], math.log(f0), x0)
    x0 = np.clip(x0, lo + 1e-9, hi - 1e-9)
    err, peaks = ERROR_MODELS[error_model], [float(np.max(b.concentration_g_m3)) for b in obs]

    def raw(model: Model, x: np.ndarray) -> np.ndarray:
        return np.concatenate([err(c + background_g_m3, b.concentration_g_m3, pk)
                               for c, b, pk in zip(model(state_at(x)), obs, peaks, strict=True)])

    # residuals are divided by their size at the start: the optimiser's gradient tolerance is
    # absolute, and residuals in g/m3 (the absolute model) are ~1e-3, which stopped fits early; a
    # constant factor moves neither the optimum nor the intervals (s^2 (J^T J)^-1 is invariant to it)
    norm = {"value": 1.0}

    def residuals(model: Model) -> Callable[[np.ndarray], np.ndarray]:
        norm["value"] = float(np.sqrt(np.mean(raw(model, x0) ** 2))) or 1.0
        return lambda x: raw(model, x) / norm["value"]

    # central differences on the smooth kernel; forward differences with a step above the numerical
    # engine's time-step jitter (a new dt moves C by ~1e-4 relative)
    opts: dict[str, Any] = {"jac": "3-point"} if engine == "analytic" else {"jac": "2-point", "diff_step": 1e-3}
    dx = dx_m if dx_m is not None or engine == "analytic" else numerical_cell_m(net, release, state_at(x0))
    model = FORWARD_MODELS[engine](net, release, obs, dx_m=dx)
    fits = [optimize.least_squares(residuals(model), start, bounds=(lo, hi), method="trf", x_scale="jac", **opts)
            for start in _starts(x0, keys, initial, lo, hi)]
    fit = min(fits, key=lambda f: f.cost)
    notes: list[str] = []
    if len(fits) > 1:
        costs = sorted(2 * f.cost * norm["value"] ** 2 for f in fits)
        notes.append(f"best of {len(fits)} starts for the storage parameters (sums of squared residuals "
                     f"{costs[0]:.4g} to {costs[-1]:.4g})")
    regrids = 0
    while (engine == "numerical" and dx_m is None and dx
           and (finer := numerical_cell_m(net, release, state_at(fit.x))) < REGRID_RATIO * dx):
        if regrids == MAX_REGRIDS:
            notes.append(f"the fitted plume still wants cells of {finer:.3g} m after {regrids} refits on finer grids "
                         f"(now {dx:.3g} m): pass dx_m to fix the grid")
            break
        regrids += 1
        dx = finer  # refit from the fitted values on the grid they want
        model = FORWARD_MODELS[engine](net, release, obs, dx_m=dx)
        fit = optimize.least_squares(residuals(model), np.clip(fit.x, lo + 1e-9, hi - 1e-9), bounds=(lo, hi),
                                     method="trf", x_scale="jac", **opts)
    if regrids:
        notes.append(f"refitted {regrids} time(s) on finer grids; final cells {dx:.3g} m")
    curves = zip(obs, model(base), model(state_at(fit.x)), strict=True)
    stations = tuple(StationFit(b.station, b.time_s, b.concentration_g_m3, u + background_g_m3, f + background_g_m3)
                     for b, u, f in curves)
    return _result(fit, keys, x0, lo, hi, grp, engine, error_model, stations, notes, norm["value"])


#: extra optimiser starts for storage parameters that no initial value fixes: beta [-] x alpha [1/s]
#: (storage fits have local minima: OTIS-P's Clackamas fit needed three runs from hand-set starts)
STORAGE_STARTS = ((0.05, 3e-5), (0.05, 3e-4), (0.5, 3e-5), (0.5, 3e-4))


def _starts(x0: np.ndarray, keys: list[tuple[str, str]], initial: Mapping[str, float], lo: np.ndarray,
            hi: np.ndarray) -> list[np.ndarray]:
    """``x0`` and, when storage is fitted from default starts, :data:`STORAGE_STARTS` in its place."""
    starts = [x0]
    free = [k for k, (_g, n) in enumerate(keys) if n in STORAGE_PARAMETERS and n not in initial]
    if free:
        for beta, alpha in STORAGE_STARTS:
            x = x0.copy()
            for k in free:
                x[k] = math.log(beta if keys[k][1] == "storage_ratio" else alpha)
            starts.append(np.clip(x, lo + 1e-9, hi - 1e-9))
    return starts


def _release_centroid_s(release: Release) -> float:
    """Time from the release start to the centroid of the released mass (or inflow curve) [s]."""
    src = release.source_history()
    if src.impulses and not (src.jumps or src.kinks):
        return float(sum(t * m for t, m in src.impulses) / sum(m for _t, m in src.impulses))
    curve = release.rate_curve or release.inflow_curve
    if curve is not None:
        t, v = np.asarray(curve, float).T
        return float(np.trapezoid(t * v, t) / np.trapezoid(v, t))
    return 0.5 * float(release.duration_s or 0.0)


def _result(fit: optimize.OptimizeResult, keys: list[tuple[str, str]], x0: np.ndarray, lo: np.ndarray, hi: np.ndarray,
            grp: dict[str, tuple[str, ...]], engine: str, error_model: str, stations: tuple[StationFit, ...],
            notes: list[str], scale: float = 1.0) -> CalibrationResult:
    """Standard errors and intervals from s^2 (J^T J)^-1 (Bates & Watts 1988, sec. 2.3.1), the
    intervals clipped to the parameters' bounds ``lo``, ``hi`` (logs)."""
    dof = fit.fun.size - len(keys)
    s2, jtj = float(fit.fun @ fit.fun) / dof, fit.jac.T @ fit.jac
    cov = s2 * np.linalg.inv(jtj) if np.linalg.cond(jtj) < 1e12 else np.full(jtj.shape, np.inf)
    if np.isinf(cov).any():
        notes.append("J^T J is singular: some parameters are not identifiable from these curves; no intervals")
    se, tq = np.sqrt(np.diag(cov)), float(stats.t.ppf(0.975, dof))
    with np.errstate(invalid="ignore"):
        corr = cov / np.outer(se, se)
    x, v = fit.x, np.exp(fit.x)
    with np.errstate(invalid="ignore"):
        lo_log, hi_log = np.maximum(x - tq * se, lo), np.minimum(x + tq * se, hi)
    lo_log, hi_log = np.where(np.isfinite(lo_log), lo_log, lo), np.where(np.isfinite(hi_log), hi_log, hi)
    bounds = np.array([PARAMETERS[n].bounds for _g, n in keys], float)
    lo95 = np.where(lo_log <= lo, bounds[:, 0], np.exp(lo_log))  # a clipped end is the bound itself
    hi95 = np.where(hi_log >= hi, bounds[:, 1], np.exp(hi_log))
    notes += [f"group {g!r}: the curves do not constrain {n}: its 95 % interval reaches the parameter's bounds "
              f"({np.exp(lo[k]):.3g} - {np.exp(hi[k]):.3g} {PARAMETERS[n].unit})"
              for k, (g, n) in enumerate(keys) if fit.active_mask[k] == 0
              and (lo_log[k] <= lo[k] + 1e-12 or hi_log[k] >= hi[k] - 1e-12)]
    params = tuple(FittedParameter(g, n, PARAMETERS[n].unit, float(v[k]), float(v[k] * se[k]), float(lo95[k]),
                                   float(hi95[k]), float(np.exp(x0[k]))) for k, (g, n) in enumerate(keys))
    notes += [f"group {g!r}: {n} = {v[k]:.4g} is at its bound; its interval means nothing"
              for k, (g, n) in enumerate(keys) if fit.active_mask[k] != 0]
    if not fit.success:
        notes.append(f"least squares did not converge: {fit.message}")
    return CalibrationResult(dict(grp), params, engine, error_model, stations, fit.fun.size, scale * math.sqrt(s2), corr,
                             int(fit.nfev), bool(fit.success), str(fit.message), tuple(notes))


# ----------------------------------------------------------------------------------- write-back
def apply_calibration(net_or_doc: RiverNetwork | Mapping[str, Any], result: CalibrationResult) -> dict[str, Any]:
    """A network document with the fitted values written into every reach of each group.

    ``velocity_ms`` = factor x the network's current velocity [m/s] (from its reach state: apply a
    result to the network it was fitted on), ``dispersion_m2s`` [m2/s] (the value, or factor x the
    current one), ``storage_ratio`` [-], ``storage_exchange_per_s`` [1/s]. The input is not changed;
    the fit summary is kept under the document key ``calibration``.
    """
    from .document import network_from_document, network_to_document
    doc = json.loads(json.dumps(net_or_doc if isinstance(net_or_doc, Mapping) else network_to_document(net_or_doc)))
    state = network_from_document(doc).reach_state()
    by_id = {r["id"]: r for r in doc["reaches"]}
    for p in result.parameters:
        spec = PARAMETERS[p.name]
        for rid in result.groups[p.group]:
            if rid not in by_id:
                raise UnknownElementError(f"calibrated reach {rid!r} (group {p.group!r}) is not in this network")
            cur = float(getattr(state, spec.field)[state.index[rid]])
            by_id[rid][spec.field] = cur * p.value if spec.multiplies else p.value
    doc["calibration"] = result.as_dict()
    return doc


# ----------------------------------------------------------------------------------- CLI
def cmd_calibrate(args: argparse.Namespace) -> int:
    """Run ``rivertrace calibrate``; raises HydrologyError on bad input."""
    from .document import network_from_document, read_document, write_network
    from .io.curves import read_curve
    from .pollutants import pollutant
    from .units import per_day_to_per_s
    from .validate import require_valid

    try:
        start = utc_time(args.start) if args.start else None
    except ValueError as err:
        raise CalibrationError(f"--start {args.start!r}: {err}") from err
    inflow = getattr(args, "inflow_curve", None)
    if (args.mass_kg is None) == (inflow is None):
        raise CalibrationError("give either --mass-kg (an injection) or --inflow-curve CSV (an observed boundary curve)")
    amount: dict[str, Any]
    if inflow is not None:
        if args.duration_s is not None:
            raise CalibrationError("--duration-s goes with --mass-kg; an inflow curve states its own duration")
        amount = {"inflow_curve": read_curve(inflow, "concentration_mg_l", start)}
    elif args.duration_s is None:
        amount = {"mass_kg": args.mass_kg}
    else:
        amount = {"rate_kg_s": args.mass_kg / args.duration_s, "duration_s": args.duration_s}
    tracer = pollutant("tracer", per_day_to_per_s(getattr(args, "decay_per_day", None) or 0.0))
    release = Release(args.reach, args.chainage_m, tracer, start=start, **amount)
    try:
        groups = json.loads(Path(args.groups).read_text(encoding="utf-8")) if args.groups else None
    except (OSError, ValueError) as err:
        raise CalibrationError(f"--groups {args.groups}: {getattr(err, 'strerror', None) or err}") from err
    if groups is not None and not (isinstance(groups, dict) and all(isinstance(v, list) for v in groups.values())):
        raise CalibrationError(f"{args.groups}: expected a JSON object of group name -> list of reach ids")
    doc = (getattr(args, "read_document", None) or read_document)(args.network)
    params = ("velocity_factor", "dispersion") + (STORAGE_PARAMETERS if args.storage else ())
    res = calibrate(require_valid(network_from_document(doc)), read_tracer_csv(args.tracer, start), release,
                    groups=groups, parameters=params, engine=getattr(args, "engine", "analytic"),
                    error_model=getattr(args, "error_model", "relative"),
                    background_g_m3=getattr(args, "background_mg_l", 0.0))
    write_network(apply_calibration(doc, res), args.output)
    for p in res.parameters:
        print(f"{p.group:<12}{p.name:<18}{p.value:>11.4g} +- {p.standard_error:<9.3g} "
              f"95%: {p.lower_95:.4g} - {p.upper_95:.4g} [{p.unit}]")
    for st in res.stations:
        print(f"station {st.station}: rms misfit {st.rmse('uncalibrated'):.4g} -> {st.rmse():.4g} mg/L")
    print("\n".join([*(f"warning: {w}" for w in res.warnings), f"wrote {args.output}"]), file=sys.stderr)
    return 0

"""Open-channel hydraulics of a reach: Manning uniform flow, normal depth, shear velocity.

Everything here is a pure function on floats or numpy arrays (broadcasting like numpy), in SI units:
depth and width [m], discharge [m3/s], velocity [m/s], slope [m/m], drainage area [m2].

* Manning uniform flow in a trapezoidal channel and a vectorised normal-depth solver, used on whole
  networks at once (100,000 reaches in one call, no Python loop over reaches).
* The shear velocity u* = sqrt(g R S) that the dispersion estimators need.

Reaches without surveyed geometry take Jobson (1996) travel velocities and Leopold & Maddock (1953)
power-law hydraulic geometry from :mod:`hydrology.empirical_hydraulics`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hydrology.exceptions import ConvergenceError, HydraulicsError
from hydrology.units import GRAVITY

__all__ = [
    "NormalFlow",
    "manning_discharge",
    "normal_depth",
    "normal_flow",
    "shear_velocity",
    "trapezoid_geometry",
]

FloatOrArray = Any  # float for scalar inputs, NDArray[np.float64] for array inputs


# --------------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------------


def _as_float_array(name: str, value: ArrayLike) -> NDArray[np.float64]:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise HydraulicsError(f"{name} = {value!r} is not numeric") from err
    return arr


def _first_bad(mask: NDArray[np.bool_]) -> str:
    """Describe the first True element of ``mask`` as '[i]' ('' for a 0-d mask)."""
    if mask.ndim == 0:
        return ""
    index = tuple(int(i) for i in np.argwhere(mask)[0])
    return f"[{index[0]}]" if len(index) == 1 else f"[{index}]"


def _require(name: str, arr: NDArray[np.float64], *, positive: bool) -> None:
    """Raise HydraulicsError naming the first non-finite or out-of-range element of ``arr``."""
    bad = ~np.isfinite(arr)
    reason = "is not finite"
    if not bad.any():
        bad = arr <= 0.0 if positive else arr < 0.0
        reason = "is not positive" if positive else "is negative"
    if bad.any():
        value = float(arr[tuple(np.argwhere(bad)[0])]) if arr.ndim else float(arr)
        raise HydraulicsError(f"{name}{_first_bad(bad)} = {value!r} {reason}")


def _check_channel(bottom_width: NDArray[np.float64], side_slope: NDArray[np.float64]) -> None:
    _require("bottom_width_m", bottom_width, positive=False)
    _require("side_slope", side_slope, positive=False)
    no_channel = (bottom_width == 0.0) & (side_slope == 0.0)
    if no_channel.any():
        raise HydraulicsError(
            f"channel{_first_bad(no_channel)}: bottom width 0 m and side slope 0 make no channel "
            "(need a bottom width > 0 or a side slope > 0)"
        )


def _scalar_or_array(arr: NDArray[np.float64]) -> FloatOrArray:
    return float(arr) if arr.ndim == 0 else arr


# --------------------------------------------------------------------------------------------------
# trapezoid and Manning
# --------------------------------------------------------------------------------------------------


def trapezoid_geometry(
    depth_m: ArrayLike, bottom_width_m: ArrayLike, side_slope: ArrayLike
) -> tuple[FloatOrArray, FloatOrArray, FloatOrArray, FloatOrArray]:
    """Flow area, wetted perimeter, top width and hydraulic radius of a trapezoidal channel.

    A = (b + z y) y,  P = b + 2 y sqrt(1 + z^2),  T = b + 2 z y,  R = A / P
    (Chow 1959, Open-Channel Hydraulics, table 2-1). ``bottom_width_m = 0`` is a triangle,
    ``side_slope = 0`` a rectangle.

    Parameters
    ----------
    depth_m : float or ndarray
        Flow depth y [m], non-negative.
    bottom_width_m : float or ndarray
        Bottom width b [m], non-negative.
    side_slope : float or ndarray
        Bank slope z, horizontal per unit vertical (H:V) [m/m], non-negative.

    Returns
    -------
    area_m2 : float or ndarray
        Flow area A [m2].
    wetted_perimeter_m : float or ndarray
        Wetted perimeter P [m].
    top_width_m : float or ndarray
        Water-surface width T [m].
    hydraulic_radius_m : float or ndarray
        Hydraulic radius R = A / P [m]; 0 where the depth is 0.

    Raises
    ------
    HydraulicsError
        For a negative or non-finite input, or a channel with b = 0 and z = 0.
    """
    y = _as_float_array("depth_m", depth_m)
    b = _as_float_array("bottom_width_m", bottom_width_m)
    z = _as_float_array("side_slope", side_slope)
    _require("depth_m", y, positive=False)
    _check_channel(b, z)
    area, perimeter, top, radius = _trapezoid(y, b, z)
    return (
        _scalar_or_array(area),
        _scalar_or_array(perimeter),
        _scalar_or_array(top),
        _scalar_or_array(radius),
    )


def _trapezoid(
    y: NDArray[np.float64], b: NDArray[np.float64], z: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    area = (b + z * y) * y
    perimeter = b + 2.0 * y * np.sqrt(1.0 + z * z)
    top = b + 2.0 * z * y
    with np.errstate(invalid="ignore", divide="ignore"):
        radius = np.where(perimeter > 0.0, area / perimeter, 0.0)
    return area, perimeter, top, radius


def manning_discharge(
    depth_m: ArrayLike,
    bottom_width_m: ArrayLike,
    side_slope: ArrayLike,
    slope: ArrayLike,
    manning_n: ArrayLike,
) -> FloatOrArray:
    """Uniform-flow discharge of a trapezoidal channel by Manning's equation (SI).

    Q = (1/n) A^(5/3) P^(-2/3) S^(1/2)  (Chow 1959, Open-Channel Hydraulics, eq. 5-6 in SI form).

    Parameters
    ----------
    depth_m : float or ndarray
        Flow depth [m], non-negative.
    bottom_width_m : float or ndarray
        Bottom width [m], non-negative.
    side_slope : float or ndarray
        Bank slope, horizontal per unit vertical [m/m], non-negative.
    slope : float or ndarray
        Energy (bed) slope [m/m], positive.
    manning_n : float or ndarray
        Manning roughness [s/m^(1/3)], positive.

    Returns
    -------
    discharge_m3s : float or ndarray
        Discharge [m3/s].
    """
    y = _as_float_array("depth_m", depth_m)
    b = _as_float_array("bottom_width_m", bottom_width_m)
    z = _as_float_array("side_slope", side_slope)
    s = _as_float_array("slope", slope)
    n = _as_float_array("manning_n", manning_n)
    _require("depth_m", y, positive=False)
    _check_channel(b, z)
    _require("slope", s, positive=True)
    _require("manning_n", n, positive=True)
    area, perimeter, _, _ = _trapezoid(y, b, z)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.where(
            area > 0.0, area ** (5.0 / 3.0) * perimeter ** (-2.0 / 3.0) * np.sqrt(s) / n, 0.0
        )
    return _scalar_or_array(q)


# --------------------------------------------------------------------------------------------------
# normal depth (vectorised safeguarded Newton)
# --------------------------------------------------------------------------------------------------


def _log_q_and_slope(
    y: NDArray[np.float64], b: NDArray[np.float64], z: NDArray[np.float64], log_k: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """ln Q(y) and d ln Q / d ln y for Manning flow; ``log_k = ln(sqrt(S)/n)``."""
    root = np.sqrt(1.0 + z * z)
    area = (b + z * y) * y
    perimeter = b + 2.0 * y * root
    top = b + 2.0 * z * y
    log_q = log_k + (5.0 / 3.0) * np.log(area) - (2.0 / 3.0) * np.log(perimeter)
    dlogq_dlogy = y * ((5.0 / 3.0) * top / area - (4.0 / 3.0) * root / perimeter)
    return log_q, dlogq_dlogy


def _initial_depth(
    q: NDArray[np.float64], b: NDArray[np.float64], z: NDArray[np.float64], k: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Closed-form depth of the wide rectangle (b > 0) or of the triangle (b = 0), whichever is less.

    Both over-estimate conveyance-limited depth of a trapezoid only mildly; the bracket search that
    follows makes the result exact anyway.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        wide = np.where(b > 0.0, (q / (k * np.where(b > 0.0, b, 1.0))) ** 0.6, np.inf)
        zz = np.where(z > 0.0, z, 1.0)
        tri = np.where(
            z > 0.0,
            (q * 2.0 ** (2.0 / 3.0) * (1.0 + zz * zz) ** (1.0 / 3.0) / (k * zz ** (5.0 / 3.0)))
            ** 0.375,
            np.inf,
        )
    return np.minimum(wide, tri)


def normal_depth(
    discharge_m3s: ArrayLike,
    bottom_width_m: ArrayLike,
    side_slope: ArrayLike,
    slope: ArrayLike,
    manning_n: ArrayLike,
    *,
    rtol: float = 1e-10,
    max_iter: int = 100,
) -> FloatOrArray:
    """Normal (uniform-flow) depth of trapezoidal channels, solved for all reaches at once.

    Solves Manning's equation Q = (1/n) A^(5/3) P^(-2/3) S^(1/2) (Chow 1959, Open-Channel Hydraulics,
    sec. 6-2) for the depth y. The unknown is x = ln y and the residual ln Q(y) - ln Q, which is
    nearly linear in x (slope between 5/3 for a wide rectangle and 8/3 for a triangle), so Newton's
    method converges in a handful of steps. Each element keeps a bracket [x_lo, x_hi] found by
    doubling/halving from a closed-form first guess; a Newton step that leaves the bracket is replaced
    by bisection, so every element converges. All arithmetic is on whole numpy arrays.

    Parameters
    ----------
    discharge_m3s : float or ndarray
        Discharge [m3/s], positive.
    bottom_width_m : float or ndarray
        Bottom width [m], non-negative (0 = triangular channel).
    side_slope : float or ndarray
        Bank slope, horizontal per unit vertical [m/m], non-negative (0 = rectangular channel).
    slope : float or ndarray
        Energy (bed) slope [m/m], positive.
    manning_n : float or ndarray
        Manning roughness [s/m^(1/3)], positive.
    rtol : float, default 1e-10
        Relative tolerance on the depth: iteration stops when every Newton update of ln y is
        below ``rtol``.
    max_iter : int, default 100
        Maximum number of Newton/bisection iterations.

    Returns
    -------
    depth_m : float or ndarray
        Normal depth [m], broadcast shape of the inputs.

    Raises
    ------
    HydraulicsError
        Naming the first offending element, for a non-positive discharge, slope or roughness, a
        negative width or side slope, a channel with both 0, or a non-finite input.
    ConvergenceError
        If some element has not met ``rtol`` after ``max_iter`` iterations.
    """
    if not (rtol > 0.0):
        raise HydraulicsError(f"rtol = {rtol!r} is not positive")
    if max_iter < 1:
        raise HydraulicsError(f"max_iter = {max_iter!r} is not at least 1")
    q = _as_float_array("discharge_m3s", discharge_m3s)
    b = _as_float_array("bottom_width_m", bottom_width_m)
    z = _as_float_array("side_slope", side_slope)
    s = _as_float_array("slope", slope)
    n = _as_float_array("manning_n", manning_n)
    _require("discharge_m3s", q, positive=True)
    _check_channel(b, z)
    _require("slope", s, positive=True)
    _require("manning_n", n, positive=True)
    shape = np.broadcast_shapes(q.shape, b.shape, z.shape, s.shape, n.shape)
    # work on flat copies; element i of every array is reach i
    q, b, z, s, n = (np.broadcast_to(a, shape).ravel().copy() for a in (q, b, z, s, n))

    k = np.sqrt(s) / n
    log_k = np.log(k)
    log_target = np.log(q)

    def residual(x: NDArray[np.float64], idx: NDArray[np.intp] | slice) -> tuple[
        NDArray[np.float64], NDArray[np.float64]
    ]:
        log_q, dlog = _log_q_and_slope(np.exp(x), b[idx], z[idx], log_k[idx])
        return log_q - log_target[idx], dlog

    # ---- bracket: x_lo with residual < 0, x_hi with residual >= 0 -------------------------------
    x = np.log(_initial_depth(q, b, z, k))
    f, _ = residual(x, slice(None))
    x_lo = np.where(f < 0.0, x, -np.inf)
    x_hi = np.where(f >= 0.0, x, np.inf)
    step = np.log(2.0)
    for _ in range(11):  # offsets ln2 * (2^k - 1): 11 probes span every representable depth
        need_hi = ~np.isfinite(x_hi)
        need_lo = ~np.isfinite(x_lo)
        if not (need_hi.any() or need_lo.any()):
            break
        probe = np.where(need_hi, x_lo + step, np.where(need_lo, x_hi - step, x))
        active = np.flatnonzero(need_hi | need_lo)
        fp, _ = residual(probe[active], active)
        up, down = need_hi[active], need_lo[active]
        # moving up: a negative residual raises x_lo, a non-negative one closes the bracket
        x_lo[active[up & (fp < 0.0)]] = probe[active[up & (fp < 0.0)]]
        x_hi[active[up & (fp >= 0.0)]] = probe[active[up & (fp >= 0.0)]]
        x_hi[active[down & (fp >= 0.0)]] = probe[active[down & (fp >= 0.0)]]
        x_lo[active[down & (fp < 0.0)]] = probe[active[down & (fp < 0.0)]]
        step *= 2.0
    bad = ~(np.isfinite(x_lo) & np.isfinite(x_hi))
    if bad.any():  # pragma: no cover - only for absurd inputs (overflow)
        raise ConvergenceError(
            f"normal_depth: no depth bracket found for reach{_first_bad(bad)} "
            f"(Q = {float(q[bad][0])!r} m3/s)"
        )

    # ---- safeguarded Newton on the still-active elements -------------------------------------------
    x = 0.5 * (x_lo + x_hi)
    active = np.arange(x.size)
    for _ in range(max_iter):
        xa = x[active]
        fa, da = residual(xa, active)
        neg = fa < 0.0
        x_lo[active[neg]] = xa[neg]
        x_hi[active[~neg]] = xa[~neg]
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = xa - fa / da
        lo, hi = x_lo[active], x_hi[active]
        inside = np.isfinite(newton) & (newton > lo) & (newton < hi)
        x_new = np.where(inside, newton, 0.5 * (lo + hi))
        done = (np.abs(x_new - xa) <= rtol) | (fa == 0.0)
        x[active] = np.where(fa == 0.0, xa, x_new)
        active = active[~done]
        if active.size == 0:
            break
    else:
        first = int(active[0])
        raise ConvergenceError(
            f"normal_depth: {active.size} of {x.size} reaches did not converge to rtol={rtol} "
            f"in {max_iter} iterations; first is reach[{first}] (Q = {float(q[first])!r} m3/s, "
            f"b = {float(b[first])!r} m, z = {float(z[first])!r}, S = {float(s[first])!r}, "
            f"n = {float(n[first])!r})"
        )
    depth = np.exp(x).reshape(shape)
    return float(depth) if depth.ndim == 0 else depth


@dataclass(frozen=True, slots=True)
class NormalFlow:
    """Uniform-flow state of a trapezoidal reach (arrays when solved for many reaches).

    Attributes
    ----------
    depth_m : float or ndarray
        Normal depth [m].
    velocity_ms : float or ndarray
        Mean cross-section velocity Q / A [m/s].
    area_m2 : float or ndarray
        Flow area [m2].
    top_width_m : float or ndarray
        Water-surface width [m].
    hydraulic_radius_m : float or ndarray
        Hydraulic radius A / P [m].
    """

    depth_m: FloatOrArray
    velocity_ms: FloatOrArray
    area_m2: FloatOrArray
    top_width_m: FloatOrArray
    hydraulic_radius_m: FloatOrArray


def normal_flow(
    discharge_m3s: ArrayLike,
    bottom_width_m: ArrayLike,
    side_slope: ArrayLike,
    slope: ArrayLike,
    manning_n: ArrayLike,
) -> NormalFlow:
    """Normal depth and the hydraulics that go with it (Manning; Chow 1959, sec. 6-2).

    Parameters
    ----------
    discharge_m3s : float or ndarray
        Discharge [m3/s], positive.
    bottom_width_m : float or ndarray
        Bottom width [m], non-negative.
    side_slope : float or ndarray
        Bank slope, horizontal per unit vertical [m/m], non-negative.
    slope : float or ndarray
        Energy (bed) slope [m/m], positive.
    manning_n : float or ndarray
        Manning roughness [s/m^(1/3)], positive.

    Returns
    -------
    NormalFlow
        Depth [m], velocity [m/s], area [m2], top width [m] and hydraulic radius [m].
    """
    depth = normal_depth(discharge_m3s, bottom_width_m, side_slope, slope, manning_n)
    area, _, top, radius = trapezoid_geometry(depth, bottom_width_m, side_slope)
    velocity = np.asarray(discharge_m3s, dtype=np.float64) / np.asarray(area)
    return NormalFlow(
        depth_m=depth,
        velocity_ms=_scalar_or_array(np.asarray(velocity)),
        area_m2=area,
        top_width_m=top,
        hydraulic_radius_m=radius,
    )


def shear_velocity(hydraulic_radius_m: ArrayLike, slope: ArrayLike) -> FloatOrArray:
    """Shear velocity of uniform flow, u* = sqrt(g R S).

    From the bed shear stress tau = rho g R S and u* = sqrt(tau / rho) (Chow 1959, Open-Channel
    Hydraulics, sec. 8-1; Fischer et al. 1979, Mixing in Inland and Coastal Waters, eq. 5.8).

    Parameters
    ----------
    hydraulic_radius_m : float or ndarray
        Hydraulic radius R [m], non-negative.
    slope : float or ndarray
        Energy slope S [m/m], non-negative.

    Returns
    -------
    shear_velocity_ms : float or ndarray
        u* [m/s].
    """
    r = _as_float_array("hydraulic_radius_m", hydraulic_radius_m)
    s = _as_float_array("slope", slope)
    _require("hydraulic_radius_m", r, positive=False)
    _require("slope", s, positive=False)
    return _scalar_or_array(np.sqrt(GRAVITY * r * s))

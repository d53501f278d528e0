"""Hydraulics of reaches without surveyed geometry: Jobson (1996) velocities, hydraulic geometry.

Pure functions on floats or numpy arrays (broadcasting like numpy), in SI units: depth and width [m],
discharge [m3/s], velocity [m/s], slope [m/m], drainage area [m2].

* Jobson (1996) travel velocities of the peak concentration from drainage area and discharge.
* Leopold & Maddock (1953) power-law hydraulic geometry with a documented global default fit.

Manning uniform flow for surveyed channels is in :mod:`hydrology.hydraulics`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hydrology.exceptions import HydraulicsError
from hydrology.hydraulics import FloatOrArray, _as_float_array, _first_bad, _require, _scalar_or_array
from hydrology.units import GRAVITY

__all__ = [
    "JOBSON_LEADING_EDGE_FRACTION",
    "LEOPOLD_MADDOCK_DEFAULTS",
    "HydraulicGeometry",
    "hydraulic_geometry",
    "jobson_velocity",
    "jobson_velocity_no_slope",
]


# --------------------------------------------------------------------------------------------------
# Jobson (1996): velocity of the peak concentration without channel geometry
# --------------------------------------------------------------------------------------------------

#: Leading edge of a spill cloud arrives at this fraction of the peak's travel time
#: (Jobson 1996, USGS WRIR 96-4013, eq. 18: T_l = 0.890 T_p).
JOBSON_LEADING_EDGE_FRACTION = 0.890


def _jobson_groups(
    q: NDArray[np.float64], da: NDArray[np.float64], qa: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Dimensionless drainage area D'a = Da^1.25 sqrt(g) / Qa (eq. 10) and Q'a = Q / Qa."""
    return da**1.25 * np.sqrt(GRAVITY) / qa, q / qa


def jobson_velocity(
    discharge_m3s: ArrayLike,
    drainage_area_m2: ArrayLike,
    slope: ArrayLike,
    mean_annual_discharge_m3s: ArrayLike,
) -> tuple[FloatOrArray, FloatOrArray]:
    """Most-probable and maximum-probable velocity of the peak concentration (Jobson 1996).

    With D'a = Da^1.25 sqrt(g) / Qa and Q'a = Q / Qa (Jobson 1996, eq. 10):

    Vp  = 0.094 + 0.0143 (D'a)^0.919 (Q'a)^-0.469 S^0.159 Q / Da   (eq. 12)
    Vmp = 0.25  + 0.020  (D'a)^0.919 (Q'a)^-0.469 S^0.159 Q / Da   (eq. 13)

    Jobson, H.E. (1996), Prediction of traveltime and longitudinal dispersion in rivers and streams,
    USGS Water-Resources Investigations Report 96-4013. The exponent of Q'a is -0.469 as in the
    brief (DESIGN.md) and in the USGS StreamStats travel-time service code (USGS-WiM
    TravelTimeService, ``getVelocityConstants``), although that code's comments print -0.465; at
    Q = Qa the exponent has no effect.

    Parameters
    ----------
    discharge_m3s : float or ndarray
        Discharge Q at the time of the spill [m3/s], positive.
    drainage_area_m2 : float or ndarray
        Drainage area Da above the reach [m2], positive.
    slope : float or ndarray
        Reach water-surface slope S [m/m], positive (use :func:`jobson_velocity_no_slope` when it
        is unknown).
    mean_annual_discharge_m3s : float or ndarray
        Mean annual discharge Qa [m3/s], positive.

    Returns
    -------
    peak_velocity_ms : float or ndarray
        Most-probable velocity of the peak concentration Vp [m/s].
    max_probable_velocity_ms : float or ndarray
        Maximum probable velocity Vmp [m/s] (envelope for the earliest plausible arrival).
    """
    q = _as_float_array("discharge_m3s", discharge_m3s)
    da = _as_float_array("drainage_area_m2", drainage_area_m2)
    s = _as_float_array("slope", slope)
    qa = _as_float_array("mean_annual_discharge_m3s", mean_annual_discharge_m3s)
    for name, arr in (("discharge_m3s", q), ("drainage_area_m2", da), ("slope", s),
                      ("mean_annual_discharge_m3s", qa)):
        _require(name, arr, positive=True)
    d_prime, q_prime = _jobson_groups(q, da, qa)
    group = d_prime**0.919 * q_prime**-0.469 * s**0.159 * q / da
    return _scalar_or_array(0.094 + 0.0143 * group), _scalar_or_array(0.25 + 0.020 * group)


def jobson_velocity_no_slope(
    discharge_m3s: ArrayLike,
    drainage_area_m2: ArrayLike,
    mean_annual_discharge_m3s: ArrayLike,
) -> tuple[FloatOrArray, FloatOrArray]:
    """Peak-concentration velocities when the reach slope is unknown (Jobson 1996, eqs. 14-15).

    Vp  = 0.020 + 0.051 (D'a)^0.821 (Q'a)^-0.465 Q / Da   (eq. 14)
    Vmp = 0.2   + 0.093 (D'a)^0.821 (Q'a)^-0.465 Q / Da   (eq. 15)

    with D'a and Q'a as in :func:`jobson_velocity`. Coefficients as in Jobson (1996), USGS WRIR
    96-4013, confirmed against the USGS StreamStats travel-time service (USGS-WiM
    TravelTimeService, ``velocityPeakEnum.v_no_slope``).

    Parameters
    ----------
    discharge_m3s : float or ndarray
        Discharge Q [m3/s], positive.
    drainage_area_m2 : float or ndarray
        Drainage area Da [m2], positive.
    mean_annual_discharge_m3s : float or ndarray
        Mean annual discharge Qa [m3/s], positive.

    Returns
    -------
    peak_velocity_ms : float or ndarray
        Most-probable peak velocity Vp [m/s].
    max_probable_velocity_ms : float or ndarray
        Maximum probable peak velocity Vmp [m/s].
    """
    q = _as_float_array("discharge_m3s", discharge_m3s)
    da = _as_float_array("drainage_area_m2", drainage_area_m2)
    qa = _as_float_array("mean_annual_discharge_m3s", mean_annual_discharge_m3s)
    for name, arr in (("discharge_m3s", q), ("drainage_area_m2", da),
                      ("mean_annual_discharge_m3s", qa)):
        _require(name, arr, positive=True)
    d_prime, q_prime = _jobson_groups(q, da, qa)
    group = d_prime**0.821 * q_prime**-0.465 * q / da
    return _scalar_or_array(0.020 + 0.051 * group), _scalar_or_array(0.2 + 0.093 * group)


# --------------------------------------------------------------------------------------------------
# hydraulic geometry (Leopold & Maddock 1953)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HydraulicGeometry:
    """Power laws width = a Q^b and depth = c Q^f (Leopold & Maddock 1953, USGS PP 252).

    Attributes
    ----------
    a : float
        Width coefficient [m (m3/s)^-b].
    b : float
        Width exponent [-].
    c : float
        Depth coefficient [m (m3/s)^-f].
    f : float
        Depth exponent [-].
    source : str
        Where the numbers come from.
    """

    a: float
    b: float
    c: float
    f: float
    source: str

    def width(self, discharge_m3s: ArrayLike) -> FloatOrArray:
        """Width a Q^b [m] for discharge [m3/s]."""
        return hydraulic_geometry(discharge_m3s, self.a, self.b)

    def depth(self, discharge_m3s: ArrayLike) -> FloatOrArray:
        """Mean depth c Q^f [m] for discharge [m3/s]."""
        return hydraulic_geometry(discharge_m3s, self.c, self.f)


#: Global downstream hydraulic geometry of bankfull channels, Moody & Troutman (2002),
#: "Characterization of the spatial variability of channel morphology", Earth Surface Processes and
#: Landforms 27(12): width = 7.2 Q^0.50, depth = 0.27 Q^0.30 (Q bankfull discharge, m3/s).
#: Checked against Frasson et al. (2019, GRL, table S2: 72, 228, 720 m at 100, 1000, 10000 m3/s)
#: and Deltares HydroMT ``rivdph_powlaw(hc=0.27, hp=0.30)`` (via Andreadis et al. 2013, WRR 49).
#: A coarse fit (widths scatter by a factor ~2): use surveyed geometry where it exists.
LEOPOLD_MADDOCK_DEFAULTS = HydraulicGeometry(
    a=7.2,
    b=0.50,
    c=0.27,
    f=0.30,
    source="Moody & Troutman (2002), Earth Surf. Process. Landforms 27(12), global bankfull fit",
)


def hydraulic_geometry(discharge_m3s: ArrayLike, coef: float, exp: float) -> FloatOrArray:
    """Power-law hydraulic geometry value = coef Q^exp (Leopold & Maddock 1953, USGS PP 252).

    Used for width (a, b), mean depth (c, f) or velocity (k, m) as a function of discharge.

    Parameters
    ----------
    discharge_m3s : float or ndarray
        Discharge Q [m3/s], positive.
    coef : float or ndarray
        Coefficient, in the unit of the result per (m3/s)^exp (one per reach, or one for all).
    exp : float or ndarray
        Exponent [-].

    Returns
    -------
    value : float or ndarray
        coef Q^exp, e.g. width [m] or depth [m].
    """
    q = _as_float_array("discharge_m3s", discharge_m3s)
    _require("discharge_m3s", q, positive=True)
    a = _as_float_array("coef", coef)
    _require("hydraulic geometry coefficient", a, positive=True)
    e = _as_float_array("exp", exp)
    if not np.all(np.isfinite(e)):
        raise HydraulicsError(f"hydraulic geometry exponent{_first_bad(~np.isfinite(e))} is not finite")
    return _scalar_or_array(a * q**e)

"""Dissolved oxygen: saturation, reaeration, Streeter-Phelps sag with nitrification, river profiles.

Everything is SI inside: time [s], first-order rates [1/s], concentrations [g/m3] (= mg/L), temperature
[degC] (the one non-SI input, as every cited formula is written in it). Literature rates quoted in
[1/d] are converted with :func:`hydrology.units.per_day_to_per_s` by the caller, once.

CBOD here is always the *ultimate* carbonaceous demand L (the Streeter-Phelps state variable), never
BOD5; convert a measured BOD5 with :func:`cbod_ultimate_from_bod5`. NH3-N is ammonia nitrogen as N,
exerting :data:`NBOD_RATIO` g O2 per g N when fully nitrified.

The profile along a river path (mixing at point inflows, then these kinetics segment by segment)
is in :mod:`hydrology.oxygen_path`.

References
----------
APHA, AWWA, WEF. Standard Methods for the Examination of Water and Wastewater, method 4500-O
    (after Benson & Krause 1984).
Benson, B.B. & Krause, D. (1984). The concentration and isotopic fractionation of oxygen dissolved in
    freshwater and seawater in equilibrium with the atmosphere. Limnol. Oceanogr. 29(3), 620-632.
Chapra, S.C. (1997). Surface Water-Quality Modeling. McGraw-Hill. Lectures 19-21, 23.
Chapra, S.C., Pelletier, G.J. & Tao, H. (2012). QUAL2K: A Modeling Framework for Simulating River
    and Stream Water Quality, Version 2.12: Documentation and Users Manual. Tufts University.
Covar, A.P. (1976). Selecting the proper reaeration coefficient for use in water quality models.
    Proc. EPA Conference on Environmental Simulation and Modeling, Cincinnati.
Streeter, H.W. & Phelps, E.B. (1925). A study of the pollution and natural purification of the Ohio
    River. US Public Health Service, Public Health Bulletin 146.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from .exceptions import HydraulicsError, HydrologyError, UnknownModelError
from .units import DAY

ReaerationMethod = Literal["qual2k", "oconnor-dobbins", "churchill", "owens-gibbs"]

#: Temperature coefficients of k_T = k_20 theta^(T-20): QUAL2K defaults (Chapra et al. 2012, table
#: of rate parameters; Chapra 1997, lectures 2, 19-20 and 23).
THETA_REAERATION = 1.024
THETA_CBOD = 1.047
THETA_NITRIFICATION = 1.07
#: Oxygen consumed by full nitrification of ammonia, NH4+ + 2 O2 -> NO3- + H2O + 2 H+:
#: 2 * 31.998 / 14.007 = 4.57 g O2 per g N (Chapra 1997, lecture 23).
NBOD_RATIO = 4.57

# Benson & Krause (1984) as in APHA 4500-O: ln C* [mg/L] as a polynomial in 1/T [K].
_BK_FRESH = (-139.34411, 1.575701e5, -6.642308e7, 1.243800e10, -8.621949e11)
_BK_SALT = (1.7674e-2, -1.0754e1, 2.1407e3)
_KELVIN = 273.15


class OxygenModelError(HydrologyError, ValueError):
    """Inputs outside what the oxygen model accepts (negative concentration, bad path data)."""


def _as_float(x: ArrayLike) -> np.ndarray | float:
    a = np.asarray(x, dtype=float)
    return float(a) if a.ndim == 0 else a


def _check(name: str, x: ArrayLike, *, lo: float = -np.inf, hi: float = np.inf,
           lo_open: bool = False, err: type[HydrologyError] = OxygenModelError) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    bad = ~np.isfinite(a) | (a > hi) | ((a <= lo) if lo_open else (a < lo))
    if np.any(bad):
        first = a[bad].ravel()[0] if a.ndim else float(a)
        rng = f"{'(' if lo_open else '['}{lo}, {hi}]"
        raise err(f"{name} {first!r} is outside {rng}")
    return a


# --------------------------------------------------------------------------------------- saturation
def do_saturation(temperature_c: ArrayLike, salinity_ppt: ArrayLike = 0.0,
                  pressure_atm: ArrayLike = 1.0) -> np.ndarray | float:
    """Saturation dissolved-oxygen concentration in water exposed to water-saturated air.

    .. math::

        \\ln C^*_0 = -139.34411 + \\frac{1.575701\\times10^5}{T} - \\frac{6.642308\\times10^7}{T^2}
                    + \\frac{1.243800\\times10^{10}}{T^3} - \\frac{8.621949\\times10^{11}}{T^4}
                    - S\\left(1.7674\\times10^{-2} - \\frac{10.754}{T} + \\frac{2140.7}{T^2}\\right)

    and, at a total pressure P other than 1 atm,

    .. math::

        C^*_P = C^*_0 P \\frac{(1 - P_{wv}/P)(1 - \\theta P)}{(1 - P_{wv})(1 - \\theta)},\\quad
        \\ln P_{wv} = 11.8571 - \\frac{3840.70}{T} - \\frac{216961}{T^2},\\quad
        \\theta = 0.000975 - 1.426\\times10^{-5} t + 6.436\\times10^{-8} t^2

    Parameters
    ----------
    temperature_c : float or ndarray
        Water temperature t [degC], 0 to 40 (the range of the fit).
    salinity_ppt : float or ndarray, default 0
        Salinity S [g/kg] (practical salinity), 0 to 45.
    pressure_atm : float or ndarray, default 1
        Barometric pressure P [atm]; must exceed the water vapour pressure.

    Returns
    -------
    c_sat : float or ndarray
        Saturation concentration [g/m3].

    References
    ----------
    APHA Standard Methods 4500-O (equations for Table 4500-O:I), after Benson & Krause (1984),
    Limnol. Oceanogr. 29(3), 620-632, eqs. for C* and the pressure correction (their eq. 24).
    """
    t = _check("temperature_c [degC]", temperature_c, lo=0.0, hi=40.0)
    s = _check("salinity_ppt [g/kg]", salinity_ppt, lo=0.0, hi=45.0)
    p = _check("pressure_atm [atm]", pressure_atm, lo=0.0, lo_open=True)
    tk = t + _KELVIN
    a0, a1, a2, a3, a4 = _BK_FRESH
    b0, b1, b2 = _BK_SALT
    ln_c = a0 + a1 / tk + a2 / tk**2 + a3 / tk**3 + a4 / tk**4 - s * (b0 + b1 / tk + b2 / tk**2)
    c = np.exp(ln_c)
    if np.any(p != 1.0):
        p_wv = np.exp(11.8571 - 3840.70 / tk - 216961.0 / tk**2)
        if np.any(p <= p_wv):
            raise OxygenModelError(
                f"pressure_atm {np.min(p)!r} atm does not exceed the water vapour pressure "
                f"{float(np.max(p_wv)):.4f} atm")
        theta = 0.000975 - 1.426e-5 * t + 6.436e-8 * t**2
        c = c * p * (1.0 - p_wv / p) * (1.0 - theta * p) / ((1.0 - p_wv) * (1.0 - theta))
    return _as_float(c)


# --------------------------------------------------------------------------------------- reaeration
def _hydraulics(velocity_ms: ArrayLike, depth_m: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    u = _check("velocity_ms [m/s]", velocity_ms, lo=0.0, err=HydraulicsError)
    h = _check("depth_m [m]", depth_m, lo=0.0, lo_open=True, err=HydraulicsError)
    return np.broadcast_arrays(u, h)  # type: ignore[return-value]


def _power_law(a: float, b: float, c: float, name: str) -> Callable[[ArrayLike, ArrayLike], np.ndarray | float]:
    def formula(velocity_ms: ArrayLike, depth_m: ArrayLike) -> np.ndarray | float:
        u, h = _hydraulics(velocity_ms, depth_m)
        return _as_float(a * u**b / h**c / DAY)

    formula.__name__ = name.replace("-", "_")
    formula.__doc__ = f"{name}: ka(20 C) = {a} U^{b} / H^{c} [1/d], returned in [1/s]; U [m/s], H [m]."
    return formula


#: ka(20 C) = a U^b / H^c [1/d] with U [m/s], H [m], as tabulated in the QUAL2K documentation
#: (Chapra, Pelletier & Tao 2012, "Reaeration") and Chapra (1997) lecture 20:
#: O'Connor & Dobbins (1958, Trans. ASCE 123, 641-684); Churchill, Elmore & Buckingham (1962,
#: J. Sanit. Eng. Div. ASCE 88(SA4), 1-46); Owens, Edwards & Gibbs (1964, Int. J. Air Water
#: Pollut. 8, 469-486).
REAERATION_POWER_LAWS: dict[str, tuple[float, float, float]] = {
    "oconnor-dobbins": (3.93, 0.5, 1.5),
    "churchill": (5.026, 1.0, 1.67),
    "owens-gibbs": (5.32, 0.67, 1.85),
}
oconnor_dobbins = _power_law(*REAERATION_POWER_LAWS["oconnor-dobbins"], "oconnor-dobbins")
churchill = _power_law(*REAERATION_POWER_LAWS["churchill"], "churchill")
owens_gibbs = _power_law(*REAERATION_POWER_LAWS["owens-gibbs"], "owens-gibbs")


def qual2k_reaeration(velocity_ms: ArrayLike, depth_m: ArrayLike) -> np.ndarray | float:
    """Reaeration rate at 20 C chosen by depth and velocity as QUAL2K does (Covar 1976).

    Owens-Gibbs where H < 0.61 m; otherwise O'Connor-Dobbins where H > 3.45 U^2.5; otherwise
    Churchill.

    Parameters
    ----------
    velocity_ms : float or ndarray
        Mean velocity U [m/s].
    depth_m : float or ndarray
        Mean depth H [m].

    Returns
    -------
    ka : float or ndarray
        Reaeration rate at 20 C [1/s].

    References
    ----------
    Chapra, Pelletier & Tao (2012), QUAL2K documentation, section "Reaeration" (internal
    reaeration option, Covar's selection); Covar (1976); Chapra (1997) lecture 20 (Covar's
    depth-velocity diagram).
    """
    u, h = _hydraulics(velocity_ms, depth_m)
    choice = np.select([h < 0.61, h > 3.45 * u**2.5], [owens_gibbs(u, h), oconnor_dobbins(u, h)],
                       default=churchill(u, h))
    return _as_float(choice)


#: Reaeration formulas by name; each maps (velocity [m/s], depth [m]) to ka at 20 C [1/s].
REAERATION_FORMULAS: dict[str, Callable[[ArrayLike, ArrayLike], np.ndarray | float]] = {
    "qual2k": qual2k_reaeration,
    "oconnor-dobbins": oconnor_dobbins,
    "churchill": churchill,
    "owens-gibbs": owens_gibbs,
}


def reaeration_rate(velocity_ms: ArrayLike, depth_m: ArrayLike,
                    method: ReaerationMethod | str = "qual2k") -> np.ndarray | float:
    """Reaeration rate at 20 C by a registered formula (see :data:`REAERATION_FORMULAS`).

    Parameters
    ----------
    velocity_ms : float or ndarray
        Mean velocity U [m/s] (>= 0).
    depth_m : float or ndarray
        Mean depth H [m] (> 0).
    method : str, default "qual2k"
        Key of :data:`REAERATION_FORMULAS`: "qual2k" (Covar's selection), "oconnor-dobbins",
        "churchill" or "owens-gibbs" (coefficients in :data:`REAERATION_POWER_LAWS`).

    Returns
    -------
    ka : float or ndarray
        Reaeration rate at 20 C [1/s]; correct it to water temperature with :func:`arrhenius` and
        :data:`THETA_REAERATION`.

    Raises
    ------
    UnknownModelError
        If ``method`` is not registered.
    HydraulicsError
        If a velocity is negative or a depth not positive.
    """
    try:
        formula = REAERATION_FORMULAS[method]
    except KeyError:
        raise UnknownModelError(
            f"reaeration method {method!r} is not registered; known: {sorted(REAERATION_FORMULAS)}"
        ) from None
    return formula(velocity_ms, depth_m)


def arrhenius(k20: ArrayLike, temperature_c: ArrayLike, theta: float) -> np.ndarray | float:
    """Temperature-corrected rate k_T = k_20 theta^(T - 20).

    Parameters
    ----------
    k20 : float or ndarray
        Rate at 20 C [1/s].
    temperature_c : float or ndarray
        Water temperature [degC].
    theta : float
        Temperature coefficient [-], e.g. :data:`THETA_CBOD`.

    Returns
    -------
    k : float or ndarray
        Rate at the water temperature [1/s].

    References
    ----------
    Chapra (1997), lecture 2 (theta model); QUAL2K documentation (Chapra et al. 2012),
    temperature effects.
    """
    return _as_float(np.asarray(k20, dtype=float) * theta ** (np.asarray(temperature_c, float) - 20.0))


# ---------------------------------------------------------------------------------- Streeter-Phelps
def _exp_difference(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(e^{-a t} - e^{-b t}) / (b - a), exact and stable also for a == b (limit t e^{-a t})."""
    lo = np.minimum(a, b)
    x = np.abs(b - a) * t
    safe = np.where(x > 0.0, x, 1.0)
    phi = np.where(x > 0.0, -np.expm1(-safe) / safe, 1.0)  # (1 - e^-x)/x, -> 1 as x -> 0
    return t * np.exp(-lo * t) * phi


def cbod_ultimate_from_bod5(bod5_g_m3: ArrayLike, k1_per_s: ArrayLike) -> np.ndarray | float:
    """Ultimate CBOD from a 5-day BOD test, L0 = BOD5 / (1 - e^{-5 d k1}).

    Parameters
    ----------
    bod5_g_m3 : float or ndarray
        Five-day biochemical oxygen demand [g/m3].
    k1_per_s : float or ndarray
        Bottle decay rate of CBOD at 20 C [1/s] (> 0).

    Returns
    -------
    l0 : float or ndarray
        Ultimate carbonaceous BOD [g/m3].

    References
    ----------
    Chapra (1997), lecture 19 (bottle BOD, BOD_t = L0 (1 - e^{-k1 t})).
    """
    y = _check("bod5_g_m3 [g/m3]", bod5_g_m3, lo=0.0)
    k = _check("k1_per_s [1/s]", k1_per_s, lo=0.0, lo_open=True)
    return _as_float(y / -np.expm1(-5.0 * DAY * k))


def streeter_phelps_deficit(t_s: ArrayLike, l0_g_m3: ArrayLike, d0_g_m3: ArrayLike,
                            kd_per_s: ArrayLike, ka_per_s: ArrayLike) -> np.ndarray | float:
    """Oxygen deficit downstream of a CBOD load, Streeter-Phelps.

    .. math:: D(t) = \\frac{k_d L_0}{k_a - k_d}\\left(e^{-k_d t} - e^{-k_a t}\\right) + D_0 e^{-k_a t}

    with the limit :math:`D = (k_d L_0 t + D_0) e^{-k_a t}` when :math:`k_a = k_d` (evaluated
    without cancellation for nearly equal rates).

    Parameters
    ----------
    t_s : float or ndarray
        Travel time from the load [s] (>= 0).
    l0_g_m3 : float or ndarray
        Ultimate CBOD after mixing [g/m3].
    d0_g_m3 : float or ndarray
        Initial deficit, saturation minus DO [g/m3] (may be negative if supersaturated).
    kd_per_s : float or ndarray
        CBOD deoxygenation rate [1/s] (>= 0).
    ka_per_s : float or ndarray
        Reaeration rate [1/s] (>= 0).

    Returns
    -------
    deficit : float or ndarray
        Oxygen deficit [g/m3].

    References
    ----------
    Streeter & Phelps (1925); Chapra (1997), lecture 21 (Streeter-Phelps deficit and its ka = kd
    limit).
    """
    t = _check("t_s [s]", t_s, lo=0.0)
    l0 = _check("l0_g_m3 [g/m3]", l0_g_m3, lo=0.0)
    d0 = _check("d0_g_m3 [g/m3]", d0_g_m3)
    kd = _check("kd_per_s [1/s]", kd_per_s, lo=0.0)
    ka = _check("ka_per_s [1/s]", ka_per_s, lo=0.0)
    return _as_float(kd * l0 * _exp_difference(kd, ka, t) + d0 * np.exp(-ka * t))


def do_sag(t_s: ArrayLike, cbod0: ArrayLike, nh3n0: ArrayLike, d0: ArrayLike, kd: ArrayLike,
           kn: ArrayLike, ka: ArrayLike) -> np.ndarray | float:
    """Oxygen deficit with carbonaceous and nitrogenous demand (extended Streeter-Phelps).

    Solves dL/dt = -kd L, dN/dt = -kn N, dD/dt = kd L + r kn N - ka D with r = :data:`NBOD_RATIO`:

    .. math:: D(t) = \\frac{k_d L_0}{k_a - k_d}(e^{-k_d t} - e^{-k_a t})
                   + \\frac{r k_n N_0}{k_a - k_n}(e^{-k_n t} - e^{-k_a t}) + D_0 e^{-k_a t}

    Parameters
    ----------
    t_s : float or ndarray
        Travel time [s] (>= 0).
    cbod0 : float or ndarray
        Ultimate CBOD after mixing, L0 [g/m3].
    nh3n0 : float or ndarray
        Ammonia nitrogen after mixing, N0 [g N/m3].
    d0 : float or ndarray
        Initial deficit [g/m3].
    kd, kn, ka : float or ndarray
        CBOD decay, nitrification and reaeration rates [1/s] (>= 0).

    Returns
    -------
    deficit : float or ndarray
        Oxygen deficit [g/m3].

    References
    ----------
    Chapra (1997), lecture 23 (Streeter-Phelps with first-order nitrogenous BOD, L_N = 4.57 N).
    """
    n0 = _check("nh3n0 [g/m3]", nh3n0, lo=0.0)
    kn_ = _check("kn [1/s]", kn, lo=0.0)
    t = _check("t_s [s]", t_s, lo=0.0)
    ka_ = _check("ka [1/s]", ka, lo=0.0)
    carbon = np.asarray(streeter_phelps_deficit(t, cbod0, d0, kd, ka_))
    return _as_float(carbon + NBOD_RATIO * kn_ * n0 * _exp_difference(kn_, ka_, t))


def critical_point(l0: ArrayLike, d0: ArrayLike, kd: ArrayLike,
                   ka: ArrayLike) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Time and size of the largest Streeter-Phelps deficit (the bottom of the sag).

    .. math:: t_c = \\frac{1}{k_a - k_d}\\ln\\left[\\frac{k_a}{k_d}\\left(1 - \\frac{D_0 (k_a - k_d)}
              {k_d L_0}\\right)\\right], \\qquad D_c = \\frac{k_d}{k_a} L_0 e^{-k_d t_c}

    (limit :math:`t_c = (1 - D_0/L_0)/k` for :math:`k_a = k_d = k`). If the deficit does not rise
    at the load (:math:`k_d L_0 \\le k_a D_0`), it only decreases: :math:`t_c = 0`, :math:`D_c = D_0`.
    If it rises without a maximum (a supersaturated start, :math:`D_0 < 0`, with :math:`L_0 = 0` or
    :math:`k_d L_0 \\le D_0 (k_a - k_d)`), it tends to 0 from below: :math:`t_c = \\infty`, :math:`D_c = 0`.

    Parameters
    ----------
    l0 : float or ndarray
        Ultimate CBOD after mixing [g/m3].
    d0 : float or ndarray
        Initial deficit [g/m3].
    kd : float or ndarray
        Deoxygenation rate [1/s] (> 0).
    ka : float or ndarray
        Reaeration rate [1/s] (> 0).

    Returns
    -------
    t_c : float or ndarray
        Critical travel time [s].
    d_c : float or ndarray
        Critical (largest) deficit [g/m3].

    References
    ----------
    Chapra (1997), lecture 21 (critical time and critical deficit; the ka = kd case).
    """
    l0_ = _check("l0 [g/m3]", l0, lo=0.0)
    d0_ = _check("d0 [g/m3]", d0)
    kd_ = _check("kd [1/s]", kd, lo=0.0, lo_open=True)
    ka_ = _check("ka [1/s]", ka, lo=0.0, lo_open=True)
    l0_, d0_, kd_, ka_ = np.broadcast_arrays(l0_, d0_, kd_, ka_)
    delta = ka_ - kd_
    rising = kd_ * l0_ > ka_ * d0_
    # No root (possible only when supersaturated, D0 < 0): the deficit rises toward 0 for ever.
    unbounded = rising & ((kd_ * l0_ - d0_ * delta <= 0.0) | (l0_ == 0.0))
    ok = rising & ~unbounded
    safe_l0 = np.where(ok, l0_, 1.0)
    safe_d0 = np.where(ok, d0_, 0.0)

    def log1p_over(c: np.ndarray) -> np.ndarray:  # ln(1 + c delta) / delta, -> c as delta -> 0
        x = c * delta
        nz = x != 0.0
        return np.where(nz, np.log1p(np.where(nz, x, 0.0)) / np.where(nz, delta, 1.0), c)

    # ln[(ka/kd)(1 - D0 delta/(kd L0))] / delta, split so that ka -> kd has no cancellation.
    tc = log1p_over(1.0 / kd_) + log1p_over(-safe_d0 / (kd_ * safe_l0))
    tc = np.where(ok, np.maximum(tc, 0.0), np.where(unbounded, np.inf, 0.0))
    dc = np.where(ok, kd_ / ka_ * l0_ * np.exp(-kd_ * np.where(ok, tc, 0.0)), np.where(unbounded, 0.0, d0_))
    return _as_float(tc), _as_float(dc)

"""Closed-form 1-D advection-dispersion-decay solutions and temporal moments.

All functions are pure and vectorised (numpy broadcasting). Units: distance x [m], time t [s],
velocity U [m/s], dispersion D [m2/s], decay k [1/s], area A [m2], mass M [kg], concentration
[g/m3] (= mg/L). Mass in kg is turned into grams (x 1000) inside so concentrations come out in g/m3.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import erfc, erfcx

GRAMS_PER_KG = 1000.0


def gaussian_puff(x: ArrayLike, t: ArrayLike, mass_kg: ArrayLike, area_m2: ArrayLike, velocity_ms: ArrayLike,
                  dispersion_m2s: ArrayLike, decay_per_s: ArrayLike = 0.0) -> np.ndarray:
    """Concentration from an instantaneous, cross-sectionally mixed release.

    C(x, t) = M / (A sqrt(4 pi D t)) exp(-(x - U t)^2 / (4 D t) - k t)

    Parameters
    ----------
    x : array_like
        Distance downstream of the release [m].
    t : array_like
        Time after the release [s]; C = 0 where t <= 0.
    mass_kg : array_like
        Released mass [kg].
    area_m2, velocity_ms, dispersion_m2s, decay_per_s : array_like
        Cross-section area [m2], mean velocity [m/s], longitudinal dispersion [m2/s] and first-order
        decay rate [1/s].

    Returns
    -------
    c : ndarray
        Concentration [g/m3].

    References
    ----------
    Fischer, H.B. et al. (1979) Mixing in Inland and Coastal Waters, eq. 2.17 / 5.x; Chapra, S.C.
    (1997) Surface Water-Quality Modeling, eq. 9.x (with first-order decay).
    """
    x, t = np.asarray(x, float), np.asarray(t, float)
    u, d, k = (np.asarray(v, float) for v in (velocity_ms, dispersion_m2s, decay_per_s))
    tp = np.where(t > 0, t, np.nan)
    c = (GRAMS_PER_KG * np.asarray(mass_kg, float) / (np.asarray(area_m2, float) * np.sqrt(4 * np.pi * d * tp))
         * np.exp(-((x - u * tp) ** 2) / (4 * d * tp) - k * tp))
    return np.nan_to_num(c, nan=0.0)


def ogata_banks(x: ArrayLike, t: ArrayLike, c0: ArrayLike, velocity_ms: ArrayLike, dispersion_m2s: ArrayLike,
                decay_per_s: ArrayLike = 0.0) -> np.ndarray:
    """Concentration below a boundary held at ``c0`` from t = 0 (continuous release), with decay.

    C = c0/2 [exp((U - w) x / 2D) erfc((x - w t)/(2 sqrt(D t))) + exp((U + w) x / 2D) erfc((x + w t)/(2 sqrt(D t)))],
    w = U sqrt(1 + 4 k D / U^2). With k = 0 this is Ogata & Banks (1961). The second term's
    exp(...) erfc(...) is evaluated as erfcx(b) exp(a - b^2) so large Peclet numbers do not overflow.

    Parameters
    ----------
    x : array_like
        Distance downstream of the boundary [m] (> 0).
    t : array_like
        Time since the boundary concentration started [s]; C = 0 where t <= 0.
    c0 : array_like
        Boundary concentration [g/m3] (a release rate R [g/s] into discharge Q [m3/s] gives R/Q).
    velocity_ms, dispersion_m2s, decay_per_s : array_like
        [m/s], [m2/s], [1/s].

    Returns
    -------
    c : ndarray
        Concentration [g/m3].

    References
    ----------
    Ogata, A. and Banks, R.B. (1961) USGS Prof. Paper 411-A, eq. 20. van Genuchten, M.Th. and Alves,
    W.J. (1982) Analytical solutions of the one-dimensional convective-dispersive solute transport
    equation, USDA Tech. Bull. 1661, solution A4 (first-order decay, constant boundary concentration).
    """
    x, t = np.asarray(x, float), np.asarray(t, float)
    u = np.asarray(velocity_ms, float)
    d = np.asarray(dispersion_m2s, float)
    w = u * np.sqrt(1.0 + 4.0 * np.asarray(decay_per_s, float) * d / u**2)
    tp = np.where(t > 0, t, np.nan)
    s = 2.0 * np.sqrt(d * tp)
    term1 = np.exp((u - w) * x / (2 * d)) * erfc((x - w * tp) / s)
    b = (x + w * tp) / s
    term2 = erfcx(b) * np.exp((u + w) * x / (2 * d) - b**2)
    c = 0.5 * np.asarray(c0, float) * (term1 + term2)
    return np.nan_to_num(c, nan=0.0)


def finite_release(x: ArrayLike, t: ArrayLike, c0: ArrayLike, duration_s: ArrayLike, velocity_ms: ArrayLike,
                   dispersion_m2s: ArrayLike, decay_per_s: ArrayLike = 0.0) -> np.ndarray:
    """Release of constant strength lasting ``duration_s``: superposition C(t) - C(t - T).

    Linear superposition of two :func:`ogata_banks` solutions, the second starting at T [s].
    Units as in :func:`ogata_banks`; returns [g/m3].
    """
    t = np.asarray(t, float)
    return (ogata_banks(x, t, c0, velocity_ms, dispersion_m2s, decay_per_s)
            - ogata_banks(x, t - np.asarray(duration_s, float), c0, velocity_ms, dispersion_m2s, decay_per_s))


def reach_moments(length_m: ArrayLike, velocity_ms: ArrayLike, dispersion_m2s: ArrayLike,
                  storage_ratio: ArrayLike = 0.0, storage_exchange_per_s: ArrayLike = np.inf,
                  fully_mixed: ArrayLike = False) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of the travel time through a reach, with transient storage.

    mean = (L/U)(1 + beta); variance = 2 D L (1 + beta)^2 / U^3 + 2 beta^2 L / (alpha U).
    A fully mixed reach (a lake: a stirred tank of residence time tau = L/U, exponential residence
    times) has mean tau and variance tau^2. Means and variances add along reaches in series
    (independent residence times).

    Parameters
    ----------
    length_m, velocity_ms, dispersion_m2s : array_like
        Reach length [m], main-channel velocity [m/s], dispersion [m2/s].
    storage_ratio : array_like
        Storage-zone to main-channel area ratio beta = As/A [-] (0 for none).
    storage_exchange_per_s : array_like
        Exchange coefficient alpha [1/s] (ignored where beta = 0).

    Returns
    -------
    mean_s : ndarray
        Mean travel time [s].
    variance_s2 : ndarray
        Variance of the travel time [s2].

    References
    ----------
    Levenspiel, O. and Smith, W.K. (1957) (dispersion term, large-Peclet limit); Bencala, K.E. and
    Walters, R.A. (1983) Water Resour. Res. 19(3), 718-724 (OTIS storage zone); moments as derived
    by Nordin, C.F. and Troutman, B.M. (1980) Water Resour. Res. 16(1), 123-128.
    """
    L = np.asarray(length_m, float)
    u = np.asarray(velocity_ms, float)
    beta = np.asarray(storage_ratio, float)
    alpha = np.asarray(storage_exchange_per_s, float)
    mean = L / u * (1.0 + beta)
    with np.errstate(divide="ignore", invalid="ignore"):
        storage_var = np.where(beta > 0, 2.0 * beta**2 * L / (alpha * u), 0.0)
    var = 2.0 * np.asarray(dispersion_m2s, float) * L * (1.0 + beta) ** 2 / u**3 + storage_var
    lake = np.asarray(fully_mixed, bool)
    if lake.any():
        tau = L / u
        mean, var = np.where(lake, tau, mean), np.where(lake, tau**2, var)
    return mean, var

"""Longitudinal dispersion coefficient K [m2/s] of a river reach: published estimators and their test.

Each estimator is a pure, vectorised function of the channel width B [m], mean depth H [m], mean
velocity U [m/s] and shear velocity u* [m/s] (u* = sqrt(g R S), see
:func:`hydrology.hydraulics.shear_velocity`). They are registered by name in :data:`ESTIMATORS`;
:func:`estimate_dispersion` looks one up.

:func:`~hydrology.dispersion_data.load_field_data` reads the three field compilations shipped in
``tests/data/dispersion/`` (sources in ``tests/data/README.md``), :func:`~hydrology.dispersion_data.evaluate_estimators` scores every
estimator against measured K and :func:`~hydrology.dispersion_data.dispersion_report` renders the
scores as Markdown. :data:`DEFAULT_ESTIMATOR` is the estimator with the largest share of predictions
within a factor of 2 on the 71-row Tayfur & Singh (2005) compilation. Measured shares within a
factor of 2 (asserted in ``tests/hydrology/test_dispersion.py``):

==================================  ===========  ===========  ============
estimator                           tayfur_2005  toprak_2004  etemad_2012
                                    (71 rows)    (96 rows)    (140 rows)
==================================  ===========  ===========  ============
fischer_1975                        38.0%        35.4%        35.7%
liu_1977                            54.9%        52.1%        52.1%
seo_cheong_1998                     63.4%        57.3%        47.1%
deng_2001                           64.8%        56.2%        47.1%
kashefipour_falconer_2002           57.7%        54.2%        38.6%
kashefipour_falconer_2002_combined  62.0%        57.3%        46.4%
etemad_shahidi_taghipour_2012       63.4%        64.6%        62.1% (fitted on these data)
disley_2015                         71.8%        63.5%        56.4%
==================================  ===========  ===========  ============

Zeng & Huai (2014) is not registered: its coefficients were found in one source only (WATUM
``Dx_2014_Zeng_and_Huai.m``: K = 5.4 (B/H)^0.7 (U/u*)^0.13 H u*), and that form puts only 5.6% of
the 71 Tayfur rows within a factor of 2, which suggests a transcription error there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hydrology.exceptions import HydraulicsError, UnknownModelError
from hydrology.units import GRAVITY

__all__ = [
    "DEFAULT_ESTIMATOR",
    "ESTIMATORS",
    "deng_2001",
    "disley_2015",
    "estimate_dispersion",
    "etemad_shahidi_taghipour_2012",
    "fischer_1975",
    "kashefipour_falconer_2002",
    "kashefipour_falconer_2002_combined",
    "liu_1977",
    "seo_cheong_1998",
]

FloatOrArray = Any  # float for scalar inputs, NDArray[np.float64] for arrays


# --------------------------------------------------------------------------------------------------
# estimators: K [m2/s] from width B, depth H, velocity U, shear velocity u*
# --------------------------------------------------------------------------------------------------


def fischer_1975(width_m: ArrayLike, depth_m: ArrayLike, velocity_ms: ArrayLike,
                 shear_velocity_ms: ArrayLike) -> FloatOrArray:
    """Fischer's estimate K = 0.011 U^2 B^2 / (H u*).

    Fischer, H.B. (1975), Discussion of "Simple method for predicting dispersion in streams",
    J. Environ. Eng. Div. ASCE 101(EE3), 453-455; also Fischer et al. (1979), Mixing in Inland and
    Coastal Waters, eq. 5.19.

    Parameters
    ----------
    width_m : float or ndarray
        Channel (top) width B [m].
    depth_m : float or ndarray
        Mean depth H [m].
    velocity_ms : float or ndarray
        Mean velocity U [m/s].
    shear_velocity_ms : float or ndarray
        Shear velocity u* [m/s].

    Returns
    -------
    k_m2s : float or ndarray
        Longitudinal dispersion coefficient [m2/s].
    """
    b, h, u, us = _inputs(width_m, depth_m, velocity_ms, shear_velocity_ms)
    return _out(0.011 * u**2 * b**2 / (h * us))


def liu_1977(width_m: ArrayLike, depth_m: ArrayLike, velocity_ms: ArrayLike,
             shear_velocity_ms: ArrayLike) -> FloatOrArray:
    """Liu's estimate K = beta U^2 B^2 / (H u*) with beta = 0.18 (u*/U)^1.5.

    Equivalently K / (H u*) = 0.18 (B/H)^2 (U/u*)^0.5. Liu, H. (1977), Predicting dispersion
    coefficient of streams, J. Environ. Eng. Div. ASCE 103(EE1), 59-69. Coefficients as coded in
    EDF-CEREMA MASCARET-TRACER (``CALK``, option 4) and in WATUM (``Dx_1977_Liu.m``).

    Parameters
    ----------
    width_m, depth_m, velocity_ms, shear_velocity_ms : float or ndarray
        B [m], H [m], U [m/s], u* [m/s].

    Returns
    -------
    k_m2s : float or ndarray
        Longitudinal dispersion coefficient [m2/s].
    """
    b, h, u, us = _inputs(width_m, depth_m, velocity_ms, shear_velocity_ms)
    return _out(0.18 * (b / h) ** 2 * (u / us) ** 0.5 * h * us)


def seo_cheong_1998(width_m: ArrayLike, depth_m: ArrayLike, velocity_ms: ArrayLike,
                    shear_velocity_ms: ArrayLike) -> FloatOrArray:
    """Seo & Cheong's regression K / (H u*) = 5.915 (B/H)^0.620 (U/u*)^1.428.

    Seo, I.W. and Cheong, T.S. (1998), Predicting longitudinal dispersion coefficient in natural
    streams, J. Hydraul. Eng. 124(1), 25-32, eq. 16. The coefficient is 5.915; "5.195", a
    transposition found in some secondary sources and code (e.g. WATUM ``Dx_1998_Seo_and_Cheong.m``),
    is wrong: EDF-CEREMA MASCARET-TRACER codes 5.92 (B/H)^0.62 (U/u*)^1.43.

    Parameters
    ----------
    width_m, depth_m, velocity_ms, shear_velocity_ms : float or ndarray
        B [m], H [m], U [m/s], u* [m/s].

    Returns
    -------
    k_m2s : float or ndarray
        Longitudinal dispersion coefficient [m2/s].
    """
    b, h, u, us = _inputs(width_m, depth_m, velocity_ms, shear_velocity_ms)
    return _out(5.915 * (b / h) ** 0.620 * (u / us) ** 1.428 * h * us)


def deng_2001(width_m: ArrayLike, depth_m: ArrayLike, velocity_ms: ArrayLike,
              shear_velocity_ms: ArrayLike) -> FloatOrArray:
    """Deng et al.'s theory-based estimate with a transverse-mixing closure.

    K / (H u*) = 0.15 / (8 eps_t0) (U/u*)^2 (B/H)^(5/3),  eps_t0 = 0.145 + (1/3520) (U/u*) (B/H)^1.38.

    Deng, Z.-Q., Singh, V.P. and Bengtsson, L. (2001), Longitudinal dispersion coefficient in
    straight rivers, J. Hydraul. Eng. 127(11), 919-927, eqs. 17 and 16. MASCARET-TRACER codes the
    same form with 1.67 for 5/3.

    Parameters
    ----------
    width_m, depth_m, velocity_ms, shear_velocity_ms : float or ndarray
        B [m], H [m], U [m/s], u* [m/s].

    Returns
    -------
    k_m2s : float or ndarray
        Longitudinal dispersion coefficient [m2/s].
    """
    b, h, u, us = _inputs(width_m, depth_m, velocity_ms, shear_velocity_ms)
    eps_t0 = 0.145 + (u / us) * (b / h) ** 1.38 / 3520.0
    return _out(0.15 / (8.0 * eps_t0) * (u / us) ** 2 * (b / h) ** (5.0 / 3.0) * h * us)


def kashefipour_falconer_2002(width_m: ArrayLike, depth_m: ArrayLike, velocity_ms: ArrayLike,
                              shear_velocity_ms: ArrayLike) -> FloatOrArray:
    """Kashefipour & Falconer's regression K = 10.612 H U (U/u*).

    Kashefipour, S.M. and Falconer, R.A. (2002), Longitudinal dispersion coefficients in natural
    channels, Water Research 36(6), 1596-1608; fitted to 81 US river measurements and recommended by
    the authors for B/H > 50. The width does not enter; ``width_m`` is accepted for a uniform
    signature and checked like the others.

    Parameters
    ----------
    width_m, depth_m, velocity_ms, shear_velocity_ms : float or ndarray
        B [m], H [m], U [m/s], u* [m/s].

    Returns
    -------
    k_m2s : float or ndarray
        Longitudinal dispersion coefficient [m2/s].
    """
    _, h, u, us = _inputs(width_m, depth_m, velocity_ms, shear_velocity_ms)
    return _out(10.612 * h * u * (u / us))


def kashefipour_falconer_2002_combined(width_m: ArrayLike, depth_m: ArrayLike,
                                       velocity_ms: ArrayLike,
                                       shear_velocity_ms: ArrayLike) -> FloatOrArray:
    """Kashefipour & Falconer's form combined with Seo & Cheong's, for B/H < 50.

    K = [7.428 + 1.775 (B/H)^0.620 (u*/U)^0.572] H U (U/u*)  (Kashefipour & Falconer 2002, Water
    Research 36(6), 1596-1608). Coefficients confirmed in two independent codes: EDF-CEREMA
    MASCARET-TRACER (``CALK``, option 7, used there for B < 50 H) and WATUM
    (``Dx_2002_Kashefipour_and_Falconer.m``). The brief's "2.0 + ..." variant could not be found in
    any source and is not implemented.

    Parameters
    ----------
    width_m, depth_m, velocity_ms, shear_velocity_ms : float or ndarray
        B [m], H [m], U [m/s], u* [m/s].

    Returns
    -------
    k_m2s : float or ndarray
        Longitudinal dispersion coefficient [m2/s].
    """
    b, h, u, us = _inputs(width_m, depth_m, velocity_ms, shear_velocity_ms)
    return _out((7.428 + 1.775 * (b / h) ** 0.620 * (us / u) ** 0.572) * h * u * (u / us))


def etemad_shahidi_taghipour_2012(width_m: ArrayLike, depth_m: ArrayLike, velocity_ms: ArrayLike,
                                  shear_velocity_ms: ArrayLike) -> FloatOrArray:
    """Etemad-Shahidi & Taghipour's M5' model tree, two branches split at B/H = 30.6.

    K / (H u*) = 15.49 (B/H)^0.78 (U/u*)^0.11  for B/H <= 30.6,
    K / (H u*) = 14.12 (B/H)^0.61 (U/u*)^0.85  for B/H > 30.6.

    Etemad-Shahidi, A. and Taghipour, M. (2012), Predicting longitudinal dispersion coefficient in
    natural streams using M5' model tree, J. Hydraul. Eng. 138(6), 542-554. Coefficients as in
    WATUM (``Dx_2012_Etemadshahidi_and_Taghipour.m``) and the brief; note that WATUM picks the branch
    from the *mean* B/H of all reaches, whereas here each reach uses its own B/H.

    Parameters
    ----------
    width_m, depth_m, velocity_ms, shear_velocity_ms : float or ndarray
        B [m], H [m], U [m/s], u* [m/s].

    Returns
    -------
    k_m2s : float or ndarray
        Longitudinal dispersion coefficient [m2/s].
    """
    b, h, u, us = _inputs(width_m, depth_m, velocity_ms, shear_velocity_ms)
    aspect, ratio = b / h, u / us
    narrow = 15.49 * aspect**0.78 * ratio**0.11
    wide = 14.12 * aspect**0.61 * ratio**0.85
    return _out(np.where(aspect <= 30.6, narrow, wide) * h * us)


def disley_2015(width_m: ArrayLike, depth_m: ArrayLike, velocity_ms: ArrayLike,
                shear_velocity_ms: ArrayLike) -> FloatOrArray:
    """Disley et al.'s regression with the Froude number Fr = U / sqrt(g H).

    K / (H u*) = 3.563 Fr^-0.4117 (B/H)^0.6776 (U/u*)^1.0132.

    Disley, T., Gharabaghi, B., Mahboubi, A.A. and McBean, E.A. (2015), Predictive equation for
    longitudinal dispersion coefficient, Hydrological Processes 29(2), 161-172. Coefficients as in
    the brief and WATUM (``Dx_2015_Disley.m``).

    Parameters
    ----------
    width_m, depth_m, velocity_ms, shear_velocity_ms : float or ndarray
        B [m], H [m], U [m/s], u* [m/s].

    Returns
    -------
    k_m2s : float or ndarray
        Longitudinal dispersion coefficient [m2/s].
    """
    b, h, u, us = _inputs(width_m, depth_m, velocity_ms, shear_velocity_ms)
    froude = u / np.sqrt(GRAVITY * h)
    return _out(3.563 * froude**-0.4117 * (b / h) ** 0.6776 * (u / us) ** 1.0132 * h * us)


Estimator = Callable[[ArrayLike, ArrayLike, ArrayLike, ArrayLike], FloatOrArray]

#: Registered estimators, keyed by name (author(s)_year), in order of publication.
ESTIMATORS: dict[str, Estimator] = {
    "fischer_1975": fischer_1975,
    "liu_1977": liu_1977,
    "seo_cheong_1998": seo_cheong_1998,
    "deng_2001": deng_2001,
    "kashefipour_falconer_2002": kashefipour_falconer_2002,
    "kashefipour_falconer_2002_combined": kashefipour_falconer_2002_combined,
    "etemad_shahidi_taghipour_2012": etemad_shahidi_taghipour_2012,
    "disley_2015": disley_2015,
}

#: Best share of predictions within a factor of 2 of measured K on the 71 rows of Tayfur & Singh
#: (2005): 71.8% (51 of 71); next best Deng et al. 2001, 64.8%.
DEFAULT_ESTIMATOR = "disley_2015"


def estimate_dispersion(name: str, width_m: ArrayLike, depth_m: ArrayLike, velocity_ms: ArrayLike,
                        shear_velocity_ms: ArrayLike) -> FloatOrArray:
    """Longitudinal dispersion coefficient by the registered estimator ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`ESTIMATORS` (e.g. :data:`DEFAULT_ESTIMATOR`).
    width_m : float or ndarray
        Channel width B [m], positive.
    depth_m : float or ndarray
        Mean depth H [m], positive.
    velocity_ms : float or ndarray
        Mean velocity U [m/s], positive.
    shear_velocity_ms : float or ndarray
        Shear velocity u* [m/s], positive.

    Returns
    -------
    k_m2s : float or ndarray
        Longitudinal dispersion coefficient [m2/s].

    Raises
    ------
    UnknownModelError
        If ``name`` is not registered; the message lists the known names.
    HydraulicsError
        For a non-positive or non-finite input, naming it (and its index for arrays).
    """
    try:
        estimator = ESTIMATORS[name]
    except (KeyError, TypeError) as err:
        raise UnknownModelError(
            f"dispersion estimator {name!r} is not registered; known: {', '.join(ESTIMATORS)}"
        ) from err
    return estimator(width_m, depth_m, velocity_ms, shear_velocity_ms)


def _inputs(*values: ArrayLike) -> tuple[NDArray[np.float64], ...]:
    names = ("width_m", "depth_m", "velocity_ms", "shear_velocity_ms")
    arrays = []
    for name, value in zip(names, values, strict=True):
        arr = np.asarray(value, dtype=np.float64)
        bad = ~(np.isfinite(arr) & (arr > 0.0))
        if bad.any():
            where = "" if arr.ndim == 0 else f"[{int(np.flatnonzero(bad.ravel())[0])}]"
            first = float(arr) if arr.ndim == 0 else float(arr.ravel()[np.flatnonzero(bad.ravel())[0]])
            raise HydraulicsError(f"{name}{where} = {first!r} is not a positive finite number")
        arrays.append(arr)
    return tuple(arrays)


def _out(k: NDArray[np.float64]) -> FloatOrArray:
    return float(k) if np.ndim(k) == 0 else k

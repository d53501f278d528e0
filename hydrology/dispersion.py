"""Longitudinal dispersion coefficient K [m2/s] of a river reach: published estimators and their test.

Each estimator is a pure, vectorised function of the channel width B [m], mean depth H [m], mean
velocity U [m/s] and shear velocity u* [m/s] (u* = sqrt(g R S), see
:func:`hydrology.hydraulics.shear_velocity`). They are registered by name in :data:`ESTIMATORS`;
:func:`estimate_dispersion` looks one up.

:func:`load_field_data` reads the three field compilations shipped in ``shared/data/dispersion/``,
:func:`evaluate_estimators` scores every estimator against measured K and :func:`dispersion_report`
renders the scores as Markdown. :data:`DEFAULT_ESTIMATOR` is the estimator with the largest share of
predictions within a factor of 2 on the 71-row Tayfur & Singh (2005) compilation. Measured shares
within a factor of 2 (asserted in ``tests/hydrology/test_dispersion.py``):

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

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from hydrology.exceptions import HydraulicsError, HydrologyError, UnknownModelError
from hydrology.units import GRAVITY

__all__ = [
    "DEFAULT_ESTIMATOR",
    "ESTIMATORS",
    "FIELD_COLUMNS",
    "FieldDataError",
    "deng_2001",
    "disley_2015",
    "dispersion_report",
    "estimate_dispersion",
    "etemad_shahidi_taghipour_2012",
    "evaluate_estimators",
    "find_copied_measurements",
    "find_shifted_rows",
    "fischer_1975",
    "kashefipour_falconer_2002",
    "kashefipour_falconer_2002_combined",
    "liu_1977",
    "load_field_data",
    "seo_cheong_1998",
]

FloatOrArray = Any  # float for scalar inputs, NDArray[np.float64] for arrays


class FieldDataError(HydrologyError, ValueError):
    """A field-data table is unusable: a missing column, a non-numeric or non-positive value."""


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


# --------------------------------------------------------------------------------------------------
# field data
# --------------------------------------------------------------------------------------------------

#: Columns of a field-data table, SI.
FIELD_COLUMNS = ("stream", "width_m", "depth_m", "velocity_ms", "shear_velocity_ms",
                 "k_measured_m2s")

# Source column (by position, headers carry odd characters such as U+2215) -> our column.
_LAYOUTS: dict[str, dict[int, str]] = {
    # Stream;Training;B(m);H(m);U(m/s);u*(m/s);B/H;U/u*;beta;sigma;Kx(m2/s)
    "tayfur_2005": {0: "stream", 2: "width_m", 3: "depth_m", 4: "velocity_ms",
                    5: "shear_velocity_ms", 10: "k_measured_m2s"},
    # No;Source;Channel;H(m);W(m);U(m/s);U*(m/s);D1(m2/s);W/H;U/U*;U*/U;D1/HU*;Dataset
    "toprak_2004": {2: "stream", 4: "width_m", 3: "depth_m", 5: "velocity_ms",
                    6: "shear_velocity_ms", 7: "k_measured_m2s"},
    # No;Stream;W(m);H(m);U(m/s);U*(m/s);Kx(m2/s);sigma
    "etemad_2012": {1: "stream", 2: "width_m", 3: "depth_m", 4: "velocity_ms",
                    5: "shear_velocity_ms", 6: "k_measured_m2s"},
}
_N_COLUMNS = {"tayfur_2005": 11, "toprak_2004": 13, "etemad_2012": 8}


def _read(path: Path, compilation: str) -> pd.DataFrame:
    try:
        layout = _LAYOUTS[compilation]
    except KeyError as err:
        raise UnknownModelError(
            f"field compilation {compilation!r} is not known; known: {', '.join(_LAYOUTS)}"
        ) from err
    # pandas' parser accepts both LF and CRLF line ends (toprak_2004 has CRLF)
    raw = pd.read_csv(path, sep=";", encoding="utf-8", dtype=str, keep_default_na=False)
    if raw.shape[1] != _N_COLUMNS[compilation]:
        raise FieldDataError(
            f"{path}: {raw.shape[1]} columns, expected {_N_COLUMNS[compilation]} for {compilation}"
        )
    table = pd.DataFrame({name: raw.iloc[:, pos].str.strip() for pos, name in layout.items()})
    table.index = pd.Index(raw.iloc[:, 0].str.strip() if compilation != "tayfur_2005"
                           else pd.Series(range(1, len(raw) + 1)).astype(str), name="row")
    for column in FIELD_COLUMNS[1:]:
        values = pd.to_numeric(table[column], errors="coerce")
        bad = ~(np.isfinite(values) & (values > 0.0))
        if bad.any():
            row = table.index[np.flatnonzero(bad.to_numpy())[0]]
            raise FieldDataError(
                f"{path}: row {row}: {column} = {table[column].loc[row]!r} is not a positive number"
            )
        table[column] = values.astype(np.float64)
    return table[list(FIELD_COLUMNS)]


def find_copied_measurements(table: pd.DataFrame) -> NDArray[np.bool_]:
    """Rows whose (depth, velocity, shear velocity, K) repeat a row of a *different* stream.

    Four measured quantities of two different rivers do not coincide, so such a row carries values
    copied from elsewhere in the table. The earliest row of each such group is kept (taken as the
    original: a compilation lists a study before a copy of it) and the later ones are flagged. Rows
    repeating a row of the same stream are left alone (a study listed twice is not corrupt).
    In ``etemad_2012`` this flags rows No 82 and 83 ("Red River" with Tangipahoa values).

    Parameters
    ----------
    table : pandas.DataFrame
        Field data with the columns of :data:`FIELD_COLUMNS`.

    Returns
    -------
    ndarray of bool
        True for copied rows.
    """
    key = table[["depth_m", "velocity_ms", "shear_velocity_ms", "k_measured_m2s"]].round(6)
    flagged = np.zeros(len(table), dtype=bool)
    groups = key.groupby(list(key.columns), sort=False).indices
    streams = table["stream"].to_numpy()
    for positions in groups.values():
        if len(positions) > 1 and len(set(streams[positions])) > 1:
            flagged[np.sort(positions)[1:]] = True
    return flagged


def find_shifted_rows(table: pd.DataFrame, reference: pd.DataFrame) -> NDArray[np.bool_]:
    """Rows whose width belongs to one reference study but whose values belong to another.

    The width identifies a tracer study; depth, velocity, shear velocity and K describe it. Against
    an intact compilation of the same studies (``reference``), a row is

    * *consistent* if one reference row matches its width and its values;
    * *shifted* if it is not consistent, yet its width matches some reference row and its values
      match some (other) reference row.

    Widths match within 2% (or 0.05 m); depth and velocities within rounding (0.006 absolute or 2%
    relative); K within 0.05 m2/s or 1%. In ``etemad_2012`` this finds rows No 82-85 and 87-91,
    where the H, U, u* and Kx columns slid down by two studies against the W and sigma columns
    (see SOURCES.md); ``tayfur_2005`` lists the same Nordin & Sabol (1974) studies intact.

    Parameters
    ----------
    table, reference : pandas.DataFrame
        Field data with the columns of :data:`FIELD_COLUMNS`.

    Returns
    -------
    ndarray of bool
        True for the shifted rows of ``table``.
    """
    values = ["depth_m", "velocity_ms", "shear_velocity_ms"]
    ref_v = reference[values].to_numpy()[None, :, :]
    ref_k = reference["k_measured_m2s"].to_numpy()[None, :]
    ref_w = reference["width_m"].to_numpy()[None, :]
    own_v = table[values].to_numpy()[:, None, :]
    own_k = table["k_measured_m2s"].to_numpy()[:, None]
    own_w = table["width_m"].to_numpy()[:, None]
    same_values = np.all(np.abs(own_v - ref_v) <= np.maximum(0.006, 0.02 * ref_v), axis=2) & (
        np.abs(own_k - ref_k) <= np.maximum(0.05, 0.01 * ref_k)
    )
    same_width = np.abs(own_w - ref_w) <= np.maximum(0.05, 0.02 * ref_w)
    consistent = (same_width & same_values).any(axis=1)
    return np.asarray(~consistent & same_width.any(axis=1) & same_values.any(axis=1))


def load_field_data(path: str | Path, compilation: str, *,
                    reference: pd.DataFrame | None = None) -> pd.DataFrame:
    """Read a field compilation of measured longitudinal dispersion into SI columns.

    Parameters
    ----------
    path : str or Path
        The ';'-separated CSV file.
    compilation : {"tayfur_2005", "toprak_2004", "etemad_2012"}
        Which layout the file has: Tayfur & Singh (2005, 71 rows), Toprak et al. (2004, 96 rows,
        CRLF line ends, u* rounded to 0.01 m/s), Etemad-Shahidi & Taghipour (2012, 149 rows).
    reference : pandas.DataFrame, optional
        Only for ``etemad_2012``: an intact compilation of the same studies used to detect shifted
        rows (:func:`find_shifted_rows`). When omitted, ``tayfur_2005.csv`` next to ``path`` is
        read; if it is missing a :class:`FieldDataError` is raised.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`FIELD_COLUMNS` (stream, width_m [m], depth_m [m], velocity_ms [m/s],
        shear_velocity_ms [m/s], k_measured_m2s [m2/s]); index = the file's row number ("No").
        For ``etemad_2012`` the dropped rows are listed in ``attrs["dropped_rows"]``.

    Notes
    -----
    Cleaning rule for ``etemad_2012``: drop the rows flagged by :func:`find_copied_measurements`
    (values copied from another stream) or by :func:`find_shifted_rows` against the reference.
    On the shipped file this drops the 9 rows No 82-85 and 87-91 and keeps 140.
    """
    path = Path(path)
    table = _read(path, compilation)
    if compilation != "etemad_2012":
        if reference is not None:
            raise FieldDataError(f"reference= applies to etemad_2012 only, not to {compilation}")
        return table
    if reference is None:
        sibling = path.with_name("tayfur_2005.csv")
        if not sibling.exists():
            raise FieldDataError(
                f"{path}: etemad_2012 needs a reference compilation to detect shifted rows; "
                f"pass reference= or place tayfur_2005.csv next to it ({sibling} is missing)"
            )
        reference = _read(sibling, "tayfur_2005")
    drop = find_copied_measurements(table) | find_shifted_rows(table, reference)
    cleaned = table.loc[~drop].copy()
    cleaned.attrs["dropped_rows"] = [str(row) for row in table.index[drop]]
    return cleaned


# --------------------------------------------------------------------------------------------------
# evaluation and report
# --------------------------------------------------------------------------------------------------


def evaluate_estimators(table: pd.DataFrame) -> pd.DataFrame:
    """Score every registered estimator against measured dispersion coefficients.

    With the discrepancy ratio r = K_predicted / K_measured:

    * ``share_within_factor_2``: fraction of rows with 0.5 <= r <= 2 [-];
    * ``median_log10_ratio``: median of log10 r [-] (bias; > 0 over-predicts);
    * ``rmse_log10``: sqrt(mean((log10 r)^2)) [-].

    Parameters
    ----------
    table : pandas.DataFrame
        Columns width_m [m], depth_m [m], velocity_ms [m/s], shear_velocity_ms [m/s],
        k_measured_m2s [m2/s], all positive.

    Returns
    -------
    pandas.DataFrame
        One row per estimator (index ``estimator``, registry order), columns ``n``,
        ``share_within_factor_2``, ``median_log10_ratio``, ``rmse_log10``.
    """
    missing = [c for c in FIELD_COLUMNS[1:] if c not in table.columns]
    if missing:
        raise FieldDataError(f"field table lacks column(s) {', '.join(missing)}")
    if len(table) == 0:
        raise FieldDataError("field table has no rows")
    measured = np.asarray(table["k_measured_m2s"], dtype=np.float64)
    inputs = [np.asarray(table[c], dtype=np.float64) for c in FIELD_COLUMNS[1:5]]
    _inputs(*inputs)
    bad = ~(np.isfinite(measured) & (measured > 0.0))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise FieldDataError(
            f"k_measured_m2s[{first}] = {float(measured[first])!r} is not a positive finite number"
        )
    rows = []
    for name, estimator in ESTIMATORS.items():
        log_ratio = np.log10(np.asarray(estimator(*inputs)) / measured)
        ratio = 10.0**log_ratio
        rows.append({
            "estimator": name,
            "n": len(measured),
            "share_within_factor_2": float(np.mean((ratio >= 0.5) & (ratio <= 2.0))),
            "median_log10_ratio": float(np.median(log_ratio)),
            "rmse_log10": float(np.sqrt(np.mean(log_ratio**2))),
        })
    return pd.DataFrame(rows).set_index("estimator")


def dispersion_report(tables: Mapping[str, pd.DataFrame]) -> str:
    """Markdown table comparing the estimators on one or more field compilations.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        Compilation name -> field table (as from :func:`load_field_data`).

    Returns
    -------
    str
        A Markdown table: one row per estimator (the default in bold), and for each compilation the
        share within a factor of 2, the median log10 discrepancy ratio and the RMSE of log10 ratio.
    """
    if not tables:
        raise FieldDataError("dispersion_report needs at least one field table")
    scores = {name: evaluate_estimators(table) for name, table in tables.items()}
    header = ["estimator"]
    for name, table in tables.items():
        header += [f"{name} (n={len(table)}) within x2", "median log10 P/M", "RMSE log10"]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for estimator in ESTIMATORS:
        label = f"**{estimator}** (default)" if estimator == DEFAULT_ESTIMATOR else estimator
        cells = [label]
        for score in scores.values():
            row = score.loc[estimator]
            cells += [f"{100.0 * row['share_within_factor_2']:.1f}%",
                      f"{row['median_log10_ratio']:+.2f}", f"{row['rmse_log10']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"

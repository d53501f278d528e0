"""Field measurements of longitudinal dispersion: readers, corrupt-row filters, estimator scores.

:func:`load_field_data` reads the three field compilations shipped in ``tests/data/dispersion/``
into SI columns (:data:`FIELD_COLUMNS`), dropping the corrupt rows of ``etemad_2012`` found by
:func:`find_copied_measurements` and :func:`find_shifted_rows`; :func:`evaluate_estimators` scores
every estimator of :data:`hydrology.dispersion.ESTIMATORS` against measured K and
:func:`dispersion_report` renders the scores as Markdown. The measured shares are tabulated in
:mod:`hydrology.dispersion`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from hydrology.dispersion import DEFAULT_ESTIMATOR, ESTIMATORS, _inputs
from hydrology.exceptions import HydrologyError, UnknownModelError

__all__ = [
    "FIELD_COLUMNS",
    "FieldDataError",
    "dispersion_report",
    "evaluate_estimators",
    "find_copied_measurements",
    "find_shifted_rows",
    "load_field_data",
]


class FieldDataError(HydrologyError, ValueError):
    """A field-data table is unusable: a missing column, a non-numeric or non-positive value."""


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

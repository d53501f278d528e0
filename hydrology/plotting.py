"""Pictures for duty officers: the plume's arrival-time map and the breakthrough curves at receptors.

Both figures are drawn with matplotlib's object API on the Agg canvas (``matplotlib.figure.Figure``
+ ``savefig``), so nothing needs a display and pyplot's global state is never touched.

* :func:`plot_isochrones`: the network from reach geometry (or the straight line between a reach's
  nodes), reaches below the release coloured by the leading-edge arrival time [h] computed along
  every reach by :func:`hydrology.gis_output.reach_arrivals` (analytic engine on virtual sample
  points), isochrone ticks labelled every N hours, the release, stations, intakes (with the
  population served), response sites, structures and dischargers with distinct markers. Lon/lat
  maps are drawn with aspect 1/cos(mean latitude), so a kilometre east is as long as a kilometre
  north (the equidistant cylindrical projection with its standard parallel at the mean latitude;
  Snyder 1987, Map Projections: A Working Manual, USGS Professional Paper 1395); projected maps
  with aspect 1.
* :func:`plot_breakthrough`: concentration curves at receptors, one panel each (small multiples),
  time in hours after the release (local clock time on a second axis when the release start is
  known), the threshold dashed, arrival, peak and end marked.

Languages: every title, label and legend is in English (``lang="en"``) or Chinese (``lang="zh"``),
from one table (:data:`TEXT`); ids, numbers and units stay as they are. Chinese text needs a CJK
font, because matplotlib's DejaVu Sans has no CJK glyphs. :func:`cjk_font` takes the first
installed font of :data:`CJK_FONTS` (system fonts, e.g. Debian's ``fonts-noto-cjk`` or
``fonts-wqy-zenhei``); when the system has none, it registers the font file that a dependency
installs (:data:`BUNDLED_CJK_FONTS`: WenQuanYi Micro Hei from the PyPI package
``paperang-p2-fonts-cjk``, or Noto Sans CJK SC from ``mplfonts``). That font is listed after
DejaVu Sans as a fallback family, so Latin text keeps DejaVu and CJK glyphs come from it, and only
installed families are listed, so matplotlib never logs ``findfont`` misses. If no CJK font can be
found at all, Chinese text is replaced by its English or id fallback (:func:`display_text`) and a
:class:`CJKFontWarning` says so once: never empty boxes, never silence.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

import numpy as np

from . import gis_output as gis
from . import units
from .exceptions import HydrologyError
from .timezones import markdown_time, network_zone, utc_offset, zone
from .transport.analytic import EDGE_FRACTION_OF_PEAK, Forecast
from .units import HOUR

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.axes import Axes

    from .network import RiverNetwork

__all__ = ["BUNDLED_CJK_FONTS", "CJK_FONTS", "DISPLAY_TZ", "TEXT", "CJKFontWarning", "PlottingError", "cjk_font",
           "display_text", "plot_breakthrough", "plot_isochrones"]

#: the default display zone (Asia/Shanghai, UTC+8 all year), kept for callers; the figures use the
#: network's own ``timezone`` (:mod:`hydrology.timezones`)
DISPLAY_TZ = units.DISPLAY_TZ
#: CJK-capable font families tried in order as a fallback after DejaVu Sans
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
             "SimHei", "Microsoft YaHei", "PingFang SC", "Heiti SC", "AR PL UMing CN", "Droid Sans Fallback")
#: font files shipped by PyPI packages, registered when no font of :data:`CJK_FONTS` is installed:
#: (package, file inside it); the first that is installed is used
BUNDLED_CJK_FONTS = (("paperang_p2_fonts_cjk", "fonts/wqy-microhei.ttc"), ("mplfonts", "fonts/NotoSansCJKsc-Regular.otf"))
#: every text of the figures: key -> (English, Chinese) format strings
TEXT: dict[str, tuple[str, str]] = {
    "discharger": ("discharger", "排污单位"),
    "structure": ("dam / structure", "水库 / 闸坝"),
    "site": ("response site", "应急处置点"),
    "station": ("monitoring station", "监测断面"),
    "intake": ("drinking-water intake", "饮用水取水口"),
    "people": ("{n:,} people", "{n:,} 人"),
    "release": ("release: {mass:g} kg {pol} at {where}", "排放：{where}，{pol} {mass:g} kg"),
    "arrival_bar": ("leading-edge arrival ({thr}) [h after release]", "污染前锋到达（{thr}）[排放后 h]"),
    "thr_level": ("C >= {v:g} mg/L", "C ≥ {v:g} mg/L"),
    "thr_share": ("C >= {share} of local peak", "C ≥ 当地峰值的 {share}"),
    "thr_any": ("C >= threshold", "C ≥ 阈值"),
    "not_reached": ("river (not reached)", "河道（未到达）"),
    "never": ("reached, never {thr}", "到达但未达到 {thr}"),
    "lon": ("longitude [deg E]", "经度 [°E]"),
    "lat": ("latitude [deg N]", "纬度 [°N]"),
    "map_title": ("{net}: plume arrival, isochrones every {step:g} h", "{net}：污染团到达时间，等时线间隔 {step:g} h"),
    "released_at": ("release at {when}", "排放时间 {when}"),
    "network": ("river network", "河网"),
    "curves_title": ("{pol}: breakthrough at receptors", "{pol}：各受体浓度过程线"),
    "curves_default": ("breakthrough curves", "浓度过程线"),
    "more": (" (nearest {k} of {n} receptors; pass receptors=...)", "（显示最近的 {k} 个，共 {n} 个受体）"),
    "standard": ("standard {v:g} mg/L ({basis})", "标准 {v:g} mg/L（{basis}）"),
    "edge": ("edge: {share} of peak (no standard)", "边界：峰值的 {share}（无标准）"),
    "above_axis": ("{label}: above the axis, never reached", "{label}：高于坐标轴，未达到"),
    "arrival": ("arrival {h:.2f} h", "到达 {h:.2f} h"),
    "end": ("end {h:.2f} h", "结束 {h:.2f} h"),
    "peak": ("peak {c:.3g} mg/L at {h:.2f} h", "峰值 {c:.3g} mg/L，{h:.2f} h"),
    "below_release": (", {km:.1f} km below the release", "，排放点下游 {km:.1f} km"),
    "hours": ("hours after release [h]", "排放后时间 [h]"),
    "local_time": ("local time ({zone})", "当地时间 ({zone})"),
    "receptor": ("receptor", "受体"),
}
#: threshold bases (:func:`hydrology.transport.analytic.receptor_thresholds`) in Chinese
_BASIS_ZH = ((re.compile(r"GB 3838-2002 class (\w+)"), r"GB 3838-2002 \1 类"), (re.compile(r"^given$"), "给定"),
             (re.compile(r"^(\d+%) of peak$"), r"峰值的 \1"), (re.compile(r"^threshold of the dataset$"), "数据集阈值"))
Lang = str  # "en" or "zh"


class CJKFontWarning(UserWarning):
    """No CJK font could be found or registered: Chinese text is drawn in English or as ids."""


def _text(key: str, lang: Lang, **kw: Any) -> str:
    return TEXT[key][1 if lang == "zh" else 0].format(**kw)


def _basis(basis: str, lang: Lang) -> str:
    if lang != "zh":
        return basis
    for pattern, repl in _BASIS_ZH:
        basis = pattern.sub(repl, basis)
    return basis


def _pollutant(name: str, lang: Lang) -> str:
    """The pollutant's Chinese name from the bundled GB 3838 table (``tracer``: 示踪剂); the item
    name when ``lang`` is not zh or no CJK font can draw it."""
    if lang != "zh" or cjk_font() is None:
        return name
    from .standards import pollutant_name_zh

    return pollutant_name_zh(name)


#: figure resolution [dots per inch]
DPI = 110
#: most panels drawn by default by :func:`plot_breakthrough` (nearest receptors first)
MAX_PANELS = 12
#: sub-segments per reach for colouring by arrival time [-]
SEGMENTS_PER_REACH = 40
#: isochrone spacings tried, in hours [h]; the first giving at most 8 isochrones is used
ISOCHRONE_STEPS_H = (0.25, 0.5, 1.0, 2.0, 3.0, 6.0, 12.0, 24.0, 48.0, 96.0)
_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]")
#: marker style per feature kind: (marker, colour, size [pt^2], legend label)
MARKERS: dict[str, tuple[str, str, float, str]] = {
    "discharger": ("v", "#7f7f7f", 30.0, "discharger"),
    "structure": ("P", "#6a3d9a", 90.0, "dam / structure"),
    "site": ("D", "#ff7f00", 55.0, "response site"),
    "station": ("^", "#1f78b4", 80.0, "monitoring station"),
    "intake": ("s", "#e31a1c", 90.0, "drinking-water intake"),
}


class PlottingError(HydrologyError, ValueError):
    """A figure that cannot be drawn (no coordinates, no receptors, unknown receptor, bad option)."""


# ------------------------------------------------------------------------------------ text
@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """Family name of the CJK font used for Chinese text, or None when none can be found.

    The first installed font of :data:`CJK_FONTS`; else the first font file of
    :data:`BUNDLED_CJK_FONTS` whose package is installed, registered with matplotlib's font
    manager (for this process) and then looked up again in :data:`CJK_FONTS`.
    """
    from importlib import resources

    from matplotlib import font_manager

    def installed() -> str | None:
        names = {f.name for f in font_manager.fontManager.ttflist}
        return next((name for name in CJK_FONTS if name in names), None)

    if found := installed():
        return found
    for package, rel in BUNDLED_CJK_FONTS:
        try:
            path = resources.files(package).joinpath(rel)
        except ModuleNotFoundError:
            continue
        if path.is_file():
            font_manager.fontManager.addfont(str(path))
            if found := installed():
                return found
    return None


def display_text(text: str | None, fallback: str) -> str:
    """``text`` when it can be drawn (no CJK characters, or a CJK font is found), else ``fallback``.

    Falling back warns (:class:`CJKFontWarning`), so Chinese never turns into English silently.
    """
    if not text:
        return fallback
    if _CJK.search(text) and cjk_font() is None:
        warnings.warn(f"no CJK font found (see hydrology.plotting.CJK_FONTS; pip install paperang-p2-fonts-cjk or "
                      f"apt-get install fonts-noto-cjk): {text!r} drawn as {fallback!r}", CJKFontWarning, stacklevel=2)
        return fallback
    return text


def _rc() -> Any:
    families = ["DejaVu Sans"] + ([cjk_font()] if cjk_font() else [])
    return {"font.family": families, "font.size": 9, "axes.titlesize": 10, "savefig.dpi": DPI}


def _say(key: str, lang: Lang, fallback_lang: Lang = "en", **kw: Any) -> str:
    """A figure text in ``lang``; Chinese falls back to English (with a warning) when no CJK font exists."""
    if lang == "zh":
        return display_text(_text(key, "zh", **kw), _text(key, fallback_lang, **kw))
    return _text(key, lang, **kw)


def _figure(width_in: float, height_in: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")


# ------------------------------------------------------------------------------------ map
def _isochrone_step(max_h: float, step_h: float | None) -> float:
    if step_h is not None:
        if not (step_h > 0 and math.isfinite(step_h)):
            raise PlottingError(f"isochrone step must be a positive number of hours, got {step_h}")
        return step_h
    return next((s for s in ISOCHRONE_STEPS_H if max_h / s <= 8), ISOCHRONE_STEPS_H[-1])


def _release_label(net: RiverNetwork, fc: Forecast, lang: Lang = "en") -> str:
    rel = fc.release
    at = [d.id for d in net.dischargers.values() if d.reach == rel.reach and abs(d.chainage_m - rel.chainage_m) < 1e-6]
    where = at[0] if at else f"{rel.reach} +{rel.chainage_m:g} m"
    return _say("release", lang, mass=rel.total_mass_kg, pol=_pollutant(rel.pollutant.name, lang), where=where)


def _threshold_text(arr: xr.Dataset, lang: Lang = "en") -> str:
    levels = np.unique(np.asarray(arr["threshold_g_m3"].values, float)[1:])  # [0] is the release point
    if levels.size == 1 and np.isfinite(levels[0]):
        return _text("thr_level", lang, v=levels[0])
    if np.all(np.isnan(levels)):
        return _say("thr_share", lang, share=f"{EDGE_FRACTION_OF_PEAK:.0%}")
    return _say("thr_any", lang)


def _arrival_segments(net: RiverNetwork, lines: dict[str, np.ndarray], arr: xr.Dataset, step: float) -> tuple[
        list[np.ndarray], list[float], list[np.ndarray], list[tuple[np.ndarray, np.ndarray, float]]]:
    """Sub-segments of the reaches below the release: (coloured, their arrival [h], below threshold, ticks).

    Arrival is interpolated linearly in chainage between the sample points of ``arr``; a tick
    (position, local direction, hours) is placed wherever the arrival crosses a multiple of ``step``.
    """
    a_reach = np.asarray(arr["reach"].values).astype(str)
    a_chain = np.asarray(arr["chainage_m"].values, float)
    a_hours = np.asarray(arr["arrival_s"].values, float) / HOUR
    segs, seg_h, ticks = [], [], []
    below: list[np.ndarray] = []
    for rid, line in lines.items():
        idx = np.flatnonzero(a_reach == rid)
        if idx.size == 0:
            continue
        order = idx[np.argsort(a_chain[idx])]
        fr, hr = a_chain[order] / net.reaches[rid].length_m, a_hours[order]
        ok = np.isfinite(hr)
        f_v = np.linspace(fr.min(), 1.0, SEGMENTS_PER_REACH + 1)
        xy = gis.point_on_line(line, f_v)
        h_v = np.interp(f_v, fr[ok], hr[ok], left=np.nan, right=np.nan) if ok.sum() >= 2 else np.full(f_v.size, np.nan)
        run: list[np.ndarray] = []  # consecutive sub-segments below the threshold, drawn as one dashed line
        for k in range(SEGMENTS_PER_REACH):
            seg = xy[k:k + 2]
            if not (np.isfinite(h_v[k]) and np.isfinite(h_v[k + 1])):
                run = (run or [seg[0]]) + [seg[1]]
                if k == SEGMENTS_PER_REACH - 1 or np.all(np.isfinite(h_v[k + 1:k + 3])):
                    below, run = below + [np.array(run)], []
                continue
            segs.append(seg)
            seg_h.append(0.5 * (h_v[k] + h_v[k + 1]))
            lo, hi = sorted((h_v[k], h_v[k + 1]))
            for m in range(int(np.floor(lo / step)) + 1, int(np.floor(hi / step)) + 1):
                w = (m * step - h_v[k]) / (h_v[k + 1] - h_v[k])
                ticks.append((seg[0] + w * (seg[1] - seg[0]), seg[1] - seg[0], m * step))
    return segs, seg_h, below, ticks


def plot_isochrones(net: RiverNetwork, forecast: Forecast, path: str | Path, *, title: str | None = None,
                    isochrone_step_h: float | None = None, arrivals: xr.Dataset | None = None,
                    wind_ms: float = 0.0, lang: Lang = "en") -> Path:
    """Map of the network with reaches coloured by the plume's leading-edge arrival time.

    Parameters
    ----------
    net : RiverNetwork
        The network (reach ``geometry`` or node x/y give the map; the CRS decides the aspect).
    forecast : Forecast
        A forecast from the release (either engine); its release and, when given, threshold are used.
    path : str or Path
        PNG to write.
    title : str, optional
        Figure title (default: network name, isochrone spacing and release time).
    isochrone_step_h : float, optional
        Spacing of the labelled isochrones [h] (default: the first of :data:`ISOCHRONE_STEPS_H`
        giving at most 8 isochrones).
    arrivals : xr.Dataset, optional
        Precomputed :func:`hydrology.gis_output.reach_arrivals` (default: computed here).
    wind_ms : float
        Along-stream wind [m/s] for floating pollutants (when the arrivals are computed here).
    lang : {"en", "zh"}
        Language of titles, labels and legend (see the module docstring for the Chinese font).

    Returns
    -------
    Path
        The PNG written.

    Raises
    ------
    PlottingError
        When a reach has neither geometry nor node coordinates.
    """
    import matplotlib
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    raw = {rid: gis.reach_line(net, rid) for rid in net.reaches}
    missing = [rid for rid, ln in raw.items() if ln is None]
    if missing:
        raise PlottingError(f"reach {missing[0]!r} has neither geometry nor node x/y ({len(missing)} reach(es) in all): "
                            "nothing to draw it with")
    lines = cast("dict[str, np.ndarray]", raw)
    arr = arrivals if arrivals is not None else gis.arrivals_from_forecast(net, forecast, wind_ms=wind_ms)
    hours = np.asarray(arr["arrival_s"].values, float) / HOUR
    max_h = float(np.nanmax(hours)) if np.any(np.isfinite(hours)) else 1.0
    step = _isochrone_step(max_h, isochrone_step_h)
    segs, seg_h, below, ticks = _arrival_segments(net, lines, arr, step)
    _check_lang(lang)
    thr = _threshold_text(arr, lang)
    with matplotlib.rc_context(_rc()):
        fig = _figure(10.0, 8.0)
        ax = fig.add_subplot()
        ax.add_collection(LineCollection(list(lines.values()), colors="#b8c4cc", linewidths=1.6, zorder=1))
        if below:
            ax.add_collection(LineCollection(below, colors="#4d4d4d", linewidths=2.2, linestyles=(0, (2, 2)), zorder=2))
        lc = LineCollection(segs, array=np.asarray(seg_h), cmap="viridis", linewidths=4.5, zorder=3, capstyle="round",
                            norm=matplotlib.colors.Normalize(0.0, max(max_h, step)))
        ax.add_collection(lc)
        fig.colorbar(lc, ax=ax, shrink=0.8, pad=0.01).set_label(_say("arrival_bar", lang, thr=thr))
        _isochrone_ticks(ax, ticks, step)
        handles = _features(ax, net, lang)
        rel = forecast.release
        p = gis.feature_point(net, rel.reach, rel.chainage_m)
        if p is not None:
            ax.scatter([p[0]], [p[1]], marker="*", s=380, c="#d7301f", edgecolors="black", linewidths=0.8, zorder=8)
            handles.insert(0, Line2D([], [], marker="*", ls="", ms=15, mfc="#d7301f", mec="black",
                                     label=_release_label(net, forecast, lang)))
        handles.append(Line2D([], [], color="#b8c4cc", lw=1.6, label=_say("not_reached", lang)))
        if below:
            handles.append(Line2D([], [], color="#4d4d4d", lw=2.2, ls=(0, (2, 2)), label=_say("never", lang, thr=thr)))
        ax.legend(handles=handles, loc="best", fontsize=8, framealpha=0.9)
        allxy = np.vstack(list(lines.values()))
        if gis.crs_is_geographic(net):
            ax.set_aspect(1.0 / math.cos(math.radians(float(np.mean(allxy[:, 1])))))
            ax.set(xlabel=_say("lon", lang), ylabel=_say("lat", lang))
        else:
            ax.set_aspect("equal")
            unit = gis.crs_axis_unit(net)
            ax.set(xlabel=f"x [{unit}]", ylabel=f"y [{unit}]")
        pad = 0.05 * max(np.ptp(allxy[:, 0]), np.ptp(allxy[:, 1]), 1e-9)
        ax.set(xlim=(allxy[:, 0].min() - pad, allxy[:, 0].max() + pad),
               ylim=(allxy[:, 1].min() - pad, allxy[:, 1].max() + pad))
        ax.grid(True, lw=0.3, alpha=0.5)
        when = _local(rel.start, network_zone(net))
        name = display_text(net.name, _text("network", "en")) if net.name else _say("network", lang)
        default = (_say("map_title", lang, net=name, step=step)
                   + ("\n" + _say("released_at", lang, when=when) if when else ""))
        ax.set_title(display_text(title, default) if title else default)
        out = Path(path)
        fig.savefig(out, format="png")
    return out


def _isochrone_ticks(ax: Axes, ticks: list[tuple[np.ndarray, np.ndarray, float]], step: float) -> None:
    """A short bar across the river and an "N h" label at each isochrone crossing."""
    half = 0.012 * max(np.ptp(ax.dataLim.intervalx), np.ptp(ax.dataLim.intervaly), 1e-9)
    placed: list[np.ndarray] = []
    for xy, d, h in ticks:
        n = np.array([-d[1], d[0]]) / max(float(np.hypot(*d)), 1e-300)
        ax.plot(*np.column_stack([xy - half * n, xy + half * n]), color="black", lw=1.4, zorder=6)
        at = xy + 2.2 * half * n
        if any(np.hypot(*(at - q)) < 3.0 * half for q in placed):
            at = xy - 2.2 * half * n  # a label already sits there: use the other bank
        placed.append(at)
        ax.annotate(f"{h:g} h" if step >= 1 else f"{h * 60:g} min", tuple(xy), xytext=tuple(at), fontsize=8,
                    ha="center", va="center", zorder=7,
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})


def _features(ax: Axes, net: RiverNetwork, lang: Lang = "en") -> list[Any]:
    """Scatter every located feature by kind; label them; return legend handles."""
    from matplotlib.lines import Line2D

    handles = []
    for kind, (marker, colour, size, _label) in MARKERS.items():
        coll = net.features.get(kind, {})  # type: ignore[call-overload]
        pts = [(f, p) for f in coll.values() for p in [gis.feature_point(net, f.reach, f.chainage_m)] if p is not None]
        if not pts:
            continue
        xy = np.array([p for _f, p in pts])
        ax.scatter(xy[:, 0], xy[:, 1], marker=marker, s=size, c=colour, edgecolors="black", linewidths=0.6,
                   zorder=5 if kind != "discharger" else 4)
        for f, p in pts:
            if kind == "discharger":
                continue  # many and minor: marked, not labelled
            text = f.id
            if kind == "intake" and f.get("population") is not None:
                text += "\n" + _say("people", lang, n=int(f.get("population")))
            ax.annotate(text, tuple(p), xytext=(6, 6), textcoords="offset points", fontsize=7, color=colour, zorder=7,
                        bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7})
        handles.append(Line2D([], [], marker=marker, ls="", ms=8 if kind != "discharger" else 6, mfc=colour,
                              mec="black", label=_say(kind, lang)))
    return handles


def _local(start: datetime | None, tz: ZoneInfo) -> str | None:
    """The release start with date, time and zone (``2025-05-01 08:00 EDT (UTC-04:00, America/New_York)``);
    Latin letters only, so that it draws without a CJK font."""
    return None if start is None else markdown_time(start, tz)


# ------------------------------------------------------------------------------------ curves
def _marks(t: np.ndarray, y: np.ndarray, level: float | None) -> tuple[float | None, float, float, float | None]:
    """Arrival, peak time, peak and end of a sampled curve: the rule of the forecast engines.

    Arrival and end are the first and last crossings of the level (linear interpolation); without
    a level they are at :data:`~hydrology.transport.analytic.EDGE_FRACTION_OF_PEAK` of the peak.
    """
    i = int(np.argmax(y))
    peak_t, peak_c = float(t[i]), float(y[i])
    cut = level if level is not None else EDGE_FRACTION_OF_PEAK * peak_c
    above = np.flatnonzero(y >= cut)
    if peak_c <= 0 or above.size == 0:
        return None, peak_t, peak_c, None
    a, e = above[0], above[-1]
    arrival = float(t[a] if a == 0 else np.interp(cut, [y[a - 1], y[a]], [t[a - 1], t[a]]))
    end = None if e == y.size - 1 else float(np.interp(cut, [y[e + 1], y[e]], [t[e + 1], t[e]]))
    return arrival, peak_t, peak_c, end


def _window(t: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Time range where the curve is above 0.1 % of its peak, padded by 15 % each side [s]."""
    big = np.flatnonzero(y >= 1e-3 * np.max(y)) if np.max(y) > 0 else np.arange(t.size)
    lo, hi = float(t[big[0]]), float(t[big[-1]])
    pad = 0.15 * max(hi - lo, 1.0)
    return max(float(t[0]), lo - pad), min(float(t[-1]), hi + pad)


def _select(ids: list[str], receptors: Sequence[str] | None, lang: Lang = "en") -> tuple[list[int], str]:
    if receptors is None:
        more = _say("more", lang, k=MAX_PANELS, n=len(ids)) if len(ids) > MAX_PANELS else ""
        return list(range(min(len(ids), MAX_PANELS))), more
    unknown = [r for r in receptors if r not in ids]
    if unknown:
        raise PlottingError(f"receptor(s) {unknown} not in the forecast (it has {ids})")
    return [ids.index(r) for r in receptors], ""


def _panels_forecast(fc: Forecast, receptors: Sequence[str] | None,
                     lang: Lang = "en") -> tuple[list[dict[str, Any]], str, datetime | None]:
    ids = [r.id for r in fc.receptors]
    chosen, note = _select(ids, receptors, lang)
    # the analytic forecast keeps each receptor's curve window end (t_hi) with its closed form
    t_hi = fc._params.get("t_hi")
    if t_hi is None:
        raise PlottingError(f"a {fc.engine!r} forecast carries no closed-form curves: pass its curves Dataset "
                            "(the second result of hydrology.transport.engines.run_engine) instead")
    panels = []
    for i in chosen:
        r = fc.receptors[i]
        t = np.linspace(0.0, float(t_hi[i]), 2000)
        lo, hi = _window(t, fc.curves(t)["concentration"].values[:, i])
        t = np.linspace(lo, hi, 800)
        c = fc.curves(t)["concentration"].values[:, i]
        panels.append({"id": r.id, "kind": r.kind, "distance_m": r.distance_m, "t": t, "c": c,
                       "threshold": r.threshold_g_m3, "basis": r.threshold_basis, "arrival": r.arrival_s,
                       "peak_t": r.peak_s, "peak_c": r.peak_g_m3, "end": r.end_s})
    return panels, note, fc.release.start


def _dataset_start(ds: xr.Dataset) -> tuple[np.ndarray, datetime | None]:
    """Seconds after the release, and the release start when the time axis states a real one."""
    from datetime import UTC

    t = ds["time"].values
    if np.issubdtype(t.dtype, np.datetime64):
        start = t[0].astype("datetime64[s]").astype(datetime).replace(tzinfo=UTC)
        secs = (t - t[0]) / np.timedelta64(1, "s")
    else:
        secs = np.asarray(t, float)
        m = re.match(r"seconds since (\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d)", str(ds["time"].attrs.get("units", "")))
        start = datetime.fromisoformat(m.group(1).replace(" ", "T")).replace(tzinfo=UTC) if m else None
    # hydrology.transport.numerical writes the epoch when the release has no start: that is no start at all
    if start is not None and start.year == 1970 and start.timetuple().tm_yday == 1:
        start = None
    return np.asarray(secs, float), start


def _panels_dataset(ds: xr.Dataset, receptors: Sequence[str] | None,
                    lang: Lang = "en") -> tuple[list[dict[str, Any]], str, datetime | None]:
    if "time_after_release" in ds.dims and "time" not in ds.variables:  # a CF file of a release without start
        ds = ds.rename({"time_after_release": "time"})
    if missing := [v for v in ("concentration", "time", "receptor") if v not in ds.variables]:
        raise PlottingError(f"the dataset has no {missing}: expected forecast curves (time x receptor)")
    ids = [str(v) for v in ds["receptor"].values]
    chosen, note = _select(ids, receptors, lang)
    t, start = _dataset_start(ds)
    conc = np.asarray(ds["concentration"].transpose("time", "receptor").values, float)
    thr = np.asarray(ds["threshold"].values, float) if "threshold" in ds else np.full(len(ids), np.nan)
    kinds = [str(k) for k in ds["kind"].values] if "kind" in ds.variables else ["receptor"] * len(ids)
    basis = [str(b) for b in ds["threshold_basis"].values] if "threshold_basis" in ds.variables else None
    dist = ds["distance_m"].values if "distance_m" in ds.variables else ds["distance"].values if "distance" in ds else None
    panels = []
    for i in chosen:
        level = None if np.isnan(thr[i]) else float(thr[i])
        arrival, pt, pc, end = _marks(t, conc[:, i], level)
        lo, hi = _window(t, conc[:, i])
        keep = (t >= lo) & (t <= hi)
        panels.append({"id": ids[i], "kind": kinds[i], "distance_m": None if dist is None else float(dist[i]),
                       "t": t[keep], "c": conc[keep, i], "threshold": level,
                       "basis": basis[i] if basis else "threshold of the dataset",
                       "arrival": arrival, "peak_t": pt, "peak_c": pc, "end": end})
    return panels, note, start


def plot_breakthrough(forecast_or_dataset: Forecast | xr.Dataset, path: str | Path, *,
                      receptors: Sequence[str] | None = None, title: str | None = None, lang: Lang = "en",
                      timezone: str | None = None) -> Path:
    """Concentration curves at receptors, one panel each, with the threshold and arrival/peak/end.

    Parameters
    ----------
    forecast_or_dataset : Forecast or xr.Dataset
        An analytic :class:`~hydrology.transport.analytic.Forecast` (curves are drawn from its closed form, on
        a grid fitted to each receptor), or a curves Dataset (``Forecast.curves()``, or the result
        of :func:`hydrology.transport.numerical.simulate`, also read back from netCDF) with ``concentration``
        [g/m3] on (time, receptor) and ``threshold`` [g/m3].
    path : str or Path
        PNG to write.
    receptors : sequence of str, optional
        Receptor ids to draw, in this order (default: the nearest :data:`MAX_PANELS`, and the
        figure says how many were left out).
    title : str, optional
        Figure title.
    lang : {"en", "zh"}
        Language of titles, labels and legends.
    timezone : str, optional
        IANA zone of the clock times (the network's ``timezone``; default Asia/Shanghai).

    Returns
    -------
    Path
        The PNG written. Time is in hours after the release start; when the start is known
        (``Release.start``, or a dataset time axis ``seconds since`` a real date) the top axis
        shows local time in ``timezone``, and the title the start with date, time and zone. Arrival and end are marked where the curve crosses
        the threshold (dashed), the peak with its value; for a pollutant without a standard the
        dashed line is at 1 % of the receptor's peak, the edge rule of the engines.
    """
    _check_lang(lang)
    try:
        tz = zone(timezone)
    except ValueError as err:
        raise PlottingError(str(err)) from err
    if isinstance(forecast_or_dataset, Forecast):
        panels, note, start = _panels_forecast(forecast_or_dataset, receptors, lang)
        pollutant = forecast_or_dataset.release.pollutant.name
    else:
        panels, note, start = _panels_dataset(forecast_or_dataset, receptors, lang)
        pollutant = str(forecast_or_dataset.attrs.get("pollutant", "concentration"))
    if lang == "zh" and cjk_font():  # without a CJK font the Chinese name could not be drawn
        pollutant = _pollutant(pollutant, lang)
    if not panels:
        raise PlottingError("no receptor to draw: the forecast has no receptor downstream of the release")
    import matplotlib

    n = len(panels)
    ncols = 1 if n <= 3 else 2
    nrows = math.ceil(n / ncols)
    with matplotlib.rc_context(_rc()):
        fig = _figure(10.0, max(3.4, 2.5 * nrows + 0.8))
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for ax, p in zip(axes.flat, panels, strict=False):
            _panel(ax, p, pollutant, start, tz, lang)
        for ax in list(axes.flat)[n:]:
            ax.set_visible(False)
        head = display_text(title, _text("curves_default", "en")) if title else _say("curves_title", lang, pol=pollutant)
        sep = "，" if lang == "zh" and cjk_font() else ", "
        fig.suptitle(head + (sep + _say("released_at", lang, when=_local(start, tz)) if start else "") + note, fontsize=11)
        fig.savefig(Path(path), format="png")
    return Path(path)


def _panel(ax: Axes, p: dict[str, Any], pollutant: str, start: datetime | None, tz: ZoneInfo, lang: Lang = "en") -> None:
    colour = MARKERS.get(p["kind"], ("o", "#333333", 0.0, ""))[1]
    h = p["t"] / HOUR
    ax.plot(h, p["c"], color=colour, lw=1.8)
    ax.fill_between(h, p["c"], color=colour, alpha=0.12)
    level, peak = p["threshold"], p["peak_c"]
    drawn = level if level is not None else EDGE_FRACTION_OF_PEAK * peak
    label = (_say("standard", lang, v=level, basis=_basis(p["basis"], lang)) if level is not None
             else _say("edge", lang, share=f"{EDGE_FRACTION_OF_PEAK:.0%}"))
    top = 1.25 * max(peak, 1e-12)
    if drawn <= 3.0 * peak:
        ax.axhline(drawn, color="#d7301f", ls="--", lw=1.2, label=label)
        top = max(top, 1.15 * drawn)
    else:
        ax.text(0.99, 0.95, _say("above_axis", lang, label=label), transform=ax.transAxes, ha="right",
                va="top", fontsize=7, color="#d7301f")
    for key, marker, colour in (("arrival", ">", "#1a9850"), ("end", "<", "#762a83")):
        if p[key] is not None:  # where the curve crosses the threshold
            ax.plot([p[key] / HOUR], [drawn], marker=marker, color=colour, ms=8, ls="",
                    label=_say(key, lang, h=p[key] / HOUR))
    ax.plot([p["peak_t"] / HOUR], [peak], marker="o", color="black", ms=5, ls="",
            label=_say("peak", lang, c=peak, h=p["peak_t"] / HOUR))
    dist = "" if p["distance_m"] is None else _say("below_release", lang, km=p["distance_m"] / 1000)
    ax.set(ylim=(0.0, top), xlim=(h[0], h[-1]), xlabel=_say("hours", lang), ylabel=f"{pollutant} [mg/L]")
    kind = _say(p["kind"], lang) if p["kind"] in TEXT else p["kind"]
    ax.set_title(f"{p['id']} ({kind}{dist})" if lang != "zh" or not cjk_font() else f"{p['id']}（{kind}{dist}）",
                 fontsize=9)
    ax.grid(True, lw=0.3, alpha=0.5)
    ax.legend(fontsize=7, loc="best", framealpha=0.85)
    if start is not None:
        _clock_axis(ax, start, tz, lang)


def _check_lang(lang: Lang) -> None:
    if lang not in ("en", "zh"):
        raise PlottingError(f"lang must be 'en' or 'zh', got {lang!r}")


def _clock_axis(ax: Axes, start: datetime, tz: ZoneInfo, lang: Lang = "en") -> None:
    """Local clock time in zone ``tz`` on the top axis, at the bottom axis's tick positions; the label
    names the zone and its UTC offset(s) (two across a daylight-saving change)."""
    sec = ax.secondary_xaxis("top")
    lo, hi = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
    # add in UTC, then convert: wall-clock arithmetic would miss a daylight-saving change in the window
    local = [(start + timedelta(hours=float(t))).astimezone(tz) for t in ticks]
    fmt = "%H:%M" if len({d.date() for d in local}) <= 1 else "%m-%d\n%H:%M"
    sec.set_xticks(ticks, labels=[d.strftime(fmt) for d in local], fontsize=7)
    offsets = "/".join(dict.fromkeys(utc_offset(d, tz) for d in local)) or utc_offset(start, tz)
    sec.set_xlabel(_say("local_time", lang, zone=f"{tz.key}, {offsets}"), fontsize=7)


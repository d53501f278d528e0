"""``rivertrace demo``: the two incidents of the design brief, end to end, on the bundled basins.

For each incident the station readings are replayed (model-generated, see
:mod:`tracer.scenarios`), then the pipeline runs as the service will: detection opens an incident,
attribution ranks the upstream sources, the forecast gives arrival times, and the planner writes
the disposal checklist. Everything printed is computed; the assumptions of the replays are stated
in :mod:`tracer.scenarios` and in the output.
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta
from typing import Any, TextIO

from hydrology.forecast import forecast
from hydrology.oxygen_network import DOConditions
from tracer.detection import detect
from tracer.planner import plan
from tracer.scenarios import PUHE_TEMPERATURE_C, Replay, puhe_replay, ruxi_replay
from tracer.trace import plan_input_from_trace, station_contexts, trace

from .cli import CHINA_TZ

T = {
    "ruxi": ("汝溪河油膜事件回放（梁平区，2025年7月）", "Ruxi river oil film, replayed (Liangping district, July 2025)"),
    "puhe": ("蒲河溶解氧事件回放（綦江区，2025年8月）", "Puhe river low dissolved oxygen, replayed (Qijiang district, August 2025)"),
    "replay": ("回放数据：{d}（模型生成）", "Replayed readings: {d} (model-generated)"),
    "incident": ("检测到事件 {i}：{s}，{p}，自 {t}（{lv}）", "Incident {i}: {s}, {p}, from {t} ({lv})"),
    "cands": ("溯源结果（{m} 模型）：", "Source ranking ({m} model):"),
    "baseline": ("对照：最近上游排污口法会选 {b}", "Baseline, nearest upstream discharger: {b}"),
    "arrivals": ("下游到达预报：", "Downstream arrival forecast:"),
}


def _t(key: str, lang: str) -> str:
    return T[key][0 if lang == "zh" else 1]


def _local(t: Any) -> str:
    return t.astimezone(CHINA_TZ).strftime("%m-%d %H:%M")


def run_incident(rp: Replay, lang: str, out: TextIO, do: DOConditions | None = None) -> None:
    net = rp.network
    det = detect(rp.readings, station_contexts(net))
    for inc in det.incidents:
        print(_t("incident", lang).format(i=inc.id, s=", ".join(inc.station_ids), p=", ".join(inc.parameters),
                                          t=_local(inc.start), lv=inc.level), file=out)
    res = trace(net, rp.readings, rp.station, rp.parameter, do_conditions=do)
    print(_t("cands", lang).format(m=res.model), file=out)
    for rank, c in enumerate(res.candidates[:3], 1):
        size = f"{c.mass_kg:.0f} kg" if c.mass_kg is not None else f"{(c.rate_kg_s or 0) * 1000:.1f} g/s CBOD"
        start = _local(c.release_start) if c.release_start else "-"
        print(f"  {rank}. {c.id:<14} {c.kind:<16} p={c.probability:.2f}  {c.distance_m / 1000:.1f} km  {start}  {size}", file=out)
    print("  " + _t("baseline", lang).format(b=res.nearest_upstream_discharger), file=out)
    inp = plan_input_from_trace(net, rp.readings, res, do_conditions=do)
    if inp.release is not None:
        print(_t("arrivals", lang), file=out)
        fc = forecast(net, inp.release)
        for r in fc.receptors:
            if r.arrival_s is None or inp.release.start is None:
                continue
            arrive = inp.release.start + timedelta(seconds=r.arrival_s)
            after = (arrive - inp.now).total_seconds() / 3600
            print(f"  {r.id:<12} {_local(arrive)}  (+{after:.1f} h)  peak {r.peak_g_m3:.3g} mg/L", file=out)
    print(plan(net, inp).markdown("zh" if lang == "zh" else "en"), file=out)


def run_demo(lang: str = "both", out: TextIO = sys.stdout) -> int:
    """Replay both incidents through detection, attribution, forecast and planning; print them."""
    t0 = time.perf_counter()
    replays = [("ruxi", ruxi_replay(), None), ("puhe", puhe_replay(), DOConditions(temperature_c=PUHE_TEMPERATURE_C))]
    for lg in (("zh", "en") if lang == "both" else (lang,)):
        for key, rp, do in replays:
            print(f"\n======== {_t(key, lg)} ========", file=out)
            print(_t("replay", lg).format(d=rp.description), file=out)
            run_incident(rp, lg, out, do)
    print(f"\n({time.perf_counter() - t0:.1f} s)", file=out)
    return 0

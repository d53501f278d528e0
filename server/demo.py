"""``rivertrace demo``: the two incidents of the design brief on the bundled basins.

Ruxi (Liangping, July 2025): an oil film is seen 2.3 km below a food-processing plant; where does
the oil go and when does it reach the drinking-water intake? Puhe (Qijiang, August 2025): DO below
standard at the Zhaixi Bridge section; what do the two sewage plants do to it, and does a release
from the hydropower station restore it? Every number printed is computed; the assumptions (oil mass,
effluent quality, temperature) are stated in the output.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from hydrology.forecast import Release, forecast
from hydrology.oxygen_network import DOConditions, Effluent, predict_do
from hydrology.pollutants import pollutant

from .cli import CHINA_TZ, load_valid_network

#: assumed grease mass discharged from the grease trap [kg] (the report gives only the ~300 m2 film)
RUXI_OIL_MASS_KG = 80.0
#: assumed time the oil film was seen at the observation point (the report gives July 2025 only)
RUXI_DETECTED = datetime(2025, 7, 15, 10, 0, tzinfo=CHINA_TZ)
PUHE_TEMPERATURE_C = 28.0  # August water temperature (assumption)

T = {
    "ruxi_title": ("汝溪河油膜事件（梁平区，2025年7月）", "Ruxi river oil film (Liangping district, July 2025)"),
    "ruxi_setup": ("假设：食品加工厂隔油池偷排油脂 {m:g} kg；{t} 在观测点发现油膜。",
                   "Assumed: {m:g} kg of grease from the food plant's grease trap; film seen at the observation point at {t}."),
    "cols": (("受体", "类型", "距离km", "到达", "峰值", "结束", "峰值mg/L"),
             ("receptor", "kind", "dist km", "arrives", "peak", "ends", "peak mg/L")),
    "intake": ("取水口石油类预计 {t} 起超过 {c:g} mg/L（发现后 {h:.1f} 小时），{t2} 达峰（{h2:.1f} 小时），影响 {p:,} 人饮水。",
               ("Petroleum at the intake exceeds {c:g} mg/L from {t} ({h:.1f} h after detection) and peaks at {t2} "
                "({h2:.1f} h); {p:,} residents drink from it.")),
    "puhe_title": ("蒲河溶解氧事件（綦江区，2025年8月）", "Puhe river low dissolved oxygen (Qijiang district, August 2025)"),
    "puhe_setup": ("寨溪桥断面目标 III 类（溶解氧 ≥ 5 mg/L），水温 {t:g} ℃。",
                   "Zhaixi Bridge section, class III target (DO >= 5 mg/L), water at {t:g} C."),
    "scen": (("两座污水厂达标排放（一级A）", "两座污水厂超标排放", "超标排放 + 水电站加大下泄至 12 m³/s"),
             ("both sewage plants at class 1A", "both sewage plants exceeding limits", "exceeding + hydropower release of 12 m3/s")),
    "ok": ("达标", "meets class III"),
    "bad": ("不达标", "BELOW class III"),
}


def _t(key: str, lang: str) -> Any:
    return T[key][0 if lang == "zh" else 1]


def _local(t: datetime) -> str:
    return t.astimezone(CHINA_TZ).strftime("%m-%d %H:%M")


def ruxi(out: TextIO, lang: str) -> None:
    net = load_valid_network("demo:ruxi")
    plant = net.dischargers["RX-FOOD-1"]
    oil = pollutant("petroleum")
    probe = forecast(net, Release(plant.reach, plant.chainage_m, oil, mass_kg=RUXI_OIL_MASS_KG))
    # the film was seen when the slick's peak passed the observation point: date the release from it
    start = RUXI_DETECTED - timedelta(seconds=probe.receptor("RX-OILSPOT").peak_s)
    fc = forecast(net, Release(plant.reach, plant.chainage_m, oil, mass_kg=RUXI_OIL_MASS_KG,
                               start=start.astimezone(UTC)))
    print(f"\n== {_t('ruxi_title', lang)} ==", file=out)
    print(_t("ruxi_setup", lang).format(m=RUXI_OIL_MASS_KG, t=_local(RUXI_DETECTED)), file=out)
    cols = _t("cols", lang)
    print(f"{cols[0]:<14}{cols[1]:<8}{cols[2]:>8}{cols[3]:>13}{cols[4]:>13}{cols[5]:>13}{cols[6]:>11}", file=out)
    for r in fc.receptors:
        times = [("-" if s is None else _local(start + timedelta(seconds=s))) for s in (r.arrival_s, r.peak_s, r.end_s)]
        print(f"{r.id:<14}{r.kind:<8}{r.distance_m / 1000:>8.2f}{times[0]:>13}{times[1]:>13}{times[2]:>13}{r.peak_g_m3:>11.3f}",
              file=out)
    intake = fc.receptor("RX-INTAKE")
    if intake.arrival_s is not None:
        at, peak = (start + timedelta(seconds=s) for s in (intake.arrival_s, intake.peak_s))
        print(_t("intake", lang).format(
            t=_local(at), h=(at - RUXI_DETECTED).total_seconds() / 3600, t2=_local(peak),
            h2=(peak - RUXI_DETECTED).total_seconds() / 3600, c=intake.threshold_g_m3,
            p=net.intakes["RX-INTAKE"].get("population")), file=out)


def puhe(out: TextIO, lang: str) -> None:
    net = load_valid_network("demo:puhe")
    cond = DOConditions(temperature_c=PUHE_TEMPERATURE_C)
    plants = ("PH-STP-A", "PH-STP-B")
    q = {p: net.dischargers[p].get("effluent_discharge_m3s") for p in plants}
    compliant = {p: Effluent(q[p], 10.0, 5.0, 2.0) for p in plants}  # GB 18918 class 1A (BOD5 10, NH3-N 5)
    exceeding = {p: Effluent(q[p], 60.0, 25.0, 1.0) for p in plants}  # assumption: poorly treated effluent
    released = net.with_discharges({"PH-R01": 12.0})
    print(f"\n== {_t('puhe_title', lang)} ==", file=out)
    print(_t("puhe_setup", lang).format(t=PUHE_TEMPERATURE_C), file=out)
    for label, n, eff in zip(_t("scen", lang), (net, net, released), (compliant, exceeding, exceeding)):
        do = predict_do(n, eff, cond).stations["PH-ZHAIXI"].do_g_m3
        verdict = _t("ok", lang) if do >= 5.0 else _t("bad", lang)
        print(f"  {label}: DO {do:.2f} mg/L -> {verdict}", file=out)


def run_demo(lang: str = "both", out: TextIO = sys.stdout) -> int:
    """Print both incidents in Chinese and/or English; returns the exit status."""
    for lg in (("zh", "en") if lang == "both" else (lang,)):
        ruxi(out, lg)
        puhe(out, lg)
    return 0

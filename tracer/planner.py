"""Response planning: from an incident (suspects, a plume or a DO sag) to a disposal checklist.

One builder per action kind, in a registry, each returning actions with the arithmetic that
justifies them (rationale in Chinese and English, and the raw ``numbers``):

* ``halt_discharge``: the likely dischargers (posterior >= policy) to the enforcement unit;
* ``interception``: response sites between the source and the first protected intake that can be
  ready before the leading edge (arrival - build time - margin >= now), a primary and a backup,
  floating oil -> booms and dams with absorbents, dissolved -> dams with diversion or dosing;
* ``dilution_release``: for each control structure above the receptor, the extra discharge that
  brings the peak under the standard: the steady-mixing rule Q_add >= Q (C_peak / C_std - 1) for a
  conservative pollutant, then the forecast engine with the added flow (bisection), which is the
  figure used (for a pulse it can need more than the rule: more flow also speeds the plume, leaving
  it less time to disperse); when to start so the water arrives in time; whether capacity suffices;
  for a DO sag, the release that restores DO above the standard;
* ``intake_suspension``: every intake the plume exceeds, from (arrival - margin) to (end + margin);
* ``monitoring``: extra sampling at stations along the path around the predicted arrival; when
  the trace leaves candidates that cannot be told apart, the one grab sample that would split them
  best (``{incident}/grab/...``, :func:`tracer.grab.grab_sample`) and the operations evidence to
  check at each discharger of the group (``{incident}/operations/...``, :func:`tracer.grab.operations_checks`);
* ``notify``: governance centres and local governments owning affected places, downstream
  jurisdictions when the plume crosses into theirs.

Infeasible steps are returned as actions with status ``not_feasible`` and the reason: never silence.
Units: s, m3/s, g/m3, kg; times UTC, written in the network's zone (:mod:`hydrology.timezones`):
rationales say ``2025-05-01 08:00 EDT``, ``numbers`` carry ISO 8601 with the offset.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from hydrology.oxygen import cbod_ultimate_from_bod5
from hydrology.oxygen_network import DOConditions, Effluent, predict_do
from hydrology.pollutants import Pollutant
from hydrology.standards import limit
from hydrology.timezones import iso_local, local_time, network_zone, zone
from hydrology.transport.analytic import Forecast, Release, forecast, route_moments

from .checklist import Action, Checklist, Priority, utc
from .policy import Policy

if TYPE_CHECKING:
    from hydrology.network import Feature, RiverNetwork

    from .grab import GrabSample, OperationsCheck

#: bisection on the added discharge: relative tolerance [-] and iterations
RELEASE_RTOL = 0.01
RELEASE_ITER = 40
SITE_KINDS = {"floating": ("boom", "interception_dam"), "dissolved": ("interception_dam", "dosing"),
              "oxygen_demanding": ("interception_dam", "dosing")}


@dataclass(frozen=True, slots=True)
class Suspect:
    """A likely discharger with its posterior probability and a one-line evidence summary.

    ``evidence`` is English; ``evidence_zh`` its Chinese form. When ``evidence_zh`` is empty the
    Chinese checklist renders the known forms of ``evidence`` (:func:`evidence_zh`), so that no
    English fragment reaches a Chinese reader.
    """

    id: str
    probability: float
    evidence: str = ""
    evidence_zh: str = ""


#: discharger kinds in Chinese (the network document's ``kind`` values)
DISCHARGER_KINDS_ZH = {"sewage_plant": "污水处理厂", "food_processing": "食品加工企业", "industrial_plant": "工业企业",
                       "livestock": "畜禽养殖场", "outfall": "排污口", "chemical_plant": "化工企业",
                       "unregistered": "未登记排放源", "reach": "未登记排放源"}


def evidence_zh(text: str) -> str:
    """Chinese for the evidence lines the tracer writes (``"food_processing, 2.3 km upstream"``, ``"given release"``).

    A form it does not know is returned as the discharger-kind words translated and the rest kept.
    """
    if text == "given release":
        return "已知排放（人工给定）"
    m = re.fullmatch(r"([\w:-]+), ([\d.]+) km upstream", text)
    if m:
        return f"{DISCHARGER_KINDS_ZH.get(m.group(1), m.group(1))}，位于上游 {m.group(2)} km"
    for kind, zh in DISCHARGER_KINDS_ZH.items():
        text = text.replace(kind, zh)
    return text


@dataclass(frozen=True, slots=True)
class DOEvent:
    """A steady DO sag: where, how low, and the load (ultimate CBOD) thought to cause it."""

    station: str
    observed_do_g_m3: float
    source: str  # discharger id (the load's location)
    load_kg_s: float
    conditions: DOConditions = field(default_factory=DOConditions)


@dataclass(frozen=True, slots=True)
class PlanInput:
    """What the planner needs; ``now`` is when the plan is made (detection time) [UTC]."""

    incident: str
    now: datetime
    suspects: tuple[Suspect, ...] = ()
    release: Release | None = None
    do_event: DOEvent | None = None
    #: candidates the trace cannot tell apart (ids; empty or one: nothing to separate)
    undecided: tuple[str, ...] = ()
    #: the grab sample that would split them best, and the operations checks at their dischargers
    grab: GrabSample | None = None
    operations: tuple[OperationsCheck, ...] = ()
    #: intake id -> suspension window [s after the release start] from the forecast bands (P10 arrival - margin
    #: to P90 end, None: not over within the forecast; :func:`hydrology.forecast_bands.suspension_window`); the
    #: suspension covers it as well as the single forecast
    suspension: Mapping[str, tuple[float, float | None]] = field(default_factory=dict)


@dataclass
class _Ctx:
    net: RiverNetwork
    inp: PlanInput
    policy: Policy
    fc: Forecast | None = None
    actions: list[Action] = field(default_factory=list)
    #: the network's zone, in which every time in a rationale is written
    tz: ZoneInfo = field(default_factory=lambda: zone(None))

    def t(self, t: datetime, lang: str = "en") -> str:
        """A time as a duty officer reads it: date, time and zone in the network's zone (``2025-05-01 08:00 EDT``;
        in Chinese ``2025-07-15 09:35 北京时间``)."""
        return local_time(t, self.tz, lang)

    def iso(self, t: datetime) -> str:
        """A time for the machine-readable ``numbers``: ISO 8601 with the network's UTC offset."""
        return iso_local(t, self.tz)

    def at(self, seconds: float | None) -> datetime | None:
        if seconds is None or self.inp.release is None or self.inp.release.start is None:
            return None
        return self.inp.release.start + timedelta(seconds=seconds)


def _h(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def _where(net: RiverNetwork, f: Feature) -> dict[str, Any]:
    return {"reach": f.reach, "chainage_m": f.chainage_m, "name": f.name}


def route_department(net: RiverNetwork, policy: Policy, kind: str, targets: list[str],
                     explicit: str | None = None) -> tuple[str | None, str]:
    """The department for an action: the target's named operator, else the owner with the role,
    else any department with the role (said in the note), else None (said too)."""
    if explicit and explicit in net.departments:
        return explicit, ""
    for role in policy.roles.get(kind, ()):
        with_role = [d for d in net.departments.values() if role in d.roles]
        owners = [d for d in with_role if any(t in d.owns for t in targets)]
        if owners:
            return owners[0].id, ""
        if with_role:
            return with_role[0].id, f" (no {role} department owns {', '.join(targets)}; sent to {with_role[0].id})"
    return None, f" (no department has a role for {kind}: assign one)"


def _add(ctx: _Ctx, kind: str, target: Feature | str, deadline: datetime | None, window: tuple[datetime | None, datetime | None],
         priority: Priority, zh: str, en: str, *, status: str = "pending", explicit: str | None = None,
         numbers: dict[str, Any] | None = None, suffix: str = "", slug: str | None = None) -> None:
    net = ctx.net
    tid = target if isinstance(target, str) else target.id
    targets = [tid] if isinstance(target, str) else [target.id, target.reach]
    dep, note = route_department(net, ctx.policy, kind, targets, explicit)
    loc = {} if isinstance(target, str) else _where(net, target)
    ctx.actions.append(Action(
        id=f"{ctx.inp.incident}/{slug or kind}/{tid}{suffix}", kind=kind, department=dep, target=tid,  # type: ignore[arg-type]
        target_location=loc, deadline=deadline, window_start=window[0], window_end=window[1], priority=priority,
        rationale=(zh + note, en + note), status=status, numbers=numbers or {}))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------- builders
def build_halt(ctx: _Ctx) -> None:
    p = ctx.policy
    chosen = [s for s in ctx.inp.suspects if s.probability >= p.halt_probability][:p.max_halt_orders]
    for s in chosen:
        if s.id not in ctx.net.dischargers:
            continue
        d = ctx.net.dischargers[s.id]
        _add(ctx, "halt_discharge", d, ctx.inp.now + timedelta(seconds=p.halt_within_s), (ctx.inp.now, None),
             "critical" if s.probability >= 0.5 else "high",
             f"溯源概率 {s.probability:.0%}；{s.evidence_zh or evidence_zh(s.evidence)}。立即现场检查，确认后责令停产、封堵排口。",
             f"Source probability {s.probability:.0%}; {s.evidence}. Inspect on site now; if confirmed, order "
             "production halted and the outfall sealed.",
             explicit=d.get("department"), numbers={"probability": s.probability})


def _protected(ctx: _Ctx) -> list[Any]:
    """Intake forecasts with an exceedance, nearest first."""
    assert ctx.fc is not None
    return [r for r in ctx.fc.receptors if r.kind == "intake" and r.arrival_s is not None]


def build_interception(ctx: _Ctx) -> None:
    if ctx.fc is None or ctx.inp.release is None:
        return
    rel, p, now = ctx.inp.release, ctx.policy, ctx.inp.now
    intakes = _protected(ctx)
    limit_t = intakes[0].mean_travel_time_s if intakes else math.inf
    kinds = SITE_KINDS[rel.pollutant.behaviour]
    rows = []
    for r in ctx.fc.receptors:
        if r.kind != "site" or r.mean_travel_time_s >= limit_t or r.arrival_s is None:
            continue
        site = ctx.net.sites[r.id]
        if site.get("kind") not in kinds:
            continue
        arrive = ctx.at(r.arrival_s)
        assert arrive is not None
        ready_by = arrive - timedelta(seconds=p.interception_margin_s)
        start_by = ready_by - timedelta(seconds=float(site.get("build_time_s")))
        rows.append((r, site, arrive, ready_by, start_by, start_by >= now))
    feasible = [row for row in rows if row[5]]
    late = [row for row in rows if not row[5]]
    late_zh = "；".join(f"{s.id} 须于 {ctx.t(sb, 'zh')} 前开工，已错过" for _r, s, _a, _rb, sb, _ok in late)
    late_en = "; ".join(f"{s.id} start by {ctx.t(sb)} passed" for _r, s, _a, _rb, sb, _ok in late)
    backup_note = ((f"无可及时就位的备用点（{late_zh}）。", f" No backup site can be ready in time ({late_en}).")
                   if len(feasible) == 1 else ("", ""))
    for rank, (r, site, arrive, ready_by, start_by, _ok) in enumerate(feasible[:2]):
        role_zh, role_en = ("首选", "primary") if rank == 0 else ("备用", "backup")
        build = float(site.get("build_time_s"))
        how = ("围油栏+吸油毡" if rel.pollutant.behaviour == "floating" else "筑坝拦截+导流/投加活性炭",
               "booms and absorbent pads" if rel.pollutant.behaviour == "floating" else "dam with diversion or activated-carbon dosing")
        _add(ctx, "interception", site, ready_by, (start_by, ctx.at(r.end_s)), "critical" if rank == 0 else "high",
             f"{role_zh}拦截点（{how[0]}）：污染前锋预计 {ctx.t(arrive, 'zh')} 到达，"
             f"减安全余量 {_h(p.interception_margin_s)}、搭建 {_h(build)}，须于 {ctx.t(start_by, 'zh')} 前开工"
             f"（余 {_h((start_by - now).total_seconds())}）。{backup_note[0] if rank == 0 else ''}",
             f"{role_en.capitalize()} site ({how[1]}): leading edge arrives {ctx.t(arrive)}; minus "
             f"{_h(p.interception_margin_s)} margin and {_h(build)} build time, work must start by "
             f"{ctx.t(start_by)} ({_h((start_by - now).total_seconds())} from now).{backup_note[1] if rank == 0 else ''}",
             numbers={"arrival": ctx.iso(arrive), "build_time_s": build, "margin_s": p.interception_margin_s,
                      "start_by": ctx.iso(start_by), "slack_s": (start_by - now).total_seconds(), "role": role_en})
    if not feasible:
        why = "; ".join(f"{s.id}: start by {ctx.t(sb)} is {_h((now - sb).total_seconds())} ago"
                        for _r, s, _a, _rb, sb, _ok in rows) or "no suitable response site between the source and the intake"
        why_zh = "；".join(f"{s.id} 须于 {ctx.t(sb, 'zh')} 前开工，已过 {_h((now - sb).total_seconds())}"
                           for _r, s, _a, _rb, sb, _ok in rows) or "排放源与取水口之间没有合适的应急处置点"
        _add(ctx, "interception", "none", None, (None, None), "critical",
             f"无可及时就位的拦截点：{why_zh}。须加强取水口防护与下游监测。",
             f"No interception site can be ready before the plume: {why}. Protect the intake and monitor downstream.",
             status="not_feasible")


def extra_flow_network(net: RiverNetwork, reach: str, q_add: float) -> RiverNetwork:
    """The network with ``q_add`` [m3/s] more in ``reach`` and everything below it (split by flow at splits), as
    steady flows: a release from a structure in ``reach`` once its water has arrived everywhere below."""
    q = net.steady_discharge
    extra = {reach: q_add}
    for rid in net.reach_order:
        if rid not in extra:
            continue
        downs = net.downstream_reaches(rid)
        total = sum(q[d] for d in downs)
        for d in downs:
            extra[d] = extra.get(d, 0.0) + extra[rid] * (q[d] / total)
    return net.with_discharges({r: q[r] + v for r, v in extra.items()})


def _bisect(f: Callable[[float], bool], hi: float) -> float | None:
    """Smallest x in (0, hi] with f(x) true (f monotone), or None if f(hi) is false."""
    if not f(hi):
        return None
    lo = 0.0
    for _ in range(RELEASE_ITER):
        mid = 0.5 * (lo + hi)
        if f(mid):
            hi = mid
        else:
            lo = mid
        if hi - lo <= RELEASE_RTOL * hi:
            break
    return hi


def build_dilution(ctx: _Ctx) -> None:
    if ctx.inp.do_event is not None:
        _dilution_for_do(ctx)
        return
    if ctx.fc is None or ctx.inp.release is None:
        return
    intakes = _protected(ctx)
    if not intakes:
        return
    rec = intakes[0]
    rel, net, p, now = ctx.inp.release, ctx.net, ctx.policy, ctx.inp.now
    c_std = rec.threshold_g_m3
    for s in net.structures.values():
        if not net.is_upstream(s, net.feature(rec.id)):
            continue
        spare = float(s.get("max_release_m3s", 0.0)) - float(s.get("normal_release_m3s", 0.0))
        rule = rec.discharge_m3s * (rec.peak_g_m3 / c_std - 1.0)

        def peak_ok(q_add: float, s: Feature = s) -> bool:
            n2 = extra_flow_network(net, s.reach, q_add)
            return forecast(n2, rel, kinds=("intake",), threshold_g_m3=c_std).receptor(rec.id).peak_g_m3 <= c_std

        need = _bisect(peak_ok, max(spare, 1e-6))
        full = forecast(extra_flow_network(net, s.reach, max(spare, 1e-6)), rel, kinds=("intake",),
                        threshold_g_m3=c_std).receptor(rec.id).peak_g_m3
        arrive = ctx.at(rec.arrival_s)
        assert arrive is not None
        n_for_time = extra_flow_network(net, s.reach, need if need is not None else max(spare, 1e-6))
        water = next(m for f, _fr, _x, m, _v in route_moments(n_for_time, n_for_time.reach_state(), s.reach, s.chainage_m,
                                                              Pollutant("tracer"), ("intake",)) if f.id == rec.id)
        start_by = arrive - timedelta(seconds=p.release_margin_s + water)
        nums = {"receptor": rec.id, "receptor_discharge_m3s": rec.discharge_m3s, "peak_g_m3": rec.peak_g_m3,
                "standard_g_m3": c_std, "rule_q_add_m3s": rule, "engine_q_add_m3s": need, "spare_capacity_m3s": spare,
                "water_travel_s": water, "start_by": ctx.iso(start_by), "peak_at_full_release_g_m3": full}
        basis_zh = f"{rec.id} 流量 {rec.discharge_m3s:.1f} m³/s、峰值 {rec.peak_g_m3:.3g} mg/L、标准 {c_std:g} mg/L：稳态混合公式 Q(C峰/C标−1) = {rule:.1f} m³/s"
        basis_en = (f"at {rec.id} Q {rec.discharge_m3s:.1f} m3/s, peak {rec.peak_g_m3:.3g} mg/L, standard {c_std:g} mg/L: "
                    f"steady-mixing rule Q (C_peak/C_std - 1) = {rule:.1f} m3/s")
        if need is None:
            _add(ctx, "dilution_release", s, None, (now, None), "medium",
                 f"{basis_zh}；按预报模型即使满负荷增泄 {spare:.1f} m³/s 峰值也只降至 {full:.3g} mg/L，不能达标；仍可削峰。",
                 f"{basis_en}; with the forecast engine even the full spare capacity ({spare:.1f} m3/s) only lowers "
                 f"the peak to {full:.3g} mg/L, above the standard; a release still helps.",
                 status="not_feasible", explicit=s.get("operator"), numbers=nums)
            continue
        late = start_by < now
        _add(ctx, "dilution_release", s, start_by, (start_by, ctx.at(rec.end_s)), "high",
             f"{basis_zh}；预报模型求得需增泄 {need:.1f} m³/s（富余 {spare:.1f}），水流到达需 {_h(water)}，"
             f"须于 {ctx.t(start_by, 'zh')} 前开始" + ("（已来不及在前锋前到达）" if late else "") + "。",
             f"{basis_en}; the forecast engine needs {need:.1f} m3/s more (spare {spare:.1f}); the water takes {_h(water)} "
             f"to arrive, so start by {ctx.t(start_by)}" + (" (too late to precede the leading edge)" if late else "") + ".",
             status="not_feasible" if late else "pending", explicit=s.get("operator"), numbers=nums)


def _dilution_for_do(ctx: _Ctx) -> None:
    ev, net, p, now = ctx.inp.do_event, ctx.net, ctx.policy, ctx.inp.now
    assert ev is not None
    st = net.feature(ev.station, "station")
    std = float(limit("DO", st.get("target_class") or "III").value_g_m3)  # type: ignore[arg-type]
    src = net.dischargers[ev.source]
    q_eff = float(src.get("effluent_discharge_m3s") or 0.1)
    cbod = ev.load_kg_s * 1000.0 / q_eff
    k1 = ev.conditions.bottle_k1_per_s
    bod5 = cbod / float(cbod_ultimate_from_bod5(1.0, k1))
    eff = {ev.source: Effluent(q_eff, bod5, 0.12 * cbod, 1.0)}
    base = predict_do(net, eff, ev.conditions).stations[ev.station].do_g_m3
    target = std + p.do_target_margin_g_m3
    for s in net.structures.values():
        if not net.is_upstream(s, st):
            continue
        spare = float(s.get("max_release_m3s", 0.0)) - float(s.get("normal_release_m3s", 0.0))

        def do_ok(q_add: float, s: Feature = s) -> bool:
            gain = predict_do(extra_flow_network(net, s.reach, q_add), eff, ev.conditions).stations[ev.station].do_g_m3 - base
            return ev.observed_do_g_m3 + gain >= target

        need = _bisect(do_ok, max(spare, 1e-6))
        nums = {"station": ev.station, "observed_do_g_m3": ev.observed_do_g_m3, "standard_g_m3": std, "target_g_m3": target,
                "engine_q_add_m3s": need, "spare_capacity_m3s": spare, "load_kg_s": ev.load_kg_s}
        if need is None:
            _add(ctx, "dilution_release", s, None, (now, None), "medium",
                 f"{ev.station} 实测溶解氧 {ev.observed_do_g_m3:.2f} mg/L；满负荷增泄 {spare:.1f} m³/s 仍不能恢复到 {target:.1f} mg/L。",
                 f"DO at {ev.station} is {ev.observed_do_g_m3:.2f} mg/L; even the full spare {spare:.1f} m3/s does not restore "
                 f"{target:.1f} mg/L.", status="not_feasible", explicit=s.get("operator"), numbers=nums)
            continue
        _add(ctx, "dilution_release", s, now + timedelta(seconds=p.halt_within_s), (now, None), "high",
             f"{ev.station} 实测溶解氧 {ev.observed_do_g_m3:.2f} mg/L（标准 {std:g}）；Streeter-Phelps 模型求得增泄 {need:.1f} m³/s "
             f"（富余 {spare:.1f}）可恢复至 {target:.1f} mg/L 以上，持续至排放源整改完成。",
             f"DO at {ev.station} is {ev.observed_do_g_m3:.2f} mg/L (standard {std:g}); the Streeter-Phelps network model "
             f"needs {need:.1f} m3/s more (spare {spare:.1f}) to restore {target:.1f} mg/L; keep it until the source is fixed.",
             explicit=s.get("operator"), numbers=nums)


def build_intakes(ctx: _Ctx) -> None:
    if ctx.fc is None:
        return
    p, now = ctx.policy, ctx.inp.now
    for r in _protected(ctx):
        intake = ctx.net.intakes[r.id]
        arrive, end = ctx.at(r.arrival_s), ctx.at(r.end_s)
        assert arrive is not None
        start = max(arrive - timedelta(seconds=p.intake_margin_s), now)
        stop = (end + timedelta(seconds=p.intake_margin_s)) if end is not None else None
        band = ctx.inp.suspension.get(r.id)
        if band is not None:  # cover the band too: from its P10 arrival to its P90 end
            b_start, b_stop = ctx.at(band[0]), ctx.at(band[1])
            start = max(min(start, b_start), now) if b_start is not None else start
            stop = None if stop is None or band[1] is None else max(stop, b_stop) if b_stop is not None else stop
        already = arrive <= now
        pop = intake.get("population") or 0
        _add(ctx, "intake_suspension", intake, start, (start, stop), "critical",
             f"污染物预计 {ctx.t(arrive, 'zh')} 到达取水口（峰值 {r.peak_g_m3:.3g} mg/L，标准 {r.threshold_g_m3:g}），"
             f"停止取水至 {ctx.t(stop, 'zh') if stop else '另行通知'}，影响 {pop:,} 人；通知水厂并向公众发布。"
             + ("污染已到达，立即停止取水。" if already else ""),
             f"Plume reaches the intake {ctx.t(arrive)} (peak {r.peak_g_m3:.3g} mg/L, standard "
             f"{r.threshold_g_m3:g}); stop intake until {ctx.t(stop) if stop else 'further notice'}; "
             f"{pop:,} people served; notify the water utility and the public." + (" The plume is already there: stop now." if already else ""),
             explicit=intake.get("operator"),
             numbers={"arrival": ctx.iso(arrive), "end": ctx.iso(end) if end else None, "peak_g_m3": r.peak_g_m3,
                      "margin_s": p.intake_margin_s, "population": pop})


def build_monitoring(ctx: _Ctx) -> None:
    p = ctx.policy
    if ctx.fc is not None:
        for r in ctx.fc.receptors:
            if r.kind != "station" or r.arrival_s is None:
                continue
            arrive, end = ctx.at(r.arrival_s), ctx.at(r.end_s if r.end_s is not None else r.peak_s)
            assert arrive is not None and end is not None
            ws = max(arrive - timedelta(seconds=p.monitoring_lead_s), ctx.inp.now)
            we = end + timedelta(seconds=p.monitoring_lag_s)
            _add(ctx, "monitoring", ctx.net.stations[r.id], ws, (ws, we), "medium",
                 f"预计 {ctx.t(arrive, 'zh')} 到达、{ctx.t(ctx.at(r.peak_s), 'zh')} 达峰"  # type: ignore[arg-type]
                 f"（{r.peak_g_m3:.3g} mg/L）：加密采样以校核预报。",
                 f"Predicted arrival {ctx.t(arrive)}, peak {r.peak_g_m3:.3g} mg/L: sample more often "
                 "to confirm or correct the forecast.")
    if ctx.inp.do_event is not None:
        ev = ctx.inp.do_event
        _add(ctx, "monitoring", ctx.net.stations[ev.station], ctx.inp.now + timedelta(seconds=p.monitoring_lead_s),
             (ctx.inp.now, None), "medium", "溶解氧加密监测（含夜间），直至连续达标。",
             "Monitor DO more often (including at night) until it is back above the standard.")
    build_separation(ctx)


def build_separation(ctx: _Ctx) -> None:
    """The grab sample and the operations checks that would tell undecided candidates apart."""
    inp, p = ctx.inp, ctx.policy
    if len(inp.undecided) < 2:
        return
    names = ", ".join(inp.undecided)
    names_zh = "、".join(f"{u.split(':', 1)[1]} 河段未登记排放源" if u.startswith("reach:") else u for u in inp.undecided)
    g = inp.grab
    if g is not None and g.gain_nats >= p.grab_min_gain_nats:
        where = g.site_name or g.site or f"{g.reach} {g.chainage_m:.0f} m"
        tid = g.site or f"{g.reach}@{g.chainage_m:.0f}"
        pred = ", ".join(f"{k} {v:.3g}" for k, v in g.predicted_mg_l.items())
        half = timedelta(minutes=15)
        ctx.actions.append(Action(
            id=f"{inp.incident}/grab/{tid}", kind="monitoring", department=route_department(ctx.net, p, "monitoring", [tid, g.reach])[0],
            target=tid, target_location={"reach": g.reach, "chainage_m": g.chainage_m, "name": g.site_name},
            deadline=g.time, window_start=g.time - half, window_end=g.time + half, priority="high",
            rationale=((f"无法区分的嫌疑源：{names_zh}。请于 {ctx.t(g.time, 'zh')} 在 {g.site or '河段上'}（{g.reach} 河段 {g.chainage_m:.0f} m 处）"
                       f"采集一个水样：各嫌疑源的预测浓度（mg/L）为 {pred}，预期信息增益 {g.gain_nats:.2f} 奈特。"),
                       (f"Candidates that cannot be told apart: {names}. Take one grab sample at {where} (reach {g.reach}, "
                       f"{g.chainage_m:.0f} m) at {ctx.t(g.time)}: predicted mg/L {pred}; expected information gain "
                       f"{g.gain_nats:.2f} nats.")),
            numbers={"time": ctx.iso(g.time), "gain_nats": g.gain_nats, "predicted_mg_l": dict(g.predicted_mg_l),
                     "weights": dict(g.weights), "sigma_mg_l": g.sigma_mg_l}))
    for chk in inp.operations:
        target = ctx.net.dischargers.get(chk.discharger)
        _add(ctx, "monitoring", target if target is not None else chk.discharger, inp.now + timedelta(seconds=p.monitoring_lead_s),
             (inp.now, None), "high", f"{chk.zh}（无法区分：{names_zh}）", f"{chk.en} (cannot be told apart: {names})",
             explicit=target.get("department") if target is not None else None, slug="operations")


def build_notify(ctx: _Ctx) -> None:
    net, p, now = ctx.net, ctx.policy, ctx.inp.now
    affected: set[str] = set()
    source_reach = None
    if ctx.inp.release is not None:
        source_reach = ctx.inp.release.reach
        affected |= {source_reach}
        if ctx.fc is not None:
            affected |= {r.reach for r in ctx.fc.receptors if r.arrival_s is not None} | {r.id for r in ctx.fc.receptors if r.arrival_s is not None}
    if ctx.inp.do_event is not None:
        st = net.feature(ctx.inp.do_event.station)
        affected |= {st.id, st.reach}
        source_reach = source_reach or net.feature(ctx.inp.do_event.source).reach
    affected |= {s.id for s in ctx.inp.suspects}
    roles = set(p.roles.get("notify", ()))
    for d in net.departments.values():
        if not (roles & set(d.roles)) or not (set(d.owns) & affected):
            continue
        downstream = source_reach is not None and source_reach not in d.owns
        places = ", ".join(sorted(set(d.owns) & affected))
        if ctx.inp.do_event is not None:
            zh = f"辖区 {ctx.inp.do_event.station} 断面溶解氧不达标（{ctx.inp.do_event.observed_do_g_m3:.2f} mg/L），请组织协调处置。"
            en = (f"Dissolved oxygen at {ctx.inp.do_event.station} is below standard "
                  f"({ctx.inp.do_event.observed_do_g_m3:.2f} mg/L); coordinate the response.")
        elif downstream:
            zh, en = "污染团将进入贵辖区，请做好应对。", "The plume will cross into your jurisdiction; prepare."
        else:
            zh, en = "辖区内发生水污染事件，请组织协调处置。", "A pollution incident in your area; coordinate the response."
        _add(ctx, "notify", d.id, now + timedelta(seconds=p.notify_within_s), (now, None), "high",
             f"{zh}（涉及：{places}）", f"{en} (affected: {places})", explicit=d.id)


BUILDERS: dict[str, Callable[[_Ctx], None]] = {
    "halt_discharge": build_halt, "interception": build_interception, "dilution_release": build_dilution,
    "intake_suspension": build_intakes, "monitoring": build_monitoring, "notify": build_notify,
}


def plan(net: RiverNetwork, inp: PlanInput, policy: Policy | None = None) -> Checklist:
    """The disposal checklist for an incident (see module doc)."""
    pol = policy or Policy()
    inp = replace(inp, now=utc(inp.now))
    ctx = _Ctx(net, inp, pol, tz=network_zone(net))
    if inp.release is not None:
        if inp.release.start is None:
            raise ValueError("the release needs a start time to plan against")
        ctx.fc = forecast(net, inp.release, kinds=("station", "intake", "site"))
    for build in BUILDERS.values():
        build(ctx)
    deps = {d.id: (d.name, d.name_en) for d in net.departments.values()}
    n_dep = len({a.department for a in ctx.actions if a.department})
    summary = (f"共 {len(ctx.actions)} 项处置措施，涉及 {n_dep} 个部门。", f"{len(ctx.actions)} actions for {n_dep} departments.")
    return Checklist(inp.incident, inp.now, tuple(ctx.actions), summary, deps, timezone=ctx.tz.key)

"""Disposal checklist: the two reference incidents, properties, and infeasible situations."""

import json
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hydrology.oxygen_network import DOConditions
from hydrology.pollutants import pollutant
from hydrology.transport.analytic import Release, forecast
from tracer.planner import PlanInput, Suspect, plan
from tracer.policy import Policy, PolicyError, load_policy
from tracer.scenarios import RUXI_RELEASE_START, demo_network, puhe_replay, ruxi_replay
from tracer.trace import plan_input_from_trace, trace

KINDS = {"halt_discharge", "interception", "dilution_release", "intake_suspension", "monitoring", "notify"}


@pytest.fixture(scope="module")
def ruxi_plan():
    r = ruxi_replay(seed=5)
    res = trace(r.network, r.readings, r.station, r.parameter)
    inp = plan_input_from_trace(r.network, r.readings, res)
    return r.network, inp, plan(r.network, inp)


def test_ruxi_checklist(ruxi_plan):
    net, inp, cl = ruxi_plan
    halts = cl.by_kind("halt_discharge")
    assert [a.target for a in halts] == ["RX-FOOD-1"] and halts[0].department == "LP-EEB"
    # an interception site that can be ready before the oil arrives, with the arithmetic
    (site,) = [a for a in cl.by_kind("interception") if a.status == "pending"][:1]
    n = site.numbers
    assert n["slack_s"] >= 0 and "build time" in site.rationale[1] and "margin" in site.rationale[1]
    # the dilution release is sized by the rule Q (C_peak / C_std - 1), here infeasible, and says why
    (dil,) = cl.by_kind("dilution_release")
    rule = dil.numbers["receptor_discharge_m3s"] * (dil.numbers["peak_g_m3"] / dil.numbers["standard_g_m3"] - 1)
    assert dil.numbers["rule_q_add_m3s"] == pytest.approx(rule)
    assert dil.status == "not_feasible" and "lowers the peak" in dil.rationale[1]
    # the intake window contains the predicted arrival, about 6 hours after detection
    (intake,) = cl.by_kind("intake_suspension")
    fc = forecast(net, inp.release, kinds=("intake",))
    arrival = inp.release.start + timedelta(seconds=fc.receptor("RX-INTAKE").arrival_s)
    peak = inp.release.start + timedelta(seconds=fc.receptor("RX-INTAKE").peak_s)
    assert intake.window_start <= arrival <= peak <= intake.window_end
    assert 4.5 <= (peak - inp.now).total_seconds() / 3600 <= 6.5  # leading edge ~5 h, peak ~6 h after detection
    assert len({a.department for a in cl.actions if a.department}) >= 5
    assert {a.kind for a in cl.actions} == KINDS


def test_puhe_checklist():
    r = puhe_replay(seed=5)
    cond = DOConditions(temperature_c=28.0)
    res = trace(r.network, r.readings, r.station, "DO", do_conditions=cond)
    cl = plan(r.network, plan_input_from_trace(r.network, r.readings, res, do_conditions=cond))
    assert {a.target for a in cl.by_kind("halt_discharge")} == {"PH-STP-A", "PH-STP-B"}
    (rel,) = cl.by_kind("dilution_release")
    assert rel.target == "PH-HPS" and rel.status == "pending" and rel.department == "QJ-HPS"
    assert 0 < rel.numbers["engine_q_add_m3s"] <= rel.numbers["spare_capacity_m3s"]
    notified = {a.department for a in cl.by_kind("notify")}
    assert {"QJ-WRB", "QJ-TWN", "QJ-GRC"} <= notified  # water resources, township, grassroots centre


def _known(net, discharger, mass, pol="NH3-N", now_after_s=0.0):
    d = net.dischargers[discharger]
    rel = Release(d.reach, d.chainage_m, pollutant(pol), mass_kg=mass, start=RUXI_RELEASE_START)
    return PlanInput("t", RUXI_RELEASE_START + timedelta(seconds=now_after_s), (Suspect(discharger, 1.0, "given"),), rel)


RUXI = demo_network("ruxi")
UPSTREAM_DISCHARGERS = [d for d in RUXI.dischargers if RUXI.is_upstream(RUXI.dischargers[d], RUXI.intakes["RX-INTAKE"])]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(discharger=st.sampled_from(UPSTREAM_DISCHARGERS), mass=st.floats(1.0, 2000.0),
       pol=st.sampled_from(["NH3-N", "petroleum", "COD"]), delay=st.floats(0.0, 4 * 3600.0))
def test_properties_of_every_plan(discharger, mass, pol, delay):
    inp = _known(RUXI, discharger, mass, pol, delay)
    cl = plan(RUXI, inp)
    fc = forecast(RUXI, inp.release, kinds=("site", "intake"))
    src = RUXI.dischargers[discharger]
    for a in cl.by_kind("interception"):
        if a.status != "pending":
            continue
        site = RUXI.sites[a.target]
        assert RUXI.is_upstream(src, site)  # containment is never placed upstream of the source
        leading = inp.release.start + timedelta(seconds=fc.receptor(site.id).arrival_s)
        assert a.deadline < leading  # ready before the leading edge reaches the site
        assert a.window_start >= inp.now  # and work can still start
    for a in cl.actions:
        assert a.status in ("pending", "not_feasible") and a.rationale[0] and a.rationale[1]
    json.dumps(cl.as_dict())  # machine form always serialises


def test_release_needed_grows_with_the_peak():
    needs = []
    for mass in (70.0, 100.0, 130.0):  # above the NH3-N standard at the intake, within the reservoir's spare
        cl = plan(RUXI, _known(RUXI, "RX-FOOD-1", mass, "NH3-N"))
        (dil,) = cl.by_kind("dilution_release")
        needs.append((dil.numbers["peak_g_m3"], dil.numbers["rule_q_add_m3s"], dil.numbers["engine_q_add_m3s"]))
    peaks, rules, engine = zip(*needs)
    assert peaks[0] < peaks[1] < peaks[2] and rules[0] < rules[1] < rules[2]
    assert all(e is not None for e in engine) and engine[0] < engine[1] < engine[2]


def test_infeasible_situations_are_explicit():
    # plume already at the intake when the plan is made: suspend now; no site can be ready in time
    cl = plan(RUXI, _known(RUXI, "RX-FOOD-1", 80.0, "petroleum", now_after_s=6 * 3600.0))
    (intake,) = cl.by_kind("intake_suspension")
    assert intake.window_start == cl.created_at and "already there" in intake.rationale[1]
    (none,) = cl.by_kind("interception")
    assert none.status == "not_feasible" and "No interception site" in none.rationale[1]
    # not enough release capacity
    (dil,) = cl.by_kind("dilution_release")
    assert dil.status == "not_feasible"


def test_markdown_in_both_languages_and_policy_file(ruxi_plan, tmp_path):
    _net, _inp, cl = ruxi_plan
    zh, en = cl.markdown("zh"), cl.markdown("en")
    assert "处置清单" in zh and "取水口停止取水" in zh and "Disposal checklist" in en
    assert cl.with_status(cl.actions[0].id, "acknowledged").actions[0].status == "acknowledged"
    p = tmp_path / "policy.json"
    p.write_text(json.dumps({"interception_margin_s": 7200, "roles": {"monitoring": ["emergency"]}}))
    pol = load_policy(p)
    assert pol.interception_margin_s == 7200 and pol.roles["monitoring"] == ("emergency",) and pol.roles["notify"] == Policy().roles["notify"]
    p.write_text(json.dumps({"interception_margin": 1}))
    with pytest.raises(PolicyError, match="unknown policy key"):
        load_policy(p)

"""Groups of candidates that cannot be told apart, and the information gain of one more sample."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracer.attribution import AttributionResult, Candidate
from tracer.separation import best_sample_time, groups, information_gain


def _cand(cid: str, p: float) -> Candidate:
    return Candidate(cid, "discharger", p, 0.0, 0.0, None, None, None, None, None, None, float(np.log(p)), {}, {})


def _result(probs: dict[str, float]) -> AttributionResult:
    cands = tuple(_cand(k, v) for k, v in probs.items())
    return AttributionResult("S", "COD", "pulse", cands, (), (), None)


def test_groups_split_where_bayes_factor_exceeds_ten():
    # 0.5 / 0.4 = 1.25 and 0.5 / 0.06 = 8.3 (< 10): one group; 0.5 / 0.04 = 12.5 (> 10): the next group
    res = _result({"a": 0.5, "b": 0.4, "c": 0.06, "d": 0.04})
    g = groups(res)
    assert [[c.id for c in grp] for grp in g] == [["a", "b", "c"], ["d"]]


def test_a_dominant_candidate_stands_alone():
    g = groups(_result({"a": 0.98, "b": 0.02}))
    assert [[c.id for c in grp] for grp in g] == [["a"], ["b"]]
    with pytest.raises(ValueError):
        groups(_result({"a": 1.0}), bayes_factor=1.0)


def test_information_gain_limits():
    # identical predictions: the reading says nothing
    assert information_gain([0.5, 0.5], [3.0, 3.0], 0.1) == pytest.approx(0.0, abs=1e-12)
    # predictions 1000 sigma apart: the reading names the candidate, gain = prior entropy ln 2
    assert information_gain([0.5, 0.5], [0.0, 100.0], 0.1) == pytest.approx(np.log(2.0), rel=1e-6)


def test_information_gain_against_monte_carlo():
    # independent reference: sample (label, reading) pairs and average log p(y|i) - log p(y)
    rng = np.random.default_rng(7)
    w = np.array([0.6, 0.3, 0.1])
    mu = np.array([0.0, 1.0, 2.5])
    s = 0.8
    n = 200_000
    lab = rng.choice(3, size=n, p=w)
    y = mu[lab] + s * rng.standard_normal(n)
    lik = np.exp(-0.5 * ((y[:, None] - mu[None, :]) / s) ** 2)
    mc = float(np.mean(np.log(lik[np.arange(n), lab]) - np.log(lik @ w)))
    # Monte-Carlo standard error of this mean is about 0.5/sqrt(n) ~ 1e-3; allow 5e-3
    assert information_gain(w, mu, s) == pytest.approx(mc, abs=5e-3)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.01, 1.0), min_size=2, max_size=5),
    st.lists(st.floats(-5.0, 5.0), min_size=5, max_size=5),
    st.floats(0.05, 5.0),
)
def test_information_gain_between_zero_and_prior_entropy(ws, mus, sigma):
    w = np.array(ws) / sum(ws)
    g = information_gain(w, mus[: len(w)], sigma)
    entropy = float(-(w * np.log(w)).sum())
    assert 0.0 <= g <= entropy + 1e-9


def test_sample_time_lands_where_predictions_differ():
    # two plumes of equal shape passing a site 2 h apart (a near and a far source): a sample at either
    # peak separates them; a sample long after both (both zero) says nothing
    t = np.arange(0.0, 12 * 3600.0, 600.0)
    near = np.exp(-0.5 * ((t - 3 * 3600.0) / 1800.0) ** 2)
    far = np.exp(-0.5 * ((t - 5 * 3600.0) / 1800.0) ** 2)
    ts, gain = best_sample_time([0.5, 0.5], t, np.vstack([near, far]), 0.05)
    assert min(abs(ts - 3 * 3600.0), abs(ts - 5 * 3600.0)) <= 1800.0
    assert gain == pytest.approx(np.log(2.0), rel=0.05)
    late = information_gain([0.5, 0.5], [near[-1], far[-1]], 0.05)
    assert late < 1e-3


# ------------------------------------------------------------------ wired in: groups, grab sample, planner, CLI
import json
from datetime import timedelta

from two_plants import DURATION_S, network, readings

from hydrology.pollutants import pollutant
from hydrology.transport.analytic import Release
from hydrology.transport.numerical import simulate
from tracer.grab import grab_sample, operations_checks
from tracer.planner import plan
from tracer.scenarios import ruxi_replay
from tracer.trace import detection_time, plan_input_from_trace, separation, trace


@pytest.fixture(scope="module")
def two_plants():
    net = network()
    rd = readings(net)
    res = trace(net, rd, "S-DOWN", "COD")
    now = detection_time(rd, "S-DOWN", "COD").to_pydatetime() - timedelta(hours=3)
    return net, rd, res, now


def test_two_plants_on_one_stretch_form_one_group(two_plants):
    _net, _rd, res, _now = two_plants
    first = {c.id for c in res.groups[0]}
    # one station below both outfalls and none between: it cannot say which of the two released
    assert {"P-A", "P-B"} <= first
    assert res.groups == groups(res)


def test_grab_sample_lands_between_or_below_the_plants_where_their_curves_differ(two_plants):
    net, _rd, res, now = two_plants
    g = grab_sample(net, res, now, noise_mg_l=0.3)
    assert g is not None
    # between or below the outfalls (P-A at R1 1500 m), above the station S-DOWN (R3 3000 m)
    assert (g.reach == "R1" and g.chainage_m > 1500.0) or g.reach == "R2" or (g.reach == "R3" and g.chainage_m <= 3000.0)
    assert now <= g.time <= now + timedelta(hours=24)
    # the predicted curves differ there and then by more than the reading's error
    assert abs(g.predicted_mg_l["P-A"] - g.predicted_mg_l["P-B"]) > g.sigma_mg_l
    assert 0.0 < g.gain_nats <= -sum(w * np.log(w) for w in g.weights.values()) + 1e-9
    # independent reference for the prediction: the finite-volume engine run with P-A's fitted release
    # (a box of its mass over its duration) to a site at the chosen place. Tolerance: 15 % of that
    # curve's peak plus 0.05 mg/L (the engine's numerical dispersion and the kernel's exactness differ
    # most on the plume's flanks).
    a = next(c for c in res.candidates if c.id == "P-A")
    site = {"id": "GRAB", "name": "grab", "reach": g.reach, "chainage_m": g.chainage_m, "kind": "bridge",
            "build_time_s": 1.0}
    ref_net = network([site])
    T = a.duration_s or DURATION_S
    rel = Release("R1", 1500.0, pollutant("COD"), rate_kg_s=a.mass_kg / T, duration_s=T, start=a.release_start)
    t_end = (g.time - a.release_start).total_seconds() + 3600.0
    ds = simulate(ref_net, rel, t_end_s=t_end, kinds=("site",), record_every_s=60.0)
    curve = ds["concentration"].sel(receptor="GRAB").values
    ref = float(np.interp((g.time - a.release_start).total_seconds(), ds["time"].values.astype(float), curve))
    assert g.predicted_mg_l["P-A"] == pytest.approx(ref, abs=0.15 * curve.max() + 0.05)


def test_operations_checks_name_each_plant_in_both_languages(two_plants):
    net, _rd, res, _now = two_plants
    checks = operations_checks(net, res.groups[0])
    assert {c.discharger for c in checks} == {c.id for c in res.groups[0] if c.id in net.dischargers}
    for c in checks:
        assert "生产开、治污停" in c.zh and "production on, treatment off" in c.en and c.discharger in c.en


def test_planner_adds_grab_and_operations_actions_for_an_undecided_group(two_plants):
    net, rd, res, now = two_plants
    inp = plan_input_from_trace(net, rd, res, now=now, separate=True)
    cl = plan(net, inp)
    grab = [a for a in cl.actions if "/grab/" in a.id]
    ops = [a for a in cl.actions if "/operations/" in a.id]
    assert len(grab) == 1 and grab[0].kind == "monitoring" and grab[0].id.startswith(f"{inp.incident}/grab/")
    assert "采集一个水样" in grab[0].rationale[0] and "grab sample" in grab[0].rationale[1]
    assert {a.target for a in ops} >= {"P-A", "P-B"} and all(a.kind == "monitoring" for a in ops)
    # without separate=True no such actions
    assert not [a for a in plan(net, plan_input_from_trace(net, rd, res, now=now)).actions if "/grab/" in a.id]
    # a sample expected to tell less than the policy's minimum is not asked for (the operations checks stay)
    from tracer.policy import Policy

    strict = plan(net, inp, Policy(grab_min_gain_nats=inp.grab.gain_nats * 1.01))
    assert not [a for a in strict.actions if "/grab/" in a.id]
    assert {a.target for a in strict.actions if "/operations/" in a.id} >= {"P-A", "P-B"}


def test_ruxi_food_plant_alone_in_its_group_gives_no_grab_action():
    rp = ruxi_replay(seed=0)
    res = trace(rp.network, rp.readings, rp.station, rp.parameter)
    # measured: RX-FOOD-1 p = 0.963, next reach:RX-R03 p = 0.037 (factor 26 > 10): a group of one
    assert [c.id for c in res.groups[0]] == ["RX-FOOD-1"]
    assert separation(rp.network, rp.readings, res, detection_time(rp.readings, rp.station, rp.parameter).to_pydatetime()) == ((), None, ())
    cl = plan(rp.network, plan_input_from_trace(rp.network, rp.readings, res, separate=True))
    assert not [a for a in cl.actions if "/grab/" in a.id or "/operations/" in a.id]


def test_cli_trace_prints_groups_and_grab_sample(two_plants, tmp_path, capsys):
    from server.cli import main

    _net, rd, _res, now = two_plants
    (tmp_path / "net.json").write_text(json.dumps(__import__("two_plants").DOC), encoding="utf-8")
    f = rd.frame.copy()
    f["time"] = f["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    f["unit"] = "mg/L"
    f[["station_id", "parameter", "time", "value", "unit"]].to_csv(tmp_path / "r.csv", index=False)
    base = ["trace", str(tmp_path / "net.json"), str(tmp_path / "r.csv"), "--station", "S-DOWN", "--parameter", "COD",
            "--now", now.isoformat()]
    assert main([*base, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {"P-A", "P-B"} <= set(doc["groups"][0])
    sep = doc["separation"]
    assert sep["grab_sample"] is not None and set(sep["grab_sample"]["predicted_mg_l"]) >= {"P-A", "P-B"}
    assert {c["discharger"] for c in sep["operations_checks"]} >= {"P-A", "P-B"}
    assert main(base) == 0
    out = capsys.readouterr().out
    assert "cannot be told apart" in out and "grab sample:" in out and "operations check P-A" in out

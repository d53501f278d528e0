"""Source attribution on >= 500 seeded incidents (DESIGN.md section 6; issue 3's acceptance figures).

200 incidents on the 100,000-reach budget network and 300 on smaller basins: the two demo basins, a
2,000-reach synthetic network, and the NHDPlus new_hope and sample_natseamless imports with seeded
dischargers and extra stations. Protocol and identifiability rule: tracer/benchmark.py. Targets on
identifiable incidents: top-1 >= 90 %, top-3 >= 99 %; median attribution time on the 100,000-reach
network <= 200 ms. A second, smaller run gives every reach its own flow error, and a third draws
100 continuous releases still going on when the record ends (start and rate fitted; no target).

Run with `python -m pytest -m bench -s tests/bench/test_bench_attribution.py`; figures go to
tests/bench/results/attribution.json, written before the targets are asserted.
"""

import math
import time
from pathlib import Path

import numpy as np
import pytest
from bench_util import write_results

from hydrology.document import network_from_document
from hydrology.nhdplus import import_nhdplus
from hydrology.synthetic import DISCHARGER_PROFILES, MAX_FLOW_FACTOR, generate_network
from tracer import benchmark as bm
from tracer.scenarios import demo_network

pytestmark = pytest.mark.bench
NHD = Path(__file__).parents[1] / "data" / "nhdplus"
TOP1, TOP3, BUDGET_MS = 0.90, 0.99, 200.0
#: incidents on the 100,000-reach network, and the pool of networks with wrong flows they share
N_BIG, N_FLOW_NETWORKS = 200, 20
#: smaller basins: name -> incidents (300 in all)
N_SMALL = {"ruxi": 40, "puhe": 40, "synthetic-2000": 100, "new_hope": 70, "sample_natseamless": 50}
#: per-reach flow-error variant: basin -> incidents
N_PER_REACH = {"ruxi": 20, "puhe": 20, "synthetic-2000": 40, "sample_natseamless": 20}
#: continuous releases still going on when the record ends (start and rate fitted): basin -> incidents
N_CONTINUOUS = {"ruxi": 15, "puhe": 15, "synthetic-2000": 40, "new_hope": 20, "sample_natseamless": 10}
#: NHDPlus imports: name -> (dischargers added, stations added, seed)
NHD_FEATURES = {"new_hope": (150, 30, 14), "sample_natseamless": (60, 10, 15)}


def with_synthetic_features(doc, *, n_dischargers, n_stations, seed):
    """A copy of a network document with seeded dischargers and stations, placed as hydrology.synthetic does.

    Discharger kind by the shares of DISCHARGER_PROFILES, reach with weight length x Q^p (the kind's
    river preference), effluent lognormal and capped at the river's flow, maximum load MAX_FLOW_FACTOR
    x effluent x raw concentration; stations with weight length x Q^0.3; chainage uniform.
    """
    net = network_from_document(doc)
    rng = np.random.default_rng(seed)
    rids = list(net.reaches)
    length = np.array([net.reaches[r].length_m for r in rids])
    q = np.array([net.steady_discharge[r] for r in rids])
    names = list(DISCHARGER_PROFILES)
    share = np.array([DISCHARGER_PROFILES[n].share for n in names])
    dischargers = list(doc.get("dischargers") or [])
    for j, name in enumerate(rng.choice(names, size=n_dischargers, p=share / share.sum())):
        prof = DISCHARGER_PROFILES[str(name)]
        w = length * q**prof.river_preference
        i = int(rng.choice(len(rids), p=w / w.sum()))
        eff = min(float(rng.lognormal(math.log(prof.effluent_median_m3s), prof.effluent_sigma_ln)), float(q[i]))
        dischargers.append({"id": f"bench-d{j}", "name": f"{name} {j}", "reach": rids[i],
                            "chainage_m": round(float(rng.random() * length[i]), 1), "kind": prof.kind,
                            "pollutants": list(prof.raw_mg_l), "effluent_discharge_m3s": eff,
                            "max_load_kg_s": {p: MAX_FLOW_FACTOR * eff * c / 1000.0 for p, c in prof.raw_mg_l.items()}})
    stations = list(doc.get("stations") or [])
    w = length * q**0.3
    for j, i in enumerate(rng.choice(len(rids), size=n_stations, p=w / w.sum())):
        stations.append({"id": f"bench-s{j}", "name": f"benchmark station {j}", "reach": rids[int(i)],
                         "chainage_m": round(float(rng.random() * length[int(i)]), 1)})
    return {**doc, "dischargers": dischargers, "stations": stations}


def small_networks():
    nets = {"ruxi": demo_network("ruxi"), "puhe": demo_network("puhe"),
            "synthetic-2000": network_from_document(generate_network(2000, n_dischargers=400, n_stations=120, seed=7))}
    for name, (nd, ns, seed) in NHD_FEATURES.items():
        doc, _report = import_nhdplus(NHD / f"{name}.gpkg")
        nets[name] = network_from_document(with_synthetic_features(doc, n_dischargers=nd, n_stations=ns, seed=seed))
    return nets


def run(basin, n, seed, release="pulse"):
    rng = np.random.default_rng(seed)
    t = time.perf_counter()
    outs = [bm.attribute_incident(bm.make_incident(basin, rng, release=release)) for _ in range(n)]
    return outs, time.perf_counter() - t


def compact(figures):
    keep = ("incidents", "detected", "identifiable", "not_identifiable", "all_detected", "median_release_time_error_s",
            "median_mass_error", "model_chosen", "attribution_median_ms", "attribution_p90_ms", "candidates_median",
            "not_identifiable_reasons", "redraws")
    return {k: figures[k] for k in keep}


def test_attribution_benchmark(big_network):
    t_all = time.perf_counter()
    net, timings = big_network
    outcomes, wall = {}, {}
    outcomes["synthetic-100k"], wall["synthetic-100k"] = run(
        bm.Basin("synthetic-100k", net, n_flow_networks=N_FLOW_NETWORKS, seed=101), N_BIG, 1001)
    nets = small_networks()
    for i, (name, n) in enumerate(N_SMALL.items()):
        outcomes[name], wall[name] = run(bm.Basin(name, nets[name], seed=200 + i), n, 2000 + i)
    per_reach = []
    for i, (name, n) in enumerate(N_PER_REACH.items()):
        per_reach += run(bm.Basin(name, nets[name], flow_error="per_reach", seed=300 + i), n, 3000 + i)[0]
    continuous = []
    for i, (name, n) in enumerate(N_CONTINUOUS.items()):
        continuous += run(bm.Basin(name, nets[name], seed=400 + i), n, 4000 + i, "continuous")[0]

    everything = [o for outs in outcomes.values() for o in outs]
    small = [o for name in N_SMALL for o in outcomes[name]]
    total = bm.summarize(everything)
    big = bm.summarize(outcomes["synthetic-100k"])
    ident = total["identifiable"]
    met = {"top1_identifiable": ident["top1"] is not None and ident["top1"] >= TOP1,
           "top3_identifiable": ident["top3"] is not None and ident["top3"] >= TOP3,
           "median_ms_100k": big["attribution_median_ms"] <= BUDGET_MS}
    figures = {
        "protocol": {"sensor_noise": bm.SENSOR_NOISE, "flow_error": f"one factor per network, uniform in "
                     f"1 +- {bm.FLOW_ERROR} (100k network: a pool of {N_FLOW_NETWORKS})",
                     "mass_range_kg": bm.MASS_RANGE_KG, "continuous_rate_range_kg_s": bm.RATE_RANGE_KG_S,
                     "pollutant_mix": bm.POLLUTANT_MIX,
                     "background_g_m3": bm.BACKGROUND_G_M3, "record_every_s": bm.RECORD_EVERY_S,
                     "detection_window_s": bm.DETECTION_WINDOW_S, "confusion_time_ratio": bm.CONFUSION_TIME_RATIO,
                     "max_upstream_stations": bm.MAX_UPSTREAM_STATIONS},
        "targets": {"top1": TOP1, "top3": TOP3, "median_ms_100k": BUDGET_MS, "met": met},
        "all": total,
        "synthetic_100k": compact(big),
        "smaller_basins": compact(bm.summarize(small)),
        "by_basin": {name: compact(bm.summarize(outs)) for name, outs in outcomes.items() if name != "synthetic-100k"},
        "per_reach_flow_error_variant": compact(bm.summarize(per_reach)),
        "continuous_releases": {k: v for k, v in bm.summarize(continuous).items() if k != "by_competitor_gap"},
        "wall_time_s": {**{k: round(v, 1) for k, v in wall.items()}, "fixture": round(sum(timings.values()), 1),
                        "total": round(time.perf_counter() - t_all + sum(timings.values()), 1)},
    }
    write_results("attribution", figures)
    assert total["incidents"] >= 500
    assert all(met.values()), f"targets not met: {[k for k, v in met.items() if not v]}"


#: functions whose cumulative time the tail profile reports (tracer.attribution's phases)
#: (the screen's curves, "modelled" / "_curve" / "gaussian_puff", were added after the first run: a
#: separate cProfile of a 6.7 s incident put half the time there, see the branch attrib's report)
PROFILED = ("upstream_moments", "station_signals", "build_hypotheses", "_screen_durations", "_station_fit",
            "_station_term", "_exact_terms", "point_source_responses", "discharger_terms", "_log_priors",
            "modelled", "_curve", "gaussian_puff")


def _profile(incident):
    """Cumulative time [ms] of each of PROFILED in one attribution call (cProfile; its overhead inflates
    the total, so the shares, not the sums, are what counts)."""
    import cProfile
    import pstats

    from tracer.attribution import attribute_release

    prof = cProfile.Profile()
    prof.enable()
    t = time.perf_counter()
    attribute_release(incident.attribution_net, incident.readings, incident.anomaly_station, incident.parameter,
                      state=incident.attribution_state)
    total = (time.perf_counter() - t) * 1e3
    prof.disable()
    stats = pstats.Stats(prof).stats
    cum: dict[str, float] = {}
    for (_file, _line, name), (_cc, _nc, _tt, ct, _callers) in stats.items():
        if name in PROFILED:
            cum[name] = cum.get(name, 0.0) + ct * 1e3
    return {"total_ms_profiled": round(total, 1), **{k: round(v, 1) for k, v in sorted(cum.items(), key=lambda kv: -kv[1])}}


def test_attribution_100k_timing(big_network):
    """Issue 11's budget: attribution on the 100,000-reach network, median <= 200 ms, p99 <= 1 s (the
    same 200 incidents as test_attribution_benchmark: seed 1001), and where the tail comes from: the
    slowest incidents' size (candidates, stations that saw the event, release model) beside the median
    incident's, and a profile of the five slowest (re-run untimed under cProfile)."""
    net, _timings = big_network
    outs, wall = run(bm.Basin("synthetic-100k", net, n_flow_networks=N_FLOW_NETWORKS, seed=101), N_BIG, 1001)
    timed = [o for o in outs if math.isfinite(o.elapsed_ms)]
    ranked = [o for o in timed if o.n_candidates > 0]  # attribution ran to the end (no AttributionError)
    ms = np.array([o.elapsed_ms for o in timed])
    p90 = float(np.percentile(ms, 90))

    def describe(group):
        return {"n": len(group), "median_ms": round(float(np.median([o.elapsed_ms for o in group])), 1),
                "candidates_median": float(np.median([o.n_candidates for o in group])),
                "stations_saw_median": float(np.median([o.stations_saw for o in group])),
                "parameters": {p: sum(o.incident.parameter == p for o in group) for p in sorted({o.incident.parameter for o in group})}}

    tail = [o for o in timed if o.elapsed_ms >= p90]
    body = [o for o in timed if o.elapsed_ms < p90]
    slowest = sorted(ranked, key=lambda o: -o.elapsed_ms)[:5]
    figures = {"incidents": len(outs), "timed": len(timed),
               "median_ms": round(float(np.median(ms)), 1), "p90_ms": round(p90, 1),
               "p99_ms": round(float(np.percentile(ms, 99)), 1), "max_ms": round(float(ms.max()), 1),
               "budget": {"median_ms": BUDGET_MS, "p99_ms": 1000.0},
               "tail_p90_and_above": describe(tail), "below_p90": describe(body),
               "slowest_profiles": [{"elapsed_ms": round(o.elapsed_ms, 1), "candidates": o.n_candidates,
                                     "stations_saw": o.stations_saw, "parameter": o.incident.parameter,
                                     **_profile(o.incident)} for o in slowest],
               "median_incident_profile": _profile(sorted(ranked, key=lambda o: o.elapsed_ms)[len(ranked) // 2].incident),
               "wall_time_s": round(wall, 1)}
    write_results("attribution_100k_timing", figures)
    # the budgets are reported, not asserted (issue 11: say where the tail comes from first)

"""Attribution: the two reference incidents, each evidence term, and the reverse moment DP."""

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from numpy.testing import assert_allclose

from hydrology.exceptions import UnknownElementError
from hydrology.oxygen_network import DOConditions
from hydrology.pollutants import Pollutant
from hydrology.transport.analytic import route_moments
from tracer.attribution import AttributionError, attribute_release, release_kind
from tracer.priors import OperationsEvidence
from tracer.readings import Readings, readings_from_frame
from tracer.scenarios import RUXI_MASS_KG, RUXI_RELEASE_START, demo_network, puhe_replay, ruxi_continuous, ruxi_replay
from tracer.signals import station_signals
from tracer.trace import ONGOING_RELEASE_S, plan_input_from_trace, trace
from tracer.upstream import upstream_moments


@pytest.fixture(scope="module")
def ruxi():
    return ruxi_replay(seed=3)


@pytest.fixture(scope="module")
def puhe():
    return puhe_replay(seed=3)


CONTINUOUS_START = datetime(2025, 7, 15, 1, 0, tzinfo=UTC)
CONTINUOUS_RATE_KG_S = 0.03  # COD; RX-FOOD-1 can emit 0.036 kg/s


@pytest.fixture(scope="module")
def continuous():
    """COD from RX-FOOD-1 at a constant rate from 01:00 UTC, still going on 14 h later, from the numerical
    engine; a day of background before it; (6 mg/L + plume) x (1 + 0.05 N(0, 1))."""
    net = demo_network("ruxi")
    frame = ruxi_continuous("COD", CONTINUOUS_RATE_KG_S, 6.0, start=CONTINUOUS_START, hours=14.0, seed=5)
    res = readings_from_frame(frame)
    assert not res.rejected
    return net, res.readings


def test_continuous_release_start_and_rate(continuous):
    net, readings = continuous
    res = trace(net, readings, "RX-OILSPOT", "COD")
    assert res.model == "continuous" and "plateau" in res.notes[0]
    top = res.candidates[0]
    assert top.id == "RX-FOOD-1" and top.mass_kg is None
    # start: rise centroid - x/U; the 5-minute record and the numerical engine's dispersion allow ~15 min
    assert abs(top.release_start - CONTINUOUS_START) < timedelta(minutes=15)
    lo, hi = top.release_start_interval
    assert lo <= CONTINUOUS_START <= hi
    # rate from the plateau: 5 % noise on ~100 plateau samples, and the numerical/analytic difference
    assert top.rate_kg_s == pytest.approx(CONTINUOUS_RATE_KG_S, rel=0.1)
    lo, hi = top.rate_kg_s_interval
    assert lo <= CONTINUOUS_RATE_KG_S <= hi
    assert "kg/s" in top.explanation["feasibility"]
    # the planner gets a release at that rate that goes on past the moment of planning
    rel = plan_input_from_trace(net, readings, res).release
    assert rel.rate_kg_s == top.rate_kg_s and rel.duration_s > ONGOING_RELEASE_S and rel.mass_kg is None


def test_release_kind_of_a_pulse_and_of_a_plateau(continuous, ruxi):
    net, readings = continuous
    t0 = readings.frame["time"].min()
    assert release_kind(station_signals(readings, "COD", ["RX-OILSPOT"], t0)["RX-OILSPOT"]) == "continuous"
    t0 = ruxi.readings.frame["time"].min()
    assert release_kind(station_signals(ruxi.readings, "petroleum", ["RX-OILSPOT"], t0)["RX-OILSPOT"]) == "pulse"
    # the model can be forced: the pulse model on the plateau gives a mass, not a rate
    forced = attribute_release(net, readings, "RX-OILSPOT", "COD", kind="pulse")
    assert forced.model == "pulse" and forced.candidates[0].mass_kg is not None and forced.notes == ()
    with pytest.raises(AttributionError, match="unknown release kind"):
        attribute_release(net, readings, "RX-OILSPOT", "COD", kind="steady")


def test_ruxi_food_plant_ranks_first_with_its_release(ruxi):
    res = trace(ruxi.network, ruxi.readings, "RX-OILSPOT", "petroleum")
    top = res.candidates[0]
    assert top.id == "RX-FOOD-1" and top.probability > 0.5
    assert top.distance_m == pytest.approx(2300.0)  # the incident report's 2.3 km
    lo, hi = top.release_start_interval
    assert lo <= RUXI_RELEASE_START <= hi
    assert abs(top.release_start - RUXI_RELEASE_START) < timedelta(minutes=10)
    lo_m, hi_m = top.mass_kg_interval
    assert lo_m <= RUXI_MASS_KG <= hi_m and top.mass_kg == pytest.approx(RUXI_MASS_KG, rel=0.15)
    # the naive baseline (nearest registered discharger upstream) is the outfall 800 m up: wrong
    assert res.nearest_upstream_discharger == "RX-OUT-1" and res.rank_of("RX-OUT-1") > 1
    assert set(top.evidence) == {"prior", "shape", "consistency", "silence", "feasibility", "operations", "duration"}
    assert "food_processing" in top.explanation["signature"]


def test_puhe_sewage_plants_rank_first_and_second(puhe):
    res = trace(puhe.network, puhe.readings, "PH-ZHAIXI", "DO", do_conditions=DOConditions(temperature_c=28.0))
    assert {c.id for c in res.candidates[:2]} == {"PH-STP-A", "PH-STP-B"}
    assert res.model == "steady_do"
    # the event starts at local midnight of day 4 (scenario), and each plant alone would need the
    # combined load: 0.35 m3/s of effluent at ultimate CBOD 60 / (1 - e^-5x0.23) = 87.8 g/m3
    assert res.candidates[0].release_start == datetime(2025, 8, 7, tzinfo=timezone(timedelta(hours=8)))
    for c in res.candidates[:2]:
        lo, hi = c.rate_kg_s_interval
        assert lo <= 0.35 * 87.8e-3 <= hi


def test_silent_station_counts_against_sources_above_it(ruxi):
    res = attribute_release(ruxi.network, ruxi.readings, "RX-OILSPOT", "petroleum")
    up = ruxi.network.feature("RX-UP")
    for c in res.candidates:
        if c.kind != "unregistered" and ruxi.network.is_upstream(ruxi.network.feature(c.id), up):
            assert c.evidence["silence"] < -1.0, c.id  # RX-UP saw nothing of a release above it
    without = Readings(ruxi.readings.frame[ruxi.readings.frame["station_id"] != "RX-UP"].reset_index(drop=True))
    res2 = attribute_release(ruxi.network, without, "RX-OILSPOT", "petroleum")
    assert res2.stations_silent == () and all(c.evidence["silence"] == 0.0 for c in res2.candidates)


def test_operations_evidence_raises_a_candidate(puhe):
    base = trace(puhe.network, puhe.readings, "PH-ZHAIXI", "DO", do_conditions=DOConditions(temperature_c=28.0))
    ops = {"PH-STP-B": OperationsEvidence(production_on_treatment_off=True, effluent_exceedance=True)}
    more = trace(puhe.network, puhe.readings, "PH-ZHAIXI", "DO", operations=ops, do_conditions=DOConditions(temperature_c=28.0))
    p0 = next(c.probability for c in base.candidates if c.id == "PH-STP-B")
    p1 = next(c.probability for c in more.candidates if c.id == "PH-STP-B")
    assert more.candidates[0].id == "PH-STP-B" and p1 > p0
    assert "treatment off" in more.candidates[0].explanation["operations"]


def test_infeasible_load_is_penalised(puhe):
    res = trace(puhe.network, puhe.readings, "PH-ZHAIXI", "DO", do_conditions=DOConditions(temperature_c=28.0))
    farm = next(c for c in res.candidates if c.id == "PH-FARM-1")  # 3 L/s of effluent cannot make this sag
    assert farm.evidence["feasibility"] < 0 and "capacity" in farm.explanation["feasibility"]


def test_probabilities_sum_to_one_and_every_upstream_reach_is_a_hypothesis(ruxi):
    res = attribute_release(ruxi.network, ruxi.readings, "RX-OILSPOT", "petroleum")
    assert sum(c.probability for c in res.candidates) == pytest.approx(1.0)
    net = ruxi.network
    spot = net.feature("RX-OILSPOT")
    expected = {f"reach:{r}" for r in net.all_upstream(spot.reach) | {spot.reach}}
    assert expected <= {c.id for c in res.candidates}
    assert {d.id for d in net.dischargers.values() if net.is_upstream(d, spot)} <= {c.id for c in res.candidates}


def test_nothing_to_trace_and_bad_requests(ruxi):
    quiet = Readings(ruxi.readings.frame[ruxi.readings.frame["station_id"] == "RX-UP"].reset_index(drop=True))
    with pytest.raises(AttributionError, match="no petroleum readings at station 'RX-OILSPOT'"):
        attribute_release(ruxi.network, quiet, "RX-OILSPOT", "petroleum")
    with pytest.raises(AttributionError, match="nothing to trace"):
        attribute_release(ruxi.network, ruxi.readings, "RX-UP", "petroleum")
    with pytest.raises(UnknownElementError):
        trace(ruxi.network, ruxi.readings, "RX-NOPE", "petroleum")


def test_reverse_moments_equal_forward_routing():
    """Independent algorithms: the reverse DP from a station and forward routing from each point."""
    net = puhe_replay().network
    st = net.reach_state()
    station = net.feature("PH-OUTLET")
    um = upstream_moments(net, st, station, Pollutant("tracer"))
    checked = 0
    for rid in net.reaches:
        for frac in (0.0, 0.37):
            c = frac * st.length_m[st.index[rid]]
            fwd = {f.id: (fr, x, m, v) for f, fr, x, m, v in route_moments(net, st, rid, c, Pollutant("tracer"), ("station",))}
            got = um.at(np.array([st.index[rid]]), np.array([c]), st.length_m[[st.index[rid]]])
            if "PH-OUTLET" in fwd:
                assert_allclose([g[0] for g in got], fwd["PH-OUTLET"], rtol=1e-12)
                checked += 1
            else:
                assert got[0][0] == 0.0
    assert checked >= 2 * (len(net.reaches) - 1)


def test_a_curve_tail_counts_relative_to_the_concentration_not_the_noise_floor():
    """A modelled curve 100x below the record in its tail is penalised like a 4-sigma miss of the 25 %
    model error, not like 100 g/m3 over a 0.001 g/m3 noise floor (which made the widest curve win)."""
    from tracer.attribution import CURVE_RELATIVE_ERROR, _station_term
    from tracer.signals import StationSignal

    y = np.array([100.0])
    sig = StationSignal("S", np.array([0.0]), y, noise=0.001, baseline=0.0, saw=True)
    idx = np.array([0])
    exact, low, high = (_station_term(sig, np.array([[v]]), idx)[0] for v in (100.0, 1.0, 1e4))
    assert exact > low and exact > high
    s2 = 0.001**2 + (CURVE_RELATIVE_ERROR * 100.0) ** 2  # the observation sets the scale of the miss
    assert low == pytest.approx(-0.5 * (99.0**2 / s2 + np.log(s2 / 0.001**2)))
    assert low > -30.0


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "Asia/Tokyo", "America/New_York"])
def test_do_event_starts_at_local_midnight_of_the_network_zone(zone):
    """Issue 12: the daily-mean DO rule used China's days on every basin. The event start must be a local
    midnight in the zone the network document states (calendar arithmetic by zoneinfo is the reference;
    Tokyo's midnight is 01:00 in Shanghai, so the old code fails there)."""
    from zoneinfo import ZoneInfo

    from hydrology.document import network_from_document, read_document
    from server.cli import demo_basin_path

    doc = read_document(demo_basin_path("puhe"))
    doc["timezone"] = zone
    replay = puhe_replay(seed=3)
    res = trace(network_from_document(doc), replay.readings, "PH-ZHAIXI", "DO",
                do_conditions=DOConditions(temperature_c=28.0))
    local = res.candidates[0].release_start.astimezone(ZoneInfo(zone))
    assert (local.hour, local.minute) == (0, 0), local

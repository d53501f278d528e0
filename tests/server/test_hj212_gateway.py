"""The HJ 212 gateway over real loopback TCP, with a real SQLite file: uploads stored in SI with
mapped flags, answers as the standard asks, treatment states as operations evidence, and a catalogue
of bad packets each refused, logged, counted, while the connection carries on."""

import json
import logging
import sqlite3
import threading
from datetime import UTC, datetime

import pandas as pd
import pytest
from hj212_encoder import Monitor, frame, parse_answer, segment, values_cp

from server.app import create_server
from server.cli import build_parser, demo_basin_path
from server.config import Config, ConfigError, load_config
from server.hj212.gateway import Gateway
from server.pipeline import operations_evidence
from server.servicers import Networks
from server.storage import Store

STATION_MN = "010000A8900016F000169DC0"   # the standard's example MN, given here to station RX-MID
PLANT_MN = "LD130133000015"               # a 14-character (HJ/T 212-2005 style) MN for discharger RX-FOOD-1
NS = 10**9


def _doc():
    doc = json.loads(demo_basin_path("ruxi").read_text(encoding="utf-8"))
    next(s for s in doc["stations"] if s["id"] == "RX-MID")["hj212_mn"] = STATION_MN
    next(d for d in doc["dischargers"] if d["id"] == "RX-FOOD-1")["hj212_mn"] = PLANT_MN
    return doc


def _utc_ns(datatime):
    """DataTime is China Standard Time (UTC+8)."""
    return int(pd.Timestamp(datetime.strptime(datatime, "%Y%m%d%H%M%S")).tz_localize("Asia/Shanghai").value)


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    running = create_server(Config(db=tmp_path_factory.mktemp("hj212") / "rt.db", port=0, hj212_port=0))
    running.server.start()
    running.store.put_network("ruxi", _doc())
    gateway = running.extras["hj212"]
    yield running, gateway
    running.stop(grace=1.0)


@pytest.fixture
def monitor(gw):
    m = Monitor(gw[1].port)
    yield m
    m.close()


def _delta(gateway, before):
    after = gateway.stats()
    return {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)}


def test_real_time_upload_is_stored_in_si_and_answered_9014(gw, monitor):
    running = gw[0]
    values = {"w01009": ("6.85", "N"), "w21003": ("1.25", "N"), "w01010": ("21.5", "N"), "w01001": ("7.31", "N"),
              "w22001": ("0.04", "C"), "w01018": ("18.0", "T")}
    seg = segment("2011", STATION_MN, values_cp("20250715093000", values), qn="20250715093000001")
    fields = monitor.exchange(frame(seg))
    assert fields == {"QN": "20250715093000001", "ST": "91", "CN": "9014", "PW": "123456", "MN": STATION_MN,
                      "Flag": "4", "CP": ""}
    t = _utc_ns("20250715093000")
    rows = {r[1]: r for r in running.store.readings("ruxi", "RX-MID", start_ns=t, end_ns=t)}
    assert rows["DO"][3] == 6.85 and rows["NH3-N"][3] == 1.25 and rows["temperature"][3] == 21.5
    assert rows["pH"][3] == 7.31
    assert rows["DO"][4] is None                    # N: a normal reading has no flag
    assert rows["petroleum"][4] == "calibration"   # C
    assert rows["COD"][4] == "over_range"          # T
    assert t == int(datetime(2025, 7, 15, 1, 30, tzinfo=UTC).timestamp()) * NS   # 09:30 CST = 01:30 UTC


def test_flow_in_litres_per_second_is_stored_in_m3_per_second(gw, monitor):
    running, _ = gw
    monitor.exchange(frame(segment("2011", STATION_MN, values_cp("20250715093100", {"w00000": ("250.0", "N")}))))
    t = _utc_ns("20250715093100")
    (row,) = running.store.readings("ruxi", "RX-MID", "discharge", t, t)
    assert row[3] == pytest.approx(0.25, rel=1e-12)   # 250 L/s; tolerance: one float multiplication


@pytest.mark.parametrize("cn", ["2051", "2061", "2031"])
def test_minute_hourly_and_daily_averages_are_stored(gw, monitor, cn):
    running, gateway = gw
    datatime = {"2051": "20250715100000", "2061": "20250715110000", "2031": "20250714000000"}[cn]
    cp = f"DataTime={datatime};w21011-Min=0.10,w21011-Avg=0.12,w21011-Max=0.15,w21011-Cou=3.1,w21011-Flag=N"
    before = gateway.stats()
    assert monitor.exchange(frame(segment(cn, STATION_MN, cp)))["CN"] == "9014"
    t = _utc_ns(datatime)
    assert [r[3] for r in running.store.readings("ruxi", "RX-MID", "TP", t, t)] == [0.12]   # the Avg
    assert _delta(gateway, before)["fields_skipped"] == 3   # Min, Max, Cou are not stored


def test_no_answer_unless_flag_asks_but_stored_all_the_same(gw, monitor):
    running, _ = gw
    monitor.send(frame(segment("2011", STATION_MN, values_cp("20250715120000", {"w01009": ("7.0", "N")}),
                               qn="20250715120000001", flag=4)))
    # the next answer belongs to the second packet: the first (Flag 4, A = 0) got none
    fields = monitor.exchange(frame(segment("2011", STATION_MN, values_cp("20250715120100", {"w01009": ("7.1", "N")}),
                                            qn="20250715120100001", flag=5)))
    assert fields["QN"] == "20250715120100001"
    t = _utc_ns("20250715120000")
    assert [r[3] for r in running.store.readings("ruxi", "RX-MID", "DO", t, t)] == [7.0]


def test_hj212_2025_upload_and_heartbeat(gw, monitor):
    gateway = gw[1]
    fields = monitor.exchange(frame(segment("2011", STATION_MN, values_cp("20260105080000", {"w01009": ("8.2", "N")}),
                                            flag=9)))   # 9 = 000010 (HJ 212-2025) 0 1
    assert (fields["CN"], fields["Flag"]) == ("9014", "8")
    before = gateway.stats()
    fields = monitor.exchange(frame(segment("9015", STATION_MN, "", st="91", flag=9)))
    assert (fields["CN"], fields["Flag"]) == ("9013", "8")
    assert _delta(gateway, before) == {"packets": 1, "heartbeats": 1, "answers": 1}


def test_resent_packet_is_answered_again_and_stored_once(gw, monitor):
    gateway = gw[1]
    packet = frame(segment("2011", STATION_MN, values_cp("20250715130000", {"w21001": ("2.5", "N")})))
    before = gateway.stats()
    assert monitor.exchange(packet)["CN"] == "9014"
    assert monitor.exchange(packet)["CN"] == "9014"
    d = _delta(gateway, before)
    assert d["readings_stored"] == 1 and d["readings_duplicate"] == 1


def test_packets_split_across_reads_and_batched_in_one_send_are_all_answered(gw, monitor):
    packets = [frame(segment("2011", STATION_MN, values_cp(f"2025071514{m:02d}00", {"w01009": ("7.2", "N")}),
                             qn=f"202507151400{m:02d}000")) for m in range(6)]
    stream = b"".join(packets)
    for i in range(0, len(stream) // 2, 7):      # the first half 7 bytes at a time
        monitor.send(stream[i:i + 7])
    monitor.send(stream[i + 7:])                # the rest at once
    qns = [parse_answer(monitor.recv_packet())["QN"] for _ in packets]
    assert qns == [f"202507151400{m:02d}000" for m in range(6)]


def test_treatment_off_with_production_on_is_operations_evidence(gw, monitor):
    running, _ = gw
    store = running.store
    t0 = _utc_ns("20250716080000")
    store.add_operations("ruxi", [("RX-FOOD-1", t0, True, True, False)])   # a power meter over gRPC: production on
    seg = segment("2021", PLANT_MN, "DataTime=20250716083000;SB1-RS=1;SB2-RS=0", st="32")
    assert monitor.exchange(frame(seg))["CN"] == "9014"
    start, end = pd.Timestamp(t0, tz="UTC"), pd.Timestamp(t0 + 3600 * NS, tz="UTC")
    states = store.operations("ruxi", t0, t0 + 3600 * NS)
    assert states[-1] == ("RX-FOOD-1", _utc_ns("20250716083000"), None, False, None)   # HJ 212 has no production state
    assert operations_evidence(store, "ruxi", start, end)["RX-FOOD-1"].production_on_treatment_off


def test_treatment_running_is_not_evidence_and_daily_runtime_is_read(gw, monitor):
    running, _ = gw
    store = running.store
    t0 = _utc_ns("20250717080000")
    store.add_operations("ruxi", [("RX-FOOD-1", t0, True, True, False)])
    assert monitor.exchange(frame(segment("2021", PLANT_MN, "DataTime=20250717083000;SB1-RS=1", st="32")))["CN"] == "9014"
    window = (pd.Timestamp(t0, tz="UTC"), pd.Timestamp(t0 + 3600 * NS, tz="UTC"))
    assert not operations_evidence(store, "ruxi", *window)["RX-FOOD-1"].production_on_treatment_off
    # CN 2041: daily running time 0 h -> the facility did not run that day
    assert monitor.exchange(frame(segment("2041", PLANT_MN, "DataTime=20250717000000;SB1-RT=0", st="32")))["CN"] == "9014"
    assert store.operations("ruxi", _utc_ns("20250717000000"), _utc_ns("20250717000000"))[0][3] is False


def test_effluent_over_the_permit_limit_is_an_exceedance_state(gw, monitor):
    running, _ = gw
    # RX-FOOD-1's permit: COD 100 mg/L, petroleum 10 mg/L
    cp = values_cp("20250718080000", {"w01018": ("180.0", "N"), "w22001": ("2.0", "N")})
    assert monitor.exchange(frame(segment("2011", PLANT_MN, cp, st="32")))["CN"] == "9014"
    t = _utc_ns("20250718080000")
    assert running.store.operations("ruxi", t, t) == [("RX-FOOD-1", t, None, None, True)]
    # an effluent value is not a river reading
    assert running.store.readings("ruxi", "RX-FOOD-1") == []


def test_new_network_version_maps_a_new_mn_at_once(gw, monitor):
    running, _ = gw
    doc = _doc()
    next(s for s in doc["stations"] if s["id"] == "RX-DOWN")["hj212_mn"] = "NEWMN0001"
    packet = frame(segment("2011", "NEWMN0001", values_cp("20250719080000", {"w01009": ("6.0", "N")})))
    assert parse_answer((monitor.send(packet), monitor.recv_packet())[1])["CP"] == "QnRtn=4"   # not yet mapped
    running.store.put_network("ruxi", doc)
    assert monitor.exchange(packet)["CN"] == "9014"
    running.store.put_network("ruxi", _doc())   # back to the module's document


GOOD_CP = values_cp("20250720080000", {"w01009": ("7.5", "N")})
BAD_PACKETS = [
    # (name, bytes, counter reason, QnRtn of the 9011 answer or None for no answer)
    ("crc", frame(segment("2011", STATION_MN, GOOD_CP), crc="0000"), "crc", "9"),
    ("length short", frame(segment("2011", STATION_MN, GOOD_CP), length="0050"), "length", None),
    ("length long", frame(segment("2011", STATION_MN, GOOD_CP), length="0200"), "length", None),
    ("length not digits", b"##01A0" + segment("2011", STATION_MN, GOOD_CP).encode() + b"0000\r\n", "length", None),
    ("no header", b"QN=1;ST=21;CN=2011\r\n", "framing", None),
    ("unknown MN", frame(segment("2011", "NOSUCHMN", GOOD_CP)), "unknown_mn", "4"),
    ("value not a number", frame(segment("2011", STATION_MN, values_cp("20250720080000", {"w01009": ("abc", "N")}))),
     "bad_value", "2"),
    ("value NaN", frame(segment("2011", STATION_MN, values_cp("20250720080000", {"w01009": ("nan", "N")}))),
     "bad_value", "2"),
    ("DO impossible", frame(segment("2011", STATION_MN, values_cp("20250720080000", {"w01009": ("40.0", "N")}))),
     "bad_value", "2"),
    ("negative COD", frame(segment("2011", STATION_MN, values_cp("20250720080000", {"w01018": ("-3", "N")}))),
     "bad_value", "2"),
    ("pH 15", frame(segment("2011", STATION_MN, values_cp("20250720080000", {"w01001": ("15", "N")}))), "bad_value", "2"),
    ("bad DataTime", frame(segment("2011", STATION_MN, values_cp("20251340080000", {"w01009": ("7", "N")}))),
     "bad_value", "2"),
    ("no DataTime", frame(segment("2011", STATION_MN, "w01009-Rtd=7.0,w01009-Flag=N")), "bad_value", "2"),
    ("unknown data flag", frame(segment("2011", STATION_MN, values_cp("20250720080000", {"w01009": ("7", "Z")}))),
     "bad_value", "2"),
    ("no CP", frame("QN=20250720080000001;ST=21;CN=2011;PW=123456;MN=" + STATION_MN + ";Flag=5"), "syntax", None),
    ("encrypted CP", frame(segment("2011", STATION_MN, "9A3F0C71E2B45D88A01F6C3B7E9D2A45", flag=9)), "syntax", "100"),
    ("air system code", frame(segment("2011", STATION_MN, GOOD_CP, st="22")), "st", "5"),
    ("unsupported CN", frame(segment("1013", STATION_MN, "", st="91")), "unsupported_cn", "8"),
    ("not UTF-8 nor GB 18030", frame(segment("2011", STATION_MN, GOOD_CP).encode().replace(b"N&&", b"\xff&&")),
     "encoding", None),
]


@pytest.mark.parametrize(("bad", "reason", "qn_rtn"), [b[1:] for b in BAD_PACKETS], ids=[b[0] for b in BAD_PACKETS])
def test_bad_packet_is_refused_counted_logged_and_the_connection_survives(gw, monitor, caplog, bad, reason, qn_rtn):
    running, gateway = gw
    n_readings = running.store.count_readings("ruxi")
    before = gateway.stats()
    with caplog.at_level(logging.WARNING, logger="rivertrace.hj212"):
        monitor.send(bad)
        good = frame(segment("2011", STATION_MN, values_cp("20250720090000", {"w01009": ("7.4", "N")}),
                             qn="20250720090000999"))
        monitor.send(good)
        first = parse_answer(monitor.recv_packet())
        if qn_rtn is not None:        # the refusal's 9011 comes first, then the good packet's 9014
            assert (first["CN"], first["CP"]) == ("9011", f"QnRtn={qn_rtn}")
            first = parse_answer(monitor.recv_packet())
        assert (first["CN"], first["QN"]) == ("9014", "20250720090000999")   # same connection, still served
    d = _delta(gateway, before)
    assert d["refused"] == 1 and d[f"refused_{reason}"] == 1
    assert any(reason in r.getMessage() for r in caplog.records if r.name == "rivertrace.hj212")
    # nothing of the bad packet was stored: only the good packet's one reading (or it was already there)
    assert running.store.count_readings("ruxi") - n_readings in (0, 1)
    assert running.store.readings("ruxi", "RX-MID", "DO", _utc_ns("20250720080000"), _utc_ns("20250720080000")) == []


def test_wrong_password_is_refused_when_one_is_configured(tmp_path):
    store = Store(tmp_path / "rt.db")
    store.put_network("ruxi", _doc())
    gateway = Gateway(store, Networks(store), password="s3cret")
    m = Monitor(gateway.port)
    try:
        cp = values_cp("20250721080000", {"w01009": ("7.5", "N")})
        assert m.exchange(frame(segment("2011", STATION_MN, cp, pw="123456")))["CP"] == "QnRtn=3"
        assert m.exchange(frame(segment("2011", STATION_MN, cp, pw="s3cret")))["CN"] == "9014"
        assert gateway.stats()["refused_password"] == 1
    finally:
        m.close()
        gateway.stop()
        store.close()


def test_new_readings_wake_the_pipeline_and_stop_closes_connections(tmp_path):
    store = Store(tmp_path / "rt.db")
    store.put_network("ruxi", _doc())
    woken = []
    gateway = Gateway(store, Networks(store), on_readings=lambda net, stations: woken.append((net, stations)))
    m = Monitor(gateway.port)
    try:
        m.exchange(frame(segment("2011", STATION_MN, values_cp("20250722080000", {"w01009": ("7.5", "N")}))))
        assert woken == [("ruxi", {"RX-MID"})]
        gateway.stop()
        assert m.recv_packet(timeout=5.0) is None   # EOF: the gateway closed the connection (5 s: generous for a local close)
    finally:
        m.close()
        store.close()


def test_connections_beyond_the_limit_are_closed_and_the_others_served(tmp_path):
    store = Store(tmp_path / "rt.db")
    store.put_network("ruxi", _doc())
    gateway = Gateway(store, Networks(store), max_connections=2)
    monitors = [Monitor(gateway.port) for _ in range(2)]
    try:
        cp = values_cp("20250723080000", {"w01009": ("7.5", "N")})
        assert monitors[0].exchange(frame(segment("2011", STATION_MN, cp)))["CN"] == "9014"   # both admitted
        assert monitors[1].exchange(frame(segment("2011", STATION_MN, cp)))["CN"] == "9014"
        third = Monitor(gateway.port)
        assert third.recv_packet(timeout=5.0) is None      # closed at once (5 s: generous for a local close)
        third.close()
        assert monitors[0].exchange(frame(segment("2011", STATION_MN, cp)))["CN"] == "9014"
        assert gateway.stats()["connections_refused"] == 1
    finally:
        for m in monitors:
            m.close()
        gateway.stop()
        store.close()


def test_an_answer_from_the_field_unit_is_ignored(gw, monitor):
    gateway = gw[1]
    before = gateway.stats()
    monitor.send(frame(segment("9014", STATION_MN, "", st="91", flag=4)))
    # the next answer is the good packet's: the 9014 got none and was not refused
    assert monitor.exchange(frame(segment("2011", STATION_MN, values_cp("20250723090000", {"w01009": ("7", "N")}),
                                          qn="20250723090000001")))["QN"] == "20250723090000001"
    d = _delta(gateway, before)
    assert d["answers_ignored"] == 1 and "refused" not in d


def test_concurrent_monitors_are_all_acknowledged_and_stored(tmp_path):
    store = Store(tmp_path / "rt.db")
    store.put_network("ruxi", _doc())
    gateway = Gateway(store, Networks(store))
    n_monitors, per = 8, 40
    answers = [[] for _ in range(n_monitors)]

    def upload(k):
        m = Monitor(gateway.port)
        try:
            for i in range(per):
                t = pd.Timestamp("2025-08-01") + pd.Timedelta(minutes=k * per + i)
                cp = values_cp(t.strftime("%Y%m%d%H%M%S"), {"w01009": ("7.0", "N"), "w21003": ("0.5", "N")})
                answers[k].append(m.exchange(frame(segment("2011", STATION_MN, cp)))["CN"])
        finally:
            m.close()

    threads = [threading.Thread(target=upload, args=(k,)) for k in range(n_monitors)]
    try:
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
        assert answers == [["9014"] * per] * n_monitors
        assert store.count_readings("ruxi") == 2 * n_monitors * per
        assert len([r for r in store.audit_log(10_000) if r[3] == "HJ212/CN2011"]) == n_monitors * per
        assert gateway.stats()["commits"] <= n_monitors * per   # packets may share a transaction
    finally:
        gateway.stop()
        store.close()


def test_a_failed_commit_is_not_acknowledged_and_the_connection_survives(tmp_path, monkeypatch):
    store = Store(tmp_path / "rt.db")
    store.put_network("ruxi", _doc())
    gateway = Gateway(store, Networks(store))
    real = store.add_observations
    calls = []

    def failing_once(batch):
        calls.append(len(batch))
        if len(calls) == 1:
            raise sqlite3.OperationalError("disk I/O error")
        return real(batch)

    monkeypatch.setattr(store, "add_observations", failing_once)
    m = Monitor(gateway.port)
    try:
        cp = values_cp("20250724080000", {"w01009": ("7", "N")})
        m.send(frame(segment("2011", STATION_MN, cp, qn="20250724080000001")))
        # the logger resends (a new QN here, to tell the answers apart): the resend is the first answered
        assert m.exchange(frame(segment("2011", STATION_MN, cp, qn="20250724080000002")))["QN"] == "20250724080000002"
        assert store.count_readings("ruxi") == 1
        assert gateway.stats()["refused_storage"] == 1
    finally:
        m.close()
        gateway.stop()
        store.close()


def test_config_reads_the_hj212_table_and_the_cli_flag(tmp_path):
    toml = tmp_path / "rt.toml"
    toml.write_text('[hj212]\nport = 6001\npassword = "x"\nhost = "0.0.0.0"\n', encoding="utf-8")
    cfg = load_config(toml)
    assert (cfg.hj212_port, cfg.hj212_host, cfg.hj212_password) == (6001, "0.0.0.0", "x")
    assert load_config(None, hj212_port=6002).hj212_port == 6002
    toml.write_text('[hj212]\nport = 6001\nhost = "0.0.0.0"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="password"):
        load_config(toml)
    toml.write_text('[hj212]\nprot = 6001\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="prot"):
        load_config(toml)
    assert build_parser().parse_args(["serve", "--hj212-port", "6003"]).hj212_port == 6003

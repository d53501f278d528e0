"""HJ 212 framing, CRC, parsing and code tables (pure; no network). Packets come from the tests'
own encoder (hj212_encoder.py), written from the standard's text."""

import random

import pytest
from hj212_encoder import (
    STANDARD_EXAMPLE_CRC,
    STANDARD_EXAMPLE_LENGTH,
    STANDARD_EXAMPLE_SEGMENT,
    crc16,
    frame,
    parse_answer,
    segment,
    values_cp,
)

from server.hj212 import codes, protocol
from server.hj212.protocol import FrameReader, Hj212Error, parse_frame
from tracer.readings import QUALITY_FLAGS, UNITS, canonical_parameter, normalise_unit, parameter_quantity


def test_standard_appendix_example_crc_and_length():
    """HJ 212-2017 prints this example packet with length 0101 and CRC 1C80: both the tests' own
    step-by-step CRC and the product's table-driven one give it."""
    data = STANDARD_EXAMPLE_SEGMENT.encode()
    assert f"{len(data):04d}" == STANDARD_EXAMPLE_LENGTH
    assert f"{crc16(data):04X}" == STANDARD_EXAMPLE_CRC
    assert f"{protocol.crc16(data):04X}" == STANDARD_EXAMPLE_CRC
    packet = parse_frame(b"##0101" + data + b"1C80\r\n")
    assert (packet.qn, packet.st, packet.cn, packet.pw, packet.mn) == (
        "20160801085857223", "32", "1062", "100000", "010000A8900016F000169DC0")
    assert packet.flag == 5 and packet.version == 1 and packet.answer_requested
    assert dict(packet.cp) == {"RtdInterval": "30"}


def test_table_crc_equals_the_bitwise_procedure_on_random_segments():
    rng = random.Random(212)
    for n in [0, 1, 2, 7, 100, 1000]:
        for _ in range(20):
            data = bytes(rng.randrange(256) for _ in range(n))
            assert protocol.crc16(data) == crc16(data)


def test_hj212_crc_is_not_crc16_modbus():
    """The appendix's register step ``(crc >> 8) ^ byte`` differs from Modbus's ``crc ^ byte``: a
    gateway using the familiar Modbus CRC would refuse every real packet."""
    def modbus(data):
        crc = 0xFFFF
        for b in data:
            crc ^= b
            for _ in range(8):
                crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        return crc
    assert modbus(STANDARD_EXAMPLE_SEGMENT.encode()) != int(STANDARD_EXAMPLE_CRC, 16)


def test_lower_case_crc_is_accepted():
    seg = segment("2011", "MN1", values_cp("20250715080000", {"w01009": ("7.5", "N")}))
    good = frame(seg)
    lower = good[:-6] + good[-6:-2].lower() + b"\r\n"
    assert parse_frame(lower).cn == "2011"


def test_frame_reader_cuts_a_stream_at_any_boundary():
    packets = [frame(segment("2011", f"MN{i}", values_cp("20250715080000", {"w01009": (f"{i}.5", "N")})))
               for i in range(5)]
    stream = b"".join(packets)
    for step in (1, 3, 17, len(stream)):
        reader = FrameReader()
        got = []
        for i in range(0, len(stream), step):
            got += reader.feed(stream[i:i + step])
        assert got == packets and reader.pending == 0


@pytest.mark.parametrize(("bad", "reason"), [
    (b"hello\r\n", "framing"),
    (b"##01x1QN=1;CP=&&&&ABCD\r\n", "length"),
    (frame(segment("2011", "M", "DataTime=20250715080000"), length="0040"), "length"),   # too short
    (frame(segment("2011", "M", "DataTime=20250715080000"), length="0090"), "length"),   # too long
    (frame(segment("2011", "M", "DataTime=20250715080000"), tail=b"\n\n"), "length"),     # no CRLF
])
def test_frame_reader_reports_a_bad_frame_and_resynchronises(bad, reason):
    good = frame(segment("2011", "MN1", values_cp("20250715080000", {"w01009": ("7.5", "N")})))
    items = FrameReader().feed(bad + good + good)
    errors = [i for i in items if isinstance(i, Hj212Error)]
    assert [e.reason for e in errors] == [reason]
    assert [i for i in items if isinstance(i, bytes)] == [good, good]


def test_crc_error_keeps_the_header_to_address_the_answer():
    seg = segment("2011", "MN1", values_cp("20250715080000", {"w01009": ("7.5", "N")}))
    with pytest.raises(Hj212Error) as err:
        parse_frame(frame(seg, crc="0000" if crc16(seg.encode()) else "0001"))
    assert err.value.reason == "crc" and err.value.qn_rtn == 9 and err.value.packet.mn == "MN1"


@pytest.mark.parametrize(("seg", "qn_rtn"), [
    ("QN=20250715080000123;ST=21;CN=2011;PW=1;MN=M;Flag=5", 100),                  # no CP
    ("QN=20250715080000123;ST=21;CN=2011;PW=1;Flag=5;CP=&&&&", 100),               # no MN
    ("QN=20250715080000123;ST=21;CN=2011;PW=1;MN=M;Flag=x;CP=&&&&", 6),            # Flag not a number
    ("QN=2025;ST=21;CN=2011;PW=1;MN=M;Flag=5;CP=&&&&", 7),                         # QN not 17 digits
    ("QN=20250715080000123;ST=21;CN=20x1;PW=1;MN=M;Flag=5;CP=&&&&", 8),            # CN not 4 digits
    ("QN=20250715080000123;ST=21;CN=2011;PW=1;MN=M;Flag=9;CP=&&U2FsdGVkX1+abc&&", 100),  # encrypted CP
])
def test_parse_refuses_a_malformed_segment(seg, qn_rtn):
    with pytest.raises(Hj212Error) as err:
        parse_frame(frame(seg))
    assert err.value.reason == "syntax" and err.value.qn_rtn == qn_rtn


def test_legacy_segment_without_qn_and_flag_parses_and_asks_no_answer():
    """HJ/T 212-2005 data loggers send neither QN nor Flag in uploads."""
    p = parse_frame(frame(segment("2011", "MN1", "DataTime=20250715080000", qn=None, flag=None)))
    assert p.qn is None and p.flag is None and p.version == 0 and not p.answer_requested


@pytest.mark.parametrize(("flag", "version", "answer"), [(4, 1, False), (5, 1, True), (8, 2, False), (9, 2, True)])
def test_flag_bits(flag, version, answer):
    p = parse_frame(frame(segment("2011", "M", "DataTime=20250715080000", flag=flag)))
    assert (p.version, p.answer_requested) == (version, answer)


@pytest.mark.parametrize("flag", [5, 9])
def test_data_answer_echoes_qn_and_carries_the_packet_version(flag):
    p = parse_frame(frame(segment("2011", "MN7", "DataTime=20250715080000", flag=flag, pw="654321")))
    fields = parse_answer(protocol.data_answer(p))   # the tests' parser checks length and CRC
    assert fields == {"QN": "20250715080000123", "ST": "91", "CN": "9014", "PW": "654321", "MN": "MN7",
                      "Flag": str(flag & ~1), "CP": ""}


def test_every_pollutant_code_maps_to_a_parameter_and_unit_that_ingest_accepts():
    for code, pc in codes.POLLUTANTS.items():
        assert canonical_parameter(pc.parameter) == pc.parameter, code
        assert normalise_unit(pc.unit) in UNITS[parameter_quantity(pc.parameter)], code
    for code in ("w01009", "w21003", "w01018", "w01019", "w21011", "w21001", "w01010", "w01001", "w22001", "w00000"):
        assert code in codes.POLLUTANTS  # the list, petroleum (石油类) and effluent flow


def test_every_data_flag_maps_to_a_documented_quality_flag():
    assert set(codes.DATA_FLAGS) == set("NFMSDCTB")
    assert {v for v in codes.DATA_FLAGS.values() if v is not None} == set(QUALITY_FLAGS)

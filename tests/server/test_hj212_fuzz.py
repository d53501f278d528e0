"""No input crashes the gateway: random bytes and mutated packets (re-framed with a valid CRC, so
they reach the parser and the converter) are each either stored or refused with a named reason,
never an internal error. In process (Gateway.handle), on a real SQLite file."""

import json

import pytest
from hj212_encoder import frame, segment, values_cp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.cli import demo_basin_path
from server.hj212.gateway import Gateway
from server.hj212.protocol import FrameReader
from server.servicers import Networks
from server.storage import Store

MN = "010000A8900016F000169DC0"
GOOD = segment("2011", MN, values_cp("20250715093000", {"w01009": ("6.85", "N"), "w21003": ("1.25", "C")}))
# 150 examples each: a few seconds (a mutated packet that is still valid is committed with an fsync)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("fuzz") / "rt.db")
    doc = json.loads(demo_basin_path("ruxi").read_text(encoding="utf-8"))
    next(s for s in doc["stations"] if s["id"] == "RX-MID")["hj212_mn"] = MN
    store.put_network("ruxi", doc)
    gw = Gateway(store, Networks(store))
    yield gw
    gw.stop()
    store.close()


def _feed(gateway, data):
    for item in FrameReader().feed(data):
        gateway.handle(item, "fuzz")      # must not raise
    assert gateway.stats().get("refused_internal", 0) == 0


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes(gateway, data):
    _feed(gateway, b"##" + data)
    _feed(gateway, data)


@FUZZ
@given(st.integers(0, len(GOOD) - 1), st.integers(0, len(GOOD)), st.text(max_size=12))
def test_mutated_segment_with_a_valid_crc(gateway, start, stop, insert):
    mutated = GOOD[:start] + insert + GOOD[max(start, stop):]
    try:
        data = frame(mutated)
    except UnicodeEncodeError:   # a lone surrogate cannot be sent at all
        return
    _feed(gateway, data)

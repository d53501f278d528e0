"""A hub down for 120 s is served within a minute of its return, with the default delivery settings
(issue 13: the first alert came 319 s after the hub came back). Not in CI (about 3 minutes):
``python -m pytest -m bench -s tests/bench/test_bench_delivery.py``. Results: ``results/delivery_return.json``.
"""

import socket
import time

import pytest
from bench_util import write_results

from server.app import create_server
from server.client import RivertraceClient
from server.config import Config
from server.generated.rivertrace.v1 import alerts_pb2, incidents_pb2
from server.hub import start_hub

pytestmark = pytest.mark.bench
DOWN_S = 120.0
#: issue 13 budget: delivery resumes within a minute of the hub's return [s]
BUDGET_S = 60.0


def test_a_hub_down_for_two_minutes_is_served_within_a_minute_of_its_return(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    running = create_server(Config(db=tmp_path / "rt.db", port=0))  # default timeouts, backoff cap 30 s
    running.server.start()
    try:
        with RivertraceClient(f"127.0.0.1:{running.port}") as c:
            c.register_hub("back", grpc_address=f"127.0.0.1:{port}", network="ruxi")
            inc = incidents_pb2.Incident(id="INC-B", network="ruxi")
            alert = alerts_pb2.Alert(alert_id="INC-B/opened", incident_id="INC-B", incident=inc)
            running.outbox.enqueue(alert.alert_id, "INC-B", alert.SerializeToString(), "ruxi", set())
            time.sleep(DOWN_S)
            (d,) = c.deliveries()
            attempts_while_down = d.attempts
            hub_server, _p, hub = start_hub(port)
            t = time.monotonic()
            try:
                while not hub.alerts and time.monotonic() - t < 3 * BUDGET_S:
                    time.sleep(0.1)
                waited = time.monotonic() - t
            finally:
                hub_server.stop(0)
    finally:
        running.stop(grace=1.0)
    figures = {"down_s": DOWN_S, "attempts_while_down": attempts_while_down, "delivered": bool(hub.alerts),
               "seconds_after_return": round(waited, 1), "budget_s": BUDGET_S, "backoff_cap_s": 30.0,
               "baseline": "issue 13: first alert 319 s after a 120 s outage"}
    write_results("delivery_return", figures)
    assert hub.alerts and waited <= BUDGET_S

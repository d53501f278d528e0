"""Alert delivery isolated per target (issue 13), with real receivers on loopback: a webhook that
trickles one byte every 3 s, a gRPC hub that hangs, a redirecting webhook, a hub that is down and
comes back, a TLS hub; the healthy hub gets its alerts promptly, in order, whatever the others do."""

import socket
import threading
import time
from concurrent import futures

import grpc
import pytest
from service_util import make_pki, wait_for

from server.app import create_server
from server.client import RivertraceClient
from server.config import Client, Config
from server.generated.rivertrace.v1 import alerts_pb2, alerts_pb2_grpc, incidents_pb2
from server.hub import SampleHub, start_hub

TOKENS = {"t-admin": Client("ops", "admin"), "t-hub": Client("city-hub", "hub"), "t-hub2": Client("county-hub", "hub")}
#: delivery settings of these tests [s]: short so that the tests are quick; the defaults are 3/10/30
CONNECT_S, READ_S, CAP_S = 1.0, 2.0, 2.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TrickleWebhook:
    """An HTTP server that reads the request, then answers one byte every ``pace_s`` seconds."""

    def __init__(self, pace_s=3.0, response=b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"):
        self.pace_s, self.response = pace_s, response
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.requests = 0
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(65536)
                self.requests += 1
                for b in self.response:
                    if self._stop.wait(self.pace_s):
                        return
                    conn.sendall(bytes([b]))
            except OSError:
                pass

    def close(self):
        self._stop.set()
        self.sock.close()


class HungHub(alerts_pb2_grpc.HubReceiverServicer):
    def __init__(self):
        self.release = threading.Event()
        self.calls = 0

    def Deliver(self, request, context):
        self.calls += 1
        self.release.wait(60)
        return alerts_pb2.DeliverAck(alert_id=request.alert_id)


def alert_bytes(incident, event):
    inc = incidents_pb2.Incident(id=incident, network="ruxi")
    return alerts_pb2.Alert(alert_id=f"{incident}/{event}", incident_id=incident, incident=inc, summary=event).SerializeToString()


@pytest.fixture
def server(tmp_path):
    def make(**kw):
        cfg = Config(db=tmp_path / "rt.db", port=0, tokens=TOKENS, connect_timeout_s=CONNECT_S, read_timeout_s=READ_S,
                     backoff_cap_s=CAP_S, outbox_poll_s=0.2, **kw)
        running = create_server(cfg)
        running.server.start()
        made.append(running)
        return running
    made = []
    yield make
    for r in made:
        r.stop(grace=1.0)


def client(running, token="t-admin"):
    return RivertraceClient(f"127.0.0.1:{running.port}", token=token, timeout=10)




def test_a_slow_webhook_and_a_hung_hub_do_not_delay_a_healthy_hub(server):
    running = server()
    slow, hung = TrickleWebhook(pace_s=3.0), HungHub()
    hung_server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    alerts_pb2_grpc.add_HubReceiverServicer_to_server(hung, hung_server)
    hung_port = hung_server.add_insecure_port("127.0.0.1:0")
    hung_server.start()
    good_server, good_port, good = start_hub()
    try:
        with client(running) as c:
            c.register_hub("slow", webhook_url=f"http://127.0.0.1:{slow.port}/hook", network="ruxi")
            c.register_hub("hung", grpc_address=f"127.0.0.1:{hung_port}", network="ruxi")
            c.register_hub("good", grpc_address=f"127.0.0.1:{good_port}", network="ruxi")
            sent = {}
            for i in range(24):  # 24 alerts over 4 incidents, as the testers sent
                inc = f"INC-{i % 4}"
                running.outbox.enqueue(f"{inc}/e{i}", inc, alert_bytes(inc, f"e{i}"), "ruxi", set())
                sent[f"{inc}/e{i}"] = time.monotonic()
            # The control run of the issue got 24 of 24; the broken service got 0 of 24 in 150 s. Each
            # incident's alerts go one at a time (order), so 6 round trips per incident: 20 s is for a
            # loaded CI machine, the median latency is asserted below.
            assert wait_for(lambda: len(good.alerts) == 24, 20), len(good.alerts)
            lat = sorted(time.monotonic() - sent[a.alert_id] for a in good.alerts)
            assert lat[len(lat) // 2] < 5.0, lat  # the slow and hung targets each take READ_S+ per attempt
            by_incident = {}
            for a in good.alerts:
                by_incident.setdefault(a.incident_id, []).append(a.sequence)
            assert all(seqs == sorted(seqs) and seqs == list(range(1, 7)) for seqs in by_incident.values()), by_incident
            # the bad targets were really tried, and their first attempts have ended (READ_S each)
            assert wait_for(lambda: {d.target_id for d in c.deliveries() if d.attempts} >= {"slow", "hung"}, 3 * READ_S + 5)
            assert slow.requests >= 1 and hung.calls >= 1
            ds = [d for d in c.deliveries() if d.target_id in ("slow", "hung")]
            assert not any(d.state == alerts_pb2.DELIVERY_STATE_DELIVERED for d in ds)
            slow_errors = [d.last_error for d in ds if d.target_id == "slow" and d.attempts]
            # cut off at the read deadline, not kept alive by one byte every 3 s
            assert all("within 2.0 s" in e for e in slow_errors), slow_errors
            hung_errors = [d.last_error for d in ds if d.target_id == "hung" and d.attempts]
            assert all("DEADLINE_EXCEEDED" in e for e in hung_errors), hung_errors
    finally:
        hung.release.set()
        slow.close()
        hung_server.stop(0)
        good_server.stop(0)


def test_a_redirect_is_not_a_delivery(server):
    running = server()
    hook = TrickleWebhook(pace_s=0.0, response=b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/\r\nContent-Length: 0\r\n\r\n")
    try:
        with client(running) as c:
            c.register_hub("moved", webhook_url=f"http://127.0.0.1:{hook.port}/hook", network="ruxi")
            running.outbox.enqueue("INC-R/opened", "INC-R", alert_bytes("INC-R", "opened"), "ruxi", set())
            assert wait_for(lambda: any(d.attempts >= 1 for d in c.deliveries()), 10)
            (d,) = c.deliveries()
            assert d.state == alerts_pb2.DELIVERY_STATE_RETRYING and "302" in d.last_error and "redirect" in d.last_error
    finally:
        hook.close()


def test_re_registration_takes_effect_at_once(server):
    """The issue saw a target re-registered at a new address still get 2 of 2 alerts at the old one."""
    running = server()
    old_server, old_port, old = start_hub()
    new_server, new_port, new = start_hub()
    try:
        with client(running, "t-hub") as c:
            c.register_hub("h", grpc_address=f"127.0.0.1:{old_port}", network="ruxi")
            running.outbox.enqueue("INC-M/1", "INC-M", alert_bytes("INC-M", "1"), "ruxi", set())
            assert wait_for(lambda: len(old.alerts) == 1, 10)  # the old address works and has a channel
            c.register_hub("h", grpc_address=f"127.0.0.1:{new_port}", network="ruxi")
            for k in (2, 3):
                running.outbox.enqueue(f"INC-M/{k}", "INC-M", alert_bytes("INC-M", str(k)), "ruxi", set())
            assert wait_for(lambda: len(new.alerts) == 2, 10)
            assert [a.alert_id for a in old.alerts] == ["INC-M/1"]  # nothing more at the old address
            assert [a.alert_id for a in new.alerts] == ["INC-M/2", "INC-M/3"]
            # a target failing (nothing listens) and in backoff is tried at once at its new address
            # (scoped to another network, so that target "h" at the same hub does not get this alert too)
            c.register_hub("d", grpc_address=f"127.0.0.1:{free_port()}", network="other")
            running.outbox.enqueue("INC-N/1", "INC-N", alert_bytes("INC-N", "1"), "other", set())
            assert wait_for(lambda: any(d.target_id == "d" and d.attempts >= 2 for d in c.deliveries()), 15)
            c.register_hub("d", grpc_address=f"127.0.0.1:{new_port}", network="other")
            t = time.monotonic()
            assert wait_for(lambda: any(a.alert_id == "INC-N/1" for a in new.alerts), 10)
            # due at once (poll 0.2 s), not after the backoff (up to CAP_S = 2 s here, 30 s by default)
            assert time.monotonic() - t < CAP_S
            (d,) = [d for d in c.deliveries() if d.target_id == "d"]
            assert d.state == alerts_pb2.DELIVERY_STATE_DELIVERED and d.attempts == 0  # re-registration reset them
    finally:
        old_server.stop(0)
        new_server.stop(0)


def test_a_hub_that_comes_back_is_served_within_the_backoff_cap(server):
    running = server()
    port = free_port()
    with client(running) as c:
        c.register_hub("back", grpc_address=f"127.0.0.1:{port}", network="ruxi")
        running.outbox.enqueue("INC-B/opened", "INC-B", alert_bytes("INC-B", "opened"), "ruxi", set())
        # down long enough for the backoff to reach its cap (2^attempts > CAP_S after 2 attempts)
        assert wait_for(lambda: any(d.attempts >= 4 for d in c.deliveries()), 30)
        hub_server, _p, hub = start_hub(port)
        try:
            t = time.monotonic()
            assert wait_for(lambda: len(hub.alerts) == 1, 3 * CAP_S + 10)
            waited = time.monotonic() - t
            # at most one capped wait plus one attempt and a poll; the issue saw 319 s after 120 s down
            assert waited <= CAP_S + CONNECT_S + READ_S + 1.0, waited
        finally:
            hub_server.stop(0)


def test_dead_letters_are_visible_and_an_admin_replays_them_in_order(server):
    running = server(dead_letter_after_s=1.0)
    port = free_port()
    with client(running, "t-hub") as hub_client, client(running) as admin:
        hub_client.register_hub("dl", grpc_address=f"127.0.0.1:{port}", network="ruxi")
        running.outbox.enqueue("INC-D/1", "INC-D", alert_bytes("INC-D", "1"), "ruxi", set())
        running.outbox.enqueue("INC-D/2", "INC-D", alert_bytes("INC-D", "2"), "ruxi", set())
        dead = alerts_pb2.DELIVERY_STATE_DEAD
        assert wait_for(lambda: all(d.state == dead for d in hub_client.deliveries()), 20)
        resp = hub_client.alerts.ListDeliveries(alerts_pb2.ListDeliveriesRequest(state=dead), **hub_client._kw())
        assert [d.alert_id for d in resp.deliveries] == ["INC-D/1", "INC-D/2"]
        assert "held behind dead-lettered INC-D/1" in resp.deliveries[1].last_error
        with pytest.raises(grpc.RpcError) as info:
            hub_client.alerts.ReplayDeliveries(alerts_pb2.ReplayDeliveriesRequest(target_id="dl"), **hub_client._kw())
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
        hub_server, _p, hub = start_hub(port)
        try:
            n = admin.alerts.ReplayDeliveries(alerts_pb2.ReplayDeliveriesRequest(target_id="dl"), **admin._kw()).replayed
            assert n == 2
            assert wait_for(lambda: len(hub.alerts) == 2, 15)
            assert [a.alert_id for a in hub.alerts] == ["INC-D/1", "INC-D/2"]  # order kept through the replay
        finally:
            hub_server.stop(0)
        methods = [e[3] for e in running.store.audit_log()]
        assert methods.count("ReplayDeliveries") == 2  # the refused replay and the admin's


def test_a_tls_hub_gets_alerts_verified_with_the_configured_ca(server, tmp_path):
    pki = make_pki(tmp_path)
    running = server(delivery_ca=pki / "ca.crt")
    hub = SampleHub()
    hub_server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    alerts_pb2_grpc.add_HubReceiverServicer_to_server(hub, hub_server)
    creds = grpc.ssl_server_credentials([((pki / "server.key").read_bytes(), (pki / "server.crt").read_bytes())])
    port = hub_server.add_secure_port("127.0.0.1:0", creds)
    hub_server.start()
    try:
        with client(running) as c:
            c.alerts.RegisterTarget(alerts_pb2.RegisterTargetRequest(id="tls-hub", grpc_address=f"localhost:{port}",
                                                                     tls=True, network="ruxi"), **c._kw())
            c.alerts.RegisterTarget(alerts_pb2.RegisterTargetRequest(id="plain-to-tls", grpc_address=f"localhost:{port}",
                                                                     network="ruxi"), **c._kw())
            running.outbox.enqueue("INC-T/opened", "INC-T", alert_bytes("INC-T", "opened"), "ruxi", set())
            assert wait_for(lambda: len(hub.alerts) == 1, 15)
            assert wait_for(lambda: any(d.target_id == "plain-to-tls" and d.attempts >= 1 for d in c.deliveries()), 15)
            states = {d.target_id: d.state for d in c.deliveries()}
            assert states == {"tls-hub": alerts_pb2.DELIVERY_STATE_DELIVERED, "plain-to-tls": alerts_pb2.DELIVERY_STATE_RETRYING}
    finally:
        hub_server.stop(0)

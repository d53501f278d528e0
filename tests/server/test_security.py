"""Security (issue 13): owned targets, endpoint allow-list, config refusals, audit of every change
and every denial (in the change's transaction), and mutual TLS with the Python client."""

import json
import queue

import grpc
import pytest
from service_util import make_pki

from server.app import create_server, serve
from server.cli import demo_basin_path
from server.client import RivertraceClient
from server.config import Client, Config, ConfigError, load_config
from server.convert import timestamp
from server.generated.rivertrace.v1 import alerts_pb2, monitoring_pb2

RUXI = json.loads(demo_basin_path("ruxi").read_text(encoding="utf-8"))
TOKENS = {"t-admin": Client("ops", "admin"), "t-bureau": Client("duty-app", "bureau"),
          "t-hub": Client("city-hub", "hub"), "t-hub2": Client("county-hub", "hub")}


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    cfg = Config(db=tmp_path_factory.mktemp("sec") / "rt.db", port=0, tokens=TOKENS,
                 delivery_allow=("127.0.0.0/8", "::1", "localhost", "10.1.0.0/16", "hub.example.gov"))
    r = create_server(cfg, deliver=False)
    r.server.start()
    with RivertraceClient(f"127.0.0.1:{r.port}", token="t-admin") as admin:
        admin.put_network("ruxi", RUXI)
    yield r
    r.stop(grace=1.0)


def connect(r, token):
    return RivertraceClient(f"127.0.0.1:{r.port}", token=token, timeout=10)


def audit_rows(r):
    return r.store.audit_log(100000)


# ------------------------------------------------------------------------------ ownership
def test_a_hub_manages_only_its_own_targets_and_an_admin_all(running):
    with connect(running, "t-hub") as hub, connect(running, "t-hub2") as other, connect(running, "t-admin") as admin:
        hub.register_hub("city", grpc_address="127.0.0.1:7001", network="ruxi")
        before = len(audit_rows(running))
        for call in (lambda: other.register_hub("city", grpc_address="127.0.0.1:7002"),  # overwrite, scope widened
                     lambda: other.alerts.RemoveTarget(alerts_pb2.RemoveTargetRequest(id="city"), **other._kw())):
            with pytest.raises(grpc.RpcError) as info:
                call()
            assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED and "city-hub" in info.value.details()
        rows = audit_rows(running)[: len(audit_rows(running)) - before]
        assert len(rows) == 2 and all("denied" in r[4] and r[1] == "county-hub" for r in rows)  # one row per denial
        (t,) = running.outbox.targets()
        assert (t.grpc_address, t.network, t.owner) == ("127.0.0.1:7001", "ruxi", "city-hub")  # unchanged
        assert [x.id for x in other.alerts.ListTargets(alerts_pb2.ListTargetsRequest(), **other._kw()).targets] == []
        assert [x.id for x in hub.alerts.ListTargets(alerts_pb2.ListTargetsRequest(), **hub._kw()).targets] == ["city"]
        admin.register_hub("city", grpc_address="127.0.0.1:7003", network="ruxi")  # an admin may
        assert running.outbox.target("city").owner == "city-hub"  # and the owner stays the hub
        admin.alerts.RemoveTarget(alerts_pb2.RemoveTargetRequest(id="city"), **admin._kw())
        assert running.outbox.targets() == []


# ------------------------------------------------------------------------------ endpoints
BAD_ENDPOINTS = {
    "documentation address (not allowed)": ({"webhook_url": "http://192.0.2.1/hook"}, "webhook_url", "allow-list"),
    "port 99999": ({"webhook_url": "http://127.0.0.1:99999/hook"}, "webhook_url", "1-65535"),
    "port 0": ({"webhook_url": "http://127.0.0.1:0/hook"}, "webhook_url", "1-65535"),
    "bare http://": ({"webhook_url": "http://"}, "webhook_url", "no host"),
    "ftp scheme": ({"webhook_url": "ftp://127.0.0.1/x"}, "webhook_url", "scheme"),
    "file scheme": ({"webhook_url": "file:///etc/passwd"}, "webhook_url", "scheme"),
    "credentials in URL": ({"webhook_url": "http://u:p@127.0.0.1/x"}, "webhook_url", "credentials"),
    "space in URL": ({"webhook_url": "http://127.0.0.1/a b"}, "webhook_url", "spaces"),
    "private network not listed": ({"webhook_url": "http://10.2.0.1/x"}, "webhook_url", "allow-list"),
    "metadata service": ({"webhook_url": "http://169.254.169.254/latest"}, "webhook_url", "allow-list"),
    "unlisted host name": ({"webhook_url": "https://evil.example.com/x"}, "webhook_url", "allow-list"),
    "non-numeric port": ({"webhook_url": "http://127.0.0.1:80a/x"}, "webhook_url", "1-65535"),
    "grpc port 99999": ({"grpc_address": "127.0.0.1:99999"}, "grpc_address", "1-65535"),
    "grpc port 0": ({"grpc_address": "127.0.0.1:0"}, "grpc_address", "1-65535"),
    "grpc no port": ({"grpc_address": "127.0.0.1"}, "grpc_address", "host:port"),
    "grpc no host": ({"grpc_address": ":50051"}, "grpc_address", "no host"),
    "grpc not allowed": ({"grpc_address": "192.0.2.1:50051"}, "grpc_address", "allow-list"),
    "grpc v6 bad port": ({"grpc_address": "[::1]:70000"}, "grpc_address", "1-65535"),
    "grpc URL instead of address": ({"grpc_address": "http://127.0.0.1:5/"}, "grpc_address", "host:port"),
    "grpc bad host name": ({"grpc_address": "bad_host!:5"}, "grpc_address", "host"),
    "tls on a webhook": ({"webhook_url": "http://127.0.0.1/x", "tls": True}, "tls", "grpc_address"),
    "URL too long": ({"webhook_url": "http://127.0.0.1/" + "a" * 3000}, "webhook_url", "longer"),
}
GOOD_ENDPOINTS = {
    "loopback webhook": {"webhook_url": "http://127.0.0.1:8080/hook"},
    "loopback https default port": {"webhook_url": "https://localhost/hook"},
    "listed network": {"webhook_url": "http://10.1.2.3:8443/hook"},
    "listed host name": {"grpc_address": "hub.example.gov:443", "tls": True},
    "v6 loopback": {"grpc_address": "[::1]:50051"},
}


@pytest.mark.parametrize("name", list(BAD_ENDPOINTS))
def test_bad_or_disallowed_endpoints_are_refused_by_field(running, name):
    fields, field, text = BAD_ENDPOINTS[name]
    with connect(running, "t-hub") as hub, pytest.raises(grpc.RpcError) as info:
        hub.alerts.RegisterTarget(alerts_pb2.RegisterTargetRequest(id="x", **fields), **hub._kw())
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    from server.client import field_violations

    assert [f for f, _d in field_violations(info.value)] == [field]
    assert text in info.value.details(), info.value.details()
    assert running.outbox.target("x") is None


@pytest.mark.parametrize("name", list(GOOD_ENDPOINTS))
def test_allowed_endpoints_are_registered(running, name):
    with connect(running, "t-hub") as hub:
        t = hub.alerts.RegisterTarget(alerts_pb2.RegisterTargetRequest(id=f"ok-{name}", **GOOD_ENDPOINTS[name]), **hub._kw())
        assert t.owner == "city-hub"
        hub.alerts.RemoveTarget(alerts_pb2.RemoveTargetRequest(id=t.id), **hub._kw())


# ------------------------------------------------------------------------------ config
def _toml(tmp_path, text):
    p = tmp_path / "rt.toml"
    p.write_text(text)
    return p


CONFIG_ERRORS = {
    "empty token key": ('[tokens]\n"" = "x:admin"\n', "empty token"),
    "blank token key": ('[tokens]\n"  " = "x:admin"\n', "empty token"),
    "tokens over plaintext on 0.0.0.0": ('host = "0.0.0.0"\n[tokens]\n"t" = "x:admin"\n', "allow_insecure"),
    "workers = 0": ('workers = 0\n', "workers"),
    "workers negative": ('workers = -3\n', "workers"),
    "workers not a number": ('workers = "many"\n', "workers"),
    "missing certificate": ('[tls]\ncert = "nope.crt"\nkey = "nope.key"\n', "does not exist"),
    "cert without key": ('[tls]\ncert = "nope.crt"\n', "both cert and key"),
    "unknown key": ('wokers = 4\n', "unknown key"),
    "unknown role": ('[tokens]\n"t" = "x:root"\n', "role"),
    "bad allow entry": ('[delivery]\nallow = ["not a host!"]\n', "allow"),
    "allow not a list": ('[delivery]\nallow = "127.0.0.1"\n', "allow"),
    "zero read timeout": ('[delivery]\nread_timeout_s = 0\n', "read_timeout_s"),
    "bad stream role": ('[streams]\nroles = { root = 3 }\n', "unknown role"),
    "port out of range": ('port = 70000\n', "port"),
    "not TOML": ('port = = 1\n', "rt.toml"),
    "open mode on 0.0.0.0": ('host = "0.0.0.0"\n', "loopback"),
    "allow_insecure not a bool": ('allow_insecure = "yes"\n', "allow_insecure"),
}


@pytest.mark.parametrize("name", list(CONFIG_ERRORS))
def test_config_errors_are_one_clear_message(tmp_path, name):
    text, expected = CONFIG_ERRORS[name]
    with pytest.raises(ConfigError) as info:
        load_config(_toml(tmp_path, text))
    assert expected in str(info.value), str(info.value)


def test_plaintext_tokens_on_a_public_address_need_allow_insecure(tmp_path):
    cfg = load_config(_toml(tmp_path, 'host = "0.0.0.0"\nallow_insecure = true\n[tokens]\n"t" = "x:admin"\n'))
    assert cfg.allow_insecure and cfg.host == "0.0.0.0"


def test_serve_prints_a_config_error_instead_of_a_traceback(tmp_path, capsys):
    bad = tmp_path / "garbage.crt"
    bad.write_text("not a certificate")
    code = serve(Config(db=tmp_path / "x.db", port=0, tls_cert=bad, tls_key=bad))
    err = capsys.readouterr().err
    assert code == 2 and "rivertrace:" in err and "Traceback" not in err


def test_create_server_refuses_workers_0(tmp_path):
    with pytest.raises(ConfigError, match="workers"):
        create_server(Config(db=tmp_path / "x.db", port=0, workers=0))


# ------------------------------------------------------------------------------ audit
def test_every_denied_call_leaves_one_audit_row(running):
    before = len(audit_rows(running))
    calls = [(None, lambda c: c.get_network("ruxi")), ("guess", lambda c: c.get_network("ruxi")),
             ("t-hub", lambda c: c.put_network("ruxi", RUXI)), ("t-hub", lambda c: c.trace("ruxi", "RX-UP", "COD")),
             ("t-bureau", lambda c: c.register_hub("h", grpc_address="127.0.0.1:1")),
             ("t-bureau", lambda c: c.replay_deliveries())]
    for token, call in calls:
        with connect(running, token) as c, pytest.raises(grpc.RpcError) as info:
            call(c)
        assert info.value.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
    rows = audit_rows(running)[: len(audit_rows(running)) - before]
    assert len(rows) == len(calls)
    assert sorted(r[3] for r in rows) == sorted(["GetNetwork", "GetNetwork", "PutNetwork", "Trace", "RegisterTarget",
                                                 "ReplayDeliveries"])
    assert all(r[4].startswith("denied:") for r in rows)


def test_an_acknowledged_batch_has_its_audit_row_even_if_the_client_cancels_at_once(running):
    """The issue found 90 of 200 acknowledged batches without an audit row when the client
    cancelled right after the ack; the row is now written in the batch's own transaction."""
    before_rows = len(audit_rows(running))
    acked = 0
    with connect(running, "t-bureau") as c:
        for i in range(40):
            feed: queue.Queue = queue.Queue()
            feed.put(monitoring_pb2.ReadingBatch(network="ruxi", batch_id=i, readings=[monitoring_pb2.Reading(
                station_id="RX-UP", parameter="COD", time=timestamp(1752540000 * 10**9 + i * 60 * 10**9), value=3.0,
                unit="mg/L")]))
            call = c.monitoring.IngestReadings(iter(feed.get, None), **c._kw())
            ack = next(call)
            call.cancel()  # right after the ack
            acked += ack.stored
    rows = [r for r in audit_rows(running)[: len(audit_rows(running)) - before_rows] if r[3] == "IngestReadings"]
    assert acked == 40 and len(rows) == 40


# ------------------------------------------------------------------------------ mTLS
def test_mutual_tls_with_the_python_client(tmp_path):
    pki = make_pki(tmp_path)
    cfg = Config(db=tmp_path / "rt.db", port=0, tokens={"t": Client("app", "bureau")}, tls_cert=pki / "server.crt",
                 tls_key=pki / "server.key", tls_client_ca=pki / "ca.crt")
    r = create_server(cfg, deliver=False)
    r.server.start()
    try:
        ca = (pki / "ca.crt").read_bytes()
        with RivertraceClient(f"localhost:{r.port}", token="t", root_certificates=ca,
                              private_key=(pki / "client.key").read_bytes(),
                              certificate_chain=(pki / "client.crt").read_bytes()) as c:
            assert c.put_network("ruxi", RUXI).version == 1
        with RivertraceClient(f"localhost:{r.port}", token="t", root_certificates=ca, timeout=5) as no_cert, \
                pytest.raises(grpc.RpcError) as info:
            no_cert.get_network("ruxi")  # the server requires a client certificate
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        r.stop(grace=1.0)


def test_a_hub_may_register_at_most_100_targets(running):
    from server.incident_service import MAX_TARGETS_PER_OWNER

    with connect(running, "t-hub2") as hub:
        for i in range(MAX_TARGETS_PER_OWNER):
            hub.register_hub(f"many-{i}", grpc_address=f"127.0.0.1:{2000 + i}")
        hub.register_hub("many-0", grpc_address="127.0.0.1:3000")  # re-registering its own is still fine
        with pytest.raises(grpc.RpcError) as info:
            hub.register_hub("one-too-many", grpc_address="127.0.0.1:3001")
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        for i in range(MAX_TARGETS_PER_OWNER):
            hub.alerts.RemoveTarget(alerts_pb2.RemoveTargetRequest(id=f"many-{i}"), **hub._kw())


def test_a_database_that_cannot_be_opened_is_a_config_error(tmp_path, capsys):
    assert serve(Config(db=tmp_path, port=0)) == 2  # a directory, not a file
    err = capsys.readouterr().err
    assert "cannot be opened for writing" in err and "Traceback" not in err

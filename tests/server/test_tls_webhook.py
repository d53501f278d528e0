"""TLS when certificates are configured; webhook delivery signed with HMAC-SHA256."""

import hashlib
import hmac
import http.server
import json
import shutil
import subprocess
import threading
from typing import ClassVar

import grpc
import pytest
from service_util import make_server, put
from test_pipeline_alerts import ingest, wait_for

from server.app import create_server
from server.client import RivertraceClient
from server.config import Client, Config
from tracer.scenarios import ruxi_replay


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(d / "server.key"), "-out", str(d / "server.crt")], check=True, capture_output=True)
    return d


def test_tls_serves_secure_clients_only(tmp_path, certs, ruxi_doc):
    cfg = Config(db=tmp_path / "rt.db", port=0, tokens={"t": Client("app", "bureau")},
                 tls_cert=certs / "server.crt", tls_key=certs / "server.key")
    running = create_server(cfg)
    running.server.start()
    try:
        ca = (certs / "server.crt").read_bytes()
        with RivertraceClient(f"localhost:{running.port}", token="t", root_certificates=ca) as c:
            assert c.put_network("ruxi", ruxi_doc).version == 1
        with RivertraceClient(f"127.0.0.1:{running.port}", token="t", timeout=3) as plain, pytest.raises(grpc.RpcError) as info:
            plain.get_network("ruxi")  # plaintext to a TLS port fails
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        running.stop(grace=1.0)


class _Hook(http.server.BaseHTTPRequestHandler):
    secret = b"hub-secret"
    received: ClassVar[list] = []
    fail_first = 0

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if _Hook.fail_first > 0:
            _Hook.fail_first -= 1
            self.send_response(503)
            self.end_headers()
            return
        good = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        ok = hmac.compare_digest(good, self.headers.get("X-Rivertrace-Signature", ""))
        _Hook.received.append((ok, self.headers.get("X-Rivertrace-Alert-Id"), json.loads(body)))
        self.send_response(200 if ok else 401)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_webhook_delivery_is_signed_and_retried(tmp_path, ruxi_doc):
    _Hook.received, _Hook.fail_first = [], 2  # the hub is briefly unavailable: 503 twice
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    running = make_server(tmp_path)
    try:
        with RivertraceClient(f"127.0.0.1:{running.port}") as c:
            put(c.channel, ruxi_doc)
            c.register_hub("hook", webhook_url=f"http://127.0.0.1:{httpd.server_port}/alerts", network="ruxi",
                           secret="hub-secret")
            ingest(c.channel, ruxi_replay(), "ruxi")
            assert running.pipeline.wait_idle(60)
            assert wait_for(lambda: len(_Hook.received) >= 1, 60)
            ok, alert_id, body = _Hook.received[0]
            assert ok and alert_id == body["alertId"] and body["incident"]["candidates"][0]["id"] == "RX-FOOD-1"
            (d,) = c.deliveries()
            assert d.attempts == 2 and d.target_id == "hook"  # two failed attempts recorded, then delivered
    finally:
        running.stop(grace=1.0)
        httpd.shutdown()

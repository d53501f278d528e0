"""A real server on a loopback port with a real SQLite file, for the service tests."""

import json
import time

import grpc
import pytest

from server.app import create_server
from server.cli import demo_basin_path
from server.config import Client, Config
from server.generated.rivertrace.v1 import monitoring_pb2_grpc, network_pb2, network_pb2_grpc

TOKENS = {"t-admin": Client("ops", "admin"), "t-bureau": Client("duty-app", "bureau"), "t-hub": Client("city-hub", "hub")}


def make_server(tmp_path, tokens=None):
    # Trace and Forecast in the server's threads: spawning worker processes costs ~2 s per server; the process
    # pool itself is tested in test_compute_pool.py and by `rivertrace serve` (durability and load tests)
    cfg = Config(db=tmp_path / "rt.db", host="127.0.0.1", port=0, tokens=tokens or {}, max_message_mb=4,
                 compute_processes=False)
    running = create_server(cfg)
    running.server.start()
    return running


@pytest.fixture
def service(tmp_path):
    running = make_server(tmp_path)
    channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    yield running, channel
    channel.close()
    running.stop(grace=1.0)


@pytest.fixture
def ruxi_doc():
    return json.loads(demo_basin_path("ruxi").read_text(encoding="utf-8"))


def stubs(channel):
    return network_pb2_grpc.NetworkServiceStub(channel), monitoring_pb2_grpc.MonitoringServiceStub(channel)


def put(channel, doc, name="ruxi", **kw):
    return network_pb2_grpc.NetworkServiceStub(channel).PutNetwork(
        network_pb2.PutNetworkRequest(name=name, document_json=json.dumps(doc, ensure_ascii=False)), timeout=30, **kw)


def make_pki(d):
    """A throw-away CA with a server certificate (localhost, 127.0.0.1) and a client certificate, by openssl."""
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=rivertrace test CA",
        "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"))
    for name, ext in (("server", "subjectAltName=DNS:localhost,IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", str(d / f"{name}.key"),
            "-out", str(d / f"{name}.csr"))
        (d / f"{name}.ext").write_text(ext + "\n")
        run("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.crt"), "-CAkey", str(d / "ca.key"),
            "-CAcreateserial", "-days", "2", "-extfile", str(d / f"{name}.ext"), "-out", str(d / f"{name}.crt"))
    return d


def wait_for(pred, timeout=60.0):
    """Poll ``pred`` every 50 ms until it holds or ``timeout`` [s] passes; its last value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return bool(pred())

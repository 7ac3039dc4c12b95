"""``Transport``: cookies, metrics, typed failures and the proxy environment, on a real local
HTTP server (the backend's calls through it run against the emulator in ``test_drive``)."""

from __future__ import annotations

import gc
import io
import itertools
import socket
import weakref
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
from pyicloud.cookie_jar import PyiCloudCookieJar
from requests.cookies import create_cookie

from icloudfs.errors import Unavailable, Unreachable
from icloudfs.icloud.http import Transport
from icloudfs.metrics import HttpMetrics
from tests.support.local_http import serving

RANGE_BODY = bytes(range(256)) * 4096  # 1 MiB


class _Handler(BaseHTTPRequestHandler):
    """Echoes what it was sent: the request line's target and the Cookie header."""

    def do_GET(self) -> None:
        if "range" in self.path:  # a 206 in many pieces
            self.send_response(206)
            self.send_header("Content-Length", str(len(RANGE_BODY)))
            self.end_headers()
            for start in range(0, len(RANGE_BODY), 100_000):
                self.wfile.write(RANGE_BODY[start : start + 100_000])
                self.wfile.flush()
            return
        if "cut" in self.path:  # promises 1000 bytes, sends 10, hangs up
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        body = f"{self.path}|{self.headers.get('Cookie', '')}".encode()
        self.send_response(200)
        self.send_header("Set-Cookie", "fresh=new; Path=/")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        sent = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", str(len(sent)))
        self.end_headers()
        self.wfile.write(sent)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    with serving(_Handler) as address:
        yield address


def sample(metrics: HttpMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_cookies_go_out_from_the_jar_and_new_ones_come_back_into_it(server: str) -> None:
    metrics = HttpMetrics()
    transport = Transport(metrics, ca_file="unused-for-http", timeout=5)
    jar = PyiCloudCookieJar()
    jar.set_cookie(create_cookie("X-APPLE-WEBAUTH-TOKEN", "abc", domain="127.0.0.1", path="/"))

    answer = transport.request("GET", f"http://{server}/drivews/retrieveAppLibraries", cookies=jar)

    path, cookie = answer.data.decode().split("|")
    assert path == "/drivews/retrieveAppLibraries"
    assert cookie == "X-APPLE-WEBAUTH-TOKEN=abc"
    assert {c.name: c.value for c in jar} == {"X-APPLE-WEBAUTH-TOKEN": "abc", "fresh": "new"}
    endpoint = "drivews:/retrieveAppLibraries"
    assert sample(metrics, "icloudfs_http_request_seconds_count", endpoint=endpoint, status="200") == 1
    assert sample(metrics, "icloudfs_http_received_bytes_total", endpoint=endpoint) == len(answer.data)


def test_a_readable_body_is_sent_whole_and_a_sink_sees_a_partial_body_as_it_arrives(server: str) -> None:
    metrics = HttpMetrics()
    transport = Transport(metrics, ca_file="unused-for-http", timeout=5)
    sent = b"head-" + b"x" * 3_000_000 + b"-tail"  # more than one read of libcurl's upload buffer
    echoed = transport.request(
        "POST",
        f"http://{server}/upload/zone/doc",
        body=io.BytesIO(sent),
        headers={"Content-Length": str(len(sent)), "Content-Type": "application/octet-stream"},
    )
    assert echoed.status == 200
    assert echoed.data == sent
    assert sample(metrics, "icloudfs_http_sent_bytes_total", endpoint="content:/{signed}") == len(sent)

    seen: list[tuple[int, bytes]] = []

    def record(offset: int, piece: bytes) -> None:
        seen.append((offset, piece))

    ranged = transport.request("GET", f"http://{server}/content/range/name.bin", sink=record)
    assert ranged.status == 206
    assert ranged.data == RANGE_BODY
    assert b"".join(piece for _, piece in seen) == RANGE_BODY
    assert [offset for offset, _ in seen] == list(itertools.accumulate([0] + [len(p) for _, p in seen[:-1]]))

    seen.clear()  # a whole answer (200) is not a range: the sink is left out
    transport.request("GET", f"http://{server}/content/abc/name.bin", sink=record)
    assert seen == []


def test_a_sink_that_fails_stops_the_transfer_with_its_own_error(server: str) -> None:
    transport = Transport(HttpMetrics(), ca_file="unused-for-http", timeout=5)

    def refuse(offset: int, piece: bytes) -> None:
        raise LookupError("reader went away")

    with pytest.raises(LookupError, match="reader went away"):
        transport.request("GET", f"http://{server}/content/range/name.bin", sink=refuse)
    again = transport.request("GET", f"http://{server}/content/abc/name.bin")  # the pool still works
    assert again.data == b"/content/abc/name.bin|"


def test_an_idle_connection_keeps_nothing_of_the_last_answer(server: str) -> None:
    """Pooled handles must let go of a call's callbacks: they hold its whole body."""
    transport = Transport(HttpMetrics(), ca_file="unused-for-http", timeout=5)

    class Sink:
        def __call__(self, offset: int, piece: bytes) -> None:
            pass

    sink = Sink()
    gone = weakref.ref(sink)
    transport.request("GET", f"http://{server}/content/range/name.bin", sink=sink)
    del sink
    gc.collect()
    assert gone() is None


def test_no_answer_is_unreachable_and_a_body_broken_off_is_unavailable(server: str) -> None:
    metrics = HttpMetrics()
    transport = Transport(metrics, ca_file="unused-for-http", timeout=5)
    with socket.socket() as probe:  # a port that was free a moment ago: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(Unreachable):
        transport.request("GET", f"http://127.0.0.1:{port}/drivews/retrieveAppLibraries")
    endpoint = "drivews:/retrieveAppLibraries"
    assert sample(metrics, "icloudfs_http_request_seconds_count", endpoint=endpoint, status="error") == 1

    with pytest.raises(Unavailable) as broken:
        transport.request("GET", f"http://{server}/content/cut/name.bin")
    assert not isinstance(broken.value, Unreachable)


def test_the_proxy_environment_is_honoured_unless_a_ca_file_is_given(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://{server}")
    monkeypatch.setenv("NO_PROXY", "bypassed.invalid")
    proxied = Transport(HttpMetrics(), ca_file=None, timeout=5)
    answer = proxied.request("GET", "http://p42-drivews.icloud.invalid/retrieveAppLibraries")
    # The local server played the proxy: it was asked for the absolute URL.
    assert answer.data.startswith(b"http://p42-drivews.icloud.invalid/retrieveAppLibraries|")
    with pytest.raises(Unreachable):  # NO_PROXY: straight to a host that does not exist
        proxied.request("GET", "http://bypassed.invalid/x")

    pinned = Transport(HttpMetrics(), ca_file="own-ca.pem", timeout=5)
    with pytest.raises(Unreachable):  # an explicit CA file means the environment is left alone
        pinned.request("GET", "http://p42-drivews.icloud.invalid/retrieveAppLibraries")

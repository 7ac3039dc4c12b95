"""``Transport``: cookies, metrics, typed failures and the proxy environment, on a real local
HTTP server (the backend's calls through it run against the emulator in ``test_drive``)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
from pyicloud.cookie_jar import PyiCloudCookieJar
from requests.cookies import create_cookie

from icloudfs.errors import Unavailable, Unreachable
from icloudfs.icloud.http import Transport
from icloudfs.metrics import HttpMetrics
from tests.support.local_http import serving


class _Handler(BaseHTTPRequestHandler):
    """Echoes what it was sent: the request line's target and the Cookie header."""

    def do_GET(self) -> None:
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


def test_a_streamed_body_is_read_by_the_caller_and_an_iterable_body_is_sent_whole(server: str) -> None:
    metrics = HttpMetrics()
    transport = Transport(metrics, ca_file="unused-for-http", timeout=5)
    parts = [b"head-", b"x" * 70_000, b"-tail"]
    echoed = transport.request(
        "POST", f"http://{server}/upload/zone/doc", body=iter(parts), headers={"Content-Length": "70010"}
    )
    assert echoed.data == b"".join(parts)
    assert sample(metrics, "icloudfs_http_sent_bytes_total", endpoint="content:/{signed}") == 70_010

    streamed = transport.request("GET", f"http://{server}/content/abc/name.bin", stream=True)
    assert streamed.read() == b"/content/abc/name.bin|"
    streamed.release_conn()


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

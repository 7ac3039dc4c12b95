"""``icloudfs.metrics``: endpoint labels, and HTTP calls measured on a real local server."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
import requests
from prometheus_client import generate_latest

from icloudfs.metrics import FuseMetrics, HttpMetrics, endpoint_label
from tests.support.local_http import serving


@pytest.mark.parametrize(
    ("url", "label"),
    [
        # Apple: the service is the host
        ("https://idmsa.apple.com/appleauth/auth/signin/init", "idmsa:/appleauth/auth/signin/init"),
        ("https://idmsa.apple.com/appleauth/auth/2sv/trust", "idmsa:/appleauth/auth/2sv/trust"),
        ("https://setup.icloud.com/setup/ws/1/accountLogin?clientId=abc", "setup:/setup/ws/1/accountLogin"),
        (
            "https://p42-drivews.icloud.com/retrieveItemDetailsInFolders",
            "drivews:/retrieveItemDetailsInFolders",
        ),
        (
            "https://p42-docws.icloud.com/ws/com.apple.CloudDocs/download/by_id?document_id=A1B2C3D4E5",
            "docws:/ws/{zone}/download/by_id",
        ),
        (
            "https://p42-docws.icloud.com:443/ws/iCloud.com.apple.Pages/upload/web",
            "docws:/ws/{zone}/upload/web",
        ),
        (
            "https://cvws.icloud-content.com/B/AWx9Y2ZkLi0y/Caf%C3%A9%20R%C3%A9sum%C3%A9.txt?o=x",
            "content:/{signed}",
        ),
        # one origin serving every service by path (the emulator)
        ("https://127.0.0.1:8443/appleauth/auth/signin/complete", "idmsa:/appleauth/auth/signin/complete"),
        ("https://127.0.0.1:8443/setup/ws/1/validate", "setup:/setup/ws/1/validate"),
        ("https://127.0.0.1:8443/drivews/renameItems", "drivews:/renameItems"),
        (
            "https://localhost:1/docws/ws/com.apple.CloudDocs/update/documents",
            "docws:/ws/{zone}/update/documents",
        ),
        ("https://127.0.0.1:8443/content/3f2a9c0d1e/report%202024.pdf?expires=1", "content:/{signed}"),
        ("https://127.0.0.1:8443/upload/com.apple.CloudDocs/5D6E7F80-1234-4abc", "content:/{signed}"),
        # ids in a path never become labels
        ("https://p42-drivews.icloud.com/items/8f14e45fceea167a5a36dedd4bea2543", "drivews:/items/{id}"),
        ("https://gateway.icloud.com/x/3c1e2a7f-9a2b-4c1d-8e3f-0a1b2c3d4e5f/y", "gateway:/x/{id}/y"),
        ("https://127.0.0.1:8443/__emulator__/stats", "other"),
        ("https://example.org/anything/at/all", "other"),
        ("not a url", "other"),
    ],
)
def test_endpoint_label(url: str, label: str) -> None:
    assert endpoint_label(url) == label


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, body = (404, b"nope") if "missing" in self.path else (200, b"x" * 1000)
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server_url() -> Iterator[str]:
    with serving(_Handler) as address:
        yield f"http://{address}"


def sample(metrics: HttpMetrics | FuseMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_calls_are_timed_by_endpoint_and_status_with_body_bytes(server_url: str) -> None:
    metrics = HttpMetrics()
    session = requests.Session()
    metrics.instrument(session)
    metrics.instrument(session)  # twice is harmless: nothing is counted twice
    assert session.get(f"{server_url}/setup/ws/1/accountLogin").content == b"x" * 1000
    session.get(f"{server_url}/setup/ws/1/missing")
    session.post(f"{server_url}/drivews/renameItems", data=b"y" * 300)
    with session.get(f"{server_url}/content/abc123/name.bin", stream=True) as streamed:
        assert len(streamed.raw.read()) == 1000

    login, missing = "setup:/setup/ws/1/accountLogin", "setup:/setup/ws/1/missing"
    assert sample(metrics, "icloudfs_http_request_seconds_count", endpoint=login, status="200") == 1
    assert sample(metrics, "icloudfs_http_request_seconds_count", endpoint=missing, status="404") == 1
    assert sample(metrics, "icloudfs_http_received_bytes_total", endpoint=login) == 1000
    assert sample(metrics, "icloudfs_http_received_bytes_total", endpoint=missing) == 4
    assert sample(metrics, "icloudfs_http_sent_bytes_total", endpoint="drivews:/renameItems") == 300
    assert sample(metrics, "icloudfs_http_received_bytes_total", endpoint="content:/{signed}") == 1000
    # every call lands in the +Inf bucket of its series
    bucket = "icloudfs_http_request_seconds_bucket"
    assert sample(metrics, bucket, endpoint=login, status="200", le="+Inf") == 1


def test_a_call_nothing_answers_counts_as_error() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    metrics = HttpMetrics()
    session = requests.Session()
    metrics.instrument(session)
    with pytest.raises(requests.ConnectionError):
        session.get(f"http://127.0.0.1:{port}/drivews/retrieveItemDetailsInFolders", timeout=5)
    endpoint = "drivews:/retrieveItemDetailsInFolders"
    assert sample(metrics, "icloudfs_http_request_seconds_count", endpoint=endpoint, status="error") == 1


def test_fuse_metrics_count_each_op_in_buckets_and_each_failure_by_errno() -> None:
    metrics, other = FuseMetrics(), FuseMetrics()
    metrics.observe("getattr", 0.00005)
    metrics.observe("getattr", 2.0)
    metrics.observe("open", 0.003, "EIO")
    metrics.observe("open", 0.001, "ENOENT")  # an answer (no such name), not a failure
    assert sample(metrics, "icloudfs_fuse_op_seconds_count", op="getattr") == 2
    assert sample(metrics, "icloudfs_fuse_op_seconds_bucket", op="getattr", le="0.0001") == 1
    assert sample(metrics, "icloudfs_fuse_op_seconds_bucket", op="getattr", le="5.0") == 2
    assert sample(metrics, "icloudfs_fuse_op_errors_total", op="open", errno="EIO") == 1
    assert sample(metrics, "icloudfs_fuse_op_errors_total", op="open", errno="ENOENT") == 0
    assert metrics.last_error == "open: EIO"
    assert b'op="getattr"' not in generate_latest(other.registry), "each mount has its own"

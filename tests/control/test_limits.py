"""What a caller without a token cannot make the control plane do: hold a connection with a slow
header, fill memory with a huge header or body, forge log lines, make a page in the user's
browser change things, or guess tokens for long."""

from __future__ import annotations

import logging
import socket
import time

import httpx
import pytest

from icloudfs.control import ControlServer, ControlService, protocol
from icloudfs.control.guards import BODY_MAX
from tests.control.conftest import RemotePeer


def raw(port: int, data: bytes, *, wait: float = 5.0) -> bytes:
    """Send ``data`` on a fresh connection; what came back before the server closed it."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as conn:
        conn.sendall(data)
        received = b""
        try:
            while chunk := conn.recv(65536):
                received += chunk
        except TimeoutError:
            pass
    return received


def test_a_header_over_the_cap_is_refused_before_it_is_read(server: ControlServer) -> None:
    head = b"GET /status HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * (64 << 10) + b"\r\n\r\n"
    assert raw(server.port, head).startswith(b"HTTP/1.1 431 ")


def test_a_slow_header_is_cut_off(
    service: ControlService, start_server: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(protocol, "HEAD_TIMEOUT_S", 1.0)
    server = start_server(service)  # type: ignore[operator]
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(b"GET /status HTTP/1.1\r\nHost: local")
        answer = conn.recv(65536)
    assert answer.startswith(b"HTTP/1.1 408 ") and time.monotonic() - started < 5


def test_a_body_over_the_cap_is_refused_declared_or_streamed(server: ControlServer) -> None:
    base = f"http://127.0.0.1:{server.port}"
    big = b'{"description": "' + b"x" * (BODY_MAX + 10) + b'"}'
    declared = httpx.post(f"{base}/tokens", content=big, headers={"Content-Type": "application/json"})
    assert declared.status_code == 413

    def chunks():  # type: ignore[no-untyped-def]
        yield big[: len(big) // 2]
        yield big[len(big) // 2 :]

    streamed = httpx.post(f"{base}/tokens", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413
    assert httpx.get(f"{base}/tokens").json() == [], "nothing was made"


def test_a_path_with_cr_lf_logs_as_one_escaped_line(
    server: ControlServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    httpx.get(f"http://127.0.0.1:{server.port}/x%0d%0aFAKE%20LINE%1b[31m", headers={"Host": "nas.example"})
    lines = [r.getMessage() for r in caplog.records]
    assert lines and all("\n" not in line and "\r" not in line and "\x1b" not in line for line in lines)
    assert any("\\r\\nFAKE LINE\\x1b[31m" in line for line in lines)


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"Origin": "http://localhost:6666"}, None, 403),  # another site on this machine
        ({"Origin": "http://localhost:6666", "Content-Type": "application/json"}, b"{}", 403),
        ({"Sec-Fetch-Site": "same-site", "Content-Type": "application/json"}, b"{}", 403),
        ({}, None, 415),  # a body-less "simple" request, as a form or no-cors fetch sends
        ({"Content-Type": "text/plain"}, b"{}", 415),
        ({"Content-Type": "application/x-www-form-urlencoded"}, b"a=b", 415),
    ],
)
def test_changes_a_foreign_page_could_send_are_refused(
    service: ControlService, server: ControlServer, headers: dict[str, str], body: bytes | None, status: int
) -> None:
    service.account.state = "signed_in"  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{server.port}"
    reply = httpx.post(f"{base}/credentials/logout", content=body, headers=headers)
    assert reply.status_code == status, reply.text
    assert httpx.get(f"{base}/credentials").json()["auth_state"] != "signed_out", "still signed in"


def test_changes_from_the_page_itself_and_the_cli_go_through(server: ControlServer) -> None:
    base = f"http://127.0.0.1:{server.port}"
    own = {"Origin": base, "Sec-Fetch-Site": "same-origin", "Content-Type": "application/json"}
    assert httpx.post(f"{base}/uploads/retry", headers=own).status_code == 200
    assert httpx.post(f"{base}/uploads/retry", headers={"X-Icloudfs-Client": "cli"}).status_code == 200


def test_a_second_host_or_origin_header_is_refused(server: ControlServer) -> None:
    head = b"GET /status HTTP/1.1\r\nHost: localhost\r\nHost: nas.example\r\n\r\n"
    assert raw(server.port, head, wait=2).startswith(b"HTTP/1.1 400 ")


def test_a_guesser_ends_up_waiting_and_a_valid_token_still_works(
    remote_peer: RemotePeer, remote_service: ControlService, start_server: object
) -> None:
    server = start_server(remote_service)  # type: ignore[operator]
    token = remote_service.tokens.create_token("phone").token
    wrong = ("GET", "/status", {"Authorization": "Bearer " + "A" * 43}, None)
    replies = remote_peer.requests(server.port, *([wrong] * 1000))
    statuses = [r.status for r in replies]
    assert statuses[:5] == [401] * 5 and statuses[-1] == 429
    assert statuses.count(401) < 20, "the wait grows with every try"
    assert int(replies[-1].headers["retry-after"]) >= 60, "and lasts"
    valid = ("GET", "/status", {"Authorization": f"Bearer {token}"}, None)
    again = remote_peer.requests(server.port, wrong, valid)
    assert [r.status for r in again] == [429, 200], "the owner's token is never locked out"

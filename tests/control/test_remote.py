"""A real remote peer: requests from another network namespace (10.200.x.2) to a server
bound to all interfaces because ``allow_remote`` is on."""

from __future__ import annotations

import sys
import time

import httpx
import pytest

from icloudfs.control import ControlServer, ControlService, ControlStartError

from .conftest import CLI, HOST_IP, NS_IP, RemotePeer, ServerFactory

_CONNECT = "import socket; s = socket.socket(); s.settimeout(2); print(s.connect_ex(({!r}, {})))"
INVALID = {"error": True, "reason": "Invalid or missing authentication token"}


@pytest.fixture
def remote_server(remote_service: ControlService, start_server: ServerFactory) -> ControlServer:
    return start_server(remote_service)


def _local_token(server: ControlServer, description: str) -> dict[str, str]:
    reply = httpx.post(f"http://127.0.0.1:{server.port}/tokens", json={"description": description})
    assert reply.status_code == 201
    token: dict[str, str] = reply.json()
    return token


def test_remote_without_token_is_refused(remote_peer: RemotePeer, remote_server: ControlServer) -> None:
    port = remote_server.port
    assert remote_peer.get(port, "/health").status == 200
    for path in ("/status", "/openapi.json", "/docs", "/metrics"):
        reply = remote_peer.get(port, path)
        assert (reply.status, reply.body) == (401, INVALID), path
        assert reply.headers["www-authenticate"] == "Bearer"


def test_remote_with_bad_good_and_revoked_token(
    remote_peer: RemotePeer, remote_server: ControlServer, caplog: pytest.LogCaptureFixture
) -> None:
    port = remote_server.port
    token = _local_token(remote_server, "remote laptop")
    with caplog.at_level("WARNING", logger="icloudfs.control.auth"):
        assert remote_peer.get(port, "/status", token="x" * 43).status == 401
    assert any(NS_IP in r.getMessage() for r in caplog.records)

    good = remote_peer.get(port, "/status", token=token["token"])
    assert good.status == 200 and good.body["mount"]["mounted"] is True
    assert remote_peer.get(port, "/openapi.json", token=token["token"]).status == 200

    revoked = httpx.delete(f"http://127.0.0.1:{port}/tokens/{token['id']}", headers=CLI)
    assert revoked.status_code == 204
    assert remote_peer.get(port, "/status", token=token["token"]).status == 401
    assert token["token"] not in caplog.text


def test_remote_token_cannot_manage_tokens(remote_peer: RemotePeer, remote_server: ControlServer) -> None:
    token = _local_token(remote_server, "remote")
    auth = {"Authorization": f"Bearer {token['token']}"}
    replies = remote_peer.requests(
        remote_server.port,
        ("GET", "/tokens", auth, None),
        ("POST", "/tokens", auth, {"description": "more"}),
        ("DELETE", f"/tokens/{token['id']}", auth, None),
    )
    assert [r.status for r in replies] == [403, 403, 403]
    assert all(r.body["error"] is True for r in replies)


def test_remote_failures_are_rate_limited_by_peer(
    remote_peer: RemotePeer, remote_server: ControlServer
) -> None:
    bad = {"Authorization": "Bearer " + "y" * 43}
    replies = remote_peer.requests(remote_server.port, *[("GET", "/status", bad, None)] * 7)
    assert [r.status for r in replies] == [401] * 5 + [429] * 2
    assert int(replies[-1].headers["retry-after"]) >= 1
    # the limit is the peer's: this machine's local callers are unaffected
    assert httpx.get(f"http://127.0.0.1:{remote_server.port}/status").status_code == 200


def test_remote_cannot_reach_a_loopback_only_server(remote_peer: RemotePeer, server: ControlServer) -> None:
    reply = remote_peer.run(sys.executable, "-c", _CONNECT.format(HOST_IP, server.port))
    assert reply.stdout.strip() != "0"


def test_allow_remote_setting_rebinds_the_server(
    remote_peer: RemotePeer, service: ControlService, server: ControlServer
) -> None:
    service.settings.insecure_http = True  # this peer speaks plain HTTP (HTTPS: test_tls.py)
    port = server.port
    assert remote_peer.run(sys.executable, "-c", _CONNECT.format(HOST_IP, port)).stdout != "0\n"
    reply = httpx.put(f"http://127.0.0.1:{port}/settings", json={"allow_remote": True})
    assert reply.status_code == 200 and reply.json()["host"] == "0.0.0.0"
    deadline = time.monotonic() + 1.0
    while not (_address(server) or "").startswith("http://0.0.0.0:"):  # port 0: a new one
        assert time.monotonic() < deadline, "not restarted within 1 s"
        time.sleep(0.01)
    assert remote_peer.get(server.port, "/health").status == 200
    assert remote_peer.get(server.port, "/status").status == 401


def _address(server: ControlServer) -> str | None:
    try:
        return server.address
    except ControlStartError:  # between stop and start
        return None

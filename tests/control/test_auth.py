"""Who counts as local, and what everyone else needs: requests over loopback with the
headers a rebinding page, a foreign site or a forwarding proxy would send."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from icloudfs.control import ControlServer, ControlService, TokenStore

from .conftest import CLI, ServerFactory

INVALID = {"error": True, "reason": "Invalid or missing authentication token"}
INVALID_BYTES = b'{"error": true, "reason": "Invalid or missing authentication token"}'


@pytest.mark.parametrize("host", ["localhost", "localhost:8731", "127.0.0.1:1", "[::1]:8731"])
def test_local_callers_need_no_token(base_url: str, host: str) -> None:
    for path in ("/status", "/tokens", "/openapi.json", "/metrics"):
        assert httpx.get(base_url + path, headers={"Host": host}).status_code == 200, path


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "evil.example"},  # DNS rebinding
        {"Host": "evil.example:8731"},
        {"Host": "localhost.evil.example"},
        {"Origin": "https://evil.example"},  # a foreign page posting to us
        {"Origin": "null"},
        {"X-Forwarded-For": "203.0.113.9"},  # a local reverse proxy relaying a remote caller
        {"X-Real-IP": "203.0.113.9"},
        {"Forwarded": "for=203.0.113.9"},
    ],
)
def test_not_local_without_token_is_401(base_url: str, headers: dict[str, str]) -> None:
    for path in ("/status", "/openapi.json", "/tokens"):
        reply = httpx.get(base_url + path, headers=headers)
        assert reply.status_code == 401, path
        assert reply.headers["WWW-Authenticate"] == "Bearer"
        assert reply.content == INVALID_BYTES


def test_the_pages_own_origin_is_fine_and_another_local_port_is_not(base_url: str) -> None:
    own = {"Origin": base_url, "Content-Type": "application/json"}
    assert httpx.post(f"{base_url}/uploads/retry", headers=own).status_code == 200
    other = {"Origin": "http://localhost:6666", "Content-Type": "application/json"}
    assert httpx.post(f"{base_url}/uploads/retry", headers=other).status_code == 403


def test_health_is_always_open(base_url: str) -> None:
    reply = httpx.get(f"{base_url}/health", headers={"Host": "evil.example"})
    assert reply.status_code == 200 and reply.json()["status"] == "ok"


def test_token_lets_a_non_local_caller_in_until_revoked(base_url: str) -> None:
    created = httpx.post(f"{base_url}/tokens", json={"description": "laptop"}).json()
    token = created["token"]
    assert len(token) == 43 and "=" not in token
    remote = {"Host": "nas.example", "Authorization": f"Bearer {token}"}
    assert httpx.get(f"{base_url}/status", headers=remote).status_code == 200
    assert httpx.delete(f"{base_url}/tokens/{created['id']}", headers=CLI).status_code == 204
    reply = httpx.get(f"{base_url}/status", headers=remote)
    assert (reply.status_code, reply.json()) == (401, INVALID)


@pytest.mark.parametrize(
    "authorization",
    ["Bearer", "Bearer x", "Basic dXNlcjpwYXNz", "Bearer " + "A" * 43, "Token abc"],
)
def test_bad_tokens_are_401(base_url: str, authorization: str) -> None:
    headers = {"Host": "nas.example", "Authorization": authorization}
    reply = httpx.get(f"{base_url}/status", headers=headers)
    assert (reply.status_code, reply.json()) == (401, INVALID)


def test_the_token_is_shown_once(base_url: str) -> None:
    created = httpx.post(f"{base_url}/tokens", json={"description": "ci"}).json()
    listing = httpx.get(f"{base_url}/tokens").json()
    assert listing == [{k: created[k] for k in ("id", "description", "created_at")}]
    assert created["token"] not in httpx.get(f"{base_url}/tokens").text


def test_refusal_log_names_the_peer_and_reason_not_the_token(
    base_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    created = httpx.post(f"{base_url}/tokens", json={"description": "gone"}).json()
    httpx.delete(f"{base_url}/tokens/{created['id']}", headers=CLI)
    with caplog.at_level("WARNING", logger="icloudfs.control.auth"):
        httpx.get(
            f"{base_url}/status", headers={"Host": "x.example", "Authorization": f"Bearer {created['token']}"}
        )
    line = next(r.getMessage() for r in caplog.records if "Refused" in r.getMessage())
    assert "127.0.0.1" in line and "revoked" in line
    assert created["token"] not in caplog.text


def test_repeated_failures_are_slowed_down_per_peer(base_url: str) -> None:
    bad = {"Host": "x.example", "Authorization": "Bearer nope"}
    statuses = [httpx.get(f"{base_url}/status", headers=bad).status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    reply = httpx.get(f"{base_url}/status", headers=bad)
    assert reply.status_code == 429 and int(reply.headers["Retry-After"]) >= 1
    assert reply.json()["error"] is True
    # a header cannot pick another bucket, and local callers are never locked out
    spoofed = {**bad, "X-Forwarded-For": "198.51.100.7"}
    assert httpx.get(f"{base_url}/status", headers=spoofed).status_code == 429
    assert httpx.get(f"{base_url}/status").status_code == 200


def test_token_management_is_local_only(base_url: str) -> None:
    token = httpx.post(f"{base_url}/tokens", json={"description": "remote"}).json()
    remote = {"Host": "nas.example", "Authorization": f"Bearer {token['token']}"}
    for method, path, body in [
        ("GET", "/tokens", None),
        ("POST", "/tokens", {"description": "more"}),
        ("DELETE", f"/tokens/{token['id']}", None),
        ("PUT", "/settings", {"allow_remote": False}),
    ]:
        reply = httpx.request(method, base_url + path, json=body, headers={**remote, **CLI})
        assert reply.status_code == 403, path
        assert reply.json()["error"] is True
    assert httpx.get(f"{base_url}/status", headers=remote).status_code == 200


def test_another_process_revoking_through_the_keyring_takes_effect(
    service: ControlService, start_server: ServerFactory
) -> None:
    service.tokens = TokenStore(refresh_interval=0.1)
    server: ControlServer = start_server(service)
    base = server.address
    created = service.tokens.create_token("cli-revoked")
    remote = {"Host": "nas.example", "Authorization": f"Bearer {created.token}"}
    assert httpx.get(f"{base}/status", headers=remote).status_code == 200
    subprocess.run(
        [
            sys.executable,
            "-c",
            f"from icloudfs.control import TokenStore; TokenStore().revoke_token({created.id!r})",
        ],
        check=True,
        timeout=60,
    )
    time.sleep(0.2)
    assert httpx.get(f"{base}/status", headers=remote).status_code == 401

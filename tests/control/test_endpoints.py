"""Every endpoint, called by a local client (no token) over a real port, with in-process
fakes for the account and the filesystem."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

import icloudfs
from icloudfs import errors
from icloudfs.config import Settings
from icloudfs.control import ControlClient, ControlError, ControlServer, ControlService, TokenStore

from .conftest import ServerFactory
from .fakes import CODE, PASSWORD, FakeAccount, FakeFilesystem


@pytest.fixture
def client(server: ControlServer) -> Iterator[ControlClient]:
    with ControlClient(port=server.port) as client:
        yield client


def test_health_names_the_version(client: ControlClient) -> None:
    health = client.health()
    assert (health.status, health.version) == ("ok", icloudfs.__version__)


def test_status_reports_mount_account_cache_uploads(client: ControlClient) -> None:
    status = client.status()
    assert status.mount.mounted and status.mount.mountpoint == "/mnt/icloud"
    assert status.mount.since is not None
    assert status.account is not None and status.account.auth_state == "signed_out"
    assert status.account.keyring_plaintext is True
    assert status.cache is not None and status.cache.metadata.entries == 12
    assert status.uploads is not None and status.uploads.failed == 1
    assert status.ops == {"read": 10, "write": 2, "getattr": 2}
    assert status.errors == {"EIO": 1}
    assert status.last_error == "getattr: EIO"


def test_status_without_filesystem_or_account(service: ControlService, start_server: ServerFactory) -> None:
    service.filesystem = service.account = None
    server = start_server(service)
    status = ControlClient(port=server.port).status()
    assert not status.mount.mounted and status.account is None and status.cache is None
    with pytest.raises(ControlError) as raised:
        ControlClient(port=server.port).cache()
    assert raised.value.status == 409 and raised.value.reason == "Nothing is mounted"


def test_login_then_2fa_then_logout(client: ControlClient, service: ControlService) -> None:
    assert client.login("me@example.com", PASSWORD) == "needs_2fa"
    client.request_sms()
    assert isinstance(service.account, FakeAccount) and service.account.sms_sent == 1
    assert client.submit_2fa(CODE) == "signed_in"
    credentials = client.credentials()
    assert credentials.apple_id == "me@example.com" and credentials.password_stored
    assert "password" not in credentials.model_dump()
    assert client.logout(forget_password=True) == "signed_out"
    assert not client.credentials().password_stored


def test_app_specific_password_is_refused_with_an_explanation(client: ControlClient) -> None:
    with pytest.raises(ControlError) as raised:
        client.login("me@example.com", "abcd-efgh-ijkl-mnop")
    assert raised.value.status == 400
    assert "app-specific" in raised.value.reason
    assert "Apple ID password" in raised.value.reason and "two-factor" in raised.value.reason


@pytest.mark.parametrize(
    ("call", "status", "words"),
    [
        (lambda c: c.login("me@example.com", "wrong"), 400, "not accepted"),
        (lambda c: c.submit_2fa("000000"), 400, "code was not accepted"),
        (lambda c: c.request_sms(), 409, "Not signed in"),
    ],
)
def test_credential_problems_are_never_401(
    client: ControlClient, call: object, status: int, words: str
) -> None:
    with pytest.raises(ControlError) as raised:
        call(client)  # type: ignore[operator]
    assert raised.value.status == status and words in raised.value.reason


@pytest.mark.parametrize(
    ("error", "status", "words"),
    [
        (errors.AccountLocked("locked"), 403, "locked"),
        (errors.WebAccessBlocked("adp"), 403, "Access iCloud Data on the Web"),
        (errors.Throttled("503"), 503, "throttling"),
        (errors.Unreachable("refused"), 503, "could not be reached"),
        # issue 21: a session that kept expiring (421) was reported as "could not be reached"
        (errors.Unavailable("iCloud kept answering that the session expired"), 503, "session expired"),
    ],
)
def test_account_states_map_to_statuses(
    client: ControlClient, service: ControlService, error: Exception, status: int, words: str
) -> None:
    assert isinstance(service.account, FakeAccount)
    service.account.fail_with = error
    with pytest.raises(ControlError) as raised:
        client.login("me@example.com", PASSWORD)
    assert raised.value.status == status and words in raised.value.reason
    if isinstance(error, errors.Unavailable) and not isinstance(error, errors.Unreachable):
        assert "could not be reached" not in raised.value.reason


def test_throttling_answers_with_retry_after(base_url: str, service: ControlService) -> None:
    assert isinstance(service.account, FakeAccount)
    service.account.fail_with = errors.Throttled("503")
    reply = httpx.post(f"{base_url}/credentials/login", json={"apple_id": "a@b.c", "password": PASSWORD})
    assert reply.status_code == 503 and int(reply.headers["Retry-After"]) > 0
    assert reply.json()["error"] is True


def test_cache_evict_refresh_uploads(client: ControlClient, service: ControlService) -> None:
    assert client.cache().content.bytes_used == 2048
    assert client.evict("/a.txt") == 1
    assert client.evict() == 1
    refreshed = client.refresh("/docs", recursive=True)
    assert refreshed.recursive and refreshed.folders == 1
    assert isinstance(service.filesystem, FakeFilesystem)
    assert service.filesystem.refreshed == [("/docs", True)]
    assert [u.path for u in client.uploads()] == ["/docs/report.pdf"]
    assert client.retry_uploads() == 1 and client.uploads() == []


def test_refresh_of_a_missing_item_is_404(client: ControlClient) -> None:
    with pytest.raises(ControlError) as raised:
        client.refresh("no-slash")
    assert raised.value.status == 404


def test_refresh_of_a_path_through_a_file_is_400_not_500(client: ControlClient) -> None:
    with pytest.raises(ControlError) as raised:
        client.refresh("/a.txt/deeper")
    assert raised.value.status == 400 and "NotAFolder" in raised.value.reason


def test_a_new_token_is_never_cached(base_url: str) -> None:
    reply = httpx.post(f"{base_url}/tokens", json={"description": "phone"})
    assert reply.status_code == 201 and reply.headers["cache-control"] == "no-store"


def test_docs_are_off_unless_asked_for_and_then_served_from_here(
    service: ControlService, start_server: ServerFactory
) -> None:
    plain = start_server(service)
    for path in ("/docs", "/redoc"):
        assert httpx.get(f"{plain.address}{path}").status_code == 404
    asked = Settings(control_addr="127.0.0.1:0", control_docs=True)
    served = start_server(ControlService(asked, TokenStore()))
    page = httpx.get(f"{served.address}/docs")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    assert "https://" not in page.text, "no script from elsewhere"
    assert httpx.get(f"{served.address}/docs/assets/swagger-ui-bundle.js").status_code == 200
    assert httpx.get(f"{served.address}/docs", headers={"Host": "nas.example"}).status_code == 401


def test_metrics_in_prometheus_text(client: ControlClient) -> None:
    text = client.metrics()
    assert "icloudfs_mounted 1.0" in text
    assert 'icloudfs_fuse_op_seconds_count{op="read"} 10.0' in text
    assert 'icloudfs_fuse_op_errors_total{errno="EIO",op="getattr"} 1.0' in text
    assert 'errno="ENOENT"' not in text
    assert "icloudfs_operations_total" not in text, "each operation is counted once"
    assert 'icloudfs_auth_state{state="signed_out"} 1.0' in text


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/no/such/route", None, 404),
        ("DELETE", "/status", None, 405),
        ("POST", "/tokens", {"description": 5}, 422),
        ("POST", "/tokens", "not json", 422),
        ("DELETE", "/tokens/unknown-id", None, 404),
    ],
)
def test_errors_use_the_envelope(base_url: str, method: str, path: str, body: object, status: int) -> None:
    content = body if isinstance(body, str) else None
    json_body = None if isinstance(body, str) else body
    reply = httpx.request(
        method, base_url + path, json=json_body, content=content, headers={"Content-Type": "application/json"}
    )
    assert reply.status_code == status
    assert set(reply.json()) == {"error", "reason"} and reply.json()["error"] is True
    if status == 405:
        assert reply.headers["Allow"] == "GET"


def test_unexpected_exception_is_500_envelope(
    base_url: str, service: ControlService, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> dict[str, object]:
        raise RuntimeError("boom")

    monkeypatch.setattr(service.filesystem, "stats", broken)
    reply = httpx.get(f"{base_url}/status")
    assert reply.status_code == 500
    assert reply.json() == {"error": True, "reason": "Internal error"}

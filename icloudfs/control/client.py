"""``ControlClient``: typed calls to a running control plane (the CLI uses it).

One method per endpoint, returning the same pydantic models the server sends.
Any error answer raises ``ControlError`` carrying the envelope's ``reason`` and
the HTTP ``status``; a control plane that cannot be reached raises
``ControlUnreachable`` (status 0), which the CLI takes as "no mount running".

    with ControlClient() as client:               # 127.0.0.1:8731
        print(client.status().mount.mounted)
    ControlClient(socket="/run/user/1000/icloudfs/control.sock")
    ControlClient(host="nas.lan", token="...")    # remote: a token is needed
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import TypeAdapter

from icloudfs.config import Settings
from icloudfs.control.address import Binding
from icloudfs.control.schemas import (
    AccountStatus,
    AuthStateBody,
    CacheStatus,
    ControlSettings,
    EvictResult,
    Health,
    NewToken,
    PinResult,
    RefreshResult,
    RetryResult,
    Status,
    TokenInfo,
    Upload,
)

T = TypeVar("T")


class ControlError(Exception):
    """The control plane refused or failed a request."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(f"{reason} (HTTP {status})" if status else reason)
        self.reason, self.status = reason, status


class ControlUnreachable(ControlError):
    """Nothing answered at the control plane's address."""


class ControlClient:
    """A client for one control plane, over TCP or a unix socket."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8731,
        token: str | None = None,
        socket: str | None = None,
        *,
        timeout: float = 30.0,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if socket:
            self.where = f"unix:{socket}"
            transport = httpx.HTTPTransport(uds=socket)
            base = "http://localhost"
        else:
            self.where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            transport = httpx.HTTPTransport()
            base = f"http://{self.where}"
        self._http = httpx.Client(base_url=base, headers=headers, transport=transport, timeout=timeout)

    @classmethod
    def from_settings(cls, settings: Settings, token: str | None = None) -> ControlClient:
        """A client for the control plane this machine's settings describe."""
        binding = Binding.of(settings)
        return cls(binding.client_host, binding.port, token=token, socket=binding.socket)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- endpoints ---------------------------------------------------------------------

    def health(self) -> Health:
        return self._fetch(Health, "GET", "/health")

    def status(self) -> Status:
        return self._fetch(Status, "GET", "/status")

    def credentials(self) -> AccountStatus:
        return self._fetch(AccountStatus, "GET", "/credentials")

    def login(self, apple_id: str, password: str, *, remember: bool = True) -> str:
        body = {"apple_id": apple_id, "password": password, "remember": remember}
        return self._fetch(AuthStateBody, "POST", "/credentials/login", body).auth_state

    def submit_2fa(self, code: str) -> str:
        return self._fetch(AuthStateBody, "POST", "/credentials/2fa", {"code": code}).auth_state

    def request_sms(self) -> None:
        self._call("POST", "/credentials/2fa/sms")

    def logout(self, *, forget_password: bool = False) -> str:
        body = {"forget_password": forget_password}
        return self._fetch(AuthStateBody, "POST", "/credentials/logout", body).auth_state

    def list_tokens(self) -> list[TokenInfo]:
        return self._fetch(list[TokenInfo], "GET", "/tokens")

    def create_token(self, description: str) -> NewToken:
        return self._fetch(NewToken, "POST", "/tokens", {"description": description})

    def revoke_token(self, token_id: str) -> None:
        self._call("DELETE", f"/tokens/{token_id}")

    def cache(self) -> CacheStatus:
        return self._fetch(CacheStatus, "GET", "/cache")

    def evict(self, path: str | None = None) -> int:
        return self._fetch(EvictResult, "POST", "/cache/evict", {"path": path}).bytes_freed

    def refresh(self, path: str, *, recursive: bool = False) -> RefreshResult:
        return self._fetch(RefreshResult, "POST", "/refresh", {"path": path, "recursive": recursive})

    def pin(self, path: str, *, keep: bool = True) -> PinResult:
        return self._fetch(PinResult, "POST", "/pin", {"path": path, "keep": keep})

    def uploads(self) -> list[Upload]:
        return self._fetch(list[Upload], "GET", "/uploads")

    def retry_uploads(self) -> int:
        return self._fetch(RetryResult, "POST", "/uploads/retry").retried

    def metrics(self) -> str:
        return self._call("GET", "/metrics").text

    def settings(self) -> ControlSettings:
        return self._fetch(ControlSettings, "GET", "/settings")

    def update_settings(
        self, *, port: int | None = None, allow_remote: bool | None = None
    ) -> ControlSettings:
        body = {"port": port, "allow_remote": allow_remote}
        return self._fetch(ControlSettings, "PUT", "/settings", body)

    # -- plumbing ----------------------------------------------------------------------

    def _fetch(self, kind: type[T], method: str, path: str, body: Any = None) -> T:
        return TypeAdapter(kind).validate_json(self._call(method, path, body).content)

    def _call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        try:
            response = self._http.request(method, path, json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ControlUnreachable(f"No control plane answers at {self.where}", 0) from exc
        except httpx.TransportError as exc:
            raise ControlError(f"{self.where}: {exc}", 0) from exc
        if response.is_error:
            try:
                reason = str(response.json()["reason"])
            except (ValueError, KeyError, TypeError):
                reason = response.text or response.reason_phrase
            raise ControlError(reason, response.status_code)
        return response

"""``ControlClient``: typed calls to a running control plane (the CLI uses it).

One method per endpoint, returning the same pydantic models the server sends.
Any error answer raises ``ControlError`` carrying the envelope's ``reason`` and
the HTTP ``status``; a control plane that cannot be reached raises
``ControlUnreachable`` (status 0), which the CLI takes as "no mount running".

The client makes sure of the server before it sends anything, since it may send an Apple ID
password or a two-factor code: a unix socket must be this user's, in a folder only this user
can enter; a loopback TCP port must be listened on by this user's processes only (another user
could have taken it); a remote server must present the certificate pinned by its SHA-256
fingerprint. Otherwise ``ServerNotTrusted``, before a byte is sent.

    with ControlClient.for_mount(Path("~/iCloud").expanduser()) as client:
        print(client.status().mount.mounted)
    ControlClient(host="nas.lan", port=8731, token="...", fingerprint="AB:CD:...")  # remote
"""

from __future__ import annotations

import ipaddress
import os
import ssl
import stat
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import TypeAdapter

from icloudfs.control import runtime, tls
from icloudfs.control.guards import CLIENT_HEADER
from icloudfs.control.peers import listener_uids
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


class ServerNotTrusted(ControlError):
    """What answers is not this user's control plane (nothing was sent to it)."""


class ControlClient:
    """A client for one control plane, over TCP or a unix socket."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8731,
        token: str | None = None,
        socket: str | Path | None = None,
        *,
        fingerprint: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._headers = {CLIENT_HEADER: "icloudfs"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._host, self._port, self._fingerprint, self._timeout = host, port, fingerprint, timeout
        self._socket = Path(socket) if socket else None
        if self._socket is not None:
            self.where = f"unix:{self._socket}"
        else:
            self.where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._http: httpx.Client | None = None

    @classmethod
    def for_mount(cls, path: Path | None = None, *, timeout: float = 30.0) -> ControlClient:
        """The control plane of the running mount ``path`` is in (with no path: the only one)."""
        try:
            mount = runtime.mount_for(path)
        except runtime.NoMount as error:
            raise ControlUnreachable(str(error), 0) from None
        return cls(socket=mount.socket, timeout=timeout)

    def close(self) -> None:
        if self._http is not None:
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

    def check_consent(self) -> str:
        """The state after the mount looked whether a device allowed the sign-in (ADP)."""
        return self.credentials().auth_state

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
        http = self._connected()
        try:
            response = http.request(method, path, json=body)
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

    def _connected(self) -> httpx.Client:
        """The HTTP client, once the server is known to be this user's (checked before every
        request: nothing is sent to a server that is not)."""
        if self._socket is not None:
            _check_socket(self._socket)
        elif self._fingerprint is None and _loopback(self._host):
            _check_listener(self._port, self.where)
        if self._http is None:
            if self._socket is not None:
                transport = httpx.HTTPTransport(uds=str(self._socket))
                base = "http://localhost"
            elif self._fingerprint:
                transport = httpx.HTTPTransport(verify=_pinned(self._host, self._port, self._fingerprint))
                base = f"https://{self.where}"
            else:
                transport = httpx.HTTPTransport()
                base = f"http://{self.where}"
            self._http = httpx.Client(
                base_url=base, headers=self._headers, transport=transport, timeout=self._timeout
            )
        return self._http


def _check_socket(path: Path) -> None:
    """The socket and its folder must be this user's (see the module note)."""
    try:
        runtime.check_private(path.parent)
        info = path.lstat()
    except runtime.RuntimeDirError as error:
        raise ServerNotTrusted(str(error), 0) from None
    except FileNotFoundError:
        raise ControlUnreachable(f"No control plane answers at unix:{path}", 0) from None
    if not stat.S_ISSOCK(info.st_mode) or info.st_uid != os.getuid():
        raise ServerNotTrusted(f"{path} is not a socket of this user's", 0)


def _check_listener(port: int, where: str) -> None:
    """Whoever listens on this loopback port must be this user."""
    owners = listener_uids(port)
    if not owners:
        raise ControlUnreachable(f"No control plane answers at {where}", 0)
    if owners - {os.getuid()}:
        raise ServerNotTrusted(
            f"{where} is listened on by another user (uid {sorted(owners)}): nothing was sent", 0
        )


def _pinned(host: str, port: int, fingerprint: str) -> ssl.SSLContext:
    try:
        return tls.pinned_context(host, port, fingerprint)
    except tls.PinMismatch as error:
        raise ServerNotTrusted(str(error), 0) from None
    except OSError as error:
        raise ControlUnreachable(f"No control plane answers at {host}:{port} ({error})", 0) from None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False

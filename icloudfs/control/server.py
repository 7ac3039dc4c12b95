"""``ControlServer``: the control plane's listeners, uvicorn in threads beside the mount.

One app, two listeners:

- **the mount's unix socket** (``runtime.socket_path``; ``control_socket`` overrides), always.
  It is the CLI's way in: made 0600 in a 0700 folder of this user's, and only this user's
  processes get past ``protocol.py``. The daemon announces it with its mountpoint
  (``runtime.announce``), so ``icloudfs status PATH`` finds the mount from a path.
- **TCP** (``control_addr``), for the page and remote callers. With ``allow_remote`` a second
  listener on every interface shares the port and serves HTTPS (``tls.py``; plain HTTP only
  with ``insecure_http``): the kernel gives a connection to the listener bound to its exact
  address first, so the loopback one keeps serving the page in the user's browser over
  plain HTTP, and every other address meets TLS. If the port is taken (another mount has
  it), the mount goes on without TCP, and says so.

Listening sockets are made here and handed to uvicorn (``proxy_headers=False``: uvicorn would
otherwise trust ``X-Forwarded-For`` from 127.0.0.1 and rewrite the peer the auth relies on;
``log_config=None`` and ``access_log=False``: logging is the application's, see ``guards``).

``restart`` (a settings change) renews the TCP listener only: the new one is bound before the
old one is closed, both with ``SO_REUSEPORT``, which the kernel allows only between sockets of
the same user, so no other user can take the port in between. ``restart_soon`` does it from
another thread, for callers inside a request.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import stat
import threading
import time
from pathlib import Path

import uvicorn

from icloudfs.control import runtime, tls
from icloudfs.control.address import ALL_INTERFACES, split_addr
from icloudfs.control.app import create_app
from icloudfs.control.protocol import GuardedH11Protocol
from icloudfs.control.service import ControlService

log = logging.getLogger(__name__)

NO_TOKENS_WARNING = "Remote connections enabled but no tokens exist. Remote clients won't authenticate."
CONCURRENCY = 128  # connections and requests at once; more are answered 503


class ControlStartError(RuntimeError):
    """The server could not start (address in use, unsafe socket folder, ...)."""


class _Listener:
    """One uvicorn server on one listening socket, in a daemon thread."""

    def __init__(self, config: uvicorn.Config, sock: socket.socket, start_timeout: float) -> None:
        self.socket = sock
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="icloudfs-control", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + start_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ControlStartError("the control plane's server did not start")
            time.sleep(0.005)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join()
        self.socket.close()


class ControlServer:
    """The control plane of ``service``: ``start``/``stop``/``restart``. See the module note."""

    def __init__(
        self, service: ControlService, *, socket_path: Path | None = None, start_timeout: float = 10.0
    ) -> None:
        self._service = service
        self._app = create_app(service)
        self._socket_path = socket_path
        self._start_timeout = start_timeout
        self._lock = threading.RLock()
        self._unix: _Listener | None = None
        self._tcp: list[_Listener] = []  # loopback first, then every interface with allow_remote
        self._tcp_address: str | None = None
        self._mountpoint: Path | None = None
        service.restart = self.restart_soon

    @property
    def running(self) -> bool:
        return self._unix is not None and self._unix.alive

    @property
    def socket(self) -> Path:
        """The unix socket the CLI reaches this control plane on."""
        with self._lock:
            if self._unix is None:
                raise ControlStartError("the control plane is not running")
            return Path(self._unix.socket.getsockname())

    @property
    def address(self) -> str:
        """``http(s)://HOST:PORT`` of the TCP listener, else ``unix:PATH``."""
        with self._lock:
            return self._tcp_address or f"unix:{self.socket}"

    @property
    def port(self) -> int:
        """The TCP port actually bound (so port 0 works); raises when not listening on TCP."""
        with self._lock:
            if not self._tcp:
                raise ControlStartError("the control plane is not listening on TCP")
            return int(self._tcp[0].socket.getsockname()[1])

    def start(self) -> None:
        with self._lock:
            if self.running:
                return
            path = self._socket_path or self._default_socket()
            self._unix = _Listener(self._config(), _unix_socket(path), self._start_timeout)
            self._start_tcp()
            fs = self._service.filesystem
            if fs is not None and fs.mountpoint:
                self._mountpoint = Path(fs.mountpoint)
                runtime.announce(self._mountpoint, path, self._tcp_address)

    def stop(self) -> None:
        with self._lock:
            if self._mountpoint is not None:
                runtime.withdraw(self._mountpoint)
            path = self.socket if self._unix is not None else None
            for listener in [*self._tcp, self._unix]:
                if listener is not None:
                    listener.stop()
            if path is not None:
                path.unlink(missing_ok=True)
            self._unix, self._tcp, self._tcp_address = None, [], None

    def restart(self) -> None:
        """Listen on TCP as the current settings say (the mount and its socket are untouched)."""
        with self._lock:
            began = time.monotonic()
            old, self._tcp = self._tcp, []
            self._start_tcp(port=int(old[0].socket.getsockname()[1]) if old else None)
            for listener in old:
                listener.stop()
            if self._mountpoint is not None and self._unix is not None:
                runtime.announce(self._mountpoint, Path(self._unix.socket.getsockname()), self._tcp_address)
            log.info("Control plane restarted in %.2f s at %s", time.monotonic() - began, self.address)

    def restart_soon(self) -> None:
        threading.Thread(target=self.restart, name="icloudfs-control-restart", daemon=True).start()

    def _default_socket(self) -> Path:
        settings, fs = self._service.settings, self._service.filesystem
        if settings.control_socket:
            return Path(settings.control_socket)
        if fs is not None and fs.mountpoint:
            return runtime.socket_path(Path(fs.mountpoint))
        return runtime.runtime_dir() / "control.sock"

    def _start_tcp(self, port: int | None = None) -> None:
        """Listen on TCP as the settings say (see the module note); ``port``: the one to keep
        when the settings ask for any (port 0), so a restart stays where the page is."""
        settings = self._service.settings
        self._tcp_address = None
        if not settings.control_addr:
            return
        host, wanted = split_addr(settings.control_addr)
        hosts = [host, ALL_INTERFACES] if settings.allow_remote and host != ALL_INTERFACES else [host]
        try:
            sockets = _bind(hosts, port if wanted == 0 and port is not None else wanted)
        except OSError as error:
            log.warning(
                "The control plane does not listen on %s (%s); it is on its socket only",
                settings.control_addr,
                error.strerror,
            )
            return
        public = [sock.getsockname()[0] == ALL_INTERFACES for sock in sockets]
        if any(public) and len(self._service.tokens) == 0:
            log.warning(NO_TOKENS_WARNING)
        cert = None
        if any(public) and not settings.insecure_http:
            cert = tls.server_cert(settings.control_cert, settings.control_key)
            log.info("Remote access over HTTPS; certificate SHA-256 %s", cert.fingerprint)
        elif any(public):
            log.warning("Remote access over plain HTTP (insecure_http): tokens cross the network in clear")
        for sock, reachable in zip(sockets, public, strict=True):
            self._tcp.append(_Listener(self._config(cert if reachable else None), sock, self._start_timeout))
        bound, bound_port = sockets[-1].getsockname()[:2]
        self._tcp_address = f"{'https' if public[-1] and cert else 'http'}://{bound}:{bound_port}"

    def _config(self, cert: tls.ServerCert | None = None) -> uvicorn.Config:
        return uvicorn.Config(
            self._app,
            http=GuardedH11Protocol,
            proxy_headers=False,
            log_config=None,
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=2,
            limit_concurrency=CONCURRENCY,
            ssl_certfile=None if cert is None else str(cert.cert),
            ssl_keyfile=None if cert is None else str(cert.key),
        )


def _bind(hosts: list[str], port: int) -> list[socket.socket]:
    """Listening TCP sockets on one port (the first picks it when 0), with ``SO_REUSEPORT``."""
    made: list[socket.socket] = []
    try:
        for host in hosts:
            made.append(socket.create_server((host, port), reuse_port=True))
            port = made[0].getsockname()[1]
    except OSError:
        for sock in made:
            sock.close()
        raise
    return made


def _unix_socket(path: Path) -> socket.socket:
    """A listening unix socket at ``path``, 0600, in a folder private to this user. A socket
    left there by a daemon that died is replaced; one that answers belongs to a live mount."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        runtime.check_private(path.parent)
    except runtime.RuntimeDirError as error:
        raise ControlStartError(str(error)) from None
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise ControlStartError(f"{path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()
        else:
            raise ControlStartError(f"another process serves {path} (is this folder mounted already?)")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    sock.listen(128)
    return sock

"""``ControlServer``: uvicorn in a thread beside the mount, restartable on its own.

``uvicorn.Server.run`` runs in a daemon thread (off the main thread uvicorn
installs no signal handlers; the mount owns signals) and stops when
``should_exit`` is set. ``proxy_headers=False``: uvicorn would otherwise trust
``X-Forwarded-For`` from 127.0.0.1 and rewrite the peer the auth relies on.
``log_config=None`` leaves logging to the application.

A unix socket goes in a private folder: uvicorn makes the socket 0666, so the
folder (created 0700 when missing) must not be reachable by anyone else; an
existing folder open to group or others is refused rather than chmodded.

``restart`` stops and starts only this server on the current settings (the
mount is untouched); it takes a fraction of a second. ``restart_soon`` does it
from another thread, for callers inside a request.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from dataclasses import replace
from pathlib import Path

import uvicorn

from icloudfs.control.address import ALL_INTERFACES, Binding
from icloudfs.control.app import create_app
from icloudfs.control.service import ControlService

log = logging.getLogger(__name__)

NO_TOKENS_WARNING = "Remote connections enabled but no tokens exist. Remote clients won't authenticate."


class ControlStartError(RuntimeError):
    """The server could not start (address in use, unsafe socket folder, ...)."""


class ControlServer:
    """The control plane's HTTP server for ``service``; ``start``/``stop``/``restart``."""

    def __init__(self, service: ControlService, *, start_timeout: float = 10.0) -> None:
        self._service = service
        self._app = create_app(service)
        self._start_timeout = start_timeout
        self._lock = threading.RLock()  # re-entrant: restart() logs self.address while holding it
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._binding: Binding | None = None
        service.restart = self.restart_soon

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def address(self) -> str:
        """``http://HOST:PORT`` (the port actually bound) or ``unix:PATH``."""
        with self._lock:  # a restart in progress has no binding yet: wait for it
            binding = self._binding
        if binding is None:
            raise ControlStartError("the control plane is not running")
        if binding.socket:
            return f"unix:{binding.socket}"
        host = f"[{binding.host}]" if ":" in binding.host else binding.host
        return f"http://{host}:{self.port}"

    @property
    def port(self) -> int:
        """The TCP port actually bound (so port 0 works); raises when not listening on TCP."""
        with self._lock:  # a restart in progress has no binding yet: wait for it
            binding = self._binding
        if binding is None or binding.socket:
            raise ControlStartError("the control plane is not listening on TCP")
        return binding.port

    def start(self) -> None:
        with self._lock:
            self._start()

    def stop(self) -> None:
        with self._lock:
            self._stop()

    def restart(self) -> None:
        """Stop and start again on the current settings (the mount is not touched)."""
        with self._lock:
            began = time.monotonic()
            self._stop()
            try:
                self._start()
            except ControlStartError:
                log.exception("Control plane did not come back after a settings change")
                return
            log.info("Control plane restarted in %.2f s at %s", time.monotonic() - began, self.address)

    def restart_soon(self) -> None:
        threading.Thread(target=self.restart, name="icloudfs-control-restart", daemon=True).start()

    def _start(self) -> None:
        if self.running:
            return
        binding = Binding.of(self._service.settings)
        if binding.socket:
            _private_folder(Path(binding.socket).parent)
        elif binding.host == ALL_INTERFACES and len(self._service.tokens) == 0:
            log.warning(NO_TOKENS_WARNING)
        config = uvicorn.Config(
            self._app,
            host=binding.host,
            port=binding.port,
            uds=binding.socket,
            proxy_headers=False,
            log_config=None,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="icloudfs-control", daemon=True)
        thread.start()
        deadline = time.monotonic() + self._start_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                where = binding.socket or f"{binding.host}:{binding.port}"
                raise ControlStartError(f"control plane could not listen on {where}")
            time.sleep(0.005)
        if not binding.socket:  # record the port actually bound (port 0 picks one)
            binding = replace(binding, port=server.servers[0].sockets[0].getsockname()[1])
        self._server, self._thread, self._binding = server, thread, binding

    def _stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join()
        self._server = self._thread = self._binding = None


def _private_folder(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    mode = stat.S_IMODE(folder.stat().st_mode)
    if mode & 0o077 or folder.stat().st_uid != os.getuid():
        raise ControlStartError(
            f"control_socket folder {folder} must be private to this user (0700), it is {mode:o}"
        )

"""ControlServer: unix socket mode, start-up warning, restart on a settings change."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import stat
import tempfile
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from icloudfs.config import config_file
from icloudfs.control import ControlClient, ControlServer, ControlService, ControlStartError
from icloudfs.control.peers import listener_uids
from icloudfs.control.server import NO_TOKENS_WARNING
from tests.support.ports import free_port

from .conftest import ServerFactory


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short path: unix socket paths are limited to ~108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="icfs-"))
    yield path
    shutil.rmtree(path)


def test_unix_socket_in_a_private_folder(
    service: ControlService, start_server: ServerFactory, short_dir: Path
) -> None:
    path = short_dir / "run" / "control.sock"
    service.settings.control_socket = str(path)
    server = start_server(service)
    assert server.socket == path
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700 and stat.S_IMODE(path.stat().st_mode) == 0o600
    with ControlClient(socket=str(path)) as client:
        assert client.status().mount.mounted
        created = client.create_token("socket callers are local")  # local-only route
        client.revoke_token(created.id)
    server.stop()
    assert not path.exists(), "the socket goes with the server"


def test_unix_socket_refuses_an_open_folder(
    service: ControlService, start_server: ServerFactory, short_dir: Path
) -> None:
    os.chmod(short_dir, 0o755)
    service.settings.control_socket = str(short_dir / "control.sock")
    with pytest.raises(ControlStartError, match="0700"):
        start_server(service)


def test_remote_without_tokens_warns_but_starts(
    remote_service: ControlService, start_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="icloudfs.control"):
        server = start_server(remote_service)
    assert NO_TOKENS_WARNING in [r.getMessage() for r in caplog.records]
    assert NO_TOKENS_WARNING == (
        "Remote connections enabled but no tokens exist. Remote clients won't authenticate."
    )
    assert httpx.get(f"http://127.0.0.1:{server.port}/health").status_code == 200


def test_no_warning_when_a_token_exists(
    remote_service: ControlService, start_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    remote_service.tokens.create_token("x")
    with caplog.at_level(logging.WARNING, logger="icloudfs.control"):
        start_server(remote_service)
    assert NO_TOKENS_WARNING not in caplog.text


RESTART_BOUND_S = 5.0


def test_settings_change_restarts_only_the_server_quickly(
    service: ControlService, server: ControlServer
) -> None:
    old_port, new_port = server.port, free_port()
    mount = service.filesystem
    began = time.monotonic()
    reply = httpx.put(f"http://127.0.0.1:{old_port}/settings", json={"port": new_port})
    assert reply.status_code == 200 and reply.json()["port"] == new_port
    with ControlClient(port=new_port, timeout=1) as client:
        while True:
            try:
                assert client.health().status == "ok"
                break
            except Exception:
                # Sub-second when the machine is idle; the bound is loose because CI shares 2 cores.
                assert time.monotonic() - began < RESTART_BOUND_S, "new port not answering"
                time.sleep(0.01)
    assert server.port == new_port and service.filesystem is mount
    saved = tomllib.loads(config_file().read_text())
    assert saved["control_addr"] == f"127.0.0.1:{new_port}"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{old_port}/health")


def test_a_restart_never_leaves_the_port_free_for_another_user(
    service: ControlService, server: ControlServer
) -> None:
    """The new listener is bound before the old one closes (``SO_REUSEPORT``, which the kernel
    shares only between sockets of one user): at no moment can another user bind the port."""
    port = server.port
    service.settings.control_addr = f"127.0.0.1:{port}"
    owners: list[set[int]] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            owners.append(listener_uids(port))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for _ in range(3):
            server.restart()
    finally:
        done.set()
        watcher.join()
    assert owners and all(found == {os.getuid()} for found in owners)
    assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200


def test_a_taken_port_is_409_and_nothing_changes(service: ControlService, server: ControlServer) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        reply = httpx.put(f"http://127.0.0.1:{server.port}/settings", json={"port": port})
    assert reply.status_code == 409 and "not available" in reply.json()["reason"]
    assert not config_file().exists()

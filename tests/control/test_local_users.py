""" "Local" means this user, not this machine: another user of the machine (``runuser -u
nobody``) is as remote as anyone, and the CLI sends nothing to a port another user holds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from icloudfs.control import ControlServer, ControlService
from icloudfs.control.client import ControlClient, ServerNotTrusted
from tests.support.ports import free_port

if os.getuid() != 0 or shutil.which("curl") is None or not Path("/usr/bin/python3").exists():
    pytest.skip("needs root (to act as nobody), curl and /usr/bin/python3", allow_module_level=True)

NOBODY = {"user": 65534, "group": 65534, "extra_groups": []}  # exec'd as nobody, no wrapper

ROUTES = [
    ("GET", "/status"),
    ("GET", "/credentials"),
    ("GET", "/tokens"),
    ("POST", "/tokens"),
    ("PUT", "/settings"),
    ("POST", "/credentials/logout"),
    ("POST", "/credentials/login"),
    ("POST", "/cache/evict"),
    ("POST", "/uploads/retry"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
]


def as_nobody(*command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), capture_output=True, text=True, timeout=timeout, cwd="/", **NOBODY)


def curl_as_nobody(method: str, url: str, *extra: str) -> int:
    done = as_nobody(
        "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", method,
        "-H", "Content-Type: application/json", "-d", '{"description": "x"}', *extra, url,
    )  # fmt: skip
    return int(done.stdout or 0)


def test_another_user_is_not_local_over_tcp(server: ControlServer) -> None:
    base = f"http://127.0.0.1:{server.port}"
    assert curl_as_nobody("GET", f"{base}/health") == 200
    for method, path in ROUTES:  # refused; after five tries the limiter answers (429)
        assert curl_as_nobody(method, f"{base}{path}") in (401, 403, 429), f"{method} {path}"
    assert httpx.get(f"{base}/tokens").status_code == 200, "this user is local"


def test_another_user_cannot_reach_the_socket(server: ControlServer) -> None:
    code = curl_as_nobody("GET", "http://localhost/status", "--unix-socket", str(server.socket))
    assert code == 0, "the connection itself is refused"
    assert oct(server.socket.parent.stat().st_mode & 0o777) == "0o700"
    assert oct(server.socket.stat().st_mode & 0o777) == "0o600"


SQUATTER = textwrap.dedent(
    """
    import socket, sys
    server = socket.create_server(("127.0.0.1", int(sys.argv[1])))
    print("listening", flush=True)
    while True:
        conn, _ = server.accept()
        conn.settimeout(2)
        try:
            while chunk := conn.recv(65536):
                sys.stderr.write(chunk.decode("latin-1"))
                sys.stderr.flush()
        except OSError:
            pass
        conn.close()
    """
)


@pytest.fixture
def squatter() -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """Another user listening on a loopback port, keeping what it receives."""
    port = free_port()
    process = subprocess.Popen(
        ["/usr/bin/python3", "-c", SQUATTER, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd="/",
        **NOBODY,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "listening"
    yield port, process
    process.kill()
    process.wait()


def test_the_client_sends_nothing_to_another_users_port(squatter: tuple[int, subprocess.Popen[str]]) -> None:
    port, process = squatter
    with pytest.raises(ServerNotTrusted):
        ControlClient("127.0.0.1", port).login("me@example.com", "hunter2-secret")
    process.kill()
    _, received = process.communicate(timeout=10)
    assert received == "", "not a byte was sent"


def test_login_never_sends_the_password_to_a_squatter_on_the_control_port(
    squatter: tuple[int, subprocess.Popen[str]], tmp_path: Path
) -> None:
    """With no mount running, ``login`` signs in directly; the port configured for the control
    plane, held by another user, hears nothing."""
    port, process = squatter
    env = {**os.environ, "ICLOUDFS_CONTROL_ADDR": f"127.0.0.1:{port}"}
    done = subprocess.run(
        [sys.executable, "-m", "icloudfs", "login", "--apple-id", "me@example.com", "--password-stdin"],
        input="hunter2-secret\n",
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "ICLOUDFS_ENDPOINT": f"https://127.0.0.1:{free_port()}"},  # no Apple here
    )
    assert done.returncode != 0  # nothing answers at that endpoint; what matters is below
    process.kill()
    _, received = process.communicate(timeout=10)
    assert "hunter2" not in received and received == ""


def test_the_socket_of_another_user_is_not_trusted(tmp_path: Path) -> None:
    folder = Path(os.environ["XDG_RUNTIME_DIR"]) / "elsewhere"
    folder.mkdir(mode=0o755)
    with pytest.raises(ServerNotTrusted):
        ControlClient(socket=folder / "control.sock").status()


def test_a_second_mount_gets_its_own_socket_and_the_cli_reaches_each(
    service: ControlService, start_server: object, tmp_path: Path
) -> None:
    from tests.control.fakes import FakeFilesystem

    first, second = tmp_path / "one", tmp_path / "two"
    servers = []
    for mountpoint in (first, second):
        mountpoint.mkdir()
        own = ControlService(
            settings=service.settings,
            tokens=service.tokens,
            filesystem=FakeFilesystem(mountpoint=str(mountpoint)),
        )
        servers.append(start_server(own))  # type: ignore[operator]
    assert servers[0].socket != servers[1].socket
    for mountpoint in (first, second):
        done = subprocess.run(
            [sys.executable, "-m", "icloudfs", "status", "--json", str(mountpoint)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["mount"]["mountpoint"] == str(mountpoint)
    done = subprocess.run(
        [sys.executable, "-m", "icloudfs", "status"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1 and "several mounts are running" in done.stderr

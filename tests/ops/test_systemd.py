"""The user unit parses with systemd's own checker; readiness reaches a real NOTIFY_SOCKET."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from icloudfs.control.client import ControlClient
from icloudfs.ops import sdnotify
from tests.ops.conftest import Run, wait_for

UNIT = Path(__file__).resolve().parents[2] / "contrib" / "systemd" / "icloudfs@.service"


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    # An instance of the template, with this checkout's venv where ~/.local/bin would be.
    unit = tmp_path / "icloudfs@home-alice-iCloud.service"
    unit.write_text(UNIT.read_text().replace("%h/.local/bin", str(Path(sys.executable).parent)))
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    done = subprocess.run(
        ["systemd-analyze", "verify", "--user", str(unit)],
        capture_output=True, text=True, timeout=60, env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)},
    )  # fmt: skip
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    assert "Type=notify" in UNIT.read_text()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(60)
    yield sock
    sock.close()


def test_notify_sends_one_datagram_to_a_path_or_an_abstract_socket(
    notify_socket: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.notify("READY=1") is False  # not under systemd: nothing to do
    monkeypatch.setenv("NOTIFY_SOCKET", notify_socket.getsockname())
    assert sdnotify.notify("READY=1", "STATUS=hello")
    assert notify_socket.recv(4096) == b"READY=1\nSTATUS=hello"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as abstract:
        abstract.bind(f"\0icloudfs-test-{os.getpid()}")
        monkeypatch.setenv("NOTIFY_SOCKET", f"@icloudfs-test-{os.getpid()}")
        assert sdnotify.notify("STOPPING=1")
        assert abstract.recv(4096) == b"STOPPING=1"


@pytest.mark.usefixtures("signed_in")
def test_foreground_mount_is_ready_only_when_live(
    notify_socket: socket.socket, mountpoint: Path, icloudfs: Run, env: dict[str, str]
) -> None:
    """What systemd sees with Type=notify: READY=1 arrives when the mount and control plane answer."""
    daemon = subprocess.Popen(
        [sys.executable, "-m", "icloudfs", "mount", "--foreground", str(mountpoint)],
        env={**env, "NOTIFY_SOCKET": notify_socket.getsockname()},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        message = notify_socket.recv(4096).decode()
        assert message.startswith("READY=1\nSTATUS=iCloud / mounted on")
        assert os.path.ismount(mountpoint)
        host, port = env["ICLOUDFS_CONTROL_ADDR"].split(":")
        with ControlClient(host, int(port)) as client:
            assert client.status().mount.mounted
        done = icloudfs("unmount", str(mountpoint))  # the unit's ExecStop
        assert done.returncode == 0, done.stderr
        assert notify_socket.recv(4096) == b"STOPPING=1"
        wait_for(lambda: daemon.poll() is not None, what="the mount to exit")
        assert daemon.returncode == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()

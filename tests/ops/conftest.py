"""icloudfs as a user (or systemd, or mount(8)) runs it: real processes against a real emulator.

Each test module gets its own emulator; each test its own XDG folders (the
autouse ``isolated_home``), its own control-plane port and mountpoint, and is
signed in through ``icloudfs login``. ``ICLOUDFS_ENDPOINT`` / ``ICLOUDFS_CA_FILE``
point every command at the emulator through the environment the children
inherit. Teardown kills whatever mount daemon is left and detaches the mount.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyicloud import PyiCloudService

from icloudfs.fuse.mount import MountError, unmount
from icloudfs.runner import mount_log
from tests.support.emulator import Emulator, start_emulator
from tests.support.ports import free_port

if shutil.which("fusermount3") is None or not Path("/dev/fuse").exists():
    pytest.skip("FUSE is not available (needs fuse3 and /dev/fuse)", allow_module_level=True)

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with start_emulator(tmp_path_factory.mktemp("emulator")) as emu:
        yield emu


@pytest.fixture
def env(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This test's environment, as every child process gets it."""
    monkeypatch.setenv("ICLOUDFS_ENDPOINT", emulator.url)
    monkeypatch.setenv("ICLOUDFS_CA_FILE", emulator.ca)
    monkeypatch.setenv("ICLOUDFS_CONTROL_ADDR", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    return dict(os.environ)


@pytest.fixture
def icloudfs(env: dict[str, str]) -> Run:
    """Run ``python -m icloudfs ARGS`` and return the finished process."""

    def run(
        *args: str, stdin: str = "", timeout: float = 90, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "icloudfs", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**env, **extra},
        )

    return run


@pytest.fixture
def signed_in(emulator: Emulator) -> None:
    done = emulator.cli_login()
    assert done.returncode == 0, done.stderr


@pytest.fixture
def mountpoint(tmp_path: Path) -> Iterator[Path]:
    """A fresh folder; whatever is mounted on it, and its daemon, are gone after the test."""
    path = tmp_path / "mnt"
    path.mkdir()
    yield path
    pid = daemon_pid(path)
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(MountError):  # also a dead mount, which ismount() does not see
        unmount(path, force=True)


def daemon_pid(mountpoint: Path) -> int | None:
    try:
        pid = int(mount_log(mountpoint).with_suffix(".pid").read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def wait_for(condition: Callable[[], object], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


@dataclass
class Remote:
    """The emulator's drive as another device sees it, through unmodified pyicloud."""

    api: PyiCloudService

    def files(self) -> dict[str, bytes]:
        return {
            child.name: child.open().content
            for child in self.api.drive.root.get_children(force=True)
            if child.type == "file"
        }


@pytest.fixture
def remote(emulator: Emulator, tmp_path: Path) -> Remote:
    return Remote(emulator.signed_in(tmp_path / "pyicloud"))

"""Real FUSE mounts for tests: mounted in a background thread, always unmounted in teardown.

The drive is a fixture (``drive``), so the same tests can run against another
backend: override ``drive`` with an object that implements the ``Drive``
protocol plus the few inspection helpers the tests use (``RemoteView``).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest

from icloudfs.drive.memory import MemoryDrive
from icloudfs.drive.protocol import Drive
from icloudfs.drive.types import Item
from icloudfs.fs.core import Filesystem
from icloudfs.fuse.mount import Mount, MountOptions, unmount
from icloudfs.icloud.account import Account
from tests.support.emulator import Emulator, start_emulator
from tests.support.icloud_view import EmulatorView

if shutil.which("fusermount3") is None or not Path("/dev/fuse").exists():
    pytest.skip("FUSE is not available (needs fuse3 and /dev/fuse)", allow_module_level=True)


class RemoteView(Drive, Protocol):
    """What the tests ask of a drive besides the protocol, to check what reached it."""

    def content(self, path: str) -> bytes: ...
    def names(self, path: str = "") -> list[str]: ...
    def exists(self, path: str) -> bool: ...
    def add_file(self, path: str, data: bytes) -> Item: ...
    def add_folder(self, path: str) -> Item: ...
    def tree(self, path: str = "") -> dict[str, bytes | None]: ...


@dataclass
class LiveMount:
    path: Path
    drive: RemoteView
    mount: Mount

    @property
    def fs(self) -> Filesystem:
        return self.mount.filesystem

    def sh(
        self, command: str, *, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run a shell command inside the mount."""
        result = subprocess.run(
            command, shell=True, cwd=self.path, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{command!r} failed ({result.returncode}): {result.stderr}")
        return result

    def closed(self, timeout: float = 10.0) -> None:
        """Wait until the kernel has closed every file (it sends RELEASE after close(2) returns)
        and files unlinked while open are gone with their last close."""
        deadline = time.monotonic() + timeout
        while self.fs.stats()["open_handles"] or self.fs.writeback.unlinked_open():
            assert time.monotonic() < deadline, "files are still open, or unlinked ones not gone"
            time.sleep(0.01)

    def settle(self, timeout: float = 20.0) -> None:
        """Wait until every pending upload has reached the drive."""
        assert self.fs.drain(timeout), f"uploads still pending: {self.fs.stats()['uploads']}"


MountFactory = Callable[..., LiveMount]


@pytest.fixture
def drive() -> RemoteView:
    return MemoryDrive()


@pytest.fixture
def mount_factory(tmp_path: Path) -> Iterator[MountFactory]:
    """Mount a drive at a fresh mountpoint; options as in ``MountOptions``."""
    mounts: list[LiveMount] = []

    def make(drive: RemoteView, **options: Any) -> LiveMount:
        mountpoint = tmp_path / f"mnt{len(mounts)}"
        mountpoint.mkdir()
        options.setdefault("cache_dir", tmp_path / "cache")
        options.setdefault("write_back", 0.2)
        options.setdefault("drain_timeout", 20.0)
        mount = Mount(drive, MountOptions(mountpoint=mountpoint, **options))
        mount.start()
        live = LiveMount(mountpoint, drive, mount)
        mounts.append(live)
        return live

    yield make
    for live in mounts:
        try:
            if live.mount.alive:
                live.mount.stop()
        finally:
            if live.mount.alive:
                unmount(live.path, force=True)


@pytest.fixture
def mounted(drive: RemoteView, mount_factory: MountFactory) -> LiveMount:
    return mount_factory(drive)


@pytest.fixture(scope="session")
def shared_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with start_emulator(tmp_path_factory.mktemp("fuse-emulator")) as emulator:
        yield emulator


@pytest.fixture
def fuse_emulator(shared_emulator: Emulator) -> Iterator[Emulator]:
    """The shared emulator; faults a test injects end with it, even when the test fails."""
    yield shared_emulator
    shared_emulator.clear_faults()


@pytest.fixture
def icloud_view(fuse_emulator: Emulator, tmp_path: Path, request: pytest.FixtureRequest) -> EmulatorView:
    """The real iCloud backend on the emulator, in a folder of this test's own."""
    emu = fuse_emulator
    account = Account("", session_dir=tmp_path / "session", endpoint=emu.url, ca_file=emu.ca)
    account.login(emu.apple_id, emu.password, remember=False)
    account.submit_2fa(emu.code)
    api = emu.signed_in(tmp_path / "pyicloud")
    return EmulatorView(account, emu.ca, api, f"/{request.node.name[:60]}-{time.time_ns()}")


@pytest.fixture(params=["memory", "icloud"])
def any_mount(request: pytest.FixtureRequest, mount_factory: MountFactory) -> LiveMount:
    """The same test on MemoryDrive and on the real iCloud backend against the emulator."""
    if request.param == "memory":
        return mount_factory(MemoryDrive())
    view: EmulatorView = request.getfixturevalue("icloud_view")
    return mount_factory(view, folder=view.base)

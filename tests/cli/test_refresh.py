"""``icloudfs refresh PATH`` makes a remote change visible at once, through the running mount."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from icloudfs.config import Settings
from icloudfs.control.server import ControlServer
from icloudfs.control.service import ControlService
from icloudfs.control.tokens import TokenStore
from icloudfs.drive.memory import MemoryDrive
from tests.fuse.conftest import MountFactory


def test_refresh_shows_a_remote_change_now(
    mount_factory: MountFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    drive = MemoryDrive()
    drive.add_folder("docs")
    live = mount_factory(drive, metadata_ttl=3600.0)
    assert os.listdir(live.path / "docs") == []
    drive.add_file("docs/from-a-mac.txt", b"hi")  # another device
    assert os.listdir(live.path / "docs") == [], "still the cached listing (TTL)"
    server = ControlServer(
        ControlService(Settings(control_addr="127.0.0.1:0"), TokenStore(), filesystem=live.fs)
    )
    server.start()
    try:
        monkeypatch.setenv("ICLOUDFS_CONTROL_ADDR", f"127.0.0.1:{server.port}")
        done = subprocess.run(
            [sys.executable, "-m", "icloudfs", "refresh", str(live.path / "docs")],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr
    assert "Refreshed /docs" in done.stdout
    assert os.listdir(live.path / "docs") == ["from-a-mac.txt"]

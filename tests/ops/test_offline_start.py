"""A mount starts while iCloud is unreachable (issue 21): from the saved session, the persisted
listings and the warm cache, and signs in by itself when iCloud answers again. With the systemd
unit's StartLimitBurst=3 and RestartSec=30, refusing to start meant no mount at all after a
90 s outage at boot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ops.conftest import Remote, Run, wait_for
from tests.support.emulator import Emulator, start_emulator

pytestmark = pytest.mark.usefixtures("signed_in")


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """This module's own: the test stops and restarts it."""
    with start_emulator(tmp_path_factory.mktemp("emulator"), "--seed", "demo") as emu:
        yield emu


def test_mount_starts_offline_from_a_warm_cache_then_catches_up(
    icloudfs: Run, mountpoint: Path, emulator: Emulator, remote: Remote, tmp_path: Path
) -> None:
    assert icloudfs("mount", str(mountpoint)).returncode == 0
    idea = mountpoint / "Ideas 💡.txt"
    text = idea.read_text()
    assert icloudfs("unmount", str(mountpoint)).returncode == 0

    port = emulator.url.rsplit(":", 1)[1]
    emulator.stop()  # the link is down at boot
    offline = icloudfs("mount", str(mountpoint))
    assert offline.returncode == 0, offline.stderr
    assert idea.read_text() == text, "the warm cache serves"
    (mountpoint / "written-offline.txt").write_text("queued until iCloud answers\n")
    status = icloudfs("status", str(mountpoint))
    assert "unreachable since" in status.stdout, status.stdout

    back = start_emulator(tmp_path / "unused", "--port", port, data_dir=emulator.data_dir)
    try:
        wait_for(lambda: "written-offline.txt" in remote.files(), timeout=60, what="the queued upload")
        assert "unreachable" not in icloudfs("status", str(mountpoint)).stdout
        assert icloudfs("unmount", str(mountpoint)).returncode == 0
    finally:
        back.stop()

"""iCloud unreachable while mounted: cached files stay readable, known folders stay listable,
writes queue, uncached reads fail fast (EIO after the offline timeout, never a hang), and the
mount recovers by itself when the link returns."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest

from icloudfs.icloud.account import Account
from icloudfs.icloud.drive import ICloudDrive
from tests.fuse.conftest import MountFactory
from tests.support.emulator import start_emulator


def test_offline_then_back(mount_factory: MountFactory, tmp_path: Path) -> None:
    emu = start_emulator(tmp_path / "emu", "--seed", "demo")
    try:
        account = Account("", session_dir=tmp_path / "session", endpoint=emu.url, ca_file=emu.ca)
        account.login(emu.apple_id, emu.password, remember=False)
        account.submit_2fa(emu.code)
        drive = ICloudDrive(account, ca_file=emu.ca, offline_timeout=3.0)
        live = mount_factory(drive, folder="/LegalCases", metadata_ttl=0.5, negative_ttl=0.5)
        cached = next(p for p in (live.path / "2024").rglob("*") if p.is_file())
        data = cached.read_bytes()
        uncached = next(p for p in (live.path / "2025").rglob("*") if p.is_file())

        port = emu.url.rsplit(":", 1)[1]
        emu.stop()  # the link is down
        time.sleep(1.0)  # listings are now past their TTL
        assert cached.read_bytes() == data, "cached content stays readable"
        assert sorted(os.listdir(live.path)) == ["2024", "2025", "Templates"], "known folders stay listable"
        live.fs.evict(str(uncached.relative_to(live.path)))
        started = time.monotonic()
        with pytest.raises(OSError) as failed:
            uncached.read_bytes()
        assert failed.value.errno == errno.EIO
        assert time.monotonic() - started < 20, "an uncached read fails after the offline timeout, not a hang"
        (live.path / "offline-note.txt").write_bytes(b"queued while offline")

        emu = start_emulator(tmp_path / "emu2", "--port", port, data_dir=emu.data_dir)  # the link is back
        live.settle(60)
        assert uncached.read_bytes(), "the mount recovered by itself"
        checker = emu.signed_in(tmp_path / "checker")
        folder = next(n for n in checker.drive.root.get_children(force=True) if n.name == "LegalCases")
        note = next(n for n in folder.get_children(force=True) if n.name == "offline-note.txt")
        assert note.open().content == b"queued while offline"
    finally:
        emu.stop()

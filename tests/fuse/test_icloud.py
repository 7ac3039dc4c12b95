"""Scenarios that only the real backend can show: the mount on ICloudDrive against the emulator.

What reached "iCloud" is always read back through unmodified pyicloud (``EmulatorView``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from icloudfs.icloud.account import Account
from icloudfs.icloud.drive import ICloudDrive
from tests.fuse.conftest import LiveMount, MountFactory
from tests.support.emulator import Emulator, start_emulator
from tests.support.icloud_view import EmulatorView


@pytest.fixture
def on_icloud(icloud_view: EmulatorView, mount_factory: MountFactory) -> LiveMount:
    return mount_factory(icloud_view, folder=icloud_view.base)


def test_file_larger_than_the_content_cache(icloud_view: EmulatorView, mount_factory: MountFactory) -> None:
    data = os.urandom(20 * 1024 * 1024 + 123)
    live = mount_factory(icloud_view, folder=icloud_view.base, cache_size=6 << 20)
    (live.path / "big.bin").write_bytes(data)
    live.settle(60)
    assert hashlib.sha256(icloud_view.content("big.bin")).digest() == hashlib.sha256(data).digest()
    live.fs.evict("/")
    digest = subprocess.run(
        ["sha256sum", str(live.path / "big.bin")], capture_output=True, text=True, check=True
    )
    assert digest.stdout.split()[0] == hashlib.sha256(data).hexdigest()
    content = live.fs.stats()["content"]
    assert content["bytes_used"] <= content["bytes_limit"] == 6 << 20


def test_pending_uploads_survive_a_restart(icloud_view: EmulatorView, mount_factory: MountFactory) -> None:
    first = mount_factory(icloud_view, folder=icloud_view.base, write_back=3600.0)
    (first.path / "report.txt").write_bytes(b"written before the restart")
    assert first.mount.stop(drain_timeout=0) is False  # unmounted with the upload pending
    assert not icloud_view.exists("report.txt")
    second = mount_factory(icloud_view, folder=icloud_view.base)
    assert (second.path / "report.txt").read_bytes() == b"written before the restart"
    second.settle(30)
    assert icloud_view.content("report.txt") == b"written before the restart"


def test_remote_change_while_editing_keeps_both_versions(
    icloud_view: EmulatorView, mount_factory: MountFactory
) -> None:
    icloud_view.add_file("brief.txt", b"v1")
    live = mount_factory(icloud_view, folder=icloud_view.base, write_back=3600.0)
    with open(live.path / "brief.txt", "r+b") as edit:
        assert edit.read() == b"v1"
        edit.seek(0)
        edit.write(b"local edit")
    icloud_view.add_file("brief.txt", b"edited on a Mac")  # another device, before our upload
    live.settle(30)
    names = icloud_view.names()
    copies = [n for n in names if n.startswith("brief (conflict ")]
    assert "brief.txt" in names and len(copies) == 1, names
    assert icloud_view.content("brief.txt") == b"edited on a Mac"
    assert icloud_view.content(copies[0]) == b"local edit"


def test_two_readers_share_one_download(
    icloud_view: EmulatorView, mount_factory: MountFactory, fuse_emulator: Emulator
) -> None:
    data = os.urandom(8 * 1024 * 1024)
    icloud_view.add_file("shared.bin", data)
    live = mount_factory(icloud_view, folder=icloud_view.base)
    fuse_emulator.reset_stats()
    readers = [
        subprocess.Popen(["sha256sum", str(live.path / "shared.bin")], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [reader.communicate(timeout=60)[0].split()[0] for reader in readers]
    assert outputs == [hashlib.sha256(data).hexdigest()] * 2
    assert fuse_emulator.stats()["bytes_down"] <= 1.25 * len(data), "each block fetched once"


def test_session_expiry_mid_use_is_invisible(
    on_icloud: LiveMount, icloud_view: EmulatorView, fuse_emulator: Emulator
) -> None:
    (on_icloud.path / "before.txt").write_bytes(b"one")
    on_icloud.settle()
    fuse_emulator.expire_sessions()
    (on_icloud.path / "after.txt").write_bytes(b"two")
    on_icloud.settle()
    on_icloud.fs.refresh("/")
    assert sorted(os.listdir(on_icloud.path)) == ["after.txt", "before.txt"]
    icloud_view.api.authenticate(force_refresh=True)  # the checking client's session expired too
    assert icloud_view.content("after.txt") == b"two"


@pytest.fixture(scope="module")
def big_tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with start_emulator(tmp_path_factory.mktemp("tree"), "--seed", "tree:10000:1:16") as emulator:
        yield emulator


def test_a_folder_of_ten_thousand_entries(
    big_tree: Emulator, mount_factory: MountFactory, tmp_path: Path
) -> None:
    account = Account("", session_dir=tmp_path / "session", endpoint=big_tree.url, ca_file=big_tree.ca)
    account.login(big_tree.apple_id, big_tree.password, remember=False)
    account.submit_2fa(big_tree.code)
    live = mount_factory(ICloudDrive(account, ca_file=big_tree.ca), folder="/tree-10000-1")
    big_tree.reset_stats()
    listing = live.sh("ls -l | tail -n +2 | wc -l").stdout
    assert int(listing) == 10_000
    first = big_tree.stats()["requests"].get("/drivews/retrieveItemDetailsInFolders", 0)
    assert first <= 2, "one listing request (plus at most one prefetch)"
    assert int(live.sh("find . -type f | wc -l").stdout) == 10_000
    assert big_tree.stats()["requests"].get("/drivews/retrieveItemDetailsInFolders", 0) == first, "cached"
    assert (live.path / "file000042.bin").stat().st_size == 16

"""Nothing written is lost: restarts, a killed mount process, SIGTERM, and remote conflicts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from icloudfs.drive.memory import MemoryDrive
from icloudfs.fuse.mount import unmount
from tests.fuse.conftest import MountFactory
from tests.fuse.mount_child import seed

ROOT = Path(__file__).resolve().parents[2]


def test_pending_uploads_resume_after_a_restart(drive: MemoryDrive, mount_factory: MountFactory) -> None:
    drive.add_file("docs/existing.txt", b"old")
    first = mount_factory(drive, write_back=3600.0)
    (first.path / "docs" / "new.txt").write_bytes(b"brand new")
    (first.path / "docs" / "existing.txt").write_bytes(b"changed")
    assert first.fs.stats()["uploads"]["queued"] == 2
    assert first.mount.stop(drain_timeout=0) is False  # unmounted with uploads pending
    assert drive.names("docs") == ["existing.txt"]
    assert drive.content("docs/existing.txt") == b"old"

    second = mount_factory(drive)
    assert (second.path / "docs" / "new.txt").read_bytes() == b"brand new"
    second.settle()
    assert drive.content("docs/new.txt") == b"brand new"
    assert drive.content("docs/existing.txt") == b"changed"
    assert drive.calls["replace"] == 1


@pytest.fixture
def child_mount(tmp_path: Path) -> Iterator[tuple[Path, Path, list[subprocess.Popen[str]]]]:
    mountpoint, cache = tmp_path / "child-mnt", tmp_path / "cache"
    mountpoint.mkdir()
    children: list[subprocess.Popen[str]] = []
    yield mountpoint, cache, children
    for child in children:
        if child.poll() is None:
            child.kill()
            child.wait()
    if os.path.ismount(mountpoint):
        unmount(mountpoint, force=True)


def _start_child(mountpoint: Path, cache: Path, write_back: float) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.fuse.mount_child", str(mountpoint), str(cache), str(write_back)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    return child


def test_kill_9_before_upload_then_remount_completes_it(
    child_mount: tuple[Path, Path, list[subprocess.Popen[str]]], mount_factory: MountFactory
) -> None:
    mountpoint, cache, children = child_mount
    child = _start_child(mountpoint, cache, write_back=3600.0)
    children.append(child)
    (mountpoint / "docs" / "report.txt").write_bytes(b"written before the crash\n")
    with open(mountpoint / "docs" / "existing.txt", "ab") as fh:
        fh.write(b"local edit\n")
    child.send_signal(signal.SIGKILL)
    child.wait()
    deadline = time.monotonic() + 5
    while os.path.ismount(mountpoint) and time.monotonic() < deadline:
        time.sleep(0.05)  # auto_unmount detaches the dead mount

    drive = seed()  # the same drive, as the dead process knew it
    live = mount_factory(drive, cache_dir=cache)
    live.settle()
    assert drive.content("docs/report.txt") == b"written before the crash\n"
    assert drive.content("docs/existing.txt") == b"remote version\nlocal edit\n"


def test_sigterm_drains_uploads_then_unmounts(
    child_mount: tuple[Path, Path, list[subprocess.Popen[str]]],
) -> None:
    mountpoint, cache, children = child_mount
    child = _start_child(mountpoint, cache, write_back=3600.0)
    children.append(child)
    (mountpoint / "docs" / "late.txt").write_bytes(b"uploaded at shutdown")
    child.send_signal(signal.SIGTERM)
    stdout, _ = child.communicate(timeout=60)
    assert child.returncode == 0
    assert json.loads(stdout.strip().splitlines()[-1])["docs/late.txt"] == "uploaded at shutdown"
    assert not os.path.ismount(mountpoint)


def test_remote_change_before_upload_makes_a_conflict_copy(
    drive: MemoryDrive, mount_factory: MountFactory
) -> None:
    drive.add_file("notes/plan.txt", b"v1")
    live = mount_factory(drive, write_back=3600.0)
    (live.path / "notes" / "plan.txt").write_bytes(b"local v2")
    drive.add_file("notes/plan.txt", b"remote v2")  # another device saves first
    live.settle()
    names = drive.names("notes")
    assert len(names) == 2
    copy = next(n for n in names if n != "plan.txt")
    assert copy.startswith("plan (conflict ") and copy.endswith(").txt")
    assert drive.content("notes/plan.txt") == b"remote v2"
    assert drive.content(f"notes/{copy}") == b"local v2"
    assert live.fs.stats()["uploads"]["conflicts"] == 1
    time.sleep(0.1)
    assert sorted(os.listdir(live.path / "notes")) == sorted(names)


def test_failed_uploads_keep_the_bytes_and_retry(drive: MemoryDrive, mount_factory: MountFactory) -> None:
    from icloudfs.errors import Unavailable

    drive.fail("upload", Unavailable("network down"), times=1)
    live = mount_factory(drive)
    (live.path / "retry.txt").write_bytes(b"eventually")
    deadline = time.monotonic() + 10
    while not drive.exists("retry.txt") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert drive.content("retry.txt") == b"eventually"
    assert drive.calls["upload"] == 2
    assert "network down" in live.fs.stats()["uploads"]["last_error"]

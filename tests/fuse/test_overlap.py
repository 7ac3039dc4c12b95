"""Ordinary tools when uploads overlap the next operation: ``--write-back 0s`` and a slow link,
so every close starts an upload that is still running when the tool renames, replaces or
deletes the file. What reaches the drive (read back by an independent pyicloud client on the
emulator) must equal the source."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import pytest

from icloudfs.drive.memory import MemoryDrive
from tests.fuse.conftest import LiveMount, MountFactory
from tests.fuse.test_tools import _make_tree
from tests.support.emulator import Emulator
from tests.support.icloud_view import EmulatorView

GIT = "GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@e GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@e git"


@pytest.fixture(params=["memory", "icloud"])
def eager(request: pytest.FixtureRequest, mount_factory: MountFactory) -> LiveMount:
    """A mount that uploads at every close, over a link slow enough that uploads overlap."""
    if request.param == "memory":
        return mount_factory(MemoryDrive(latency=0.03), write_back=0.0)
    view: EmulatorView = request.getfixturevalue("icloud_view")
    emulator: Emulator = request.getfixturevalue("fuse_emulator")
    emulator.faults(latency_ms=15, bandwidth_mbps=40)
    return mount_factory(view, folder=view.base, write_back=0.0)


def test_rsync_a_into_the_mount(eager: LiveMount, tmp_path: Path) -> None:
    if shutil.which("rsync") is None:
        pytest.skip("rsync is not installed (apt-get install rsync)")
    files = _make_tree(tmp_path / "src")
    eager.sh(f"rsync -a {tmp_path / 'src'}/ synced/")
    for rel in files:
        (tmp_path / "src" / rel).write_bytes(os.urandom(1000))  # a second run replaces every file
    eager.sh(f"rsync -a {tmp_path / 'src'}/ synced/")
    eager.settle(120)
    for rel in files:
        assert eager.drive.content(f"synced/{rel}") == (tmp_path / "src" / rel).read_bytes(), rel
    assert eager.drive.names("synced") == ["a.txt", "empty", "sub"]


def test_mv_of_a_file_just_written(eager: LiveMount) -> None:
    eager.sh("echo hi > a.txt && mv a.txt b.txt && cat b.txt && mkdir d && mv b.txt d/ && cat d/b.txt")
    eager.settle()
    assert eager.drive.names() == ["d"] and eager.drive.content("d/b.txt") == b"hi\n"


def test_tar_x_into_the_mount(eager: LiveMount, tmp_path: Path) -> None:
    files = _make_tree(tmp_path / "src")
    eager.sh(f"tar -C {tmp_path / 'src'} -cf {tmp_path / 'in.tar'} .")
    eager.sh(f"mkdir x && tar -C x -xf {tmp_path / 'in.tar'} && tar -C x -xf {tmp_path / 'in.tar'}")
    eager.settle(120)
    for rel, data in files.items():
        assert eager.drive.content(f"x/{rel}") == data, rel


def test_git_init_add_commit(eager: LiveMount) -> None:
    eager.sh(f"mkdir repo && cd repo && {GIT} init -q && echo hello > readme && {GIT} add readme")
    eager.sh(f"cd repo && {GIT} commit -qm first && echo more >> readme && {GIT} commit -qam second")
    assert eager.sh(f"cd repo && {GIT} log --oneline | wc -l").stdout.split() == ["2"]
    assert eager.sh(f"cd repo && {GIT} fsck --no-progress 2>&1").returncode == 0
    eager.settle(120)
    assert eager.drive.content("repo/readme") == b"hello\nmore\n"
    assert eager.drive.content("repo/.git/HEAD").startswith(b"ref: refs/heads/")


def test_editor_save_by_rename_again_and_again(eager: LiveMount) -> None:
    doc = eager.path / "doc.txt"
    for version in range(8):
        temporary = eager.path / f".doc.txt.{version}"
        temporary.write_bytes(f"version {version}\n".encode() * (version + 1))
        os.replace(temporary, doc)
        assert doc.read_bytes() == f"version {version}\n".encode() * (version + 1)
    eager.settle()
    assert eager.drive.names() == ["doc.txt"]
    assert eager.drive.content("doc.txt") == b"version 7\n" * 8


def test_no_older_version_ever_shows_while_earlier_ones_upload(eager: LiveMount) -> None:
    """Writes, truncates, fsyncs and reopens of one file while its earlier versions go up: every
    stat and read shows the newest bytes, and the newest is what is stored."""
    rng = random.Random(5)
    path = eager.path / "one.bin"
    expected = bytearray()
    for step in range(120):
        action = rng.random()
        with open(path, "r+b" if path.exists() else "w+b") as handle:
            if action < 0.5:
                offset, data = rng.randrange(0, 300_000), rng.randbytes(rng.choice([1, 4096, 70_000]))
                handle.seek(offset)
                handle.write(data)
                expected.extend(bytes(max(0, offset - len(expected))))
                expected[offset : offset + len(data)] = data
            elif action < 0.8:
                length = rng.randrange(0, 200_000)
                handle.truncate(length)
                del expected[length:]
                expected.extend(bytes(length - len(expected)))
            else:
                handle.flush()
                os.fsync(handle.fileno())
        assert path.stat().st_size == len(expected), f"step {step}: an older size shows"
        if step % 10 == 0:
            assert path.read_bytes() == bytes(expected), f"step {step}: older bytes show"
    eager.settle(120)
    assert eager.drive.content("one.bin") == bytes(expected)
    assert eager.drive.names() == ["one.bin"]

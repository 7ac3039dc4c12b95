"""Model-based: random sequences of file operations on a real mount and on a local reference
folder must give the same result at every step (the same value, or the same errno) and the same
tree at the end, with uploads starting at every close over a slow link, so that renames,
deletes and rewrites meet uploads in flight. On the in-memory drive the link also goes down and
comes back at random: every step must still give the same result (changes made meanwhile are
journaled and made once it is back). After the run, what reached the drive is read back
through a fresh mount with an empty cache and must match too.

hypothesis drives it (``RuleBasedStateMachine``): a failure is shrunk to a short sequence and
printed as the steps that reproduce it.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.fuse.conftest import LiveMount, MountFactory
from tests.support.emulator import Emulator
from tests.support.icloud_view import EmulatorView
from tests.support.offline import SwitchedDrive

FOLDERS = ["", "d", "e", "d/f"]
NAMES = ["a", "b", "c"]
PATHS = [f"{folder}/{name}".lstrip("/") for folder in FOLDERS for name in NAMES] + FOLDERS[1:]
datas = st.one_of(st.binary(max_size=64), st.integers(1, 200_000).map(lambda n: os.urandom(n)))
offsets = st.integers(0, 150_000)
EXAMPLES = {"memory": 300, "icloud": 10}
STEPS = 30


def outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    """What a call did: its value, or the errno it failed with."""
    try:
        return "ok", call()
    except OSError as error:
        return "errno", errno.errorcode.get(error.errno or 0, error.errno)


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path below ``root``: a file's bytes, None for a folder."""
    tree: dict[str, bytes | None] = {}
    for folder, dirs, files in os.walk(root):
        base = Path(folder).relative_to(root)
        for name in dirs:
            tree[str(base / name)] = None
        for name in files:
            tree[str(base / name)] = (Path(folder) / name).read_bytes()
    return tree


def entries(root: Path) -> list[tuple[str, bool]]:
    """Every path below ``root`` and whether it is a folder (nothing read)."""
    found = []
    for folder, dirs, files in os.walk(root):
        base = Path(folder).relative_to(root)
        found += [(str(base / name), True) for name in dirs] + [(str(base / name), False) for name in files]
    return found


class FileOperations(RuleBasedStateMachine):
    """One example: a fresh folder in the mount and one in the reference, the same calls on both;
    at its end, once the uploads are done, the drive must hold the reference's tree."""

    mount: LiveMount
    reference_root: Path
    counter = 0

    def __init__(self) -> None:
        super().__init__()
        FileOperations.counter += 1
        self.name = name = f"run{FileOperations.counter}"
        self.roots = (self.mount.path / name, self.reference_root / name)
        for root in self.roots:
            root.mkdir()
        self.handles: list[tuple[int, int, int]] = []  # (mount fd, reference fd, its folder's inode)

    def pick(self, data: st.DataObject, kind: str = "any") -> str:
        """A path: mostly one that exists (of the kind asked), sometimes any (for the errnos)."""
        existing = sorted(
            p for p, folder in entries(self.roots[1]) if kind == "any" or folder == (kind == "folder")
        )
        if existing and data.draw(st.integers(0, 3), label="existing?") != 3:
            return data.draw(st.sampled_from(existing), label=kind)
        return data.draw(st.sampled_from(PATHS), label="any")

    def pick_new(self, data: st.DataObject) -> str:
        """A name in a folder that exists (it may exist itself too)."""
        folders = ["", *sorted(p for p, folder in entries(self.roots[1]) if folder)]
        folder = data.draw(st.sampled_from(folders), label="in")
        return f"{folder}/{data.draw(st.sampled_from([*NAMES, 'd', 'e', 'f']), label='name')}".lstrip("/")

    def both(self, call: Callable[[Path], Any]) -> Any:
        mine, theirs = (outcome(lambda root=root: call(root)) for root in self.roots)
        assert mine == theirs, f"mount {mine} vs reference {theirs}"
        return mine

    @rule(draw=st.data(), data=datas)
    def create(self, draw: st.DataObject, data: bytes) -> None:
        path = self.pick_new(draw)
        self.both(lambda root: (root / path).write_bytes(data))

    @rule(draw=st.data(), offset=offsets, data=datas)
    def write_at(self, draw: st.DataObject, offset: int, data: bytes) -> None:
        path = self.pick(draw, "file")

        def write(root: Path) -> int:
            fd = os.open(root / path, os.O_WRONLY)
            try:
                return os.pwrite(fd, data, offset)
            finally:
                os.close(fd)

        self.both(write)

    @rule(draw=st.data(), data=datas)
    def append(self, draw: st.DataObject, data: bytes) -> None:
        path = self.pick(draw, "file")

        def append(root: Path) -> int:
            fd = os.open(root / path, os.O_WRONLY | os.O_APPEND)
            try:
                return os.write(fd, data)
            finally:
                os.close(fd)

        self.both(append)

    @rule(draw=st.data(), length=st.integers(0, 200_000))
    def truncate(self, draw: st.DataObject, length: int) -> None:
        path = self.pick(draw, "file")
        self.both(lambda root: os.truncate(root / path, length))

    @rule(draw=st.data())
    def fsync(self, draw: st.DataObject) -> None:
        path = self.pick(draw, "file")

        def sync(root: Path) -> None:
            fd = os.open(root / path, os.O_RDWR)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

        self.both(sync)

    @rule(draw=st.data())
    def rename(self, draw: st.DataObject) -> None:
        src = self.pick(draw)
        dst = self.pick(draw) if draw.draw(st.booleans(), label="over?") else self.pick_new(draw)
        self.both(lambda root: os.rename(root / src, root / dst))

    @rule(draw=st.data())
    def mkdir(self, draw: st.DataObject) -> None:
        path = self.pick_new(draw)
        self.both(lambda root: os.mkdir(root / path))

    @rule(draw=st.data())
    def rmdir(self, draw: st.DataObject) -> None:
        path = self.pick(draw, "folder")
        self.both(lambda root: os.rmdir(root / path))

    @rule(draw=st.data())
    def unlink(self, draw: st.DataObject) -> None:
        path = self.pick(draw, "file")
        self.both(lambda root: os.unlink(root / path))

    @rule(draw=st.data())
    def read(self, draw: st.DataObject) -> None:
        path = self.pick(draw, "file")
        self.both(lambda root: (root / path).read_bytes())

    @rule(draw=st.data())
    def open_handle(self, draw: st.DataObject) -> None:
        path = self.pick(draw, "file")
        fds = [outcome(lambda root=root: os.open(root / path, os.O_RDWR)) for root in self.roots]
        assert fds[0][0] == fds[1][0], f"mount {fds[0]} vs reference {fds[1]}"
        if fds[0][0] == "ok":
            folder = os.stat((self.roots[1] / path).parent).st_ino
            self.handles.append((fds[0][1], fds[1][1], folder))

    @precondition(lambda self: bool(self.handles))
    @rule(which=st.integers(0, 3), offset=offsets, data=datas)
    def write_handle(self, which: int, offset: int, data: bytes) -> None:
        *pair, folder = self.handles[which % len(self.handles)]
        results = [outcome(lambda fd=fd: os.pwrite(fd, data, offset)) for fd in pair]
        assert results[0] == results[1]
        sizes = [outcome(lambda fd=fd: os.fstat(fd).st_size) for fd in pair]
        if sizes[0] == ("errno", "ESTALE") and not self.folder_exists(folder):
            return  # unlinked, and its folder removed: libfuse can no longer name it (a known limit)
        assert sizes[0] == sizes[1], f"fstat: mount {sizes[0]} vs reference {sizes[1]}"

    def folder_exists(self, inode: int) -> bool:
        root = self.roots[1]
        return any(os.stat(root / p).st_ino == inode for p, folder in entries(root) if folder) or (
            os.stat(root).st_ino == inode
        )

    @precondition(lambda self: bool(self.handles))
    @rule(which=st.integers(0, 3))
    def close_handle(self, which: int) -> None:
        for fd in self.handles.pop(which % len(self.handles))[:2]:
            os.close(fd)

    @precondition(lambda self: isinstance(self.mount.drive, SwitchedDrive))
    @rule(down=st.booleans())
    def link(self, down: bool) -> None:
        """The link to iCloud goes down, or comes back."""
        assert isinstance(self.mount.drive, SwitchedDrive)
        self.mount.drive.offline = down

    @invariant()
    def same_tree(self) -> None:
        assert snapshot(self.roots[0]) == snapshot(self.roots[1])

    def teardown(self) -> None:
        for handle in self.handles:
            for fd in handle[:2]:
                os.close(fd)
        if isinstance(self.mount.drive, SwitchedDrive):
            self.mount.drive.offline = False
        self.mount.closed()
        self.mount.settle(120)
        assert self.mount.drive.tree(self.name) == snapshot(self.roots[1]), "the drive differs"


@pytest.mark.parametrize("backend", ["memory", "icloud"])
def test_random_operations_match_a_local_folder(
    backend: str, mount_factory: MountFactory, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    folder = "/"
    if backend == "memory":
        drive: Any = SwitchedDrive(latency=0.03)
    else:
        drive = request.getfixturevalue("icloud_view")
        emulator: Emulator = request.getfixturevalue("fuse_emulator")
        emulator.faults(latency_ms=5, bandwidth_mbps=80)
        folder = drive.base
    assert isinstance(drive, SwitchedDrive | EmulatorView)
    reference = tmp_path / "reference"
    reference.mkdir()
    FileOperations.mount = mount_factory(drive, folder=folder, write_back=0.0)
    FileOperations.reference_root = reference
    run_state_machine_as_test(
        FileOperations,
        settings=settings(
            max_examples=EXAMPLES[backend],
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        ),
    )
    FileOperations.mount.settle(120)
    FileOperations.mount.mount.stop()
    shutil.rmtree(tmp_path / "cache")
    again = mount_factory(drive, folder=folder, cache_dir=tmp_path / "fresh-cache")
    assert snapshot(again.path) == snapshot(reference), "what reached the drive differs"

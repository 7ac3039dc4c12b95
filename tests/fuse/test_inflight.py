"""Every file operation while an upload is in flight: a gated drive holds the upload until the
test lets it go, and meanwhile the test renames, deletes, rewrites or unmounts.

Each test checks three things: the operation returns without waiting for the transfer, the
mount shows the result at once, and what reaches the drive is the last thing the user did (one
file under its last name with its last bytes, and nothing else).
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fuse.conftest import LiveMount, MountFactory
from tests.support.gated import Gate, GatedDrive

PROMPT_S = 3.0  # far below any transfer the gate holds; far above a local operation


@pytest.fixture
def gated() -> Iterator[GatedDrive]:
    drive = GatedDrive()
    yield drive
    drive.release_all()  # a test that failed half-way must not leave a mount waiting


@pytest.fixture
def live(gated: GatedDrive, mount_factory: MountFactory) -> LiveMount:
    return mount_factory(gated, write_back=0.0)


def promptly(action: Callable[[], object], gate: Gate) -> None:
    """Run ``action``; fail if it waits for the held upload (the gate is opened either way, so a
    call that waits still ends), and raise what it raised."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as error:
            failure.append(error)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(PROMPT_S)
    waited = worker.is_alive()
    gate.open()
    worker.join(60)
    assert not waited, "the operation waited for the upload in flight"
    if failure:
        raise failure[0]


def errno_of(action: Callable[[], object]) -> int:
    with pytest.raises(OSError) as caught:
        action()
    return caught.value.errno or 0


def test_rename_of_a_new_file_while_it_uploads(live: LiveMount, gated: GatedDrive) -> None:
    """rsync's pattern: a temporary name, closed, then renamed to the real one."""
    gate = gated.hold("upload")
    (live.path / ".brief.tmp").write_bytes(b"brief")
    gate.wait_entered()
    promptly(lambda: os.rename(live.path / ".brief.tmp", live.path / "brief.txt"), gate)
    assert os.listdir(live.path) == ["brief.txt"]
    assert (live.path / "brief.txt").read_bytes() == b"brief"
    live.settle()
    assert gated.names() == ["brief.txt"] and gated.content("brief.txt") == b"brief"


def test_rename_of_a_changed_file_while_its_new_version_uploads(live: LiveMount, gated: GatedDrive) -> None:
    gated.add_file("app.log", b"old\n")
    gate = gated.hold("replace")
    with open(live.path / "app.log", "ab") as log:
        log.write(b"new\n")
    gate.wait_entered()
    promptly(lambda: os.rename(live.path / "app.log", live.path / "app.log.1"), gate)
    assert os.listdir(live.path) == ["app.log.1"]
    assert (live.path / "app.log.1").read_bytes() == b"old\nnew\n"
    live.settle()
    assert gated.names() == ["app.log.1"] and gated.content("app.log.1") == b"old\nnew\n"


def test_log_rotation_while_the_log_uploads(live: LiveMount, gated: GatedDrive) -> None:
    """``mv app.log app.log.1`` and a new ``app.log`` while the old one is still going up."""
    gate = gated.hold("upload", "app.log")
    (live.path / "app.log").write_bytes(b"first day\n")
    gate.wait_entered()

    def rotate() -> None:
        os.rename(live.path / "app.log", live.path / "app.log.1")
        (live.path / "app.log").write_bytes(b"second day\n")

    promptly(rotate, gate)
    live.settle()
    assert gated.names() == ["app.log", "app.log.1"]
    assert gated.content("app.log.1") == b"first day\n" and gated.content("app.log") == b"second day\n"


def test_unlink_of_a_new_file_while_it_uploads_is_final_at_once(live: LiveMount, gated: GatedDrive) -> None:
    gate = gated.hold("upload")
    path = live.path / "scratch.bin"
    path.write_bytes(b"scratch")
    gate.wait_entered()
    promptly(lambda: os.unlink(path), gate)
    assert os.listdir(live.path) == []
    assert errno_of(lambda: os.stat(path)) == errno.ENOENT
    assert errno_of(lambda: path.read_bytes()) == errno.ENOENT
    assert errno_of(lambda: os.unlink(path)) == errno.ENOENT
    live.settle()
    assert gated.names() == [] and gated.trashed() == []


def test_unlink_of_a_changed_file_while_it_uploads_is_final_at_once(
    live: LiveMount, gated: GatedDrive
) -> None:
    gated.add_file("draft.txt", b"v1")
    gate = gated.hold("replace")
    (live.path / "draft.txt").write_bytes(b"v2")
    gate.wait_entered()
    promptly(lambda: os.unlink(live.path / "draft.txt"), gate)
    assert os.listdir(live.path) == []
    assert errno_of(lambda: os.stat(live.path / "draft.txt")) == errno.ENOENT
    live.settle()
    assert gated.names() == []
    assert [item.name for item in gated.trashed()] == ["draft.txt"], "recoverable, not gone"


def test_overwrite_while_the_previous_version_uploads(live: LiveMount, gated: GatedDrive) -> None:
    """A second save of a file that is still going up: the mount shows the second at once, and
    the second is what is stored (the first may be stored before it, never after it)."""
    gate = gated.hold("upload")
    path = live.path / "notes.txt"
    path.write_bytes(b"first save, the longer one")
    gate.wait_entered()
    promptly(lambda: path.write_bytes(b"second save"), gate)
    assert path.read_bytes() == b"second save"
    assert path.stat().st_size == len(b"second save")
    live.settle()
    assert gated.names() == ["notes.txt"] and gated.content("notes.txt") == b"second save"


def test_truncate_while_the_file_uploads(live: LiveMount, gated: GatedDrive) -> None:
    gate = gated.hold("upload")
    path = live.path / "cut.bin"
    path.write_bytes(b"0123456789")
    gate.wait_entered()
    promptly(lambda: os.truncate(path, 4), gate)
    assert path.read_bytes() == b"0123"
    live.settle()
    assert gated.content("cut.bin") == b"0123"


def test_save_by_rename_over_a_file_that_is_still_uploading(live: LiveMount, gated: GatedDrive) -> None:
    """An editor's save: write a temporary file, rename it over the one being uploaded."""
    gate = gated.hold("upload", "doc.txt")
    (live.path / "doc.txt").write_bytes(b"first version")
    gate.wait_entered()

    def save() -> None:
        (live.path / ".doc.txt.swp").write_bytes(b"second version")
        os.replace(live.path / ".doc.txt.swp", live.path / "doc.txt")

    promptly(save, gate)
    assert os.listdir(live.path) == ["doc.txt"]
    assert (live.path / "doc.txt").read_bytes() == b"second version"
    live.settle()
    assert gated.names() == ["doc.txt"] and gated.content("doc.txt") == b"second version"


def test_the_folder_does_not_freeze_while_a_file_in_it_uploads(live: LiveMount, gated: GatedDrive) -> None:
    gate = gated.hold("upload", "big.bin")
    (live.path / "big.bin").write_bytes(os.urandom(1 << 20))
    gate.wait_entered()

    def work_beside_it() -> None:
        (live.path / "small.txt").write_bytes(b"small")
        os.rename(live.path / "small.txt", live.path / "small-renamed.txt")
        os.mkdir(live.path / "sub")
        os.rename(live.path / "sub", live.path / "sub-renamed")

    promptly(work_beside_it, gate)
    live.settle()
    assert gated.names() == ["big.bin", "small-renamed.txt", "sub-renamed"]


def test_rmdir_of_the_folder_of_a_file_unlinked_while_it_uploads(live: LiveMount, gated: GatedDrive) -> None:
    os.mkdir(live.path / "tmp")
    gate = gated.hold("upload")
    (live.path / "tmp" / "part").write_bytes(b"part")
    gate.wait_entered()

    def clean_up() -> None:
        os.unlink(live.path / "tmp" / "part")
        os.rmdir(live.path / "tmp")

    promptly(clean_up, gate)
    assert os.listdir(live.path) == []
    live.settle()
    assert gated.names() == []


def test_unmount_while_an_upload_is_held_resumes_it_on_the_next_mount(
    gated: GatedDrive, mount_factory: MountFactory, tmp_path: Path
) -> None:
    first = mount_factory(gated, write_back=0.0, drain_timeout=1.0)
    gate = gated.hold("upload")
    (first.path / "pending.txt").write_bytes(b"pending")
    gate.wait_entered()
    stopped: list[bool] = []
    promptly(lambda: stopped.append(first.mount.stop()), gate)
    assert stopped == [False], "it said some uploads are still pending"
    assert not gated.exists("pending.txt"), "the held upload was cancelled, not finished, by the stop"
    again = mount_factory(gated, write_back=0.0)
    again.settle()
    assert gated.names() == ["pending.txt"] and gated.content("pending.txt") == b"pending"


def test_a_name_freed_by_an_unlink_while_open_takes_a_new_file(live: LiveMount, gated: GatedDrive) -> None:
    """``rm log; echo > log`` while a reader holds the old log open: the old one's bytes stay
    readable through its descriptor, and the new file is stored under the name (not beside the
    old one as a conflict copy)."""
    gated.add_file("log", b"old log")
    with open(live.path / "log", "rb") as reader:
        os.unlink(live.path / "log")
        (live.path / "log").write_bytes(b"new log")
        live.settle()
        assert gated.content("log") == b"new log"
        assert reader.read() == b"old log", "the old file's bytes, never read before the unlink"
    live.closed()  # the old log goes to the trash with its last close
    assert gated.names() == ["log"]
    (trashed,) = gated.trashed()
    assert trashed.name.startswith(".log.icloudfs-unlinked-"), "moved aside when the name was taken"

"""Hostile or malformed answers from the server never escape the mount or crash the daemon."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from icloudfs.drive.memory import MemoryDrive
from icloudfs.errors import Unavailable
from icloudfs.icloud.nodes import to_item
from tests.fuse.conftest import MountFactory


def test_names_no_posix_folder_may_hold_are_shown_as_look_alikes(
    mount_factory: MountFactory, tmp_path: Path
) -> None:
    drive = MemoryDrive()
    folder = drive.add_folder("inbox")
    source = tmp_path / "payload"
    source.write_bytes(b"payload")
    for hostile in ("..", ".", "../../etc/passwd", "nul\0byte", "tab\tand\nnewline"):
        drive.upload(folder, hostile, source, 0.0)
    live = mount_factory(drive)
    shown = sorted(os.listdir(live.path / "inbox"))
    assert shown == sorted(
        ["\u2024\u2024", "\u2024", "..\u2215..\u2215etc\u2215passwd", "nul\u2400byte", "tab\tand\nnewline"]
    )
    for name in shown:
        path = live.path / "inbox" / name
        assert path.resolve().is_relative_to(live.path.resolve())
        assert path.read_bytes() == b"payload"
    assert not (live.path.parent / "etc").exists()


@pytest.mark.parametrize(
    "node",
    [
        {"drivewsid": "FILE::z::1", "name": "a", "size": "huge"},
        {"name": "no id at all"},
        {"drivewsid": "FILE::z::1", "name": "a", "dateModified": "not a date"},
        "not even an object",
    ],
)
def test_malformed_items_are_a_clear_error(node: object) -> None:
    with pytest.raises(Unavailable, match="malformed item"):
        to_item(node)  # type: ignore[arg-type]


def test_a_malformed_listing_is_an_io_error_not_a_crash(mount_factory: MountFactory) -> None:
    drive = MemoryDrive()
    drive.add_file("ok.txt", b"fine")
    drive.fail("list_folders", Unavailable("iCloud sent a malformed answer (JSONDecodeError)"), times=100)
    live = mount_factory(drive)
    with pytest.raises(OSError) as failed:
        os.listdir(live.path)
    assert failed.value.errno == errno.EIO
    drive.fail("list_folders", Unavailable("x"), times=0)
    assert live.mount.alive, "the daemon survived"

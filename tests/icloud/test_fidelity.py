"""The backend survives what Apple's servers really do: redirects and expiring URLs on the
content host, sessions that end under a download, items refused inside a 2xx answer, and an
answer lost after the change was made. No EIO, no duplicate, no lost byte."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from icloudfs.errors import Conflict
from icloudfs.icloud.drive import ICloudDrive
from tests.icloud.conftest import signed_in
from tests.support.emulator import Emulator, start_emulator


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """An emulator whose content host redirects every download and whose URLs live 31 s."""
    folder = tmp_path_factory.mktemp("strict")
    with start_emulator(folder, "--download-redirects", "1", "--url-ttl", "31") as emu:
        yield emu


@pytest.fixture
def drive(strict: Emulator, isolated_home: Path) -> ICloudDrive:
    strict.clear_faults()
    return ICloudDrive(signed_in(strict), ca_file=strict.ca, attempts=4)


def stored(drive: ICloudDrive, tmp_path: Path, name: str, data: bytes):  # type: ignore[no-untyped-def]
    folder = drive.mkdir(drive.root(), f"f-{time.time_ns()}")
    source = tmp_path / name
    source.write_bytes(data)
    return folder, drive.upload(folder, name, source, mtime=1_700_000_000)


def requests(emu: Emulator, suffix: str) -> int:
    return sum(n for path, n in emu.stats()["requests"].items() if path.endswith(suffix))


def test_downloads_follow_the_content_hosts_redirects(drive: ICloudDrive, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    _, item = stored(drive, tmp_path, "redirected.bin", data)
    assert drive.read(item, 0, len(data)) == data
    assert drive.read(item, 1000, 10) == data[1000:1010]


def test_a_url_is_not_used_past_its_own_expiry(drive: ICloudDrive, strict: Emulator, tmp_path: Path) -> None:
    data = os.urandom(10_000)
    _, item = stored(drive, tmp_path, "short-lived.bin", data)
    before = requests(strict, "/download/by_id")
    assert drive.read(item, 0, 10) == data[:10]
    assert drive.read(item, 10, 10) == data[10:20]
    assert requests(strict, "/download/by_id") == before + 1, "reused while it is good"
    time.sleep(1.5)  # the URL has 31 s; it is not used in its last 30
    assert drive.read(item, 20, 10) == data[20:30]
    assert requests(strict, "/download/by_id") == before + 2, "a fresh one near its end"


def test_a_url_the_content_host_refuses_is_replaced(
    drive: ICloudDrive, strict: Emulator, tmp_path: Path
) -> None:
    data = os.urandom(10_000)
    _, item = stored(drive, tmp_path, "refused.bin", data)
    assert drive.read(item, 0, 10) == data[:10]
    strict.faults(rules=[{"path": "/content/", "status": 400, "times": 1}])
    assert drive.read(item, 10, 10) == data[10:20]


def test_a_session_that_ends_under_a_download_is_renewed(
    drive: ICloudDrive, strict: Emulator, tmp_path: Path
) -> None:
    data = os.urandom(10_000)
    _, item = stored(drive, tmp_path, "renewed.bin", data)
    assert drive.read(item, 0, 10) == data[:10]  # its URL is kept
    strict.expire_sessions()  # the content host now answers 421 for that URL
    assert drive.read(item, 10, 10) == data[10:20]


def test_an_item_refused_inside_a_2xx_answer_is_an_error(drive: ICloudDrive, tmp_path: Path) -> None:
    folder, item = stored(drive, tmp_path, "stale.bin", b"x")
    renamed = drive.rename(item, "fresh.bin")  # the old etag is stale now
    with pytest.raises(Conflict):
        drive.trash(item)
    with pytest.raises(Conflict):
        drive.rename(item, "other.bin")
    assert [c.name for c in drive.list_folders([folder.id])[0].children] == [renamed.name]


def test_a_lost_answer_to_the_commit_stores_the_file_once(
    drive: ICloudDrive, strict: Emulator, tmp_path: Path
) -> None:
    folder = drive.mkdir(drive.root(), f"lost-{time.time_ns()}")
    source = tmp_path / "once.txt"
    source.write_bytes(b"stored exactly once")
    strict.faults(rules=[{"path": "/docws/ws/com.apple.CloudDocs/update/documents", "status": "lost"}])
    item = drive.upload(folder, "once.txt", source, mtime=1_700_000_000)
    assert item.name == "once.txt"
    children = drive.list_folders([folder.id])[0].children
    assert [c.name for c in children] == ["once.txt"], "no duplicate"
    assert drive.read(children[0], 0, 100) == b"stored exactly once"

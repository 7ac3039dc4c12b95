"""First use as a new user meets it (issue 21): a second mount on a served path or cache is
refused, the folder ``mount`` starts from does not matter, and mountpoint mistakes read plainly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from icloudfs.runner import mount_log
from tests.ops.conftest import Run

pytestmark = pytest.mark.usefixtures("signed_in")


def mounts_on(path: Path) -> int:
    return sum(1 for line in Path("/proc/mounts").read_text().splitlines() if line.split()[1] == str(path))


def test_a_second_mount_on_a_served_path_is_refused(icloudfs: Run, mountpoint: Path) -> None:
    first = icloudfs("mount", str(mountpoint))
    assert first.returncode == 0, first.stderr
    again = icloudfs("mount", str(mountpoint))
    assert again.returncode != 0
    assert "already mounted" in again.stderr
    assert mounts_on(mountpoint) == 1


def test_two_mounts_never_share_one_cache_and_journal(
    icloudfs: Run, mountpoint: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    first = icloudfs("mount", str(mountpoint))
    assert first.returncode == 0, first.stderr
    second = icloudfs("mount", str(other))  # same account, so the same cache folder
    assert second.returncode != 0
    assert "in use by the mount" in second.stderr and "--cache-dir" in second.stderr
    again = icloudfs("mount", str(other))
    cause = again.stderr.splitlines()[0]
    assert cause.startswith(f"icloudfs: mounting {other} failed: the cache folder"), again.stderr
    assert again.stderr.count("in use by the mount") == 2, "the cause, then this run's log only"
    assert mounts_on(other) == 0
    third = icloudfs("mount", str(other), "--cache-dir", str(tmp_path / "cache-2"))
    assert third.returncode == 0, third.stderr + mount_log(other).read_text()
    assert icloudfs("unmount", str(other)).returncode == 0


def test_mount_works_from_a_folder_holding_an_icloudfs_folder(
    env: dict[str, str], mountpoint: Path, tmp_path: Path
) -> None:
    (tmp_path / "icloudfs").mkdir()  # e.g. the checkout's own folder, next to where the user stands
    # the console script, as installed: its folder first on sys.path, never the current one
    done = subprocess.run(
        [sys.executable, "-P", "-m", "icloudfs", "mount", str(mountpoint)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    assert os.path.ismount(mountpoint)


def test_mountpoint_mistakes_are_named_plainly(icloudfs: Run, mountpoint: Path, tmp_path: Path) -> None:
    missing = icloudfs("mount", str(tmp_path / "nowhere"))
    assert missing.returncode != 0 and "does not exist" in missing.stderr

    (mountpoint / "notes.txt").write_text("hidden by the mount\n")
    over = icloudfs("mount", str(mountpoint))
    assert over.returncode == 0, over.stderr
    assert "not empty" in over.stderr  # mounted, with a warning: its files are hidden meanwhile

    other = tmp_path / "never-mounted"
    other.mkdir()
    stray = icloudfs("unmount", str(other))
    assert stray.returncode != 0
    assert stray.stderr.strip() == f"icloudfs: {other} is not mounted"


def test_a_local_path_outside_every_mount_is_named_as_such(icloudfs: Run, mountpoint: Path) -> None:
    assert icloudfs("mount", str(mountpoint)).returncode == 0
    for verb in (("refresh", "/etc"), ("pin", "/etc/hostname")):
        done = icloudfs(*verb)
        assert done.returncode == 1
        assert "is not inside a running icloudfs mount" in done.stderr, done.stderr  # not "HTTP 404"

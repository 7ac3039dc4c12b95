"""The mount daemon through the real CLI: unmount with progress, SIGTERM with uploads pending,
kill -9 (auto-unmount), and a dead mount left behind (cleaned at the next start)."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
from pathlib import Path

import pytest

from icloudfs.runner import mount_log
from tests.ops.conftest import Remote, Run, daemon_pid, wait_for
from tests.support.emulator import Emulator

pytestmark = pytest.mark.usefixtures("signed_in")


def mount(icloudfs: Run, mountpoint: Path, *args: str, **env: str) -> None:
    done = icloudfs("mount", str(mountpoint), "--cache-size", "256M", *args, **env)
    assert done.returncode == 0, done.stderr + mount_log(mountpoint).read_text()
    assert os.path.ismount(mountpoint) and "Mounted on" in done.stdout


def test_unmount_waits_for_uploads_and_shows_progress(
    icloudfs: Run, mountpoint: Path, emulator: Emulator, remote: Remote
) -> None:
    mount(icloudfs, mountpoint, "--write-back", "1h")  # nothing uploads before the unmount
    data = {f"progress-{n}.bin": os.urandom(1 << 20) for n in range(3)}
    for name, content in data.items():
        (mountpoint / name).write_bytes(content)
    emulator.faults(bandwidth_mbps=4)  # 3 MiB take ~6 s: long enough to watch
    try:
        done = icloudfs("unmount", str(mountpoint))
    finally:
        emulator.clear_faults()
    assert done.returncode == 0, done.stderr
    assert "storing pending uploads: 3 left" in done.stderr
    assert "Unmounted" in done.stdout and not os.path.ismount(mountpoint)
    assert daemon_pid(mountpoint) is None
    stored = remote.files()
    assert all(stored.get(name) == content for name, content in data.items())
    assert '"GET /status"' not in mount_log(mountpoint).read_text(), "the access log is for -v"


def test_sigterm_with_pending_uploads_keeps_them_then_remount_stores_them(
    icloudfs: Run, mountpoint: Path, emulator: Emulator, remote: Remote
) -> None:
    mount(icloudfs, mountpoint, "--write-back", "1h", ICLOUDFS_DRAIN_TIMEOUT="1s")
    (mountpoint / "journaled.txt").write_text("survives a refused upload\n")
    emulator.faults(rules=[{"path": "/docws/", "status": 503, "times": 100_000}])
    try:
        pid = daemon_pid(mountpoint)
        assert pid is not None
        os.kill(pid, signal.SIGTERM)  # what systemd, `kill` and shutdown send
        wait_for(lambda: daemon_pid(mountpoint) is None, what="the daemon to stop")
    finally:
        emulator.clear_faults()
    assert not os.path.ismount(mountpoint)
    assert "stay journaled" in mount_log(mountpoint).read_text()
    assert "journaled.txt" not in remote.files()

    mount(icloudfs, mountpoint)
    assert (mountpoint / "journaled.txt").read_text() == "survives a refused upload\n"
    done = icloudfs("unmount", str(mountpoint))
    assert done.returncode == 0, done.stderr
    assert remote.files()["journaled.txt"] == b"survives a refused upload\n"


def test_kill_9_leaves_no_dead_mount_and_the_next_mount_uploads(
    icloudfs: Run, mountpoint: Path, remote: Remote
) -> None:
    mount(icloudfs, mountpoint, "--write-back", "1h")
    (mountpoint / "crash.txt").write_text("written before kill -9\n")
    pid = daemon_pid(mountpoint)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not os.path.ismount(mountpoint), timeout=10, what="auto_unmount")
    os.stat(mountpoint)  # a plain folder again, not "Transport endpoint is not connected"

    mount(icloudfs, mountpoint)
    assert icloudfs("unmount", str(mountpoint)).returncode == 0
    assert remote.files()["crash.txt"] == b"written before kill -9\n"


def test_a_dead_mount_is_detached_at_start(icloudfs: Run, mountpoint: Path) -> None:
    mount(icloudfs, mountpoint)
    pid = daemon_pid(mountpoint)
    assert pid is not None
    # Kill the auto-unmount watcher first (it would clean up), then the daemon: a dead mount.
    watchers = [child for child in _children(pid) if b"fusermount3" in _cmdline(child)]
    assert watchers, "libfuse's auto_unmount runs fusermount3 beside the daemon"
    for victim in (*watchers, pid):
        os.kill(victim, signal.SIGKILL)
    wait_for(lambda: _stat_errno(mountpoint) == errno.ENOTCONN, timeout=10, what="a dead mount")

    mount(icloudfs, mountpoint)
    assert "detaching a dead mount" in mount_log(mountpoint).read_text()
    list(mountpoint.iterdir())  # served again
    assert icloudfs("unmount", str(mountpoint)).returncode == 0


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _stat_errno(path: Path) -> int:
    try:
        os.statvfs(path)  # reaches the daemon (a stat may be answered by the kernel's cache)
    except OSError as error:
        return error.errno or 0
    return 0


def test_unmount_with_uploads_left_exits_75_and_says_so(
    icloudfs: Run, mountpoint: Path, emulator: Emulator, remote: Remote
) -> None:
    mount(icloudfs, mountpoint, "--write-back", "1h", ICLOUDFS_DRAIN_TIMEOUT="1s")
    (mountpoint / "left.txt").write_text("iCloud refuses it for now\n")
    emulator.faults(rules=[{"path": "/docws/", "status": 503, "times": 100_000}])
    try:
        done = icloudfs("unmount", str(mountpoint))
    finally:
        emulator.clear_faults()
    assert done.returncode == 75, done.stdout + done.stderr
    assert "1 upload still journaled" in done.stdout and "resume at the next mount" in done.stdout
    assert not os.path.ismount(mountpoint)
    mount(icloudfs, mountpoint)
    assert icloudfs("unmount", str(mountpoint)).returncode == 0
    assert remote.files()["left.txt"] == b"iCloud refuses it for now\n"


def test_unmount_of_a_mount_in_use_names_who_uses_it(icloudfs: Run, mountpoint: Path) -> None:
    mount(icloudfs, mountpoint)
    (mountpoint / "open.txt").write_text("held open\n")
    with (mountpoint / "open.txt").open() as held:  # the child keeps it open; this process not
        holder = subprocess.Popen(["sleep", "60"], stdin=held)
    try:
        busy = icloudfs("unmount", str(mountpoint))
        assert busy.returncode == 1
        assert f"sleep (pid {holder.pid}, open file)" in busy.stderr and "--force" in busy.stderr
        assert os.path.ismount(mountpoint), "a mount in use stays mounted"
    finally:
        holder.kill()
        holder.wait()
    done = icloudfs("unmount", str(mountpoint))
    assert done.returncode == 0, done.stderr

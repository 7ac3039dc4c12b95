"""``mount -t fuse.icloudfs`` for real, and how mount(8)'s arguments become an ``icloudfs mount``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

from icloudfs.ops import mount_helper
from icloudfs.runner import mount_log
from tests.ops.conftest import Remote, daemon_pid, wait_for
from tests.support.emulator import Emulator

SBIN_HELPER = Path("/sbin") / mount_helper.HELPER_NAME


def test_mount_arguments_become_an_icloudfs_mount() -> None:
    argv = [
        "icloud:/LegalCases/2024/",
        "/mnt/legal",
        "-o",
        "rw,cache_size=10G,allow_other,uid=1000,umask=027,_netdev,nofail,x-systemd.automount,dev,suid",
        "-o",
        "endpoint=https://emu:8443,ca-file=/etc/ca.pem,config=/etc/icloudfs.toml,log_format=json,ro",
        "-t",
        "fuse.icloudfs",
        "-n",
    ]
    with mock.patch.dict(os.environ, clear=False):
        command = mount_helper.adopt(argv)
        assert os.environ["ICLOUDFS_CACHE_SIZE"] == "10G"
        assert os.environ["ICLOUDFS_ENDPOINT"] == "https://emu:8443"
        assert os.environ["ICLOUDFS_CA_FILE"] == "/etc/ca.pem"
        assert os.environ["ICLOUDFS_CONFIG"] == "/etc/icloudfs.toml"
    assert command == [
        "mount", "/mnt/legal", "--folder", "/LegalCases/2024",
        "--allow-other", "--uid", "1000", "--umask", "027", "--log-format", "json", "--read-only",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "argv",
    [["icloud:/", "/mnt", "-o", "colour=blue"], ["icloud:/", "-o", "ro"], ["icloud:/", "/mnt", "-o", "uid"]],
)
def test_what_mount_cannot_mean_is_refused(argv: list[str]) -> None:
    with mock.patch.dict(os.environ, clear=False), pytest.raises(mount_helper.MountHelperError):
        mount_helper.adopt(argv)


def test_install_links_the_helper_to_this_icloudfs(tmp_path: Path) -> None:
    link = mount_helper.install(tmp_path)
    assert link == tmp_path / "mount.fuse.icloudfs"
    assert link.resolve() == (Path(sys.executable).parent / "icloudfs").resolve()
    assert mount_helper.install(tmp_path) == link  # again: replaced, not an error


@pytest.fixture
def sbin_helper() -> Iterator[Path]:
    """``/sbin/mount.fuse.icloudfs``, installed for this test and removed after it."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mount -t fuse.icloudfs needs root and mount(8)")
    if SBIN_HELPER.is_symlink() or SBIN_HELPER.exists():
        pytest.skip(f"{SBIN_HELPER} is already installed; not touching it")
    link = mount_helper.install(SBIN_HELPER.parent)
    yield link
    link.unlink()


@pytest.mark.usefixtures("signed_in")
def test_mount_t_fuse_icloudfs_then_umount(
    sbin_helper: Path, mountpoint: Path, emulator: Emulator, remote: Remote, env: dict[str, str]
) -> None:
    options = (
        f"endpoint={emulator.url},ca_file={emulator.ca},cache_size=64M,allow_other,uid=4321,_netdev,nofail"
    )
    env = {k: v for k, v in env.items() if not k.startswith(("ICLOUDFS_ENDPOINT", "ICLOUDFS_CA_FILE"))}
    done = subprocess.run(
        ["mount", "-t", "fuse.icloudfs", "icloud:/", str(mountpoint), "-o", options],
        capture_output=True, text=True, timeout=90, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + mount_log(mountpoint).read_text()

    findmnt = subprocess.run(
        ["findmnt", "-n", "-o", "SOURCE,FSTYPE,OPTIONS", str(mountpoint)], capture_output=True, text=True
    ).stdout.split()
    assert findmnt[:2] == ["icloud:/", "fuse.icloudfs"] and "allow_other" in findmnt[2]
    listed = subprocess.run(["mount"], capture_output=True, text=True).stdout
    assert f"icloud:/ on {mountpoint} type fuse.icloudfs" in listed
    df = subprocess.run(["df", "-T", str(mountpoint)], capture_output=True, text=True).stdout
    assert df.splitlines()[1].split()[:2] == ["icloud:/", "fuse.icloudfs"]
    assert mountpoint.stat().st_uid == 4321

    (mountpoint / "via-fstab.txt").write_text("mounted by mount(8)\n")
    assert daemon_pid(mountpoint) is not None
    assert subprocess.run(["umount", str(mountpoint)], capture_output=True).returncode == 0
    wait_for(lambda: daemon_pid(mountpoint) is None, what="the daemon to store and exit")
    assert remote.files()["via-fstab.txt"] == b"mounted by mount(8)\n"

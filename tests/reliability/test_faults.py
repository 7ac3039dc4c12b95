"""Faults injected through the emulator while ordinary tools run on the mount: nothing is lost.

Every test compares what reached "iCloud" (read back through unmodified pyicloud) with what was
written, byte for byte, and checks that no file landed twice ("name 2" artifacts).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from pyicloud import PyiCloudService

from icloudfs.icloud.account import Account
from tests.fuse.conftest import MountFactory
from tests.support.emulator import Emulator, start_emulator
from tests.support.icloud_view import EmulatorView


def make_files(root: Path, count: int, size: int) -> dict[str, bytes]:
    root.mkdir(parents=True, exist_ok=True)
    files = {f"f{i:03d}.bin": os.urandom(size) for i in range(count)}
    for name, data in files.items():
        (root / name).write_bytes(data)
    return files


def assert_landed_once(view: EmulatorView, folder: str, files: dict[str, bytes]) -> None:
    assert view.names(folder) == sorted(files), "every file exactly once, no 'name 2' copies"
    for name, data in files.items():
        assert hashlib.sha256(view.content(f"{folder}/{name}")).digest() == hashlib.sha256(data).digest()


def test_503_storm_during_cp_r(
    icloud_view: EmulatorView, mount_factory: MountFactory, fuse_emulator: Emulator, tmp_path: Path
) -> None:
    files = make_files(tmp_path / "src", 200, 2048)
    live = mount_factory(icloud_view, folder=icloud_view.base)
    fuse_emulator.reset_stats()
    fuse_emulator.faults(rules=[{"path": "/", "status": 503, "rate": 0.4}])
    live.sh(f"cp -r {tmp_path / 'src'} copied", timeout=120)
    live.settle(120)
    fuse_emulator.clear_faults()
    assert_landed_once(icloud_view, "copied", files)
    requests = fuse_emulator.stats()["total"]
    assert requests < 200 * 3 * 8, f"{requests} requests for 200 files: backing off, not hammering"


def test_dropped_connections_mid_download_and_upload(
    icloud_view: EmulatorView, mount_factory: MountFactory, fuse_emulator: Emulator
) -> None:
    data = os.urandom(6 * 1024 * 1024 + 7)
    icloud_view.add_file("remote.bin", data)
    live = mount_factory(icloud_view, folder=icloud_view.base)
    fuse_emulator.faults(rules=[{"path": "/content", "status": "drop", "times": 3}])
    digest = subprocess.run(["sha256sum", str(live.path / "remote.bin")], capture_output=True, text=True)
    assert digest.stdout.split()[0] == hashlib.sha256(data).hexdigest()
    fuse_emulator.faults(rules=[{"path": "/upload", "status": "drop", "times": 2}])
    (live.path / "local.bin").write_bytes(data[::-1])
    live.settle(60)
    fuse_emulator.clear_faults()
    assert icloud_view.content("local.bin") == data[::-1]
    assert icloud_view.names() == ["local.bin", "remote.bin"]


def test_session_expiry_during_reads_and_uploads(
    icloud_view: EmulatorView, mount_factory: MountFactory, fuse_emulator: Emulator, tmp_path: Path
) -> None:
    files = make_files(tmp_path / "src", 30, 50_000)
    live = mount_factory(icloud_view, folder=icloud_view.base)
    fuse_emulator.reset_stats()
    fuse_emulator.faults(rules=[{"path": "/docws", "status": 421, "times": 3}])
    live.sh(f"cp -r {tmp_path / 'src'} copied")
    live.settle(60)
    fuse_emulator.faults(rules=[{"path": "/docws", "status": 421, "times": 1}])
    live.fs.evict("/")
    for name, data in files.items():
        assert (live.path / "copied" / name).read_bytes() == data
    codes = [path for path in fuse_emulator.stats()["requests"] if "securitycode" in path]
    assert codes == [], "renewed from the trusted session: no 2FA code asked"
    icloud_view.api.authenticate(force_refresh=True)
    assert_landed_once(icloud_view, "copied", files)
    errors = live.mount.metrics.counts()[1]
    # ENOENT (cp's lookups of files it is about to create) is normal.
    assert set(errors) <= {"ENOENT"}, f"no failed operation visible to the user: {errors}"


def test_emulator_killed_and_restarted_while_writing(mount_factory: MountFactory, tmp_path: Path) -> None:
    """The server process dies while files are written; the mount journals, retries and delivers
    everything once a new server process is up on the same data and port."""
    emu = start_emulator(tmp_path / "emu")
    try:
        view = EmulatorView(*_signed_in(emu, tmp_path), base="/outage")
        live = mount_factory(view, folder=view.base, write_back=0.1)
        (live.path / "during").mkdir()
        port = emu.url.rsplit(":", 1)[1]
        emu.stop()
        files = make_files(live.path / "during", 10, 10_000)  # written while the server is gone
        emu = start_emulator(tmp_path / "emu2", "--port", port, data_dir=emu.data_dir)
        live.settle(120)
        view.api.authenticate(force_refresh=True)
        assert_landed_once(view, "during", files)
    finally:
        emu.stop()


def _signed_in(emu: Emulator, tmp_path: Path) -> tuple[Account, str, PyiCloudService]:
    account = Account("", session_dir=tmp_path / "session", endpoint=emu.url, ca_file=emu.ca)
    account.login(emu.apple_id, emu.password, remember=False)
    account.submit_2fa(emu.code)
    return account, emu.ca, emu.signed_in(tmp_path / "checker")

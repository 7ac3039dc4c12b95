"""Everything icloudfs makes for this user is this user's alone: 0600 files in 0700 folders,
including what an older version left open (tightened when the daemon starts)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from icloudfs import config
from icloudfs.runner import mount_log
from tests.ops.conftest import Run, daemon_pid

pytestmark = pytest.mark.usefixtures("signed_in")


def modes(*folders: Path) -> dict[str, int]:
    """Every folder and file under these (sockets too), with its permission bits."""
    found: dict[str, int] = {}
    for top in folders:
        for root, _dirs, files in os.walk(top):
            found[root] = stat.S_IMODE(os.lstat(root).st_mode)
            for name in files:
                path = os.path.join(root, name)
                found[path] = stat.S_IMODE(os.lstat(path).st_mode)
    return found


def test_every_file_the_cli_and_the_daemon_make_is_private(icloudfs: Run, mountpoint: Path) -> None:
    old_log = config.state_dir() / "logs" / "from-an-older-version.log"
    old_log.parent.mkdir(parents=True, exist_ok=True)
    old_log.write_text("left open\n")
    os.chmod(old_log, 0o644)
    os.chmod(old_log.parent, 0o755)
    done = icloudfs("mount", str(mountpoint), "--write-back", "100ms")
    assert done.returncode == 0, done.stderr + mount_log(mountpoint).read_text()
    (mountpoint / "private.txt").write_bytes(os.urandom(200_000))
    assert (mountpoint / "private.txt").stat().st_size == 200_000
    runtime = Path(os.environ["XDG_RUNTIME_DIR"])
    folders = [config.state_dir(), config.cache_dir(), config.config_dir(), config.data_dir(), runtime]
    seen = modes(*(f for f in folders if f.exists()))
    assert any(p.endswith(".sock") for p in seen) and any(p.endswith("journal.db") for p in seen)
    assert any("/session/" in p for p in seen) and any(p.endswith("config.toml") for p in seen)
    done = icloudfs("unmount", str(mountpoint))
    assert done.returncode == 0 and daemon_pid(mountpoint) is None
    seen.update(modes(*(f for f in folders if f.exists())))
    opened = {path: oct(mode) for path, mode in seen.items() if mode & 0o077}
    assert opened == {}, "open to other users"

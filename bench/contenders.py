"""The filesystems under test. Each shows the same files (``big.bin``, ``ttfb.bin``, the tree) under
``root`` and can say when written files have reached its remote end."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

from bench.procs import (
    PYTHON,
    REPO,
    child_env,
    free_port,
    is_mounted,
    stop_process,
    unmount,
    wait_for,
    wait_port,
)
from bench.servers import EmulatorServer, WebdavServer, stored_locally

WRITE_BACK_S = 1.0  # quiet time after close before an upload, the same for icloudfs and rclone
WRITE_BACK = f"{WRITE_BACK_S:g}s"


class Contender:
    name = "?"
    root: Path
    remote = True  # False for the local ceilings

    def start(self, fresh: bool = True) -> None:
        """Make ``root`` usable; ``fresh`` = with empty caches."""

    def stop(self) -> None:
        """Unmount (after uploads are stored)."""

    def pid(self) -> int | None:
        return None

    def mark(self) -> int:
        """A baseline for ``stored``."""
        return 0

    def stored(self, mark: int, folder: str, count: int, size: int) -> bool:
        """Whether ``count`` files of ``size`` bytes written to ``folder`` since ``mark`` are stored."""
        os.sync()
        return True


def new_cache_dir(home: Path) -> Path:
    """An empty cache folder for one run; earlier runs' stay until the bench ends.

    Deleting them here cost the next run dearly: on ext4 without a journal (this machine's disk)
    a new inode skips those deleted in the last 30 s (``recently_deleted``), scanning past
    thousands of them, and both the mounts and the emulator create files by the thousand.
    """
    runs = sum(1 for _ in home.glob("cache-run-*"))
    path = home / f"cache-run-{runs:03d}"
    path.mkdir(parents=True)
    return path


class LocalDir(Contender):
    """tmpfs or a folder on the local disk."""

    remote = False

    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.root = root


class MemFs(Contender):
    """``bench/memfs.py``: the FUSE binding's own limit."""

    name = "memfs"
    remote = False

    def __init__(self, mountpoint: Path, source: Path, log: Path) -> None:
        self.root = mountpoint
        self._source = source
        self._log = log
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, fresh: bool = True) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return  # memory is memory: "fresh" only means the page cache, dropped by the scenario
        self.root.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            [PYTHON, str(REPO / "bench" / "memfs.py"), str(self.root), "--source", str(self._source)],
            stdout=self._log.open("ab"),
            stderr=subprocess.STDOUT,
            env=child_env(),
            cwd=REPO,
        )
        wait_for(lambda: is_mounted(self.root) and self._proc is not None, 300, "memfs")
        wait_for(lambda: (self.root / "big.bin").exists(), 60, "memfs ready")

    def stop(self) -> None:
        unmount(self.root)
        stop_process(self._proc, timeout=30)
        self._proc = None

    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None


class IcloudfsMount(Contender):
    """``python -m icloudfs mount --foreground`` against the emulator, XDG dirs isolated."""

    name = "icloudfs"

    def __init__(self, mountpoint: Path, home: Path, emulator: EmulatorServer) -> None:
        self.root = mountpoint
        self._home = home
        self._emulator = emulator
        self._proc: subprocess.Popen[bytes] | None = None
        self.cache_dir: Path | None = None

    def _env(self, control_port: int = 0) -> dict[str, str]:
        return child_env(
            XDG_CONFIG_HOME=str(self._home / "config"),
            XDG_STATE_HOME=str(self._home / "state"),
            XDG_CACHE_HOME=str(self._home / "cache"),
            XDG_DATA_HOME=str(self._home / "data"),
            PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
            ICLOUDFS_CONTROL_ADDR=f"127.0.0.1:{control_port or free_port()}",
        )

    def _common(self) -> list[str]:
        return ["--endpoint", self._emulator.url, "--ca-file", self._emulator.ca]

    def login(self) -> None:
        info = self._emulator.info
        subprocess.run(
            [
                PYTHON,
                "-m",
                "icloudfs",
                "login",
                *self._common(),
                "--apple-id",
                info["apple_id"],
                "--password-stdin",
                "--code",
                info["code"],
                "--no-remember",
            ],
            input=info["password"].encode(),
            env=self._env(),
            check=True,
            capture_output=True,
            cwd=REPO,
        )

    def start(self, fresh: bool = True) -> None:
        if fresh or self.cache_dir is None:
            self.cache_dir = new_cache_dir(self._home)
        self.root.mkdir(parents=True, exist_ok=True)
        log = (self._home / "mount.log").open("ab")
        control_port = free_port()
        self._proc = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "icloudfs",
                "mount",
                str(self.root),
                "--foreground",
                *self._common(),
                "--cache-dir",
                str(self.cache_dir),
                "--write-back",
                WRITE_BACK,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self._env(control_port),
            cwd=REPO,
        )

        def up() -> bool:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"icloudfs mount exited; see {self._home / 'mount.log'}")
            return is_mounted(self.root)

        wait_for(up, 60, "the icloudfs mount")
        # The control plane starts right after the mount, in the same process: measure after it.
        with contextlib.suppress(TimeoutError):
            wait_port(control_port, timeout=20)

    def stop(self) -> None:
        stop_process(self._proc, timeout=300)  # SIGTERM: drain uploads, then unmount
        unmount(self.root)
        self._proc = None

    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def mark(self) -> int:
        return self._emulator.files_stored()

    def stored(self, mark: int, folder: str, count: int, size: int) -> bool:
        return self._emulator.files_stored() - mark >= count


class RcloneMount(Contender):
    """``rclone mount`` of the WebDAV remote with one ``--vfs-cache-mode``."""

    def __init__(self, mode: str, mountpoint: Path, home: Path, server: WebdavServer) -> None:
        self.name = f"rclone-{mode}"
        self.mode = mode
        self.root = mountpoint
        self._home = home
        self._server = server
        self._proc: subprocess.Popen[bytes] | None = None
        self._cache: Path | None = None

    def start(self, fresh: bool = True) -> None:
        if fresh or self._cache is None:
            self._cache = new_cache_dir(self._home)
        cache = self._cache
        self.root.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            [
                "rclone",
                "mount",
                self._server.remote,
                str(self.root),
                "--vfs-cache-mode",
                self.mode,
                "--webdav-pacer-min-sleep",
                "0",
                "--cache-dir",
                str(cache),
                "--vfs-write-back",
                WRITE_BACK,
                "--config",
                "/dev/null",
            ],
            stdout=(self._home / "mount.log").open("ab"),
            stderr=subprocess.STDOUT,
            env=child_env(),
        )

        def up() -> bool:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"rclone mount exited; see {self._home / 'mount.log'}")
            return is_mounted(self.root)

        wait_for(up, 60, "the rclone mount")

    def stop(self) -> None:
        unmount(self.root)
        stop_process(self._proc, timeout=60)
        unmount(self.root)
        self._proc = None

    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def stored(self, mark: int, folder: str, count: int, size: int) -> bool:
        return stored_locally(self._server.root / folder, count, size)

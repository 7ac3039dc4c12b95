"""Mounting: run the FUSE loop, know when the mount is live, stop it without losing writes.

The FUSE loop runs in a thread of its own (``Mount``), so the same code serves
the command line (``run_mount``, which waits for signals in the main thread)
and tests (which drive the mount from the test thread). Python's signal
handlers are installed before libfuse starts; libfuse only installs its own
where none is set, so SIGINT/SIGTERM/SIGHUP reach us and not libfuse's
immediate exit.

Stopping: pending uploads are drained while the mount is still live (so files
stay readable), then the mount is unmounted (lazily if busy), then background
work stops. Whatever did not upload in time stays in the journal and resumes
on the next mount; ``run_mount`` then exits with ``EXIT_PENDING``.

"Live" means the kernel has completed INIT and answers a ``stat`` of the
mountpoint. Then the mount's readahead is raised to 1 MiB through
``/sys/class/bdi`` (the kernel otherwise sends 128 KiB reads).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import icloudfs.fuse  # noqa: F401  (pins libfuse 3 before mfusepy loads)
from icloudfs import config
from icloudfs.drive.protocol import Drive
from icloudfs.errors import IcloudfsError
from icloudfs.fs.core import Filesystem
from icloudfs.fuse import memory
from icloudfs.fuse.binding import Fuse
from icloudfs.fuse.notify import Forgetter
from icloudfs.fuse.operations import Operations
from icloudfs.metrics import FuseMetrics

log = logging.getLogger(__name__)

EXIT_PENDING = 75  # EX_TEMPFAIL: unmounted, but uploads are still journaled
READ_AHEAD_KB = 1024


class MountError(IcloudfsError):
    """The mount could not be made or removed."""


@dataclass
class MountOptions:
    """Everything a mount needs besides the drive. Sizes in bytes, durations in seconds."""

    mountpoint: Path
    folder: str = "/"
    fsname: str = "icloudfs"  # the SOURCE column of mount/findmnt/df
    read_only: bool = False
    cache_dir: Path = field(default_factory=config.cache_dir)
    cache_size: int = 10 << 30
    metadata_ttl: float = 60.0
    negative_ttl: float = 5.0
    write_back: float = 2.0
    poll_interval: float = 60.0  # re-list recently used folders this often (0: only on expiry)
    uid: int | None = None
    gid: int | None = None
    umask: int = 0o022
    allow_other: bool = False
    drain_timeout: float = 60.0
    writeback_cache: bool = False  # faster small writes; only if no other device writes


class Mount:
    """One mount, served from a background thread."""

    def __init__(self, drive: Drive, options: MountOptions) -> None:
        self.options = options
        self.filesystem = Filesystem(
            drive,
            cache_dir=options.cache_dir,
            cache_size=options.cache_size,
            folder=options.folder,
            metadata_ttl=options.metadata_ttl,
            negative_ttl=options.negative_ttl,
            write_back=options.write_back,
            poll_interval=options.poll_interval,
            read_only=options.read_only,
            uid=options.uid,
            gid=options.gid,
            umask=options.umask,
        )
        self.filesystem.mountpoint = str(options.mountpoint)
        self.metrics = FuseMetrics()
        self.forgetter = Forgetter(str(options.mountpoint))
        self._operations = Operations(
            self.filesystem,
            self.metrics,
            kernel_ttl=options.metadata_ttl,
            writeback_cache=options.writeback_cache,
            forgetter=self.forgetter,
        )
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.left_pending = 0  # uploads still journaled when ``stop`` returned

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 30.0) -> None:
        """Mount and return once the mount answers; raises ``MountError`` otherwise."""
        mountpoint = self.options.mountpoint
        _clear_dead_mount(mountpoint)
        memory.limit_arenas()
        self.filesystem.start()
        self._thread = threading.Thread(target=self._serve, name="icloudfs-fuse", daemon=True)
        self._thread.start()
        initialized = self._operations._wait_initialized(timeout)
        if not initialized or not self.alive:
            self.filesystem.close()
            raise MountError(f"could not mount {mountpoint}: {self._error or 'timed out'}")
        device = os.stat(mountpoint).st_dev  # returns once INIT is answered
        _raise_read_ahead(device)
        log.info("mounted %s on %s", self.options.folder, mountpoint)

    def stop(self, drain_timeout: float | None = None) -> bool:
        """Drain uploads, unmount, stop; True when no upload was left pending."""
        timeout = self.options.drain_timeout if drain_timeout is None else drain_timeout
        drained = self.filesystem.drain(timeout, _progress_logger())
        self.forgetter.close()
        if self.alive:
            try:
                unmount(self.options.mountpoint)
            except MountError as error:
                log.warning("%s; detaching lazily", error)
                unmount(self.options.mountpoint, force=True)
        if self._thread is not None:
            self._thread.join(timeout=30.0)
        self.filesystem.close()
        if not drained:
            self.left_pending = self.filesystem.pending_uploads()
            log.warning(
                "%d upload(s) still pending; they stay journaled and resume on the next mount",
                self.left_pending,
            )
        return drained

    def _serve(self) -> None:
        options = self.options
        mount_options: dict[str, object] = {
            "foreground": True,
            "fsname": options.fsname,
            "subtype": "icloudfs",
            "max_threads": 64,
            "max_idle_threads": 64,
            "default_permissions": True,
            "auto_unmount": True,
            "noatime": True,
        }
        if options.read_only:
            mount_options["ro"] = True
        if options.allow_other:
            mount_options["allow_other"] = True
        try:
            Fuse(self._operations, str(options.mountpoint), **mount_options)
        except BaseException as error:  # reported by start(), or logged when mounted
            self._error = error
            log.error("FUSE loop ended: %s", error)


def run_mount(drive: Drive, options: MountOptions, *, on_ready: Callable[[Mount], None] | None = None) -> int:
    """Mount in the foreground until SIGINT/SIGTERM/SIGHUP or an external unmount.

    Returns 0 after a clean stop, ``EXIT_PENDING`` when uploads remain journaled,
    1 when the mount could not be made.
    """
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("%s: unmounting", signal.Signals(signum).name)
        stop.set()

    previous: dict[int, object] = {}
    with contextlib.suppress(ValueError):  # not the main thread: the caller handles signals
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            previous[signum] = signal.signal(signum, on_signal)
    mount = Mount(drive, options)
    try:
        try:
            mount.start()
        except IcloudfsError as error:
            log.error("%s", error)
            return 1
        if on_ready is not None:
            on_ready(mount)
        while mount.alive and not stop.wait(0.5):
            pass
        return 0 if mount.stop() else EXIT_PENDING
    finally:
        for restored, handler in previous.items():
            signal.signal(restored, handler)  # type: ignore[arg-type]


def unmount(mountpoint: Path | str, *, force: bool = False) -> None:
    """``fusermount3 -u`` (``-uz`` with ``force``: detach now, even if busy)."""
    command = ["fusermount3", "-uz" if force else "-u", str(mountpoint)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise MountError(result.stderr.strip() or f"{' '.join(command)} failed")


def is_live(mountpoint: Path) -> bool:
    """Mounted and answering. ``os.path.ismount`` alone is fooled by a dead mount whose root
    the kernel still holds (its ``stat`` is answered from the cache for the metadata TTL);
    ``statfs`` always reaches the daemon."""
    try:
        os.statvfs(mountpoint)
    except OSError:
        return False
    return os.path.ismount(mountpoint)


def is_mounted(mountpoint: Path) -> bool:
    """Whether anything is mounted on ``mountpoint``, a dead FUSE mount included (which
    ``os.path.ismount`` cannot see: its ``stat`` fails)."""
    where = os.path.realpath(mountpoint)
    with open("/proc/self/mounts", encoding="utf-8", errors="replace") as mounts:
        for line in mounts:
            fields = line.split()
            # /proc/mounts writes space, tab, newline and backslash as octal escapes
            if len(fields) > 1 and _unescape(fields[1]) == where:
                return True
    return False


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _clear_dead_mount(mountpoint: Path) -> None:
    """A crashed mount leaves "Transport endpoint is not connected" behind: detach it. (Asked
    with ``statfs``, which always reaches the daemon: the kernel answers a ``stat`` from what
    it holds, for as long as the metadata TTL, even after the daemon died.)"""
    try:
        os.statvfs(mountpoint)
    except OSError as error:
        if error.errno != errno.ENOTCONN:
            raise MountError(f"{mountpoint}: {error.strerror}") from None
        log.warning("%s: detaching a dead mount", mountpoint)
        unmount(mountpoint, force=True)


def _raise_read_ahead(device: int) -> None:
    path = Path(f"/sys/class/bdi/{os.major(device)}:{os.minor(device)}/read_ahead_kb")
    try:
        path.write_text(str(READ_AHEAD_KB))
    except OSError as error:  # not root, or no sysfs: 128 KiB reads, still correct
        log.debug("could not raise readahead (%s): %s", path, error)


def _progress_logger() -> Callable[[int], None]:
    last = [-1]

    def report(left: int) -> None:
        if left and left != last[0]:
            log.info("waiting for %d upload(s)", left)
        last[0] = left

    return report

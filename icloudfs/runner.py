"""Assembling a running icloudfs: account -> iCloud drive -> FUSE mount (-> control plane).

``mount`` without ``--foreground`` starts the same command again with
``--foreground`` in a new session, detached from the terminal, and returns
only once the mountpoint is live (like gcsfuse and mount-s3), or with the
child's log when it failed. A fresh process is simpler and safer than forking
a process that already runs threads.

Under systemd (``Type=notify``) the foreground mount tells systemd it is ready
once the mount answers and its control plane listens. ``stop`` (the
``unmount`` command, also the unit's ``ExecStop``) signals the daemon and
shows the upload progress while the daemon drains for at most its
``drain_timeout``; uploads left then stay journaled for the next mount.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from icloudfs import config
from icloudfs.config import Settings
from icloudfs.control.runtime import alive
from icloudfs.control.server import ControlServer, ControlStartError
from icloudfs.control.service import ControlService
from icloudfs.control.tokens import TokenStore
from icloudfs.errors import AuthError, AuthRequired
from icloudfs.fuse.mount import (
    EXIT_PENDING,
    Mount,
    MountError,
    MountOptions,
    is_live,
    is_mounted,
    run_mount,
    unmount,
)
from icloudfs.icloud.account import Account, AuthState
from icloudfs.icloud.drive import ICloudDrive
from icloudfs.ops import privacy, sdnotify
from icloudfs.ops.holders import holders
from icloudfs.ops.progress import UploadProgress

log = logging.getLogger(__name__)

MOUNT_TIMEOUT_S = 60.0
_EXCEPTION_LINE = re.compile(r"^\w[\w.]*(Error|Exception)\b")  # a traceback's last line


@dataclass(frozen=True)
class Session:
    """A signed-in (or waiting-to-be) account and its drive."""

    settings: Settings
    account: Account
    drive: ICloudDrive


def open_session(settings: Settings) -> Session:
    """Resume the saved session without prompting; a mount can wait for a sign-in later."""
    if not settings.apple_id:
        raise AuthRequired("No Apple ID is configured: run `icloudfs login` first.")
    account = Account(
        settings.apple_id,
        session_dir=config.session_dir(),
        endpoint=settings.endpoint or None,
        ca_file=settings.ca_file or None,
    )
    try:
        state = account.resume()
    except AuthError as error:
        log.warning(
            "iCloud sign-in failed for %s at %s: %s",
            settings.apple_id,
            settings.endpoint or "Apple",
            error,
            extra={"apple_id": settings.apple_id, "endpoint": settings.endpoint or config.APPLE_ENDPOINT},
        )
        raise
    if state is not AuthState.SIGNED_IN:
        log.warning(
            "account %s is %s: the mount serves cached data until you sign in "
            "(`icloudfs login` or the control plane)",
            settings.apple_id,
            state.value,
        )
    return Session(settings, account, drive_for(settings, account))


def drive_for(settings: Settings, account: Account) -> ICloudDrive:
    """The iCloud Drive backend of ``account``, as the settings configure it."""
    return ICloudDrive(
        account,
        ca_file=settings.ca_file or None,
        offline_timeout=config.parse_duration(settings.offline_timeout),
    )


def mount_options(settings: Settings, mountpoint: Path, **flags: object) -> MountOptions:
    """MountOptions from the settings (sizes and durations parsed) plus per-mount flags."""
    return MountOptions(
        mountpoint=mountpoint.resolve(),
        folder=settings.folder,
        cache_dir=Path(settings.cache_dir) / account_slug(settings),
        cache_size=config.parse_size(settings.cache_size),
        metadata_ttl=config.parse_duration(settings.metadata_ttl),
        negative_ttl=config.parse_duration(settings.negative_ttl),
        write_back=config.parse_duration(settings.write_back),
        poll_interval=config.parse_duration(settings.poll_interval),
        drain_timeout=config.parse_duration(settings.drain_timeout),
        fsname="icloud:" + settings.folder.replace(",", "\\,"),  # libfuse splits options at commas
        **flags,  # type: ignore[arg-type]
    )


def check_mountpoint(mountpoint: Path) -> str | None:
    """A folder nothing is mounted on, or a dead mount a crash left behind ("Transport endpoint
    is not connected"), which the mount detaches before mounting. Returns a warning when the
    folder has files of its own (the mount hides them while it lasts)."""
    try:
        if not mountpoint.is_dir():
            what = "is not a folder" if mountpoint.exists() else "does not exist"
            raise MountError(f"{mountpoint} {what}")
        entries = sum(1 for _ in mountpoint.iterdir())
    except OSError as error:
        if error.errno == errno.ENOTCONN:
            return None
        raise MountError(f"{mountpoint}: {error.strerror}") from None
    if is_mounted(mountpoint):
        pid = _daemon_pid(mountpoint)
        served = f" by icloudfs (pid {pid}): unmount it first with `icloudfs unmount {mountpoint}`"
        raise MountError(f"{mountpoint} is already mounted{served if pid else ''}")
    if entries:
        return f"{mountpoint} is not empty: its {entries} entries are hidden while iCloud is mounted on it"
    return None


def account_slug(settings: Settings) -> str:
    """Each account (and endpoint) gets its own cache: every iCloud drive has the same root id."""
    digest = hashlib.sha256(f"{settings.endpoint}|{settings.apple_id}".encode()).hexdigest()[:8]
    readable = "".join(c if c.isalnum() else "_" for c in settings.apple_id) or "default"
    return f"{readable}-{digest}"


def run_foreground(
    session: Session, options: MountOptions, on_ready: Callable[[], None] | None = None
) -> int:
    """Mount until a signal or an external unmount, with the control plane beside it.

    A pid file lets ``unmount`` find this process.
    """
    pid_file = mount_log(options.mountpoint).with_suffix(".pid")
    control: list[ControlServer] = []
    mounted: list[Mount] = []
    for folder in (config.state_dir(), config.config_dir()):
        privacy.tighten(folder)
    privacy.tighten(Path(session.settings.cache_dir), once=True)

    def ready(mount: Mount) -> None:
        mounted.append(mount)
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        pid_file.write_text(str(os.getpid()))
        service = ControlService(
            settings=session.settings,
            tokens=TokenStore(),
            account=session.account,
            filesystem=mount.filesystem,
            metrics=(mount.metrics, session.account.metrics),
            fuse=mount.metrics,
        )
        server = ControlServer(service)
        try:
            server.start()
        except ControlStartError as error:
            log.error("control plane not started (the mount works without it): %s", error)
        else:
            control.append(server)
            log.info("control plane on %s", server.address)
        sdnotify.notify("READY=1", f"STATUS=iCloud {options.folder} mounted on {options.mountpoint}")
        if on_ready is not None:
            on_ready()

    status = 1
    try:
        status = run_mount(session.drive, options, on_ready=ready)
        return status
    finally:
        sdnotify.notify("STOPPING=1")
        for server in control:
            server.stop()
        if mounted:  # for `unmount`, which is not this process's parent
            pending = mounted[0].left_pending
            _exit_record(options.mountpoint).write_text(json.dumps({"status": status, "pending": pending}))
        pid_file.unlink(missing_ok=True)


def _exit_record(mountpoint: Path) -> Path:
    """How the last daemon of ``mountpoint`` ended: its status and the uploads it left."""
    return mount_log(mountpoint).with_suffix(".exit")


def stop(mountpoint: Path, *, force: bool = False) -> int:
    """Unmount: the daemon stores pending uploads first, unless ``force`` (they stay journaled).

    A mount in use is not unmounted (without ``force``): the processes using it are named.
    Returns ``EXIT_PENDING`` when the daemon left uploads journaled.
    """
    pid = _daemon_pid(mountpoint)
    if pid is None and not is_mounted(mountpoint):
        raise MountError(f"{mountpoint} is not mounted")
    users = [] if force else holders(mountpoint)
    if users:
        listed = "\n  ".join(str(user) for user in users)
        raise MountError(
            f"{mountpoint} is in use by:\n  {listed}\nClose them (or leave the folder), or detach it "
            f"now with `icloudfs unmount --force {mountpoint}`: pending uploads stay journaled."
        )
    if force or pid is None:
        unmount(mountpoint, force=force)
    if pid is None:
        print(f"Unmounted {mountpoint}")
        return 0
    _exit_record(mountpoint).unlink(missing_ok=True)
    os.kill(pid, signal.SIGTERM)
    progress = UploadProgress(mountpoint)
    try:
        while alive(pid):
            progress.update()
            time.sleep(0.2)
    finally:
        progress.done()
    pending = _pending_at_exit(mountpoint)
    if pending:
        uploads = f"{pending} upload{'s' if pending != 1 else ''}"
        print(f"Unmounted {mountpoint}; {uploads} still journaled: they resume at the next mount")
        return EXIT_PENDING
    print(f"Unmounted {mountpoint}")
    return 0


def _pending_at_exit(mountpoint: Path) -> int:
    try:
        return int(json.loads(_exit_record(mountpoint).read_text())["pending"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def _daemon_pid(mountpoint: Path) -> int | None:
    try:
        pid = int(mount_log(mountpoint).with_suffix(".pid").read_text())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) else None


def daemonize(argv: Sequence[str], mountpoint: Path, log_file: Path | None = None) -> int:
    """Re-run ``icloudfs`` with ``--foreground`` detached; return once the mount is live.

    The child's output goes to ``log_file`` (where its log goes too), by default
    one file per mountpoint in the state dir.
    """
    log_path = log_file or mount_log(mountpoint)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        run_starts = out.tell()  # this_run runs' lines are not this failure's story
        child = subprocess.Popen(
            # -P: the folder the user stands in is not on the path (a ./icloudfs would shadow us)
            [sys.executable, "-P", "-m", "icloudfs", *argv, "--foreground"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    deadline = time.monotonic() + MOUNT_TIMEOUT_S
    while time.monotonic() < deadline:
        if is_live(mountpoint):
            print(f"Mounted on {mountpoint} (pid {child.pid}, log {log_path})")
            return 0
        if child.poll() is not None:
            break
        time.sleep(0.1)
    else:
        child.terminate()
    with log_path.open("rb") as this_run:
        this_run.seek(run_starts)
        lines = this_run.read().decode(errors="replace").splitlines()
    print(f"icloudfs: mounting {mountpoint} failed: {_cause(lines)}", file=sys.stderr)
    print(f"this run's log ({log_path}):", *lines[-15:], sep="\n  ", file=sys.stderr)
    return 1


def _cause(lines: Sequence[str]) -> str:
    """The line of a failed run's log that says why: what ``main`` printed, else the last error."""
    said = [line.removeprefix("icloudfs: ") for line in lines if line.startswith("icloudfs: ")]
    errors = [line.strip() for line in lines if " ERROR " in line or _EXCEPTION_LINE.match(line)]
    return (said or errors or ["the mount process ended before the mount was live"])[-1]


def mount_log(mountpoint: Path) -> Path:
    """One log file per mountpoint in the state dir."""
    digest = hashlib.sha256(str(mountpoint.resolve()).encode()).hexdigest()[:12]
    return config.state_dir() / "logs" / f"mount-{mountpoint.name or 'root'}-{digest}.log"

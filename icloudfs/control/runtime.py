"""Where each mount's control socket lives, and how the CLI finds the mount a path belongs to.

Every mount's control plane listens on a unix socket of its own, in a folder only this user can
enter: ``$XDG_RUNTIME_DIR/icloudfs`` (``/run/user/UID``, which the login manager makes 0700),
or without one ``$XDG_STATE_HOME/icloudfs/run``. The folder is made 0700 and refused if it is
not this user's or others may enter it: one in a shared place could have been made beforehand
by someone else, to receive what the CLI sends.

The socket is named from the mountpoint's real path (``m-<12 hex>.sock``), so ``icloudfs
status ~/iCloud`` finds its mount from the path alone. Beside it the daemon writes
``m-<12 hex>.json`` (mountpoint, pid, TCP address): a command given no path uses the only
mount running, and says which there are when there are several.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from icloudfs import config

SOCKET_PATH_MAX = 107  # sun_path holds 108 bytes with its NUL


class RuntimeDirError(RuntimeError):
    """The runtime folder is not private to this user."""


class NoMount(LookupError):
    """No running mount matches."""


@dataclass(frozen=True)
class RunningMount:
    """A mount whose daemon announced itself."""

    mountpoint: Path
    socket: Path
    pid: int
    tcp: str | None  # ``http(s)://HOST:PORT`` of its TCP listener, if it has one


def runtime_dir() -> Path:
    """The private folder of this user's control sockets (made 0700; see the module note)."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    folder = Path(base) / config.APP if base else config.state_dir() / "run"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    check_private(folder)
    return folder


def check_private(folder: Path) -> None:
    """Refuse a folder (or a symlink to one) that is not this user's alone."""
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
        raise RuntimeDirError(
            f"{folder} must be a folder of this user's that only they can enter (0700); "
            f"it is mode {stat.S_IMODE(info.st_mode):o}, owner uid {info.st_uid}"
        )


def socket_path(mountpoint: Path) -> Path:
    """The control socket of the mount on ``mountpoint``."""
    path = runtime_dir() / f"{_stem(mountpoint)}.sock"
    if len(os.fsencode(path)) > SOCKET_PATH_MAX:
        raise RuntimeDirError(f"{path} is too long for a unix socket; set a shorter XDG_RUNTIME_DIR")
    return path


def announce(mountpoint: Path, socket: Path, tcp: str | None) -> None:
    """Say that this process serves ``mountpoint`` (written 0600, atomically)."""
    entry = {"mountpoint": str(mountpoint), "socket": str(socket), "pid": os.getpid(), "tcp": tcp}
    target = runtime_dir() / f"{_stem(mountpoint)}.json"
    temporary = target.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(entry, out)
    os.replace(temporary, target)


def withdraw(mountpoint: Path) -> None:
    """This process no longer serves ``mountpoint``."""
    entry = runtime_dir() / f"{_stem(mountpoint)}.json"
    try:
        if json.loads(entry.read_text()).get("pid") == os.getpid():
            entry.unlink()
    except (OSError, ValueError):
        pass


def running_mounts() -> list[RunningMount]:
    """Mounts whose daemons are alive, by mountpoint (announcements of dead ones are removed)."""
    found = []
    for entry in sorted(runtime_dir().glob("m-*.json")):
        try:
            raw = json.loads(entry.read_text())
            mountpoint, socket = Path(raw["mountpoint"]), Path(raw["socket"])
            mount = RunningMount(mountpoint, socket, int(raw["pid"]), raw.get("tcp"))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if alive(mount.pid):
            found.append(mount)
        else:
            entry.unlink(missing_ok=True)
    return found


def mount_for(path: Path | None) -> RunningMount:
    """The running mount ``path`` is in (the deepest, when mounts nest), or with no path the
    only one running."""
    mounts = running_mounts()
    if path is None:
        if len(mounts) == 1:
            return mounts[0]
        if not mounts:
            raise NoMount("no icloudfs mount is running")
        listed = ", ".join(str(m.mountpoint) for m in mounts)
        raise NoMount(f"several mounts are running ({listed}): say which, with a path inside it")
    where = Path(os.path.realpath(path))
    inside = [m for m in mounts if where == m.mountpoint or where.is_relative_to(m.mountpoint)]
    if not inside:
        raise NoMount(f"{path} is not inside a running icloudfs mount")
    return max(inside, key=lambda m: len(m.mountpoint.parts))


def alive(pid: int) -> bool:
    """Running, and not a zombie (an init that does not reap would keep one forever)."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat_line.rpartition(")")[2].split()[0] not in ("Z", "X")


def _stem(mountpoint: Path) -> str:
    return "m-" + hashlib.sha256(os.fsencode(os.path.realpath(mountpoint))).hexdigest()[:12]

"""``mount -t fuse.icloudfs icloud:/Folder /mnt/x -o opts`` and the matching fstab line.

mount(8) reaches icloudfs by one of two routes, and both end in ``adopt``:

1. ``/sbin/mount.fuse.icloudfs SOURCE DIR [-sfnv] -o OPTS [-t fuse.icloudfs]``,
   when that file exists (``icloudfs install-mount-helper`` makes it a symlink
   to the ``icloudfs`` program). mount(8) tries it before ``mount.fuse``.
2. Otherwise ``mount.fuse3`` (installed as ``/sbin/mount.fuse``) runs
   ``sh -c "icloudfs SOURCE DIR -o OPTS"`` — the subtype is the program name,
   looked up in ``PATH`` — after dropping ``_netdev``, ``nofail``, ``auto``,
   ``user`` and handling ``setuid=USER`` itself, and adding ``dev,suid``.

So the ``icloudfs`` command treats a first argument starting with ``icloud:``
as such a call. ``adopt`` turns it into ``icloudfs mount DIR --folder ...``:
mount flags (``ro``, ``allow_other``, ``uid=``, ``gid=``, ``umask=``) and
logging options become command-line flags; any setting name
(``cache_size=10G``, ``endpoint=``, ``ca_file=``, ``control_addr=``, ...)
becomes its ``ICLOUDFS_*`` variable, and ``config=PATH`` picks the config
file. Generic VFS options (``rw``, ``dev``, ``nosuid``, ``x-systemd.*``...) are
accepted and ignored; anything else is refused, as mount(8) users expect.
``HOME`` is reset to the home of the user running the helper: mount.fuse3's
``setuid=`` switches user but keeps root's ``HOME``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import sys
from dataclasses import fields
from pathlib import Path

from icloudfs.config import Settings
from icloudfs.errors import IcloudfsError

SOURCE_PREFIX = "icloud:"
HELPER_NAME = "mount.fuse.icloudfs"

_GENERIC = frozenset(
    {
        *("rw", "dev", "nodev", "suid", "nosuid", "exec", "noexec", "sync", "async", "dirsync"),
        *("atime", "noatime", "relatime", "norelatime", "strictatime", "nodiratime", "lazytime"),
        *("defaults", "auto", "noauto", "user", "nouser", "users", "owner", "group"),
        *("_netdev", "nofail", "default_permissions"),
    }
)
_FLAGS = {"ro": "--read-only", "read_only": "--read-only", "allow_other": "--allow-other", "verbose": "-v"}
_VALUED = {"uid", "gid", "umask", "log_file", "log_format"}
_SETTINGS = {f.name for f in fields(Settings)} - {"folder"}


class MountHelperError(IcloudfsError):
    """The mount(8) call cannot be understood."""


def is_helper_call(argv: list[str]) -> bool:
    """True for ``icloud:/Folder DIR ...`` (what mount(8) and mount.fuse3 pass)."""
    return bool(argv) and argv[0].startswith(SOURCE_PREFIX)


def adopt(argv: list[str]) -> list[str]:
    """The ``icloudfs`` arguments for a mount(8)-style call; sets the settings it carries
    in this process's environment, which the mount daemon inherits."""
    source, mountpoint, options = _split(argv)
    command = ["mount", mountpoint, "--folder", "/" + source.removeprefix(SOURCE_PREFIX).strip("/")]
    environment = {"HOME": pwd.getpwuid(os.getuid()).pw_dir}
    for option in options:
        key, has_value, value = option.partition("=")
        name = key.replace("-", "_")
        if name in _GENERIC or name.startswith(("x-", "x_", "comment")):
            continue
        if name in _FLAGS and not has_value:
            command.append(_FLAGS[name])
        elif name in _VALUED and has_value:
            command += ["--" + name.replace("_", "-"), value]
        elif name == "config" and has_value:
            environment["ICLOUDFS_CONFIG"] = value
        elif name in _SETTINGS and has_value:
            environment[f"ICLOUDFS_{name.upper()}"] = value
        else:
            raise MountHelperError(f"unknown mount option {option!r} (see contrib/README.md)")
    os.environ.update(environment)
    return command


def _split(argv: list[str]) -> tuple[str, str, list[str]]:
    """``SOURCE DIR`` plus the options of every ``-o``; ``-t``, ``-N`` and ``-sfnv`` are skipped."""
    positional: list[str] = []
    options: list[str] = []
    words = iter(argv)
    for word in words:
        if word == "-o":
            options += [o for o in next(words, "").split(",") if o]
        elif word in ("-t", "-N"):
            next(words, None)
        elif word.startswith("-") and set(word[1:]) <= set("sfnvi"):
            continue
        else:
            positional.append(word)
    if len(positional) != 2:
        raise MountHelperError(f"usage: {HELPER_NAME} icloud:/FOLDER MOUNTPOINT [-o OPTIONS]")
    return positional[0], positional[1], options


def install(folder: Path) -> Path:
    """Make ``FOLDER/mount.fuse.icloudfs`` a symlink to this installation's ``icloudfs``."""
    beside = Path(sys.executable).parent / "icloudfs"
    program = beside if beside.exists() else Path(shutil.which("icloudfs") or "")
    if not program.name:
        raise MountHelperError("cannot find the `icloudfs` program to link to")
    link = folder / HELPER_NAME
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(program.absolute())
    return link

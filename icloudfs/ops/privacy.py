"""Files this user's icloudfs makes are this user's alone: 0600 in 0700 folders.

Session and trust-token files, the keyring file, the journal, cached content, listings, logs
and the config can each tell another user of the machine something, or let them act as this
one. So every icloudfs process runs with umask 077 (pyicloud and SQLite create files with the
default modes otherwise), and the daemon tightens what an older version, or another tool, made
open: the config and state folders at every start; the cache, which can hold many thousands
of blocks, once (a marker file says it was done).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

MARKER = ".private"


def restrict_umask() -> None:
    """New files 0600 and folders 0700, for the rest of this process."""
    os.umask(0o077)


def tighten(folder: Path, *, once: bool = False) -> int:
    """Make everything under ``folder`` private (symlinks left alone); returns how many modes
    changed. ``once``: skip a folder already done, and mark it done."""
    if not folder.is_dir() or (once and (folder / MARKER).exists()):
        return 0
    changed = _chmod(folder, 0o700)
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            changed += _chmod(Path(root) / name, 0o700)
        for name in files:
            changed += _chmod(Path(root) / name, 0o600)
    if once:
        (folder / MARKER).touch(mode=0o600)
    if changed:
        log.info("made %d file(s) under %s private to this user", changed, folder)
    return changed


def _chmod(path: Path, mode: int) -> int:
    try:
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode) or not stat.S_IMODE(info.st_mode) & 0o077:
            return 0
        os.chmod(path, stat.S_IMODE(info.st_mode) & 0o700 | mode)
    except OSError:
        return 0
    return 1

"""Which processes use a mount, as ``fuser -m`` finds them: open files, working folders, roots.

``unmount`` names them before deciding, instead of waiting out its drain and detaching lazily
behind the user's back. Processes of other users cannot be inspected without privilege and are
not listed (as with ``fuser`` run by a user).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Holder:
    pid: int
    name: str
    how: str  # "open file", "working folder" or "root"

    def __str__(self) -> str:
        return f"{self.name} (pid {self.pid}, {self.how})"


def holders(mountpoint: Path) -> list[Holder]:
    """Every process (of those this user may inspect) that uses something under ``mountpoint``."""
    top = os.path.realpath(mountpoint)
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        how = _use(proc, top)
        if how:
            found.append(Holder(int(proc.name), _name(proc), how))
    return found


def _use(proc: Path, top: str) -> str | None:
    def inside(link: Path) -> bool:
        try:
            target = os.readlink(link)  # the kernel's path: no call reaches the FUSE daemon
        except OSError:
            return False
        return target == top or target.startswith(top.rstrip("/") + "/")

    if inside(proc / "cwd"):
        return "working folder"
    if inside(proc / "root"):
        return "root"
    try:
        fds = list((proc / "fd").iterdir())
    except OSError:
        return None
    return "open file" if any(inside(fd) for fd in fds) else None


def _name(proc: Path) -> str:
    try:
        return (proc / "comm").read_text().strip()
    except OSError:
        return "?"

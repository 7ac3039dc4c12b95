"""A drive whose calls wait at gates the test opens: uploads "in flight" for as long as it likes.

rclone tests its write-back the same way (``vfs/vfscache/writeback/writeback_test.go``): the
upload blocks until the test lets it go, and meanwhile the test renames, deletes or rewrites
the file. ``GatedDrive`` is a ``MemoryDrive`` (which mints a new id on ``replace``, as iCloud
does); ``hold("upload")`` makes the next uploads wait until the gate is opened. A held upload
has read nothing yet: it is a transfer that has not reached its end.
"""

from __future__ import annotations

import threading
from pathlib import Path

from icloudfs.drive.memory import MemoryDrive
from icloudfs.drive.protocol import UploadControl
from icloudfs.drive.types import Item


class Gate:
    """Holds calls of one method until ``open``; ``entered`` tells a call is waiting."""

    def __init__(self, names: frozenset[str] | None) -> None:
        self.names = names  # only calls for these (remote) names wait; None: every call
        self.entered = threading.Event()
        self.waiting = 0
        self._open = threading.Event()

    def wait_entered(self, timeout: float = 10.0) -> None:
        assert self.entered.wait(timeout), "no call reached the gate"

    def open(self) -> None:
        self._open.set()

    def pass_through(self, control: UploadControl | None) -> None:
        """Wait until opened; a cancelled upload stops waiting, as a transfer stops sending."""
        self.waiting += 1
        self.entered.set()
        try:
            while not self._open.wait(0.01):
                if control is not None:
                    control.check()
        finally:
            self.waiting -= 1


class GatedDrive(MemoryDrive):
    """``MemoryDrive`` with gates on ``upload``, ``replace``, ``mkdir``, ``rename``, ``move`` and
    ``trash``."""

    def __init__(self, *, latency: float = 0.0) -> None:
        super().__init__(latency=latency)
        self._gates: dict[str, Gate] = {}

    def hold(self, method: str, *names: str) -> Gate:
        """Make calls of ``method`` (for these names only, if given) wait until the gate opens."""
        gate = Gate(frozenset(names) if names else None)
        self._gates[method] = gate
        return gate

    def release_all(self) -> None:
        for gate in self._gates.values():
            gate.open()

    def _gate(self, method: str, name: str, control: UploadControl | None = None) -> None:
        gate = self._gates.get(method)
        if gate is not None and (gate.names is None or name in gate.names):
            gate.pass_through(control)

    def upload(
        self, parent: Item, name: str, source: Path, mtime: float, control: UploadControl | None = None
    ) -> Item:
        self._gate("upload", name, control)
        return super().upload(parent, name, source, mtime, control)

    def replace(
        self, existing: Item, source: Path, mtime: float, control: UploadControl | None = None
    ) -> Item:
        self._gate("replace", existing.name, control)
        return super().replace(existing, source, mtime, control)

    def mkdir(self, parent: Item, name: str) -> Item:
        self._gate("mkdir", name)
        return super().mkdir(parent, name)

    def rename(self, item: Item, new_name: str) -> Item:
        self._gate("rename", item.name)
        return super().rename(item, new_name)

    def move(self, item: Item, new_parent: Item) -> Item:
        self._gate("move", item.name)
        return super().move(item, new_parent)

    def trash(self, item: Item) -> None:
        self._gate("trash", item.name)
        super().trash(item)

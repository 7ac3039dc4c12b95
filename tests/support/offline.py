"""A drive that can be cut off: while ``offline``, every call fails as an unreachable iCloud does.

It is a ``GatedDrive`` (a ``MemoryDrive`` that mints new ids as iCloud does, with gates), so a
test can also hold the calls made once the link is back. The inspection helpers (``tree``,
``add_file``...) work offline too: they are "another device", which iCloud still hears.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from icloudfs.errors import Unreachable
from tests.support.gated import GatedDrive


class SwitchedDrive(GatedDrive):
    """``GatedDrive`` with a switch: ``offline = True`` makes every protocol call raise
    ``Unreachable`` (counted in ``refused``)."""

    def __init__(self, *, latency: float = 0.0) -> None:
        super().__init__(latency=latency)
        self.offline = False
        self.refused = 0

    @contextmanager
    def _call(self, method: str) -> Iterator[None]:
        if self.offline:
            self.refused += 1
            raise Unreachable(f"{method}: connection refused (the test cut the link)")
        with super()._call(method):
            yield

"""What the kernel holds of the mount, and how the filesystem tells it to let go.

The kernel keeps names, attributes and file pages for as long as the listing behind them is
trusted (the metadata TTL), so a warm walk or ``git status`` never reaches this process. It
learns of a change made through the mount from the request that made it. Every other change
must be pushed to it: another device's, found by a poll, a refresh or a lookup's fetch; and
this mount's own background work (an upload stored as a conflict copy, a change replayed
after iCloud was unreachable). ``Forgetter`` is the FUSE layer's side of that; the filesystem
calls it through ``KernelCache.forget``.
"""

from __future__ import annotations

import contextvars
from collections.abc import Sequence
from typing import Protocol

answering: contextvars.ContextVar[bool] = contextvars.ContextVar("answering", default=False)
"""True while a kernel request is served: what it changes, the kernel learns from the reply."""


class KernelCache(Protocol):
    """The kernel's caches of one mount."""

    def forget(self, folder: str, names: Sequence[str], *, contents: bool) -> None:
        """Drop these names in ``folder`` (a mount path) and the folder's own attributes and
        listing; ``contents``: the files' attributes and pages too. Must not block."""


class NoKernel:
    """Not mounted (tests of the filesystem alone): nothing to tell."""

    def forget(self, folder: str, names: Sequence[str], *, contents: bool) -> None:
        return None

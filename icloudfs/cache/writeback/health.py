"""What keeps the write-back from its work, kept where ``status`` can show it.

A background step that fails (settling, journaling, scheduling) is retried, never given up on;
``Troubles`` remembers the last failure of each step until it works again, logs the first of a
kind (with its traceback) and the recovery, and names the cause plainly: a full cache disk, the
usual one, says so.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import threading

log = logging.getLogger(__name__)


class Troubles:
    """The steps that keep failing, and why. See the module note."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failing: dict[str, str] = {}  # step -> what it failed with

    def report(self, step: str, error: BaseException | None) -> None:
        """``step`` failed with ``error``, or (None) worked."""
        text = None if error is None else describe(error)
        with self._lock:
            before = self._failing.get(step)
            if text is None:
                self._failing.pop(step, None)
            else:
                self._failing[step] = text
        if text is not None and text != before:
            log.error("write-back %s failed: %s; retrying", step, text, exc_info=error)
        elif text is None and before is not None:
            log.warning("write-back %s works again (it failed with: %s)", step, before)

    def summary(self) -> str | None:
        with self._lock:
            return "; ".join(self._failing.values()) or None


def describe(error: BaseException) -> str:
    full = isinstance(error, sqlite3.OperationalError) and "full" in str(error)
    if full or (isinstance(error, OSError) and error.errno == errno.ENOSPC):
        return f"cache disk full ({error})"
    return f"{type(error).__name__}: {error}"

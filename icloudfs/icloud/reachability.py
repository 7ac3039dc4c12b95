"""Whether iCloud answers at all: since when it does not, and why.

Kept on the ``Account`` (one per signed-in Apple ID, shared by every call) so ``status`` and the
page can say "iCloud unreachable since 14:02 (connection refused)" instead of "signed in", and
the log says it once when it starts and once when it ends, not at every call.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

log = logging.getLogger(__name__)


class Reachability:
    """Fed by every call to iCloud: ``failed`` when nothing answered, ``answered`` otherwise."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.since: datetime | None = None
        self.cause = ""

    def failed(self, cause: str) -> None:
        with self._lock:
            self.cause = cause
            if self.since is None:
                self.since = datetime.now(UTC)
                log.warning("iCloud is unreachable (%s): serving what the cache holds", cause)

    def answered(self) -> None:
        if self.since is None:  # the common case, without the lock
            return
        with self._lock:
            if self.since is not None:
                log.info("iCloud answers again (unreachable since %s)", _clock(self.since))
                self.since = None

    def describe(self) -> str:
        since = self.since
        if since is None:
            return "iCloud is reachable"
        return f"iCloud unreachable since {_clock(since)} ({self.cause})"


def _clock(moment: datetime) -> str:
    return moment.astimezone().strftime("%H:%M")

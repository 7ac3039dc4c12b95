"""Apple's 503 on sign-in, remembered by every process of this user.

Apple throttles sign-in (HTTP 503) and each new attempt during the block extends it, so after a
503 no sign-in is attempted for a while (60 s, doubling up to 30 min while 503s go on). The
window lives in a file in the session folder, not in one process: a ``login`` right after
another, the mount daemon and the control page all honour it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

FIRST_S = 60.0
MAX_S = 30 * 60.0


class SignInBackoff:
    """The shared window; ``left`` is cheap enough to ask before every sign-in."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self.until = 0.0  # wall-clock end of the window, as last read or written

    def left(self) -> float:
        """Seconds until sign-in may be tried again (0 when it may be now)."""
        self.until, _ = self._read()
        return max(0.0, self.until - time.time())

    def hit(self) -> float:
        """Apple answered 503: start the next window; returns its length."""
        until, delay = self._read()
        if until and time.time() - until > MAX_S:  # the last block ended long ago: start over
            delay = FIRST_S
        self.until = time.time() + delay
        self._write({"until": self.until, "delay": min(delay * 2, MAX_S)})
        return delay

    def clear(self) -> None:
        """A sign-in went through: the next 503 starts from the first window again."""
        self.until = 0.0
        self._path.unlink(missing_ok=True)

    def _read(self) -> tuple[float, float]:
        try:
            raw = json.loads(self._path.read_text())
            return float(raw["until"]), float(raw["delay"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0.0, FIRST_S

    def _write(self, value: dict[str, float]) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        temp = self._path.with_suffix(".tmp")
        temp.write_text(json.dumps(value))
        os.replace(temp, self._path)

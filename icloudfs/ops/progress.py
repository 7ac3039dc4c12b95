"""Progress lines: ``icloudfs unmount`` waiting for uploads, ``icloudfs pin`` downloading.

The daemon drains uploads with its control plane still up, so the waiting
side asks ``/status`` for the counts. A control plane on the configured
address may belong to another mount (only one can own the port): its answer
is used only when it reports this mountpoint; otherwise just the time waited
is shown. On a terminal the line is rewritten in place (``\\r``); otherwise a
plain line is written when the count changes, and at most every few seconds.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

from icloudfs.config import Settings
from icloudfs.control.address import Binding
from icloudfs.control.client import ControlClient, ControlError
from icloudfs.control.schemas import UploadsStatus

QUIET_S = 1.0  # a stop that is quicker than this shows nothing
PLAIN_EVERY_S = 5.0


class StatusLine:
    """One line of progress: rewritten in place on a terminal; elsewhere written when its counts
    change, and at most every few seconds otherwise."""

    def __init__(self, out: TextIO = sys.stderr) -> None:
        self._out = out
        self._live = out.isatty()
        self._started = time.monotonic()
        self._last_line = ""
        self._last_written = 0.0
        self._wrote_live = False

    @property
    def waited(self) -> float:
        return time.monotonic() - self._started

    def show(self, line: str) -> None:
        waited = self.waited
        if self._live:
            self._out.write(f"\r\x1b[K{line}")
            self._wrote_live = True
        elif _counts(line) != _counts(self._last_line) or waited - self._last_written >= PLAIN_EVERY_S:
            self._out.write(line + "\n")
            self._last_written = waited
        self._last_line = line
        self._out.flush()

    def clear(self) -> None:
        if self._wrote_live:
            self._out.write("\r\x1b[K")
            self._out.flush()


class Progress:
    """Bytes done of a known total (``icloudfs pin``)."""

    def __init__(self, what: str, total: int, out: TextIO = sys.stderr) -> None:
        self._what, self._total, self._done = what, total, 0
        self._line = StatusLine(out)
        self._shown = -1

    def advance(self, count: int) -> None:
        self._done += count
        percent = 100 * self._done // self._total if self._total else 100
        if percent != self._shown:
            self._shown = percent
            mb = f"{self._done / 1e6:.1f}/{self._total / 1e6:.1f} MB"
            self._line.show(f"{self._what}: {percent}% ({mb}) ({self._line.waited:.0f} s)")

    def done(self, message: str) -> None:
        self._line.clear()
        print(message)


class UploadProgress:
    """Call ``update()`` while waiting and ``done()`` once; writes to ``out``."""

    def __init__(self, settings: Settings, mountpoint: Path, out: TextIO = sys.stderr) -> None:
        binding = Binding.of(settings)
        self._client = ControlClient(binding.client_host, binding.port, socket=binding.socket, timeout=2.0)
        self._mountpoint = str(mountpoint.resolve())
        self._line = StatusLine(out)

    def update(self) -> None:
        waited = self._line.waited
        if waited < QUIET_S:
            return
        uploads = self._uploads()
        if uploads is None:
            line = f"waiting for {self._mountpoint} to store pending uploads ({waited:.0f} s)"
        else:
            left = uploads.queued + uploads.in_progress
            failing = f", {uploads.failed} failing: {uploads.last_error}" if uploads.failed else ""
            line = f"storing pending uploads: {left} left{failing} ({waited:.0f} s)"
        self._line.show(line)

    def done(self) -> None:
        self._line.clear()
        self._client.close()

    def _uploads(self) -> UploadsStatus | None:
        try:
            status = self._client.status()
        except ControlError:
            return None
        if status.mount.mountpoint != self._mountpoint:
            return None
        return status.uploads


def _counts(line: str) -> str:
    return line.rpartition(" (")[0]

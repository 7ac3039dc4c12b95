"""Progress: ``icloudfs pin`` (files and bytes), ``unmount`` waiting for uploads, ``demo`` start-up.

On a terminal each is a ``rich`` progress bar. Anywhere else (a pipe, a log
file, systemd's journal) it is plain lines (``StatusLine``): one when the
counts change, and at most every few seconds otherwise, so a log stays short.

The daemon drains uploads with its control plane still up, so the waiting
side asks ``/status`` for the counts. A control plane on the configured
address may belong to another mount (only one can own the port): its answer
is used only when it reports this mountpoint; otherwise just the time waited
is shown.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    ProgressColumn,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.progress import Progress as Bar

from icloudfs.control.client import ControlClient, ControlError
from icloudfs.control.schemas import UploadsStatus

QUIET_S = 1.0  # a stop that is quicker than this shows nothing
PLAIN_EVERY_S = 5.0


def _bar(out: TextIO, *columns: ProgressColumn, transient: bool = True) -> Bar:
    bar = Bar(*columns, console=Console(file=out), transient=transient)
    bar.start()
    return bar


class StatusLine:
    """Plain progress lines: written when the counts change (the line up to its last `` (``),
    and at most every few seconds otherwise."""

    def __init__(self, out: TextIO = sys.stderr) -> None:
        self._out = out
        self._started = time.monotonic()
        self._last_line = ""
        self._last_written = 0.0

    @property
    def waited(self) -> float:
        return time.monotonic() - self._started

    def show(self, line: str) -> None:
        waited = self.waited
        if _counts(line) != _counts(self._last_line) or waited - self._last_written >= PLAIN_EVERY_S:
            self._out.write(line + "\n")
            self._out.flush()
            self._last_written = waited
        self._last_line = line


class Progress:
    """Files and bytes done of known totals (``icloudfs pin``)."""

    def __init__(self, what: str, *, total: int, files: int, out: TextIO = sys.stderr) -> None:
        self._what, self._total, self._files = what, total, files
        self._done = self._files_done = 0
        self._shown: tuple[int, bool] | None = None
        self._line = StatusLine(out)
        self._bar: Bar | None = None
        if out.isatty():
            self._bar = _bar(
                out,
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TextColumn("{task.fields[files]}"),
                TransferSpeedColumn(),
                TimeElapsedColumn(),
            )
            self._task = self._bar.add_task(what, total=total, files=self._files_text())

    def advance(self, count: int) -> None:
        """``count`` more bytes are done."""
        self._done += count
        self._update()

    def file_done(self) -> None:
        self._files_done += 1
        self._update()

    def done(self, message: str) -> None:
        if self._bar is not None:
            self._bar.stop()
        print(message)

    def _files_text(self) -> str:
        return f"{self._files_done}/{self._files} files"

    def _update(self) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=self._done, files=self._files_text())
            return
        percent = 100 * self._done // self._total if self._total else 100
        shown = (percent, self._files_done == self._files)
        if shown != self._shown:  # a line per percent, and one when the last file is done
            self._shown = shown
            mb = f"{self._done / 1e6:.1f}/{self._total / 1e6:.1f} MB"
            counts = f"{percent}% ({mb}, {self._files_text()})"
            self._line.show(f"{self._what}: {counts} ({self._line.waited:.0f} s)")


class UploadProgress:
    """Call ``update()`` while waiting and ``done()`` once; writes to ``out``."""

    def __init__(self, mountpoint: Path, out: TextIO = sys.stderr) -> None:
        try:
            self._client: ControlClient | None = ControlClient.for_mount(mountpoint, timeout=2.0)
        except ControlError:
            self._client = None
        self._mountpoint = str(mountpoint.resolve())
        self._out = out
        self._line = StatusLine(out)
        self._bar: Bar | None = None
        self._task = TaskID(0)
        self._most = 0  # the most uploads seen pending: the bar's length

    def update(self) -> None:
        waited = self._line.waited
        if waited < QUIET_S:
            return
        uploads = self._uploads()
        if uploads is None:
            line = f"waiting for {self._mountpoint} to store pending uploads"
            left, failing = None, ""
        else:
            left = uploads.queued + uploads.in_progress + uploads.changes
            failing = f", {uploads.failed} failing: {uploads.last_error}" if uploads.failed else ""
            line = f"storing pending uploads: {left} left{failing}"
        if not self._out.isatty():
            self._line.show(f"{line} ({waited:.0f} s)")
            return
        if self._bar is None:
            self._bar = _bar(
                self._out,
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                TimeElapsedColumn(),
            )
            self._task = self._bar.add_task(line, total=None)
        if left is None:
            self._bar.update(self._task, description=line, total=None)
        else:
            self._most = max(self._most, left)
            self._bar.update(self._task, description=line, total=self._most, completed=self._most - left)

    def done(self) -> None:
        if self._bar is not None:
            self._bar.stop()
        if self._client is not None:
            self._client.close()

    def _uploads(self) -> UploadsStatus | None:
        if self._client is None:
            return None
        try:
            status = self._client.status()
        except ControlError:
            return None
        if status.mount.mountpoint != self._mountpoint:
            return None
        return status.uploads


class Steps:
    """Numbered steps of a start-up (``icloudfs demo``): ``step()`` begins the next, ``done()``
    ends the last. Steps that turn out not to be needed are simply not begun."""

    def __init__(self, total: int, out: TextIO = sys.stderr) -> None:
        self._total, self._number = total, 0
        self._out = out
        self._bar: Bar | None = None
        if out.isatty():
            self._bar = _bar(
                out,
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                transient=False,
            )
            self._task = self._bar.add_task("starting", total=total)

    def step(self, description: str) -> None:
        self._number += 1
        if self._bar is not None:
            self._bar.update(self._task, description=description, completed=self._number - 1)
        else:
            self._out.write(f"[{self._number}/{self._total}] {description}\n")
            self._out.flush()

    def done(self, description: str | None = None) -> None:
        """Stop the bar: full with ``description`` when start-up is over, as it stands when it
        stopped early (``description`` None). Safe to call twice."""
        if self._bar is not None:
            if description is not None:
                self._bar.update(self._task, description=description, completed=self._total)
            self._bar.stop()
            self._bar = None


def _counts(line: str) -> str:
    return line.rpartition(" (")[0]

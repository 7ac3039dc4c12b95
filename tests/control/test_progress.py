"""Progress output: plain lines when not on a terminal (what logs and the CLI tests read), a rich
bar on one; against a real control plane for the unmount wait."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from icloudfs.config import Settings
from icloudfs.control.server import ControlServer
from icloudfs.control.service import ControlService
from icloudfs.control.tokens import TokenStore
from icloudfs.ops import progress
from icloudfs.ops.progress import Progress, Steps, UploadProgress
from tests.control.fakes import FakeFilesystem


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_pin_progress_is_one_plain_line_per_percent(capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    pin = Progress("pinning /docs", total=4_000_000, files=2, out=out)
    for _ in range(2):
        for _ in range(4):
            pin.advance(500_000)
        pin.file_done()
    pin.done("2 file(s), 4.0 MB kept for offline use")
    lines = out.getvalue().splitlines()
    assert [line.rpartition(" (")[0] for line in lines] == [
        "pinning /docs: 12% (0.5/4.0 MB, 0/2 files)",
        "pinning /docs: 25% (1.0/4.0 MB, 0/2 files)",
        "pinning /docs: 37% (1.5/4.0 MB, 0/2 files)",
        "pinning /docs: 50% (2.0/4.0 MB, 0/2 files)",
        "pinning /docs: 62% (2.5/4.0 MB, 1/2 files)",
        "pinning /docs: 75% (3.0/4.0 MB, 1/2 files)",
        "pinning /docs: 87% (3.5/4.0 MB, 1/2 files)",
        "pinning /docs: 100% (4.0/4.0 MB, 1/2 files)",
        "pinning /docs: 100% (4.0/4.0 MB, 2/2 files)",
    ]
    assert all(line.endswith(" s)") for line in lines)
    assert "\x1b" not in out.getvalue() and "\r" not in out.getvalue()
    assert capsys.readouterr().out == "2 file(s), 4.0 MB kept for offline use\n"


def test_pin_progress_on_a_terminal_is_a_bar(capsys: pytest.CaptureFixture[str]) -> None:
    out = Terminal()
    pin = Progress("pinning /docs", total=2_000_000, files=2, out=out)
    pin.advance(2_000_000)
    pin.file_done()
    pin.file_done()
    pin.done("done")
    shown = out.getvalue()
    assert "pinning /docs" in shown and "2/2 files" in shown and "2.0 MB" in shown
    assert "\x1b[" in shown  # drawn in place, not as lines
    assert capsys.readouterr().out == "done\n"


def test_steps_in_plain_lines() -> None:
    out = io.StringIO()
    steps = Steps(4, out=out)
    for description in ("starting the emulator", "signing in (SRP)", "mounting"):
        steps.step(description)
    steps.done("mounted")
    steps.done()
    assert out.getvalue() == "[1/4] starting the emulator\n[2/4] signing in (SRP)\n[3/4] mounting\n"


def test_steps_on_a_terminal() -> None:
    out = Terminal()
    steps = Steps(4, out=out)
    steps.step("starting the emulator")
    steps.done("mounted")
    assert "mounted" in out.getvalue() and "4/4" in out.getvalue()


@dataclass
class Draining(FakeFilesystem):
    """A mount whose pending uploads go down by one every time the status is read."""

    left: list[int] = field(default_factory=list)

    def stats(self) -> dict[str, Any]:
        stats = super().stats()
        stats["uploads"] = {"queued": self.left.pop(0) if len(self.left) > 1 else self.left[0]}
        stats["uploads"].update(in_progress=0, failed=0, last_error=None)
        return stats


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "QUIET_S", 0.0)


@pytest.fixture
def draining(tmp_path: Path, start_server: Callable[[ControlService], ControlServer]) -> Path:
    """A mount's control plane, announced for its mountpoint, whose uploads drain."""
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    filesystem = Draining(mountpoint=str(mountpoint), left=[3, 2, 0])
    start_server(ControlService(Settings(control_addr=""), TokenStore(), filesystem=filesystem))
    return mountpoint


@pytest.mark.usefixtures("quick")
def test_unmount_wait_in_plain_lines(draining: Path) -> None:
    out = io.StringIO()
    waiting = UploadProgress(draining, out=out)
    for _ in range(4):
        waiting.update()
    waiting.done()
    lines = [line.rpartition(" (")[0] for line in out.getvalue().splitlines()]
    assert lines == [
        "storing pending uploads: 3 left",
        "storing pending uploads: 2 left",
        "storing pending uploads: 0 left",
    ]


@pytest.mark.usefixtures("quick")
def test_unmount_wait_on_a_terminal(draining: Path) -> None:
    out = Terminal()
    waiting = UploadProgress(draining, out=out)
    for _ in range(3):
        waiting.update()
    waiting.done()
    assert "storing pending uploads: 0 left" in out.getvalue()


@pytest.mark.usefixtures("quick")
def test_unmount_wait_without_a_control_plane_shows_the_time(tmp_path: Path) -> None:
    out = io.StringIO()
    waiting = UploadProgress(tmp_path, out=out)
    waiting.update()
    waiting.done()
    assert out.getvalue().startswith(f"waiting for {tmp_path} to store pending uploads (")

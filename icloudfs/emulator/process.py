"""The emulator as a child process: spawn it, and wait until it serves.

``icloudfs demo``, the tests and the benchmarks all start it this way. It is
ready once ``DIR/emulator.json`` names the child's pid (the server writes it
after its socket is listening), so a stale file from an earlier run is never
mistaken for this one.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from icloudfs.errors import IcloudfsError


class EmulatorStartError(IcloudfsError):
    """The emulator exited or did not serve in time."""


def spawn(
    data: Path, *args: str, timeout: float = 30.0, env: Mapping[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Start ``python -m icloudfs.emulator --data DATA --port 0 ARGS``; return it and its
    ``emulator.json`` (``url``, ``ca``, ``apple_id``, ...). Output goes to ``DATA/emulator.log``."""
    data.mkdir(parents=True, exist_ok=True)
    info_path, log_path = data / "emulator.json", data / "emulator.log"
    info_path.unlink(missing_ok=True)
    with log_path.open("ab") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "icloudfs.emulator", "--data", str(data), "--port", "0", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=None if env is None else dict(env),
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise EmulatorStartError(f"the emulator exited with {child.returncode}:\n{_tail(log_path)}")
        try:
            info = json.loads(info_path.read_text())
        except (OSError, ValueError):
            info = {}
        if info.get("pid") == child.pid:
            return child, info
        time.sleep(0.05)
    child.kill()
    child.wait()
    raise EmulatorStartError(f"the emulator did not serve within {timeout:.0f} s:\n{_tail(log_path)}")


def _tail(log: Path, lines: int = 20) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

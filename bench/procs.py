"""Small process and system helpers: child environments, waiting, mounts, page cache, RSS."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

PYTHON = sys.executable
REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def child_env(**extra: str) -> dict[str, str]:
    """The environment for tools we start: no CA-bundle overrides, venv tools first on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    env["PATH"] = f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}"
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what}")


def wait_port(port: int, timeout: float = 30.0) -> None:
    def up() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    wait_for(up, timeout, f"port {port}")


def is_mounted(path: Path) -> bool:
    try:
        return os.path.ismount(path)
    except OSError:
        return True  # "Transport endpoint is not connected": a dead mount is still a mount


def unmount(path: Path) -> None:
    """Unmount if mounted: politely first, then lazily."""
    if not is_mounted(path):
        return
    if subprocess.run(["fusermount3", "-u", str(path)], capture_output=True).returncode != 0:
        subprocess.run(["fusermount3", "-uz", str(path)], capture_output=True)


def stop_process(
    proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, timeout: float = 60.0
) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def drop_caches() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def page_reclaimers() -> list[str]:
    """Running DAMON ``pageout`` schemes, which drop clean page cache idle for a while (never tmpfs)
    on their own schedule: after a slow cold read they can leave holes that the warm re-read
    must fetch again, whatever the filesystem."""
    found = []
    for context in Path("/sys/kernel/mm/damon/admin/kdamonds").glob("[0-9]*/contexts/[0-9]*"):
        if (context.parents[1] / "state").read_text().strip() != "on":
            continue
        aggregate_s = int((context / "monitoring_attrs/intervals/aggr_us").read_text()) / 1e6
        for scheme in context.glob("schemes/[0-9]*"):
            if (scheme / "action").read_text().strip() == "pageout":
                idle_s = int((scheme / "access_pattern/age/min").read_text()) * aggregate_s
                found.append(f"DAMON pageout of memory idle for {idle_s:g} s or more")
    return found


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, text=True, env=child_env(), **kwargs)  # type: ignore[call-overload,no-any-return]


def timed(cmd: list[str] | str, shell: bool = False) -> float:
    """Seconds a command takes (output discarded); raises when it fails."""
    started = time.perf_counter()
    subprocess.run(
        cmd, shell=shell, check=True, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    return time.perf_counter() - started

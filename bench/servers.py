"""The two remote ends, each behind the same simulated link.

* ``EmulatorServer``: ``icloudfs emulator`` with ``--latency-ms`` / ``--bandwidth-mbps`` (its data dir,
  and so its seeds, survive restarts: a new profile is a restart, not a new seed);
* ``WebdavServer``: ``rclone serve webdav`` of a local folder, reached through ``linkproxy.py``.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from bench.procs import PYTHON, REPO, child_env, free_port, stop_process, wait_for, wait_port
from icloudfs.emulator.process import spawn


@dataclass(frozen=True)
class Profile:
    name: str
    latency_ms: float
    mbps: float

    @property
    def link_mb_s(self) -> float:
        """The link's bandwidth in MB/s (10^6 bytes)."""
        return self.mbps / 8


PROFILES = {"lan": Profile("lan", 1.0, 1000.0), "wan": Profile("wan", 20.0, 200.0)}


class EmulatorServer:
    def __init__(self, data: Path, seeds: list[str]) -> None:
        self.data = data
        self.seeds = seeds
        self.proc: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}
        self._http = requests.Session()
        self._http.trust_env = False

    @property
    def url(self) -> str:
        return str(self.info["url"])

    @property
    def ca(self) -> str:
        return str(self.info["ca"])

    def start(self, profile: Profile) -> None:
        args = ["--latency-ms", str(profile.latency_ms), "--bandwidth-mbps", str(profile.mbps)]
        # Sign-in is not measured, and pyicloud's HSA2 bridge websocket would not trust this CA
        # (it uses only Python's default trust; see icloudfs/demo.py): the legacy 2FA route.
        args += ["--2fa-route", "legacy"]
        for seed in self.seeds:
            args += ["--seed", seed]
        self.proc, self.info = spawn(self.data, *args, timeout=600, env=child_env())  # seeding takes a while
        self._http.verify = self.ca

    def stop(self) -> None:
        stop_process(self.proc, timeout=20)
        self.proc = None

    def stats(self) -> dict[str, Any]:
        answer = self._http.get(f"{self.url}/__emulator__/stats", timeout=30)
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result

    def files_stored(self) -> int:
        """How many files were committed (``update/documents``) since the emulator started."""
        return sum(n for path, n in self.stats()["requests"].items() if path.endswith("/update/documents"))


class WebdavServer:
    """``rclone serve webdav ROOT`` on one port, the link proxy on another."""

    def __init__(self, root: Path, logs: Path) -> None:
        self.root = root
        self.logs = logs
        self.serve_port = free_port()
        self.port = free_port()  # what clients use: the proxy
        self._serve: subprocess.Popen[bytes] | None = None
        self._proxy: subprocess.Popen[bytes] | None = None

    @property
    def remote(self) -> str:
        return f":webdav,url='http://127.0.0.1:{self.port}':"

    def start(self, profile: Profile) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        if self._serve is None:
            self._serve = subprocess.Popen(
                ["rclone", "serve", "webdav", str(self.root), "--addr", f"127.0.0.1:{self.serve_port}"],
                stdout=(self.logs / "rclone-serve.log").open("ab"),
                stderr=subprocess.STDOUT,
                env=child_env(),
            )
            wait_port(self.serve_port)
        stop_process(self._proxy, timeout=5)
        self._proxy = subprocess.Popen(
            [
                PYTHON,
                str(REPO / "bench" / "linkproxy.py"),
                "--listen",
                f"127.0.0.1:{self.port}",
                "--target",
                f"127.0.0.1:{self.serve_port}",
                "--latency-ms",
                str(profile.latency_ms),
                "--mbps",
                str(profile.mbps),
            ],
            stdout=(self.logs / "linkproxy.log").open("ab"),
            stderr=subprocess.STDOUT,
            env=child_env(),
        )
        wait_port(self.port)

    def stop(self) -> None:
        stop_process(self._proxy, timeout=5)
        stop_process(self._serve, timeout=10)
        self._proxy = self._serve = None


def stored_locally(folder: Path, count: int, size: int) -> bool:
    """Whether ``folder`` holds ``count`` complete files of ``size`` bytes (no partial uploads)."""
    done = 0
    try:
        for path in folder.rglob("*"):
            if path.is_file() and not path.name.endswith(".partial") and path.stat().st_size == size:
                done += 1
    except FileNotFoundError:
        return False
    return done >= count


def poll(check: Any, timeout: float, interval: float = 0.05) -> float:
    """Wait until ``check()``; the ``time.perf_counter()`` when it first held."""
    wait_for(check, timeout, "remote storage", interval)
    return time.perf_counter()

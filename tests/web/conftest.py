"""Fixtures for the control page: headless Chromium (Debian's ``chromium`` driven by
Playwright), real control-plane servers on real ports, the real emulator, and a network
namespace for genuinely remote visitors. Screenshots go to ``tests/artifacts/web/``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from icloudfs.config import Settings
from icloudfs.control import Account, ControlServer, ControlService, TokenStore
from icloudfs.icloud.account import Account as ICloudAccount
from tests.support.emulator import Emulator, start_emulator
from tests.support.netns import addresses, veth_namespace
from tests.support.ports import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts" / "web"
SCREENSHOTS = ROOT / "docs" / "screenshots"
# A subnet of its own (10.201.x.0/30): tests/control (10.200.x.0/30) may be up at the same time.
HOST_IP, NS_IP = addresses(201)


def shot(page: Any, name: str, **options: Any) -> Path:
    """Save a screenshot of ``page`` as ``tests/artifacts/web/NAME.png``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), **options)
    return path


@dataclass
class DemoFilesystem:
    """A mounted filesystem with believable numbers (the FUSE layer is not needed here)."""

    mountpoint: str = "/home/alex/iCloud"
    folder: str = "/"
    read_only: bool = False
    since: datetime = field(default_factory=lambda: datetime(2026, 11, 26, 8, 0, tzinfo=UTC))

    def stats(self) -> dict[str, Any]:
        return {
            "metadata": {"entries": 1834, "hits": 40210, "misses": 377},
            "content": {"bytes_used": 3_650_000_000, "bytes_limit": 10 << 30, "hits": 912, "misses": 88},
            "uploads": {"queued": 2, "in_progress": 1, "failed": 0, "last_error": None},
        }

    def refresh(self, path: str, recursive: bool) -> None:
        pass

    def evict(self, path: str | None) -> int:
        return 0

    def uploads(self) -> list[dict[str, Any]]:
        return []

    def retry_uploads(self) -> int:
        return 0


# ---- browser ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def playwright() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs Playwright (pip install playwright)")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"needs {CHROMIUM} (Debian package chromium)")
    with sync_api.sync_playwright() as driver:
        yield driver


BrowserFactory = Callable[..., Any]


@pytest.fixture
def new_browser(playwright: Any, tmp_path: Path) -> Iterator[BrowserFactory]:
    """``new_browser(**context_options)``: Chromium with a fresh profile; closed at teardown."""
    contexts: list[Any] = []

    def launch(**options: Any) -> Any:
        profile = tmp_path / f"chromium-profile-{len(contexts)}"
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1100, "height": 900},
            reduced_motion="reduce",  # no transitions half-way in screenshots
            **options,
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context

    yield launch
    for context in contexts:
        context.close()


@dataclass
class PageProblems:
    """Uncaught script errors and CSP violations seen by a page (both must stay empty)."""

    errors: list[str] = field(default_factory=list)
    csp: list[str] = field(default_factory=list)

    def watch(self, page: Any) -> Any:
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on(
            "console",
            lambda msg: self.csp.append(msg.text) if "Content Security Policy" in msg.text else None,
        )
        return page


# ---- servers ----------------------------------------------------------------------------------


ServerFactory = Callable[..., ControlServer]


@pytest.fixture
def start_control(start_server: Callable[[ControlService], ControlServer]) -> ServerFactory:
    """``start_control(account=..., filesystem=..., allow_remote=...)``: a real server on a
    fixed free port (so a restart after a settings change comes back on the same one)."""

    def start(
        *, account: Account | None = None, filesystem: Any = None, allow_remote: bool = False
    ) -> ControlServer:
        service = ControlService(
            # remote visitors here speak plain HTTP (asked for); HTTPS has tests/control/test_tls.py
            settings=Settings(
                control_addr=f"127.0.0.1:{free_port()}", allow_remote=allow_remote, insecure_http=allow_remote
            ),
            tokens=TokenStore(),
            account=account,
            filesystem=filesystem,
        )
        return start_server(service)

    return start


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with start_emulator(tmp_path_factory.mktemp("emulator"), "--seed", "demo") as emu:
        yield emu


def real_account(emu: Emulator, tmp_path: Path) -> ICloudAccount:
    """The real ``icloudfs.icloud.account.Account`` against ``emu``, signed out."""
    sessions = tmp_path / "sessions"
    sessions.mkdir(mode=0o700)
    return ICloudAccount(apple_id="", session_dir=sessions, endpoint=emu.url, ca_file=emu.ca)


# ---- a remote peer ----------------------------------------------------------------------------


_HTTP = r"""
import http.client, json, ssl, sys
host, port, path, token, scheme = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
try:
    if scheme == "https":  # the certificate is checked by its pin elsewhere; here only TLS matters
        conn = http.client.HTTPSConnection(host, port, timeout=5, context=ssl._create_unverified_context())
    else:
        conn = http.client.HTTPConnection(host, port, timeout=5)
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
    reply = conn.getresponse()
    print(json.dumps([reply.status, reply.read().decode()]))
except OSError as error:
    print(json.dumps([0, str(error)]))
"""


class Namespace:
    """Runs commands inside a network namespace whose only route to us is ``HOST_IP``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def run(self, *args: str, stdin: str | None = None, timeout: float = 60) -> str:
        done = subprocess.run(
            ["ip", "netns", "exec", self.name, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )
        if done.returncode != 0:
            raise AssertionError(f"{args[:3]} failed in {self.name}: {done.stderr[-3000:]}")
        return done.stdout

    def get(self, port: int, path: str, token: str = "", scheme: str = "http") -> tuple[int, str]:
        """``(status, body)`` of ``GET path`` from the namespace; status 0 when unreachable."""
        reply = self.run(sys.executable, "-c", _HTTP, HOST_IP, str(port), path, token, scheme)
        status, body = json.loads(reply)
        return int(status), str(body)


@pytest.fixture(scope="session")
def remote_net() -> Iterator[Namespace]:
    """A network namespace joined to this one by a veth pair (10.201.x.0/30 only)."""
    with veth_namespace("icfs-web", "icw", HOST_IP, NS_IP) as name:
        yield Namespace(name)

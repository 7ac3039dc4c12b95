"""Run the iCloud emulator as a real subprocess and drive it (admin API, pyicloud sign-in) from tests.

``start_emulator(tmp_path, *extra_args)`` spawns ``python -m icloudfs.emulator --data
tmp_path/emulator --port 0 ...``, waits for its ``emulator.json`` and returns an
``Emulator`` (also a context manager) with ``url``, ``ca``, ``apple_id``, ``password``,
``app_password``, ``code``, ``dsid``, admin helpers (``faults``, ``clear_faults``,
``stats``, ``reset_stats``, ``expire_sessions``, ``adp_consent``, ``adp_web_access``, ``expire_pcs``,
``unlock``), ``service``
(an unmodified-pyicloud client pointed at it) and ``stop``. Pass ``data_dir=`` to
restart on existing state.

``share_ca(directory)`` makes every emulator started here sign with one CA and returns a
CA bundle (the default trust plus that CA) for ``SSL_CERT_FILE``: pyicloud's HSA2 bridge
opens its push websocket with ``ssl.create_default_context()``
(``pyicloud/hsa2_bridge.py``, ``_RawWebSocketClient._open``), which ignores the ``verify=``
CA its HTTP session uses, so without this the bridge would fail and pyicloud would quietly
fall back to SMS. ``tests/conftest.py`` does it once per test session.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

import certifi
import requests
import trustme
from pyicloud import PyiCloudService

from icloudfs.emulator.process import spawn
from icloudfs.icloud.endpoint import service_class


class Emulator:
    """A running emulator process."""

    def __init__(self, process: subprocess.Popen[bytes], data_dir: Path, info: dict[str, Any]) -> None:
        self.process = process
        self.data_dir = data_dir
        self.info = info
        self.url: str = info["url"]
        self.ca: str = info["ca"]
        self.apple_id: str = info["apple_id"]
        self.password: str = info["password"]
        self.app_password: str = info["app_password"]
        self.code: str = info["code"]
        self.dsid: str = info["dsid"]

    # ---- admin API ------------------------------------------------------------------------

    def admin(self, method: str, name: str, body: Any = None) -> Any:
        response = requests.request(
            method, f"{self.url}/__emulator__/{name}", json=body, verify=self.ca, timeout=10
        )
        response.raise_for_status()
        return response.json()

    def faults(self, **state: Any) -> dict[str, Any]:
        """Set latency_ms / bandwidth_mbps / rules at run time; returns the new state."""
        result: dict[str, Any] = self.admin("POST", "faults", state)
        return result

    def clear_faults(self) -> None:
        self.admin("DELETE", "faults")

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("GET", "stats")
        return result

    def reset_stats(self) -> None:
        self.admin("DELETE", "stats")

    def expire_sessions(self) -> None:
        self.admin("POST", "expire-sessions")

    def revoke_trust(self) -> None:
        self.admin("POST", "revoke-trust")

    def adp_consent(self) -> None:
        """The user taps Allow on a trusted device (Advanced Data Protection)."""
        self.admin("POST", "adp-consent")

    def adp_web_access(self, allowed: bool) -> None:
        """The user turns "Access iCloud Data on the Web" on or off on a device."""
        self.admin("POST", "adp-web-access", {"allowed": allowed})

    def expire_pcs(self) -> None:
        """Every PCS cookie granted so far ends now (Drive answers 423)."""
        self.admin("POST", "expire-pcs")

    def unlock(self) -> None:
        self.admin("POST", "unlock")

    # ---- clients --------------------------------------------------------------------------

    def service(self, cookie_dir: Path, password: str | None = None, **kwargs: Any) -> PyiCloudService:
        """Unmodified pyicloud signed in (or stopped at 2FA) against this emulator."""
        cls = service_class(self.url)
        return cls(
            self.apple_id,
            password or self.password,
            cookie_directory=str(cookie_dir),
            verify=self.ca,
            **kwargs,
        )

    def signed_in(self, cookie_dir: Path) -> PyiCloudService:
        """A trusted session: signs in and passes 2FA when it is asked for."""
        api = self.service(cookie_dir)
        if api.requires_2fa:
            assert api.validate_2fa_code(self.code)
        return api

    def cli_command(self, *args: str) -> list[str]:
        """The argv of ``icloudfs ARGS`` pointed at this emulator."""
        return [sys.executable, "-m", "icloudfs", *args, "--endpoint", self.url, "--ca-file", self.ca]

    def cli(self, *args: str, stdin: str = "", timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``icloudfs ARGS --endpoint URL --ca-file CA`` as a user runs it (environment inherited)."""
        return subprocess.run(
            self.cli_command(*args),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def cli_login(self, *extra: str) -> subprocess.CompletedProcess[str]:
        """``icloudfs login`` with this emulator's account and code (password on stdin)."""
        return self.cli(
            "login",
            "--apple-id",
            self.apple_id,
            "--password-stdin",
            "--code",
            self.code,
            *extra,
            stdin=self.password + "\n",
        )

    # ---- lifecycle ------------------------------------------------------------------------

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


_shared_ca: Path | None = None  # holds ca.pem and ca.key once share_ca ran


def share_ca(directory: Path) -> Path:
    """One CA for every emulator started from now on; returns a bundle of it plus the default trust."""
    global _shared_ca
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="icloudfs test emulators")
    (directory / "ca.key").write_bytes(ca.private_key_pem.bytes())
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    default = ssl.get_default_verify_paths().cafile or certifi.where()
    bundle = directory / "bundle.pem"
    bundle.write_text(Path(default).read_text().rstrip("\n") + "\n" + ca.cert_pem.bytes().decode())
    _shared_ca = directory
    return bundle


# ``ICLOUDFS_TEST_EMULATOR=adp`` runs every emulator of the suite as an Advanced Data Protection
# account whose device has allowed web access, so each sign-in goes through requestPCS and every
# Drive call needs the PCS cookie. A test that passes ``--adp`` itself drives the consent alone.
SUITE_MODE = os.environ.get("ICLOUDFS_TEST_EMULATOR", "")


def start_emulator(tmp_path: Path, *extra_args: str, data_dir: Path | None = None) -> Emulator:
    """Spawn an emulator on a free port and wait until it serves."""
    data = data_dir or tmp_path / "emulator"
    if _shared_ca is not None and not (data / "ca.pem").exists():
        data.mkdir(parents=True, exist_ok=True)
        for name in ("ca.pem", "ca.key"):
            shutil.copy(_shared_ca / name, data / name)
    adp = SUITE_MODE == "adp" and "--adp" not in extra_args
    args = (*extra_args, "--adp") if adp else extra_args
    process, info = spawn(data, *args, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    emulator = Emulator(process, data, info)
    if adp:
        emulator.adp_consent()
    return emulator

"""Every test runs with its own XDG folders and a real (plain-file) keyring inside them."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import keyring
import pytest
from keyrings.alt.file import PlaintextKeyring

from icloudfs.control.server import ControlServer
from icloudfs.control.service import ControlService
from tests.support.emulator import share_ca

SLOW_FOLDERS = {"cli", "emulator", "fuse", "icloud", "ops", "reliability", "web"}  # processes, mounts
SLOW_FIXTURES = {"emulator", "shared_emulator", "fuse_emulator", "icloud_view", "mount_factory", "mounted"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark as ``slow`` what starts processes or mounts: by folder, or by the fixtures it uses."""
    tests = Path(__file__).parent
    for item in items:
        folder = item.path.relative_to(tests).parts[0]
        fixtures = set(getattr(item, "fixturenames", ()))
        if folder in SLOW_FOLDERS or fixtures & SLOW_FIXTURES:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True)
def _own_ca_only() -> Iterator[None]:
    """REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE (set on some machines) override the ``verify=`` that
    test clients of the emulator pass; icloudfs itself ignores them when given a CA file."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("REQUESTS_CA_BUNDLE", raising=False)
        patch.delenv("CURL_CA_BUNDLE", raising=False)
        yield


@pytest.fixture(scope="session", autouse=True)
def _emulator_ca_trusted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Emulators share one CA that the default trust of this process and its children includes,
    so pyicloud's HSA2 bridge websocket (which trusts only that) reaches them: tests then take the
    bridge, as users on Apple do, instead of pyicloud's silent fallback to SMS."""
    bundle = share_ca(tmp_path_factory.mktemp("emulator-ca"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SSL_CERT_FILE", str(bundle))
        yield


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    for name in ("CONFIG", "STATE", "CACHE", "DATA"):
        monkeypatch.setenv(f"XDG_{name}_HOME", str(home / name.lower()))
    runtime = Path(tempfile.mkdtemp(prefix="icfs-"))  # short: a socket path holds 107 bytes
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    for var in ("ICLOUDFS_ENDPOINT", "ICLOUDFS_CA_FILE", "ICLOUDFS_CONFIG", "ICLOUDFS_APPLE_ID"):
        monkeypatch.delenv(var, raising=False)
    backend = PlaintextKeyring()  # its file follows XDG_DATA_HOME, as in a subprocess
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    yield home
    keyring.set_keyring(previous)
    shutil.rmtree(runtime, ignore_errors=True)


@pytest.fixture
def start_server() -> Iterator[Callable[[ControlService], ControlServer]]:
    """Start a ControlServer on a service; every one started is stopped at teardown."""
    started: list[ControlServer] = []

    def start(service: ControlService) -> ControlServer:
        server = ControlServer(service)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()

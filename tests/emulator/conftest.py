"""One shared demo emulator (and a signed-in pyicloud client) for the emulator tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pyicloud import PyiCloudService

from tests.support.emulator import Emulator, start_emulator


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with start_emulator(tmp_path_factory.mktemp("shared"), "--seed", "demo") as running:
        yield running


@pytest.fixture(scope="session")
def api(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> PyiCloudService:
    return emulator.signed_in(tmp_path_factory.mktemp("cookies"))


@pytest.fixture(autouse=True)
def _clean_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "emulator" in request.fixturenames:
        request.getfixturevalue("emulator").clear_faults()


@pytest.fixture
def cookie_dir(tmp_path: Path) -> Path:
    path = tmp_path / "cookies"
    path.mkdir()
    return path

"""An emulator process and a signed-in Account/ICloudDrive on it, for the backend tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from icloudfs.config import session_dir
from icloudfs.icloud.account import Account, AuthState
from icloudfs.icloud.drive import ICloudDrive
from tests.support.emulator import Emulator, start_emulator


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with start_emulator(tmp_path_factory.mktemp("emulator"), "--seed", "demo") as emu:
        yield emu


def new_account(emu: Emulator, apple_id: str | None = None) -> Account:
    return Account(apple_id or "", session_dir=session_dir(), endpoint=emu.url, ca_file=emu.ca)


def signed_in(emu: Emulator) -> Account:
    account = new_account(emu)
    assert account.login(emu.apple_id, emu.password) is AuthState.NEEDS_2FA
    assert account.submit_2fa(emu.code) is AuthState.SIGNED_IN
    return account


@pytest.fixture
def drive(emulator: Emulator, isolated_home: Path) -> ICloudDrive:
    emulator.clear_faults()
    return ICloudDrive(signed_in(emulator), ca_file=emulator.ca, attempts=4)

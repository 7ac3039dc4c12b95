"""Advanced Data Protection: the consent a device must give, PCS cookies that expire, and web
access turned off, against a real emulator process in ``--adp`` mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from icloudfs.errors import ConsentPending, WebAccessBlocked
from icloudfs.icloud.account import Account, AuthState
from icloudfs.icloud.drive import ICloudDrive
from tests.icloud.conftest import new_account
from tests.support.emulator import Emulator, start_emulator


@pytest.fixture
def adp(tmp_path: Path, isolated_home: Path) -> Emulator:
    with start_emulator(tmp_path, "--adp", "--seed", "demo") as emu:
        yield emu


def names(drive: ICloudDrive, folder_id: str) -> set[str]:
    return {item.name for item in drive.list_folders([folder_id])[0].children}


def waiting_for_consent(emu: Emulator) -> Account:
    account = new_account(emu)
    assert account.login(emu.apple_id, emu.password) is AuthState.NEEDS_2FA
    assert account.submit_2fa(emu.code) is AuthState.NEEDS_CONSENT
    return account


def test_a_device_tap_finishes_the_sign_in_without_a_new_password(adp: Emulator) -> None:
    account = waiting_for_consent(adp)
    assert "Tap Allow" in account.info()["last_error"]
    drive = ICloudDrive(account, ca_file=adp.ca)
    with pytest.raises(ConsentPending):
        drive.root()
    adp.adp_consent()  # the user taps Allow on a trusted device
    assert account.check_consent(now=True) is AuthState.SIGNED_IN
    assert "LegalCases" in names(drive, drive.root().id)


def test_expired_pcs_cookies_are_asked_for_again_unseen(adp: Emulator) -> None:
    adp.adp_consent()
    account = new_account(adp)
    account.login(adp.apple_id, adp.password)
    assert account.submit_2fa(adp.code) is AuthState.SIGNED_IN
    drive = ICloudDrive(account, ca_file=adp.ca)
    root = drive.root().id
    adp.expire_pcs()
    adp.reset_stats()
    assert "LegalCases" in names(drive, root)
    assert adp.stats()["requests"].get("/setup/ws/1/requestPCS") == 1
    assert account.state is AuthState.SIGNED_IN


def test_web_access_turned_off_is_reported_as_such(adp: Emulator) -> None:
    adp.adp_web_access(False)
    account = new_account(adp)
    account.login(adp.apple_id, adp.password)
    with pytest.raises(WebAccessBlocked, match="Access iCloud Data on the Web"):
        account.submit_2fa(adp.code)
    assert account.state is AuthState.WEB_ACCESS_OFF
    adp.adp_web_access(True)  # the user turns it on and signs in again: now a device is asked
    assert account.login(adp.apple_id, adp.password) is AuthState.NEEDS_CONSENT


def test_web_access_turned_off_while_mounted_is_reported_as_such(adp: Emulator) -> None:
    adp.adp_consent()
    account = new_account(adp)
    account.login(adp.apple_id, adp.password)
    account.submit_2fa(adp.code)
    drive = ICloudDrive(account, ca_file=adp.ca)
    root = drive.root().id
    adp.adp_web_access(False)
    with pytest.raises(WebAccessBlocked, match="Access iCloud Data on the Web"):
        drive.list_folders([root])
    assert account.state is AuthState.WEB_ACCESS_OFF
    adp.reset_stats()
    with pytest.raises(WebAccessBlocked):  # from the state: iCloud is not asked again and again
        drive.list_folders([root])
    assert sum(adp.stats()["requests"].values()) == 0

"""Sign-in fidelity: unmodified pyicloud through SRP, 2FA, trust, lockout, expiry and ADP."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from pyicloud.exceptions import (
    PyiCloudAccountLockedException,
    PyiCloudAPIResponseException,
    PyiCloudFailedLoginException,
)
from pyicloud.services.drive import DriveService

from tests.support.emulator import Emulator, start_emulator


def test_two_factor_sign_in_then_trusted_reuse(emulator: Emulator, cookie_dir: Path) -> None:
    api = emulator.service(cookie_dir)
    assert api.requires_2fa
    assert api.two_factor_delivery_method == "trusted_device"  # the HSA2 bridge: test_bridge.py
    assert api.validate_2fa_code("000000") is False
    assert api.validate_2fa_code(emulator.code) is True
    assert api.is_trusted_session and not api.requires_2fa

    again = emulator.service(cookie_dir)  # saved cookies + trust token: no code
    assert not again.requires_2fa and again.is_trusted_session
    assert "LegalCases" in again.drive.dir()


def test_sms_when_asked_for(emulator: Emulator, cookie_dir: Path) -> None:
    api = emulator.service(cookie_dir)
    api._request_sms_2fa_code()  # what icloudfs' "send the code by SMS instead" calls
    assert api.two_factor_delivery_method == "sms"
    assert api.validate_2fa_code("000000") is False
    assert api.validate_2fa_code(emulator.code) is True
    assert api.is_trusted_session


def test_trusted_device_code_path(emulator: Emulator, cookie_dir: Path) -> None:
    api = emulator.service(cookie_dir)
    api.use_existing_trusted_device_code()
    assert api.validate_2fa_code("999999") is False
    api.use_existing_trusted_device_code()
    assert api.validate_2fa_code(emulator.code) is True
    assert api.is_trusted_session


@pytest.mark.parametrize("which", ["wrong", "app-specific"])
def test_bad_credentials_fail_like_apple(emulator: Emulator, cookie_dir: Path, which: str) -> None:
    password = "wrong-password" if which == "wrong" else emulator.app_password
    with pytest.raises(PyiCloudFailedLoginException) as caught:
        emulator.service(cookie_dir, password=password)
    assert not isinstance(caught.value, PyiCloudAccountLockedException)


def test_repeated_failures_lock_the_account(emulator: Emulator, tmp_path: Path) -> None:
    try:
        for attempt in range(5):
            expected = PyiCloudAccountLockedException if attempt == 4 else PyiCloudFailedLoginException
            with pytest.raises(expected):
                emulator.service(tmp_path / f"c{attempt}", password="nope")
        with pytest.raises(PyiCloudAccountLockedException):  # even the right password now
            emulator.service(tmp_path / "right")
    finally:
        emulator.unlock()
    assert emulator.signed_in(tmp_path / "after").is_trusted_session


def test_session_expiry_is_421_and_renews_without_code(emulator: Emulator, cookie_dir: Path) -> None:
    api = emulator.signed_in(cookie_dir)
    api.drive.dir()
    emulator.expire_sessions()
    with pytest.raises(PyiCloudAPIResponseException) as caught:
        api.drive.refresh_root()
    assert caught.value.code == 421
    api.authenticate(force_refresh=True)
    assert not api.requires_2fa
    api.drive.refresh_root()
    assert "LegalCases" in api.drive.root.dir()


def test_drive_needs_the_web_session_cookie(emulator: Emulator) -> None:
    answer = requests.post(
        f"{emulator.url}/drivews/retrieveItemDetailsInFolders",
        params={"dsid": emulator.dsid},
        json=[],
        verify=emulator.ca,
        timeout=10,
    )
    assert answer.status_code == 421


def test_storage_and_logout(emulator: Emulator, cookie_dir: Path) -> None:
    api = emulator.signed_in(cookie_dir)
    usage = api.account.storage.usage
    assert 0 < usage.used_storage_in_bytes < usage.total_storage_in_bytes
    assert api.logout()["remote_logout_confirmed"] is True


def test_advanced_data_protection_needs_consent(tmp_path: Path) -> None:
    with start_emulator(tmp_path, "--adp", "--seed", "demo") as adp:
        api = adp.signed_in(tmp_path / "cookies")
        state = api._check_pcs_consent()
        assert state == {"isICDRSDisabled": True, "isDeviceConsentedForPCS": False}
        raw = DriveService(
            api.get_webservice_url("drivews"), api.get_webservice_url("docws"), api.session, api.params
        )
        with pytest.raises(PyiCloudAPIResponseException) as caught:
            raw.refresh_root()
        assert caught.value.code == 423
        adp.adp_consent()  # the user taps "Allow" on a trusted device
        assert "LegalCases" in api.drive.dir()

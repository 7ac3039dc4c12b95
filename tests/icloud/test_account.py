"""Sign-in, 2FA, trust, renewal and the walls users hit, against a real emulator process."""

from __future__ import annotations

import pytest

from icloudfs.config import session_dir
from icloudfs.errors import (
    AccountLocked,
    AppSpecificPassword,
    AuthRequired,
    Needs2FA,
    Throttled,
)
from icloudfs.icloud.account import AuthState
from icloudfs.icloud.drive import ICloudDrive
from icloudfs.icloud.passwords import PasswordStore
from tests.icloud.conftest import new_account, signed_in
from tests.support.emulator import Emulator, start_emulator


def auth_calls(emu: Emulator) -> int:
    return sum(count for path, count in emu.stats()["requests"].items() if "/appleauth/" in path)


def test_login_with_2fa_trusts_the_session_and_keeps_the_password(emulator: Emulator) -> None:
    account = new_account(emulator)
    assert account.login(emulator.apple_id, emulator.password) is AuthState.NEEDS_2FA
    with pytest.raises(Needs2FA, match="did not accept"):
        account.submit_2fa("000000")
    assert account.state is AuthState.NEEDS_2FA
    assert account.submit_2fa(emulator.code) is AuthState.SIGNED_IN
    assert PasswordStore().get(emulator.apple_id) == emulator.password
    info = account.info()
    assert info["auth_state"] == "signed_in" and info["password_stored"] and info["trust_days_left"] > 0
    assert "password" not in str({k: v for k, v in info.items() if k != "password_stored"}).lower()


def test_restart_resumes_without_a_code(emulator: Emulator) -> None:
    signed_in(emulator)
    before = emulator.stats()["requests"]
    again = new_account(emulator, emulator.apple_id)
    assert again.resume() is AuthState.SIGNED_IN
    after = emulator.stats()["requests"]
    assert not any("securitycode" in path and after[path] != before.get(path) for path in after)
    ICloudDrive(again, ca_file=emulator.ca).root()


def test_renewal_after_session_expiry_needs_no_code(emulator: Emulator) -> None:
    account = signed_in(emulator)
    drive = ICloudDrive(account, ca_file=emulator.ca)
    generation = account.generation
    emulator.expire_sessions()
    before = emulator.stats()["requests"]
    assert drive.root().id.endswith("::root")
    assert account.generation == generation + 1 and account.state is AuthState.SIGNED_IN
    after = emulator.stats()["requests"]
    assert not any("securitycode" in path and after[path] != before.get(path) for path in after)


def test_resume_without_saved_password_or_session_asks_for_password(emulator: Emulator) -> None:
    account = new_account(emulator, emulator.apple_id)
    assert account.resume() is AuthState.NEEDS_PASSWORD
    with pytest.raises(AuthRequired):
        account.drive()


def test_app_specific_password_is_refused_before_anything_is_sent(emulator: Emulator) -> None:
    before = auth_calls(emulator)
    with pytest.raises(AppSpecificPassword, match="app-specific"):
        new_account(emulator).login(emulator.apple_id, "abcd-efgh-ijkl-mnop")
    assert auth_calls(emulator) == before


def test_throttled_sign_in_backs_off_without_hammering(emulator: Emulator) -> None:
    emulator.faults(rules=[{"path": "/appleauth/auth/signin/init", "status": 503, "times": 1}])
    account = new_account(emulator)
    with pytest.raises(Throttled, match="throttling"):
        account.login(emulator.apple_id, emulator.password)
    assert account.state is AuthState.THROTTLED
    before = auth_calls(emulator)
    with pytest.raises(Throttled, match="waiting"):
        account.login(emulator.apple_id, emulator.password)
    assert auth_calls(emulator) == before
    emulator.clear_faults()


def test_logout_forgets_session_and_optionally_password(emulator: Emulator) -> None:
    account = signed_in(emulator)
    account.logout(forget_password=True)
    assert account.state is AuthState.SIGNED_OUT
    assert PasswordStore().get(emulator.apple_id) is None
    assert new_account(emulator, emulator.apple_id).resume() is AuthState.NEEDS_PASSWORD


def test_wrong_passwords_then_lock(tmp_path_factory: pytest.TempPathFactory) -> None:
    with start_emulator(tmp_path_factory.mktemp("lock")) as emu:
        account = new_account(emu)
        with pytest.raises(AuthRequired, match="did not accept"):
            account.login(emu.apple_id, "Wrong-password-1")
        assert account.state is AuthState.NEEDS_PASSWORD
        for _ in range(10):
            try:
                account.login(emu.apple_id, "Wrong-password-1")
            except AccountLocked as error:
                assert "iforgot.apple.com" in str(error)
                break
            except AuthRequired:
                continue
        else:
            pytest.fail("ten wrong passwords never locked the account")
        assert account.state is AuthState.LOCKED


def test_resume_survives_session_files_cut_short_by_a_kill(emulator: Emulator) -> None:
    signed_in(emulator)
    session = next(session_dir().glob("*.session"))
    session.write_text('{"session_tok')  # what a kill -9 in the middle of pyicloud's rewrite leaves
    before = emulator.stats()["requests"]
    again = new_account(emulator, emulator.apple_id)
    assert again.resume() is AuthState.SIGNED_IN
    after = emulator.stats()["requests"]
    assert not any("securitycode" in path and after[path] != before.get(path) for path in after)


def test_a_right_code_answered_409_still_signs_in(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Apple sometimes answers a right code on the trusted-device endpoint with 409 and
    ``securityCode.valid`` (rclone commit 731f2a6c2). After a wrong code closes the push bridge,
    that endpoint takes the next one."""
    with start_emulator(tmp_path_factory.mktemp("code409"), "--accepted-code-409", "1") as emu:
        account = new_account(emu)
        assert account.login(emu.apple_id, emu.password) is AuthState.NEEDS_2FA
        with pytest.raises(Needs2FA):
            account.submit_2fa("000000")
        emu.reset_stats()
        assert account.submit_2fa(emu.code) is AuthState.SIGNED_IN
        assert emu.stats()["requests"].get("/appleauth/auth/verify/trusteddevice/securitycode") == 1


def test_trust_days_come_from_the_session(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Issue 21: "trusted 60 more days" was a constant; the trust's own end is in the session
    (the X-APPLE-WEBAUTH-HSA-TRUST cookie accountLogin sets while the trust token lives)."""
    with start_emulator(tmp_path_factory.mktemp("trust10"), "--trust-days", "10") as emu:
        account = new_account(emu)
        account.login(emu.apple_id, emu.password)
        assert account.submit_2fa(emu.code) is AuthState.SIGNED_IN
        assert account.info()["trust_days_left"] in (9, 10)

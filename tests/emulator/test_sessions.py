"""Web sessions as Apple ends them: ``validate`` of a dead session token, and a client resuming
from a saved session after it (unmodified pyicloud, then icloudfs's Account)."""

from __future__ import annotations

from pathlib import Path

import requests

from icloudfs.icloud.account import Account, AuthState
from tests.support.emulator import Emulator


def test_validate_of_a_dead_session_token_is_400_invalid_session_token(emulator: Emulator) -> None:
    # rclone issue 8155: {"success":false,"error":"Invalid Session Token"} with HTTP 400
    answer = requests.post(
        f"{emulator.url}/setup/ws/1/validate",
        data="null",
        cookies={"X-APPLE-WEBAUTH-TOKEN": "v=2:t=expired"},
        verify=emulator.ca,
        timeout=10,
    )
    assert answer.status_code == 400
    assert answer.json() == {"success": False, "error": "Invalid Session Token"}


def test_a_saved_session_resumes_after_validate_refuses_it(
    emulator: Emulator, tmp_path: Path, isolated_home: Path
) -> None:
    first = Account("", session_dir=tmp_path / "session", endpoint=emulator.url, ca_file=emulator.ca)
    first.login(emulator.apple_id, emulator.password)
    assert first.submit_2fa(emulator.code) is AuthState.SIGNED_IN
    emulator.expire_sessions()
    emulator.reset_stats()
    again = Account(
        emulator.apple_id, session_dir=tmp_path / "session", endpoint=emulator.url, ca_file=emulator.ca
    )
    assert again.resume() is AuthState.SIGNED_IN  # from the trust token: no code
    assert emulator.stats()["requests"].get("/setup/ws/1/validate")

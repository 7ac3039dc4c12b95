"""Apple's two-factor push bridge cannot be reached (a blocked websocket.push.apple.com, a TLS
proxy): pyicloud ends the sign-in with a raw OSError (it opens the websocket outside the try
that falls back); icloudfs signs in without the bridge instead."""

from __future__ import annotations

from pathlib import Path

import certifi
import pytest

from icloudfs.icloud.account import AuthState
from tests.icloud.conftest import new_account
from tests.support.emulator import Emulator


def test_sign_in_goes_on_without_the_push_bridge(
    emulator: Emulator, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())  # the bridge's websocket refuses our CA
    emulator.reset_stats()
    account = new_account(emulator)
    assert account.login(emulator.apple_id, emulator.password) is AuthState.NEEDS_2FA
    assert account.submit_2fa(emulator.code) is AuthState.SIGNED_IN
    assert not any(path.startswith("/appleauth/auth/bridge/") for path in emulator.stats()["requests"])

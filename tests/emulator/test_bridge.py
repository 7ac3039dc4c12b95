"""Two-factor through Apple's HSA2 trusted-device bridge, with unmodified pyicloud.

pyicloud takes the bridge on its own: ``authenticate`` runs ``request_2fa_code`` when the 409
comes, which opens the push websocket and posts step 0; ``validate_2fa_code`` runs SPAKE2
over the code. It falls back silently (to SMS, or to the legacy securitycode endpoint), so
every test here reads the emulator's request counts to see which route was really taken.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import certifi
import pytest

from tests.support.emulator import Emulator, start_emulator

BRIDGE = "/appleauth/auth/bridge"
WEBSOCKET = "/v2"
LEGACY_DEVICE = "/appleauth/auth/verify/trusteddevice/securitycode"
LEGACY_SMS = "/appleauth/auth/verify/phone/securitycode"


@pytest.fixture
def bridged(tmp_path: Path) -> Emulator:
    with start_emulator(tmp_path) as emu:
        yield emu


def _counts(emu: Emulator) -> dict[str, int]:
    counts: dict[str, int] = emu.stats()["requests"]
    return counts


def test_bridge_sign_in_then_trusted_reuse(bridged: Emulator, tmp_path: Path) -> None:
    api = bridged.service(tmp_path / "cookies")
    assert api.requires_2fa
    assert api.two_factor_delivery_method == "trusted_device"
    assert api.validate_2fa_code(bridged.code) is True
    assert api.is_trusted_session and not api.requires_2fa

    counts = _counts(bridged)
    assert counts[WEBSOCKET] == 1
    for step in ("/step/0", "/step/2", "/step/4", "/code/validate", "/step/6"):
        assert counts[BRIDGE + step] == 1, step
    assert counts["/appleauth/auth/2sv/trust"] == 1
    assert LEGACY_DEVICE not in counts and LEGACY_SMS not in counts
    assert "/appleauth/auth/verify/phone" not in counts  # no SMS was sent either

    again = bridged.service(tmp_path / "cookies")  # the trust token: no code, no bridge
    assert not again.requires_2fa and again.is_trusted_session
    assert _counts(bridged)[WEBSOCKET] == 1


def test_wrong_code_is_refused_then_a_new_prompt_takes_the_right_one(
    bridged: Emulator, tmp_path: Path
) -> None:
    api = bridged.service(tmp_path / "cookies")
    assert api.validate_2fa_code("000000") is False  # SPAKE2 confirmation fails: no step 4
    assert not api.is_trusted_session
    counts = _counts(bridged)
    assert counts[BRIDGE + "/step/2"] == 1
    assert BRIDGE + "/step/4" not in counts and BRIDGE + "/code/validate" not in counts

    assert api.request_2fa_code() is True  # a fresh prompt on the device
    assert api.validate_2fa_code(bridged.code) is True
    assert api.is_trusted_session
    counts = _counts(bridged)
    assert counts[WEBSOCKET] == 2 and counts[BRIDGE + "/step/0"] == 2
    assert counts[BRIDGE + "/code/validate"] == 1
    assert LEGACY_DEVICE not in counts


def test_after_a_wrong_code_pyicloud_retries_on_the_legacy_endpoint(
    bridged: Emulator, tmp_path: Path
) -> None:
    """pyicloud closes the bridge after a wrong code; a second try without ``request_2fa_code``
    (icloudfs' ``submit_2fa`` retry) posts to ``verify/trusteddevice/securitycode``."""
    api = bridged.service(tmp_path / "cookies")
    assert api.validate_2fa_code("000000") is False
    assert api.validate_2fa_code(bridged.code) is True
    assert api.is_trusted_session
    assert _counts(bridged)[LEGACY_DEVICE] == 1


def test_code_validate_refuses_a_wrong_code_like_apple(bridged: Emulator, tmp_path: Path) -> None:
    api = bridged.service(tmp_path / "cookies")
    state = api._trusted_device_bridge_state
    assert state is not None and state.salt and state.txnid.endswith("_S")
    answer = api.session.request_raw(
        "POST",
        f"{bridged.url}{BRIDGE}/code/validate",
        json={"sessionUUID": state.session_uuid, "code": "000000"},
        headers=api._get_auth_headers({"Accept": "application/json"}),
    )
    assert answer.status_code == 412  # what pyicloud reads as "code refused"
    assert answer.json()["serviceErrors"][0]["code"] == "-21669"
    assert api.validate_2fa_code(bridged.code) is True  # the prompt is still open
    assert api.is_trusted_session


def test_an_unreachable_push_websocket_fails_the_sign_in(
    bridged: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why the tests share a CA in ``SSL_CERT_FILE``: without it the websocket's TLS fails, and
    pyicloud 2026.10.1 does not fall back to SMS as it means to. ``start`` opens the websocket
    (``hsa2_bridge.py`` line 1107) before its ``try`` that turns ``OSError`` into the
    ``PyiCloudTrustedDevicePromptException`` ``request_2fa_code`` catches, so the ``OSError``
    ends ``authenticate``. On Apple the same happens when ``websocket.push.apple.com`` is
    blocked. If pyicloud fixes this, expect SMS here (``verify/phone/securitycode``)."""
    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())  # the emulator's CA is not in there
    with pytest.raises(ssl.SSLCertVerificationError):
        bridged.service(tmp_path / "cookies")
    assert BRIDGE + "/step/0" not in _counts(bridged)


def test_legacy_route_offers_no_bridge(tmp_path: Path) -> None:
    with start_emulator(tmp_path, "--2fa-route", "legacy") as emu:
        assert emu.info["two_factor_route"] == "legacy"
        api = emu.service(tmp_path / "cookies")
        assert api.two_factor_delivery_method == "sms"
        assert api.validate_2fa_code(emu.code) is True
        assert api.is_trusted_session
        counts = _counts(emu)
        assert counts[LEGACY_SMS] == 1
        assert WEBSOCKET not in counts and not any(path.startswith(BRIDGE) for path in counts)

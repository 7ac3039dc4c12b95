"""idmsa routes (``/appleauth/auth/...``): SRP sign-in, 2FA by trusted device or SMS, session trust.

Failure shapes follow Apple: a wrong password (an app-specific password is just a
wrong password here, as on Apple's web sign-in) is 401 ``-20101``; the
``lock_after``-th consecutive one locks the account, and a locked account gets 403
``-20209`` on every sign-in step; a wrong code is 400 ``-21669``. A 2FA challenge
is 409 ``{"authType": "hsa2"}``.

``GET /appleauth/auth`` depends on ``two_factor_route``. With ``bridge`` (the default, as
Apple) a request for HTML (pyicloud's first one) gets the auth shell whose boot args send
pyicloud through the trusted-device bridge (``bridge.py``); a request for JSON gets the
SMS-oriented options, as Apple's "collapses" to (pyicloud ``base.py``
``_get_mfa_auth_options``). With ``legacy`` every request gets that JSON: a trusted phone
with ``pushMode: "sms"`` and no bridge, so pyicloud's path is SMS (``PUT verify/phone``
then ``verify/phone/securitycode``). In both, the legacy trusted-device endpoint
``verify/trusteddevice/securitycode`` accepts the code too: pyicloud posts there when no
bridge session is live (after a wrong bridge code, or with ``use_existing_trusted_device_code``).
"""

from __future__ import annotations

import base64
import random
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from icloudfs.emulator.bridge import auth_shell
from icloudfs.emulator.context import emulator_of
from icloudfs.emulator.responses import json_response, read_json, service_error
from icloudfs.emulator.routing import Routes
from icloudfs.emulator.sessions import Attempt

router = Routes("/appleauth/auth")

_COUNTRY = "USA"
_PHONE = {
    "id": 1,
    "numberWithDialCode": "+1 (•••) •••-••66",
    "pushMode": "sms",
    "obfuscatedNumber": "(•••) •••-••66",
    "lastTwoDigits": "66",
    "nonFTEU": False,
}
_SECURITY_CODE = {
    "length": 6,
    "tooManyCodesSent": False,
    "tooManyCodesValidated": False,
    "securityCodeLocked": False,
    "securityCodeCooldown": False,
}


def _locked() -> Response:
    return service_error(
        403,
        "-20209",
        "This Apple ID has been locked for security reasons. "
        "Visit iForgot to reset your account (https://iforgot.apple.com).",
    )


def _attempt(request: Request) -> Attempt:
    """The sign-in this request continues; an unknown one starts afresh, as Apple tolerates."""
    sessions = emulator_of(request).sessions
    return sessions.attempt(request.headers.get("X-Apple-ID-Session-Id")) or sessions.begin()


def _headers(attempt: Attempt, **extra: str) -> dict[str, str]:
    return {"X-Apple-ID-Session-Id": attempt.session_id, "scnt": attempt.scnt, **extra}


@router.get("/authorize/signin")
async def authorize(request: Request) -> Response:
    attempt = emulator_of(request).sessions.begin()
    headers = _headers(
        attempt, **{"X-Apple-Auth-Attributes": base64.b64encode(attempt.scnt.encode()).decode()}
    )
    return Response("<html><body>Sign in</body></html>", media_type="text/html", headers=headers)


@router.post("/signin/init")
async def signin_init(request: Request) -> Response:
    emulator = emulator_of(request)
    attempt = _attempt(request)
    if emulator.sessions.locked:
        return _locked()
    body = await read_json(request) or {}
    account = str(body.get("accountName", ""))
    # Unknown accounts get a challenge too (no account enumeration) that no password satisfies.
    known = account.lower() == emulator.config.apple_id.lower()
    password = emulator.config.password if known else emulator.secret.hex()
    challenge = emulator.srp.start(
        account, password, base64.b64decode(body.get("a", "")), list(body.get("protocols") or [])
    )
    answer = {
        "iteration": challenge["iteration"],
        "salt": base64.b64encode(challenge["salt"]).decode(),
        "protocol": challenge["protocol"],
        "b": base64.b64encode(challenge["b"]).decode(),
        "c": challenge["c"],
    }
    return json_response(answer, headers=_headers(attempt))


@router.post("/signin/complete")
async def signin_complete(request: Request) -> Response:
    emulator = emulator_of(request)
    sessions = emulator.sessions
    attempt = _attempt(request)
    if sessions.locked:
        return _locked()
    body: dict[str, Any] = await read_json(request) or {}
    proven = emulator.srp.finish(
        str(body.get("c", "")), str(body.get("accountName", "")), base64.b64decode(body.get("m1", ""))
    )
    if not proven:
        if sessions.password_failed():
            return _locked()
        return service_error(401, "-20101", "Your Apple ID or password was incorrect.")
    sessions.password_ok()
    attempt.password_ok = True
    trusted = not emulator.config.two_factor or sessions.trusted_by(list(body.get("trustTokens") or []))
    token = sessions.session_token(trusted=trusted)
    headers = _headers(
        attempt,
        **{
            "X-Apple-Session-Token": token.token,
            "X-Apple-ID-Account-Country": _COUNTRY,
            "X-Apple-TwoSV-Trust-Eligible": "true",
        },
    )
    return json_response({"authType": "hsa2"}, status=200 if trusted else 409, headers=headers)


@router.get("")
async def auth_options(request: Request) -> Response:
    attempt = _attempt(request)
    if not attempt.password_ok:
        return service_error(401, "-20101", "Your Apple ID or password was incorrect.")
    body = {
        "trustedPhoneNumbers": [_PHONE],
        "trustedPhoneNumber": _PHONE,
        "securityCode": _SECURITY_CODE,
        "authenticationType": "hsa2",
        "hsa2Account": True,
        "restrictedAccount": False,
        "managedAccount": False,
        "trustedDeviceCount": 1,
        "otherTrustedDeviceClass": "iPhone",
        "hasRecoveryKey": False,
        "supportsRecoveryKey": False,
        "autoVerified": False,
        "showAutoVerificationUI": False,
        "hideSendSMSCodeOption": False,
        "supportsRecovery": True,
        "noTrustedDevices": False,
    }
    wants_html = "text/html" in request.headers.get("accept", "")
    if wants_html and emulator_of(request).config.two_factor_route == "bridge":
        return auth_shell(request, {**body, "mode": "sms"}, _headers(attempt))
    return json_response(body, headers=_headers(attempt))


@router.put("/verify/phone")
async def send_sms(request: Request) -> Response:
    attempt = _attempt(request)
    if not attempt.password_ok:
        return service_error(401, "-20101", "Your Apple ID or password was incorrect.")
    body = {
        "trustedPhoneNumber": _PHONE,
        "securityCode": _SECURITY_CODE,
        "mode": "sms",
        "type": "verification",
        "authenticationType": "hsa2",
    }
    return json_response(body, headers=_headers(attempt))


async def _check_code(request: Request, success_status: int) -> Response:
    emulator = emulator_of(request)
    attempt = _attempt(request)
    body = await read_json(request) or {}
    code = str((body.get("securityCode") or {}).get("code", ""))
    if not attempt.password_ok or code != emulator.config.code:
        return service_error(400, "-21669", "Incorrect verification code.")
    attempt.code_ok = True
    if success_status == 204 and random.random() < emulator.config.accepted_code_conflicts:
        # Apple sometimes takes a right code with 409 and the verdict in the body (rclone commit
        # 731f2a6c2; pyicloud base.py _is_accepted_security_code_conflict, "_W" challenges)
        accepted = {"securityCode": {**_SECURITY_CODE, "code": code, "valid": True}}
        return json_response(accepted, 409, headers=_headers(attempt))
    if success_status == 204:
        return Response(status_code=204, headers=_headers(attempt))
    answer = {
        "trustedPhoneNumber": _PHONE,
        "securityCode": {**_SECURITY_CODE, "valid": True},
        "mode": "sms",
        "type": "verification",
        "authenticationType": "hsa2",
    }
    return json_response(answer, headers=_headers(attempt))


@router.post("/verify/phone/securitycode")
async def verify_sms(request: Request) -> Response:
    return await _check_code(request, 200)


@router.post("/verify/trusteddevice/securitycode")
async def verify_device(request: Request) -> Response:
    return await _check_code(request, 204)


@router.get("/2sv/trust")
async def trust(request: Request) -> Response:
    sessions = emulator_of(request).sessions
    attempt = _attempt(request)
    if not attempt.code_ok:
        return service_error(401, "-21669", "Verification required.")
    token, trust_token = sessions.session_token(trusted=True), sessions.trust_token()
    return Response(
        status_code=204,
        headers=_headers(
            attempt,
            **{
                "X-Apple-Session-Token": token.token,
                "X-Apple-TwoSV-Trust-Token": trust_token.token,
                "X-Apple-ID-Account-Country": _COUNTRY,
            },
        ),
    )

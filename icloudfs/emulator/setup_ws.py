"""setup routes (``/setup/ws/1/...``): accountLogin, validate, logout, ADP/PCS state, storage.

``accountLogin`` trades a session token for a web session (cookies
``X-APPLE-WEBAUTH-TOKEN`` and ``X-APPLE-WEBAUTH-VALIDATE=v=1:t=...``); an unknown or
expired session token is refused with 421 unless the body also carries a live
trust token, which renews it without 2FA. Under ``--adp`` the web access state
says ICDRS is disabled until device consent is given (``enableDeviceConsentForPCS`` sends the
notification unless web access is off on the device; ``POST /__emulator__/adp-consent`` stands
in for tapping Allow); ``requestPCS`` then grants the session PCS access and sets the app's
``X-APPLE-WEBAUTH-PCS-*`` cookies, which open Drive for ``--pcs-ttl`` seconds (then 423
"Missing PCS cookies", as without them), or answers a failure message that pyicloud reports
as "Unable to request PCS access!".
"""

from __future__ import annotations

import secrets
import time

from starlette.requests import Request
from starlette.responses import Response

from icloudfs.emulator.context import emulator_of, origin_of
from icloudfs.emulator.guard import require_web
from icloudfs.emulator.login_data import account_login_body
from icloudfs.emulator.responses import json_response, read_json, session_expired
from icloudfs.emulator.routing import Routes

router = Routes("/setup/ws/1")
TRUST_COOKIE = "X-APPLE-WEBAUTH-HSA-TRUST"
_COOKIE_AGE = 60 * 86400
# The PCS cookies each app's grant carries; rclone reads these names after a "success"
# (backend/iclouddrive/api/session.go pcsServices) and gives up when they are missing.
_PCS_COOKIES = {
    "iclouddrive": ("X-APPLE-WEBAUTH-PCS-Documents",),
    "photos": ("X-APPLE-WEBAUTH-PCS-Photos", "X-APPLE-WEBAUTH-PCS-Sharing"),
}


def _login_answer(request: Request, trusted: bool) -> Response:
    emulator = emulator_of(request)
    body = account_login_body(origin_of(request), emulator.config.apple_id, emulator.dsid, trusted)
    return json_response(body)


def _set_cookie(response: Response, name: str, value: str, max_age: int) -> None:
    # Written by hand: the values hold '=' and ':', which SimpleCookie would quote.
    response.headers.append("set-cookie", f"{name}={value}; Path=/; Max-Age={max_age}; Secure; HttpOnly")


@router.post("/accountLogin")
async def account_login(request: Request) -> Response:
    emulator = emulator_of(request)
    body = await read_json(request) or {}
    web = emulator.sessions.login(body.get("dsWebAuthToken"), body.get("trustToken"))
    if web is None:
        return session_expired()
    response = _login_answer(request, web.trusted)
    _set_cookie(response, "X-APPLE-WEBAUTH-TOKEN", web.token, _COOKIE_AGE)
    _set_cookie(
        response, "X-APPLE-WEBAUTH-VALIDATE", f"v=1:t={emulator.sessions.validate_value(web)}", _COOKIE_AGE
    )
    _set_cookie(response, "X-APPLE-WEBAUTH-USER", f"v=1:s=0:d={emulator.dsid}", _COOKIE_AGE)
    trust_left = int(emulator.sessions.trust_left(body.get("trustToken")))
    if trust_left:  # the browser's trust, lasting as long as the trust token behind it
        _set_cookie(response, TRUST_COOKIE, secrets.token_urlsafe(24), trust_left)
    return response


@router.post("/validate")
async def validate(request: Request) -> Response:
    """A live session's account data; a dead session token is 400 "Invalid Session Token", as
    Apple answers it (rclone issue 8155), where Drive calls would get 421."""
    web = require_web(request, check_dsid=False)
    if isinstance(web, Response):
        return json_response({"success": False, "error": "Invalid Session Token"}, 400)
    return _login_answer(request, web.trusted)


@router.post("/logout")
async def logout(request: Request) -> Response:
    web = require_web(request, check_dsid=False)
    if isinstance(web, Response):
        return web
    emulator_of(request).sessions.logout(web)
    response = json_response({"success": True})
    for name in ("X-APPLE-WEBAUTH-TOKEN", "X-APPLE-WEBAUTH-VALIDATE", "X-APPLE-WEBAUTH-USER"):
        _set_cookie(response, name, "", 0)
    return response


@router.post("/requestWebAccessState")
async def web_access_state(request: Request) -> Response:
    web = require_web(request)
    if isinstance(web, Response):
        return web
    emulator = emulator_of(request)
    return json_response(
        {
            "isICDRSDisabled": emulator.config.adp,
            "isDeviceConsentedForPCS": emulator.sessions.consented,
        }
    )


@router.post("/enableDeviceConsentForPCS")
async def enable_consent(request: Request) -> Response:
    """Ask the user's devices to allow this web session (``POST /__emulator__/adp-consent`` is
    the tap on "Allow"); with web access off on the device there is no one to ask."""
    web = require_web(request)
    if isinstance(web, Response):
        return web
    sent = emulator_of(request).sessions.web_access
    return json_response({"isDeviceConsentNotificationSent": sent})


@router.post("/requestPCS")
async def request_pcs(request: Request) -> Response:
    web = require_web(request)
    if isinstance(web, Response):
        return web
    sessions = emulator_of(request).sessions
    if not sessions.consented:
        return json_response(
            {
                "isWebAccessAllowed": False,
                "status": "failure",
                "message": "Device consent for PCS has not been given.",
            }
        )
    cookie = sessions.grant_pcs(web)
    granted = {"isWebAccessAllowed": True, "status": "success", "message": "Cookies attached."}
    response = json_response(granted)
    body = await read_json(request) or {}
    lifetime = max(0, int(web.expires - time.time()))
    for name in _PCS_COOKIES.get(str(body.get("appName", "")), ()):
        _set_cookie(response, name, cookie, lifetime)  # the grant's cookie: it ends with the grant
    return response


@router.post("/storageUsageInfo")
async def storage_usage(request: Request) -> Response:
    web = require_web(request)
    if isinstance(web, Response):
        return web
    emulator = emulator_of(request)
    used, total = emulator.store.used_bytes(), emulator.config.quota_bytes
    media = [
        ("photos", "Photos and Videos", "ffcc00", 0),
        ("backup", "Backup", "5856d6", 0),
        ("docs", "Documents", "ff9500", used),
        ("mail", "Mail", "007aff", 0),
    ]
    return json_response(
        {
            "storageUsageByMedia": [
                {"mediaKey": k, "displayLabel": label, "displayColor": color, "usageInBytes": n}
                for k, label, color, n in media
            ],
            "storageUsageInfo": {
                "compStorageInBytes": 0,
                "usedStorageInBytes": used,
                "totalStorageInBytes": total,
                "commerceStorageInBytes": 0,
            },
            "quotaStatus": {
                "overQuota": used > total,
                "haveMaxQuotaTier": False,
                "almost-full": used > 0.9 * total,
                "paidQuota": False,
            },
        }
    )

"""Admission checks shared by setup, drivews and docws: a live web session, the dsid, ADP consent.

A missing or stale ``X-APPLE-WEBAUTH-TOKEN`` cookie is 421 (pyicloud's "authentication
required"), a wrong ``dsid`` param is 400, and Drive under Advanced Data Protection
without device consent and a PCS grant is 423, as Apple answers. Apple authenticates by
the cookies alone, so a request without ``dsid`` is served: rclone sends no query
parameters on its setup and Drive calls.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from icloudfs.emulator.context import emulator_of
from icloudfs.emulator.responses import json_response, session_expired
from icloudfs.emulator.store import Token

PCS_COOKIE = "X-APPLE-WEBAUTH-PCS-Documents"  # Drive's (rclone api/session.go pcsServices)


def require_web(request: Request, check_dsid: bool = True) -> Token | Response:
    """The caller's web session, or the answer refusing the request."""
    emulator = emulator_of(request)
    web = emulator.sessions.web(request.cookies.get("X-APPLE-WEBAUTH-TOKEN"))
    if web is None:
        return session_expired()
    dsid = request.query_params.get("dsid")
    # rclone sends no dsid (backend/iclouddrive/api/session.go GetHeaders: cookies, no params)
    if check_dsid and dsid is not None and dsid != emulator.dsid:
        return json_response({"success": False, "error": "Wrong dsid"}, 400)
    return web


def require_drive(request: Request) -> Token | Response:
    """``require_web`` plus a trusted (2FA-complete) session and, under ADP, consent + PCS."""
    web = require_web(request)
    if isinstance(web, Response):
        return web
    if not web.trusted:
        return session_expired()
    sessions = emulator_of(request).sessions
    if not (sessions.consented and sessions.pcs_granted(web, request.cookies.get(PCS_COOKIE))):
        # what Drive answers without them (rclone issue 8310: "Missing PCS cookies")
        return json_response({"success": False, "error": "Missing PCS cookies"}, 423)
    return web

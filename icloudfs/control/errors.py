"""Every error response, and the one place ``icloudfs.errors`` become HTTP statuses.

All errors use the envelope ``{"error": true, "reason": "..."}`` (rendered with
``json.dumps``' default separators). 401 and 429 belong to the auth middleware
(token failures only), so credential problems never use 401:

    AppSpecificPassword, CredentialError   400  bad input, nothing was sent to Apple
    AuthRequired                           409  signed out: POST /credentials/login
                                           400  during login: the password was wrong
    Needs2FA                               409  a code is needed: POST /credentials/2fa
    ConsentPending                         409  a trusted device must tap Allow (ADP)
                                           400  during 2FA/login: the code was wrong
    AccountLocked, WebAccessBlocked        403  the user must act at Apple
    NotFound                               404
    AlreadyExists, Conflict                409
    Throttled, Unavailable                 503  with Retry-After
    NotAttached (no account / not mounted) 409
    UnknownToken                           404
    any other icloudfs error               400  a refusal on purpose (a file used as a folder...)
    anything else                          500  (logged with its traceback)

"During login/2FA" is the ``credential_step()`` context, the only place where
the same error means "your input was wrong" rather than "the account is in
this state".
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.routing import Match
from starlette.types import Scope

from icloudfs import errors as e
from icloudfs.control.service import NotAttached
from icloudfs.control.tokens import UnknownToken

log = logging.getLogger(__name__)

APP_SPECIFIC_REASON = (
    "This looks like an app-specific password (xxxx-xxxx-xxxx-xxxx). Those only work for the "
    "mail, calendar and contacts protocols (IMAP, CalDAV, CardDAV); iCloud Drive needs your "
    "Apple ID password followed by a two-factor code."
)
RETRY_AFTER = 60

_STATES: dict[type[Exception], tuple[int, str]] = {
    e.AppSpecificPassword: (400, APP_SPECIFIC_REASON),
    e.AuthRequired: (409, "Not signed in to iCloud: sign in with POST /credentials/login"),
    e.Needs2FA: (409, "Apple wants a two-factor code: send it to POST /credentials/2fa"),
    e.ConsentPending: (
        409,
        "Advanced Data Protection: Apple asked your trusted devices to allow this sign-in; "
        "tap Allow on one of them",
    ),
    e.AccountLocked: (
        403,
        "Apple locked this Apple ID after failed sign-ins; unlock it at https://iforgot.apple.com",
    ),
    e.WebAccessBlocked: (
        403,
        "Advanced Data Protection blocks web access: turn on 'Access "
        "iCloud Data on the Web' on a trusted device",
    ),
    e.Throttled: (503, "Apple is throttling requests; retry later"),
    e.Unreachable: (503, "iCloud could not be reached; retry later"),
    e.Unavailable: (503, "iCloud answered with an error; retry later"),
    e.NotFound: (404, "No such item in iCloud Drive"),
    e.AlreadyExists: (409, "An item with that name already exists"),
    e.Conflict: (409, "The item changed in iCloud meanwhile"),
}
_INPUT: dict[type[Exception], tuple[int, str]] = {
    e.AuthRequired: (400, "The Apple ID or password was not accepted"),
    e.Needs2FA: (400, "The two-factor code was not accepted; use the newest code"),
}


class ApiError(Exception):
    """An error already decided: status, reason and extra headers."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.headers = status, reason, headers or {}


class EnvelopeResponse(JSONResponse):
    """JSON rendered with ``json.dumps`` defaults: ``{"error": true, "reason": "..."}``."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content).encode()


def error_response(status: int, reason: str, headers: Mapping[str, str] | None = None) -> Response:
    return EnvelopeResponse({"error": True, "reason": reason}, status_code=status, headers=headers)


def translate(exc: e.IcloudfsError, *, user_input: bool = False) -> ApiError:
    """The HTTP form of an icloudfs error (``user_input``: raised while checking what the
    user typed)."""
    tables = (_INPUT, _STATES) if user_input else (_STATES,)
    for table in tables:
        for kind in type(exc).__mro__:
            if kind in table:
                status, reason = table[kind]
                if kind is e.Unavailable and str(exc):  # answered, but not as asked: say what
                    reason = f"{reason} ({exc})"
                headers = {"Retry-After": str(RETRY_AFTER)} if status == 503 else None
                return ApiError(status, reason, headers)
    if isinstance(exc, e.CredentialError):
        return ApiError(400, str(exc) or "That credential cannot work")
    return ApiError(400, f"{type(exc).__name__}: {exc}")  # a refusal on purpose, e.g. NotAFolder


@contextmanager
def credential_step() -> Iterator[None]:
    """Around login and 2FA: errors there mean the user's input was wrong."""
    try:
        yield
    except e.IcloudfsError as exc:
        raise translate(exc, user_input=True) from exc


def _validation_reason(exc: RequestValidationError) -> str:
    # loc and msg only: the input may hold a password
    parts = [
        f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', 'invalid')}" for err in exc.errors()
    ]
    return "; ".join(parts) or "Invalid request"


def _allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """The methods some route fully matches for this path (routers nest: ask each one)."""
    return [
        method
        for method in ("GET", "POST", "PUT", "DELETE", "PATCH")
        if any(route.matches({**scope, "method": method})[0] == Match.FULL for route in app.router.routes)
    ]


def install(app: FastAPI) -> None:
    """Make every error ``app`` can produce use the envelope."""

    async def api_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.reason, exc.headers)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # Starlette names one route's methods; the path may have more
            headers["Allow"] = ", ".join(_allowed_methods(app, request.scope))
        return error_response(exc.status_code, str(exc.detail), headers)

    async def invalid(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_response(422, _validation_reason(exc))

    async def icloudfs_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, e.IcloudfsError)
        err = translate(exc)
        if err.status == 500:
            log.error("Unmapped error", exc_info=exc)
        return error_response(err.status, err.reason, err.headers)

    async def not_attached(_: Request, exc: Exception) -> Response:
        return error_response(409, str(exc))

    async def unknown_token(_: Request, exc: Exception) -> Response:
        return error_response(404, f"No token with id {exc}")

    async def internal(_: Request, exc: Exception) -> Response:
        return error_response(500, "Internal error")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(e.IcloudfsError, icloudfs_error)
    app.add_exception_handler(NotAttached, not_attached)
    app.add_exception_handler(UnknownToken, unknown_token)
    app.add_exception_handler(Exception, internal)

"""Sign-in, two-factor, SMS, sign-out and what is known about the account.

The password passes through as a ``SecretStr`` and is never returned or
logged. An app-specific password (``xxxx-xxxx-xxxx-xxxx``) is refused before
anything reaches Apple: it only works for mail/calendar/contacts protocols.
"""

from __future__ import annotations

from fastapi import APIRouter

from icloudfs.control.errors import credential_step
from icloudfs.control.routes.deps import GUARDED, Service
from icloudfs.control.schemas import (
    AccountStatus,
    AuthStateBody,
    LoginRequest,
    LogoutRequest,
    TwoFactorRequest,
    errors,
)
from icloudfs.control.service import ControlService, account_status
from icloudfs.icloud.passwords import check_password

router = APIRouter(prefix="/credentials", tags=["credentials"], responses=GUARDED)
_SIGN_IN = errors(400, 403, 409, 503)


@router.get("", responses=errors(409))
def credentials(service: Service) -> AccountStatus:
    """Apple ID, sign-in state, keyring backend; never the password."""
    return account_status(service.need_account())


@router.post("/login", responses=_SIGN_IN)
def login(service: Service, body: LoginRequest) -> AuthStateBody:
    account = service.need_account()
    password = body.password.get_secret_value()
    with credential_step():
        check_password(password)  # an app-specific password never reaches Apple
        state = account.login(body.apple_id, password, remember=body.remember)
    return _resumed(service, state)


@router.post("/2fa", responses=_SIGN_IN)
def submit_2fa(service: Service, body: TwoFactorRequest) -> AuthStateBody:
    account = service.need_account()
    with credential_step():
        state = account.submit_2fa(body.code)
    return _resumed(service, state)


@router.post("/2fa/sms", status_code=204, responses=_SIGN_IN)
def request_sms(service: Service) -> None:
    """Ask Apple to text a code to the trusted number."""
    service.need_account().request_sms()


@router.post("/logout", responses=errors(409))
def logout(service: Service, body: LogoutRequest | None = None) -> AuthStateBody:
    account = service.need_account()
    account.logout(forget_password=body.forget_password if body else False)
    return _state(account.state)


def _resumed(service: ControlService, state: str) -> AuthStateBody:
    """Signed in again: uploads that waited for it go now, not after their backoff."""
    if str(state) == "signed_in" and service.filesystem is not None:
        service.filesystem.retry_uploads()
    return _state(state)


def _state(value: str) -> AuthStateBody:
    return AuthStateBody.model_validate({"auth_state": str(value)})

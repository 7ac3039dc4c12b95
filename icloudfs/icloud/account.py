"""One Apple ID's session with iCloud: sign-in, two-factor codes, trust and silent renewal.

pyicloud does the protocol (SRP, 2FA, trust, cookies). This class adds what a
long-running mount needs around it:

- a state machine (``AuthState``) that the control plane reports and that the
  Drive backend consults instead of prompting inside the filesystem;
- ``renew()`` after a 421: reset the connection pool, then re-authenticate from
  the saved session / trust token and the keyring password, never asking for a
  code unless Apple truly demands one (then the state is ``needs_2fa``);
- throttling discipline: a 503 from sign-in sets a back-off window during which
  no sign-in is attempted at all, by any process of the user (``backoff.py``), so a
  mount never loops sign-ins and a second ``login`` does not extend Apple's block;
- Advanced Data Protection (``web_access.py``): with web access allowed, a device is asked to
  allow the sign-in and the state is ``needs_consent`` until someone taps Allow (the account
  looks again when next used, at most every ``CONSENT_RECHECK_S``); PCS cookies that expire are
  asked for again (``renew_pcs``). Only with web access off is it ``web_access_off``
  (``WebAccessBlocked``).
- a mount started while iCloud does not answer comes up from the saved session and signs in
  when a call finds iCloud again; ``reachability`` says since when it has not answered;
- the session files on disk survive kill -9 and say how long the trust lasts
  (``session_files.py``);
- every HTTP call of its sessions is timed and counted (``metrics``, shown at
  ``/metrics``), below pyicloud, in the transport adapter.

Lock order: ``_lock`` only; it serialises every sign-in step, and ``renew`` uses a
generation counter so that 64 threads seeing the same 421 renew once.

It is longer than most modules here because one lock and one state machine cover sign-in,
codes, renewal and Advanced Data Protection consent, and splitting them would split the
invariant; what needs no lock lives apart (``session_files``, ``reachability``, ``backoff``,
``web_access``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from pyicloud import PyiCloudService
from pyicloud.exceptions import (
    PyiCloudAccountLockedException,
    PyiCloudAPIResponseException,
    PyiCloudConnectionException,
    PyiCloudException,
    PyiCloudFailedLoginException,
)
from pyicloud.services.drive import DriveService

from icloudfs.errors import (
    AccountLocked,
    AuthError,
    AuthRequired,
    ConsentPending,
    Needs2FA,
    Throttled,
    Unavailable,
    Unreachable,
    WebAccessBlocked,
)
from icloudfs.icloud import web_access
from icloudfs.icloud.backoff import SignInBackoff
from icloudfs.icloud.endpoint import service_class
from icloudfs.icloud.passwords import PasswordStore, check_password, keyring_info
from icloudfs.icloud.reachability import Reachability
from icloudfs.icloud.session_files import SessionFiles, TimeoutAdapter, save_only_changes
from icloudfs.metrics import HttpMetrics

log = logging.getLogger(__name__)

T = TypeVar("T")


CONSENT_RECHECK_S = 5.0  # how often a sign-in waiting for a device's Allow looks again
RESUME_RETRY_S = 5.0  # how often a mount started offline tries to sign in


class AuthState(StrEnum):
    """Where the account stands, as the control plane reports it."""

    SIGNED_OUT = "signed_out"
    NEEDS_PASSWORD = "needs_password"
    NEEDS_2FA = "needs_2fa"
    SIGNED_IN = "signed_in"
    SESSION_EXPIRED = "session_expired"
    LOCKED = "locked"
    THROTTLED = "throttled"
    NEEDS_CONSENT = "needs_consent"  # Advanced Data Protection: a device must allow this sign-in
    WEB_ACCESS_OFF = "web_access_off"  # Advanced Data Protection with web access turned off


class Account:
    """The session of one Apple ID; thread-safe."""

    def __init__(
        self,
        apple_id: str = "",
        *,
        session_dir: Path,
        endpoint: str | None = None,
        ca_file: str | None = None,
        passwords: PasswordStore | None = None,
        request_timeout: float = 60.0,
        metrics: HttpMetrics | None = None,
    ) -> None:
        self.apple_id = apple_id
        self.request_timeout = request_timeout
        self.metrics = metrics or HttpMetrics()  # every HTTP call of every session made here
        self._session_dir = session_dir
        self._files = SessionFiles(session_dir)
        self._service_cls = service_class(endpoint or None)
        self._verify: bool | str = ca_file or True
        self._passwords = passwords or PasswordStore()
        self._lock = threading.RLock()
        self._api: PyiCloudService | None = None
        self._drive: DriveService | None = None
        self._password: str | None = None
        self._remember = True
        self._state = AuthState.SIGNED_OUT
        self._generation = 0
        self._backoff = SignInBackoff(session_dir / "sign-in-backoff.json")
        self._consent_checked = 0.0
        self.last_error: str | None = None
        self.reachability = Reachability()
        self._resume_at = 0.0  # set while a sign-in waits for iCloud to answer (offline start)

    # -- state -------------------------------------------------------------------------

    @property
    def state(self) -> AuthState:
        with self._lock:
            if self._state is AuthState.THROTTLED and time.time() >= self._backoff.until:
                return AuthState.SIGNED_IN if self._api is not None else AuthState.SIGNED_OUT
            return self._state

    @property
    def generation(self) -> int:
        """Bumped on every successful (re)authentication; see ``renew``."""
        return self._generation

    def info(self) -> dict[str, Any]:
        """What the control plane shows about the account (never the password). A sign-in
        waiting for a device's Allow looks again first, so whoever watches sees it arrive."""
        self.check_consent()
        keyring = keyring_info()
        stored = bool(self.apple_id) and self._passwords.get(self.apple_id) is not None
        return {
            "apple_id": self.apple_id or None,
            "auth_state": self.state.value,
            "trust_days_left": self._files.trust_days_left(self.apple_id, self._api),
            "keyring_backend": keyring.backend,
            "keyring_plaintext": keyring.plaintext,
            "password_stored": stored,
            "last_error": self.last_error,
            "unreachable_since": self.reachability.since,
            "unreachable_cause": self.reachability.cause if self.reachability.since else None,
        }

    # -- sign-in -----------------------------------------------------------------------

    def resume(self) -> AuthState:
        """Start from the saved session and keyring password, without prompting."""
        with self._lock:
            if not self.apple_id:
                return self._set(AuthState.SIGNED_OUT)
            self._password = self._passwords.get(self.apple_id)
            if self._files.repair(self.apple_id):
                log.warning(
                    "the saved iCloud session was damaged (killed while writing?); using the last good copy"
                )
            api = self._new_api(self._password)
            try:
                return self._authenticate(api, force=False)
            except Unreachable as error:
                # No answer at all: start from the saved session anyway (the mount serves its
                # cache) and sign in when a call finds iCloud again (``drive``).
                self.reachability.failed(str(error))
                self._resume_at = time.monotonic() + RESUME_RETRY_S
                return self._set(AuthState.SIGNED_IN)

    def login(self, apple_id: str, password: str, *, remember: bool = True) -> AuthState:
        """Sign in with a password; returns ``needs_2fa`` when a code is due."""
        check_password(password)
        with self._lock:
            self._check_throttle()
            self.apple_id = apple_id.strip()
            self._password, self._remember = password, remember
            api = self._new_api(password)
            # Drop the old session token (but keep the trust token), so the password
            # is really checked and a trusted session still skips the code.
            api.session.data.pop("session_token", None)
            return self._authenticate(api, force=True)

    def submit_2fa(self, code: str) -> AuthState:
        """Complete sign-in with a two-factor code; ``Needs2FA`` if Apple refuses it."""
        with self._lock:
            api = self._pending_api()
            ok = self._guard(lambda: api.validate_2fa_code(code.strip()))
            if not ok:
                raise Needs2FA("Apple did not accept that code. Check it and try again.")
            if not api.is_trusted_session:
                raise Needs2FA("Apple accepted the code but did not trust this session.")
            return self._signed_in(api)

    def request_sms(self) -> None:
        """Ask Apple to send the code by SMS instead of to a trusted device."""
        with self._lock:
            api = self._pending_api()
            # pyicloud has no public "send SMS instead"; this is the method its own
            # request_2fa_code() falls back to.
            self._guard(lambda: api._request_sms_2fa_code())

    def logout(self, *, forget_password: bool = False) -> None:
        """End the web session and delete this account's saved session files."""
        with self._lock:
            api = self._api or (self._new_api(None) if self.apple_id else None)
            if api is not None:
                try:
                    api.logout()  # remote logout when signed in; always clears the local files
                except PyiCloudException as error:
                    log.warning("remote logout failed (local session cleared anyway): %s", error)
                    api.session.clear_persistence(remove_files=True)
            self._files.forget(self.apple_id)
            if forget_password and self.apple_id:
                self._passwords.delete(self.apple_id)
            self._api = self._drive = None
            self._password = None
            self._resume_at = 0.0
            self._set(AuthState.SIGNED_OUT)

    # -- use by the Drive backend --------------------------------------------------------

    def drive(self) -> tuple[DriveService, PyiCloudService, int]:
        """The Drive service, its pyicloud session and the auth generation it belongs to."""
        with self._lock:
            if self._state is AuthState.NEEDS_CONSENT:
                self.check_consent()
            if self._resume_at:
                self._resume_offline_start()
            if self._api is None or self._drive is None:
                raise self._unusable_error()
            return self._drive, self._api, self._generation

    def _resume_offline_start(self) -> None:
        """Signing in was put off because iCloud did not answer at start: try again, at most
        every ``RESUME_RETRY_S`` (the calls in between fail at once)."""
        if time.monotonic() < self._resume_at:
            raise Unreachable(self.reachability.describe())
        self._resume_at = time.monotonic() + RESUME_RETRY_S
        api = self._api or self._new_api(self._password)
        try:
            self._authenticate(api, force=False)
        except Unreachable as error:
            self.reachability.failed(str(error))
            self._resume_at = time.monotonic() + RESUME_RETRY_S
            raise
        self.reachability.answered()

    def check_consent(self, *, now: bool = False) -> AuthState:
        """A sign-in waiting for a device's Allow: look whether it came (at most every
        ``CONSENT_RECHECK_S``, unless ``now``)."""
        with self._lock:
            if self._state is not AuthState.NEEDS_CONSENT or self._api is None:
                return self.state
            if not now and time.monotonic() - self._consent_checked < CONSENT_RECHECK_S:
                return self._state
            self._consent_checked = time.monotonic()
            return self._signed_in(self._api)

    def renew_pcs(self, seen_generation: int) -> None:
        """Drive answered 423: the PCS cookies expired; ask for new ones (no user needed while
        the consent holds), once for all threads that saw it."""
        with self._lock:
            if self._generation != seen_generation or self._api is None:
                return
            log.info("iCloud's PCS cookies expired (423); asking for new ones")
            try:
                api = self._api
                self._guard(lambda: web_access.request_pcs(api, user_action=False))
            except (ConsentPending, WebAccessBlocked) as closed:
                self._web_access_closed(api, closed)
                raise
            self._generation += 1

    def renew(self, seen_generation: int) -> None:
        """Re-authenticate after a 421, once for all threads that saw it."""
        with self._lock:
            if self._generation != seen_generation and self._state is AuthState.SIGNED_IN:
                return
            self._check_throttle()
            if self._api is None:
                raise self._unusable_error()
            log.info("iCloud session expired (421); renewing from the saved trust token")
            self._set(AuthState.SESSION_EXPIRED)
            # A 421 can be a pooled connection landing on the wrong server: reset first.
            self._api.session.close()
            self._authenticate(self._api, force=True)
            if self._state is not AuthState.SIGNED_IN:
                raise self._unusable_error()

    # -- internals -------------------------------------------------------------------------

    def _new_api(self, password: str | None) -> PyiCloudService:
        api = self._service_cls(
            self.apple_id,
            password,
            cookie_directory=str(self._session_dir),
            verify=self._verify,
            authenticate=False,
        )
        if isinstance(self._verify, str):
            # REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE would silently override an explicit CA file.
            api.session.trust_env = False
        # pyicloud sets no timeout, so a black-holed connection would hang a FUSE call forever.
        adapter = TimeoutAdapter(self.request_timeout, pool_maxsize=32)
        api.session.mount("https://", adapter)
        api.session.mount("http://", adapter)
        self.metrics.instrument(api.session)
        save_only_changes(api.session)
        return api

    def _authenticate(self, api: PyiCloudService, *, force: bool) -> AuthState:
        self._api, self._drive = api, None
        self._resume_at = 0.0
        try:
            self._guard(lambda: _sign_in(api, force))
        except AuthRequired:
            if not self._password:
                return self._set(AuthState.NEEDS_PASSWORD, "Sign in again: no password is saved.")
            raise
        if api.requires_2fa or api.requires_2sa:
            return self._set(AuthState.NEEDS_2FA)
        return self._signed_in(api)

    def _signed_in(self, api: PyiCloudService) -> AuthState:
        try:
            self._drive = self._guard(lambda: web_access.open_drive(api))
        except ConsentPending as pending:
            return self._web_access_closed(api, pending)
        except WebAccessBlocked as blocked:
            self._web_access_closed(api, blocked)
            raise
        if self._remember and self._password:
            self._passwords.set(self.apple_id, self._password)
        self._backoff.clear()
        self._generation += 1
        self._files.save_trust_time(self.apple_id, api)
        self._files.keep_good_copy(self.apple_id, api)
        return self._set(AuthState.SIGNED_IN)

    def _web_access_closed(self, api: PyiCloudService, error: ConsentPending | WebAccessBlocked) -> AuthState:
        """Signed in, but Drive stays shut (Advanced Data Protection): waiting for a device's
        Allow (looked at again later), or web access is off (the user must sign in again)."""
        self._api, self._drive = api, None
        self._consent_checked = time.monotonic()
        pending = isinstance(error, ConsentPending)
        return self._set(AuthState.NEEDS_CONSENT if pending else AuthState.WEB_ACCESS_OFF, str(error))

    def _pending_api(self) -> PyiCloudService:
        if self._api is None or self._state is not AuthState.NEEDS_2FA:
            raise AuthRequired("No sign-in is waiting for a code: sign in with the password first.")
        return self._api

    def _guard(self, call: Callable[[], T]) -> T:
        """Run a pyicloud call, translating its failures and updating the state."""
        try:
            return call()
        except PyiCloudAccountLockedException as error:
            self._set(AuthState.LOCKED)
            raise AccountLocked(
                "Apple has locked this Apple ID after too many failed attempts. Unlock it at "
                "iforgot.apple.com, then sign in again."
            ) from error
        except PyiCloudConnectionException as error:
            raise Unreachable(f"iCloud could not be reached: {error}") from error
        except (PyiCloudFailedLoginException, PyiCloudAPIResponseException) as error:
            status = _status_of(error)
            if status == 503:
                self._throttle()
            if status == 423:
                raise WebAccessBlocked(web_access.ADP_MESSAGE) from error
            if isinstance(error, PyiCloudFailedLoginException):
                if self._password is None:
                    raise AuthRequired("Sign in again: no password is saved.") from error
                self._set(AuthState.NEEDS_PASSWORD, "Apple ID or password was not accepted.")
                raise AuthRequired(
                    "Apple did not accept this Apple ID and password. Check both; note that "
                    "app-specific passwords do not work for iCloud web sign-in."
                ) from error
            raise Unavailable(f"iCloud answered {status}: {error}") from error

    def _throttle(self) -> None:
        wait = self._backoff.hit()
        self._set(AuthState.THROTTLED)
        raise Throttled(
            f"Apple is throttling sign-in (HTTP 503). icloudfs will not try again for {wait:.0f} s; "
            "signing in repeatedly only extends the block."
        )

    def _check_throttle(self) -> None:
        left = self._backoff.left()
        if left > 0:
            self._set(AuthState.THROTTLED)
            raise Throttled(f"Apple is throttling sign-in; waiting {left:.0f} s more before trying.")

    def _unusable_error(self) -> AuthError:
        state = self.state
        if state is AuthState.NEEDS_2FA:
            return Needs2FA("A two-factor code is needed: run `icloudfs login` or use the web page.")
        if state is AuthState.LOCKED:
            return AccountLocked("The Apple ID is locked.")
        if state is AuthState.NEEDS_CONSENT:
            return ConsentPending(self.last_error or web_access.CONSENT_MESSAGE)
        if state is AuthState.WEB_ACCESS_OFF:
            return WebAccessBlocked(self.last_error or web_access.ADP_MESSAGE)
        return AuthRequired("Not signed in: run `icloudfs login`.")

    def _set(self, state: AuthState, error: str | None = None) -> AuthState:
        self._state = state
        if error:
            self.last_error = error
        return state


def _sign_in(api: PyiCloudService, force: bool) -> None:
    """``api.authenticate``; again without Apple's two-factor push bridge if it cannot be reached.

    pyicloud opens the bridge's websocket (``wss://websocket.push.apple.com``, Python's default
    trust store) outside the ``try`` that falls back to SMS (pyicloud 2026.10.1 ``hsa2_bridge.py``
    line 1107, ``base.py`` line 1147), so a blocked host or a TLS-inspecting proxy ends the
    sign-in with a raw ``OSError``. Without the bridge the code is checked by the older
    trusted-device (or SMS) endpoint, which Apple still serves.
    """
    try:
        api.authenticate(force_refresh=force)
    except PyiCloudException:
        raise
    except OSError as error:
        log.warning("Apple's two-factor push bridge could not be reached (%s); signing in without it", error)
        setattr(api, "_supports_trusted_device_bridge", lambda: False)  # noqa: B010 (pyicloud private)
        api.authenticate(force_refresh=force)


def _status_of(error: BaseException) -> int | None:
    """The HTTP status behind a pyicloud error, looking through the errors it was raised from."""
    seen: BaseException | None = error
    while seen is not None:
        code = getattr(seen, "code", None)
        if isinstance(code, int):
            return code
        status = getattr(getattr(seen, "response", None), "status_code", None)
        if isinstance(status, int):
            return status
        seen = seen.__cause__ or seen.__context__
    return None

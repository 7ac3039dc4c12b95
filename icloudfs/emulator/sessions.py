"""Who is signed in: idmsa sign-in attempts, session/trust tokens, web sessions, lockout, ADP consent.

Apple's chain is modelled as four tokens, all kept in the store so a restart keeps
clients signed in:

* an idmsa *attempt* (``X-Apple-ID-Session-Id`` + ``scnt``), in memory: the SRP and
  2FA steps of one sign-in;
* a *session token* (``X-Apple-Session-Token`` / ``dsWebAuthToken``), trusted once 2FA
  passed or a trust token was shown;
* a *trust token* (``X-Apple-TwoSV-Trust-Token``), valid ``trust_days``: skips 2FA and
  lets ``accountLogin`` renew an expired session token;
* a *web session* (cookie ``X-APPLE-WEBAUTH-TOKEN``), valid ``session_ttl``, which
  setup/drivews/docws require; its ``X-APPLE-WEBAUTH-VALIDATE`` twin carries ``t=``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from icloudfs.emulator.config import EmulatorConfig
from icloudfs.emulator.store import Store, Token

SESSION, TRUST, WEB = "session", "trust", "web"


@dataclass
class Attempt:
    """One idmsa sign-in in progress."""

    session_id: str
    scnt: str
    password_ok: bool = False
    code_ok: bool = False


class Sessions:
    """Issues and checks every token of the sign-in chain."""

    def __init__(self, store: Store, config: EmulatorConfig, secret: bytes) -> None:
        self._store = store
        self._config = config
        self._secret = secret  # the emulator's signing key (``Emulator.secret``)
        self._attempts: dict[str, Attempt] = {}
        self._lock = threading.Lock()

    # ---- idmsa attempts -------------------------------------------------------------------

    def begin(self) -> Attempt:
        attempt = Attempt(secrets.token_hex(16), secrets.token_hex(24))
        with self._lock:
            if len(self._attempts) > 10000:
                self._attempts.clear()
            self._attempts[attempt.session_id] = attempt
        return attempt

    def attempt(self, session_id: str | None) -> Attempt | None:
        with self._lock:
            return self._attempts.get(session_id or "")

    # ---- lockout --------------------------------------------------------------------------

    @property
    def locked(self) -> bool:
        return self._store.get_value("locked") == "1"

    def password_failed(self) -> bool:
        """Count a bad password; True when this one locks the account."""
        failures = int(self._store.get_value("failures", "0")) + 1
        self._store.set_value("failures", str(failures))
        if failures >= self._config.lock_after:
            self._store.set_value("locked", "1")
            return True
        return False

    def password_ok(self) -> None:
        self._store.set_value("failures", "0")

    def unlock(self) -> None:
        self._store.set_value("failures", "0")
        self._store.set_value("locked", "0")

    # ---- tokens ---------------------------------------------------------------------------

    def session_token(self, trusted: bool) -> Token:
        return self._store.add_token(SESSION, trusted, self._config.session_ttl)

    def trust_token(self) -> Token:
        return self._store.add_token(TRUST, True, self._config.trust_days * 86400)

    def trusted_by(self, tokens: list[Any]) -> bool:
        """Whether any of these is a live trust token."""
        return any((t := self._store.get_token(TRUST, str(raw))) is not None and t.alive() for raw in tokens)

    def trust_left(self, trust_token: str | None) -> float:
        """Seconds the trust token has left (0 when unknown or dead)."""
        token = self._store.get_token(TRUST, trust_token)
        return max(0.0, token.expires - time.time()) if token is not None else 0.0

    def login(self, session_token: str | None, trust_token: str | None) -> Token | None:
        """``accountLogin``: a web session for a live session token, or an expired one renewed by trust."""
        token = self._store.get_token(SESSION, session_token)
        if token is None or not (token.alive() or self.trusted_by([trust_token])):
            return None
        extra = json.dumps({"validate": secrets.token_urlsafe(32)})
        return self._store.add_token(WEB, token.trusted, self._config.session_ttl, extra)

    def web(self, cookie: str | None) -> Token | None:
        """The live web session named by the ``X-APPLE-WEBAUTH-TOKEN`` cookie."""
        token = self._store.get_token(WEB, cookie)
        return token if token is not None and token.alive() else None

    def expire_all(self) -> int:
        """Force every session token and web session to expire now (trust tokens survive)."""
        return self._store.expire_tokens(SESSION, WEB)

    def revoke_trust(self) -> int:
        """The user removed this browser from the trusted ones: trust and sessions end now."""
        return self._store.expire_tokens(TRUST, SESSION, WEB)

    def logout(self, web: Token) -> None:
        self._store.expire_token(web.token)

    # ---- Advanced Data Protection ---------------------------------------------------------
    # With ADP on, a web session reaches Drive only with PCS cookies (rclone PR 9448, issue 8310;
    # foxt/icloud.js issue 4): the user allows web access once on a device (``consent``), after
    # which ``requestPCS`` grants cookies that expire (``pcs_ttl``). With "Access iCloud Data on
    # the Web" off on the device, no consent can be asked for at all (``web_access``).

    @property
    def consented(self) -> bool:
        return not self._config.adp or self._store.get_value("adp_consent") == "1"

    def consent(self) -> None:
        self._store.set_value("adp_consent", "1")

    @property
    def web_access(self) -> bool:
        """Whether the account lets the web ask for consent at all."""
        return self._store.get_value("adp_web_access") != "0"

    def set_web_access(self, allowed: bool) -> None:
        """Turning web access off also withdraws the consent and ends every PCS grant."""
        self._store.set_value("adp_web_access", "1" if allowed else "0")
        if not allowed:
            self._store.set_value("adp_consent", "0")
            self.expire_pcs()

    def pcs_granted(self, web: Token, cookie: str | None) -> bool:
        """Without ADP always; with it, the cookie must be one granted to this web session, alive
        (``pcs_ttl``) and not voided. A later grant does not end an earlier one: each cookie is
        signed, not stored, so a client holding two (pyicloud asks on every ``api.drive``) may
        send either until it expires."""
        if not self._config.adp:
            return True
        issued, _, mac = (cookie or "").partition(":")
        try:
            at = float(issued)
        except ValueError:
            return False
        voided = float(self._store.get_value("pcs_voided") or 0)
        fresh = voided < at and time.time() < at + self._config.pcs_ttl
        return fresh and hmac.compare_digest(mac, self._pcs_mac(web, issued))

    def grant_pcs(self, web: Token) -> str:
        """A new PCS grant for the web session; its cookie value."""
        issued = f"{time.time():.6f}"
        return f"{issued}:{self._pcs_mac(web, issued)}"

    def _pcs_mac(self, web: Token, issued: str) -> str:
        return hmac.new(self._secret, f"pcs:{web.token}:{issued}".encode(), hashlib.sha256).hexdigest()

    def expire_pcs(self) -> None:
        """Every PCS grant made so far ends now (its cookies no longer open Drive: 423)."""
        self._store.set_value("pcs_voided", str(time.time()))

    @staticmethod
    def validate_value(web: Token) -> str:
        """The ``t=`` token pyicloud's uploads extract from ``X-APPLE-WEBAUTH-VALIDATE``."""
        return str(json.loads(web.extra)["validate"])

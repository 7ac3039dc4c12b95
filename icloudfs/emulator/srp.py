"""Server side of Apple's SRP-6a variant (s2k / s2k_fo), built on the ``srp`` library's Verifier.

Apple's client derives the SRP password as PBKDF2-HMAC-SHA256 over SHA-256 of the
password (raw digest for ``s2k``, its hex for ``s2k_fo``); the verifier is
``g^x mod N`` with ``x = H(salt | H(":" | p))`` (no username in x, RFC 5054 padding).
The emulator knows the plain password, so it derives the verifier per sign-in.
Salts never start with a zero byte: the library's two backends disagree on those.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import srp

srp.rfc5054_enable()
srp.no_username_in_x()

ITERATIONS = 20000
_N_HEX = (
    "AC6BDB41324A9A9BF166DE5E1389582FAF72B6651987EE07FC3192943DB56050A37329CBB4A099ED8193E0757767A13DD5"
    "2312AB4B03310DCD7F48A9DA04FD50E8083969EDB767B0CF6095179A163AB3661A05FBD5FAAAE82918A9962F0B93B855F9"
    "7993EC975EEAA80D740ADBF4FF747359D041D5C33EA71D281E446B14773BCA97B43A23FB801676BD207A436C6481F1D2B90"
    "78717461A5B9D32E688F87748544523B524B0D57D5EA77A2775D2ECFA032CFBDBF52FB3786160279004E57AE6AF874E730"
    "3CE53299CCC041C7BC308D82A5698F3A8D0C38271AE35F8E9DBFBB694B5C803D89F7AE435DE236D525F54759B65E372FCD"
    "68EF20FA7111F9E4AFF73"
)
_N = int(_N_HEX, 16)
_G = 2
_HANDSHAKE_TTL = 300.0


def _password_key(password: str, salt: bytes, protocol: str) -> bytes:
    digest = hashlib.sha256(password.encode("utf-8")).digest()
    material = digest.hex().encode() if protocol == "s2k_fo" else digest
    return hashlib.pbkdf2_hmac("sha256", material, salt, ITERATIONS, 32)


def verifier_for(password: str, salt: bytes, protocol: str) -> bytes:
    """``v = g^x mod N`` for Apple's password derivation."""
    inner = hashlib.sha256(b":" + _password_key(password, salt, protocol)).digest()
    x = int.from_bytes(hashlib.sha256(salt + inner).digest(), "big")
    v = pow(_G, x, _N)
    return v.to_bytes((v.bit_length() + 7) // 8, "big")


def new_salt() -> bytes:
    while True:
        salt = os.urandom(16)
        if salt[0] != 0:
            return salt


@dataclass
class _Handshake:
    verifier: Any
    account: str
    expires: float


class SrpServer:
    """Holds in-flight handshakes between ``signin/init`` and ``signin/complete``, keyed by ``c``."""

    def __init__(self) -> None:
        self._pending: dict[str, _Handshake] = {}
        self._lock = threading.Lock()

    def start(self, account: str, password: str, a: bytes, protocols: list[str]) -> dict[str, Any]:
        """Answer ``signin/init``: salt, B, iteration count, chosen protocol and a handshake id."""
        protocol = "s2k" if "s2k" in protocols or not protocols else "s2k_fo"
        salt = new_salt()
        verifier = srp.Verifier(
            account,
            salt,
            verifier_for(password, salt, protocol),
            a,
            hash_alg=srp.SHA256,
            ng_type=srp.NG_2048,
        )
        _, b = verifier.get_challenge()
        handle = os.urandom(16).hex()
        now = time.time()
        with self._lock:
            self._pending = {k: v for k, v in self._pending.items() if v.expires > now}
            self._pending[handle] = _Handshake(verifier, account, now + _HANDSHAKE_TTL)
        return {"salt": salt, "b": b, "c": handle, "iteration": ITERATIONS, "protocol": protocol}

    def finish(self, handle: str, account: str, m1: bytes) -> bool:
        """Whether the client's M1 proves the password (each handshake can be tried once)."""
        with self._lock:
            pending = self._pending.pop(handle, None)
        if pending is None or pending.expires < time.time() or pending.account != account:
            return False
        return pending.verifier.verify_session(m1) is not None

"""API tokens: shown once, kept only as SHA-256 hashes in the keyring.

A token is 32 random bytes (base64url, no padding: 43 characters). 256 bits need
no salt or slow hash, so SHA-256 plus ``hmac.compare_digest`` is enough. Each
token is its own keyring item (service ``icloudfs-api-tokens``, account = token
id, secret = JSON ``{hash, description, created_at}``); keyring cannot
enumerate, so an ``__index__`` item holds the list of ids.

Hashes are cached in memory: a keyring read per request is slow (D-Bus) and
would make failure floods expensive. Revocation here updates the cache at once.
Another process revoking through the keyring (the CLI, for every running mount)
is picked up on the token's next use: a token that matches is confirmed against
the index item, one keyring read, and only for valid tokens, so a flood of bad
ones costs none. The cache is also reloaded when older than
``refresh_interval`` seconds; items whose ids left the index are dropped, new ids
are loaded.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import uuid
from datetime import UTC, datetime

import keyring
import keyring.errors
from keyring.backend import KeyringBackend

from icloudfs.control.schemas import NewToken, TokenInfo

SERVICE = "icloudfs-api-tokens"
INDEX = "__index__"
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")


class UnknownToken(LookupError):
    """No token has that id."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """Create, list, revoke and verify API tokens kept in ``backend`` (default: the keyring's)."""

    def __init__(self, backend: KeyringBackend | None = None, *, refresh_interval: float = 2.0) -> None:
        self._backend = backend or keyring.get_keyring()
        self._refresh_interval = refresh_interval
        self._lock = threading.Lock()
        self._cache: dict[str, TokenInfo] = {}
        self._hashes: dict[str, str] = {}
        self._loaded_at = float("-inf")

    @property
    def backend_name(self) -> str:
        """The keyring backend's class name (tell the user where tokens live)."""
        return type(self._backend).__name__

    def list_tokens(self) -> list[TokenInfo]:
        """Every token's id, description and creation time (never the token)."""
        with self._lock:
            self._reload()
            return sorted(self._cache.values(), key=lambda t: t.created_at)

    def create_token(self, description: str) -> NewToken:
        """Make a token, store its hash and return it: the only time it is visible."""
        token = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
        info = TokenInfo(
            id=str(uuid.uuid4()),
            description=description,
            created_at=datetime.now(UTC).replace(microsecond=0),
        )
        record = {
            "hash": _hash(token),
            "description": info.description,
            "created_at": info.created_at.isoformat(),
        }
        with self._lock:
            self._reload()
            self._backend.set_password(SERVICE, info.id, json.dumps(record))
            self._write_index([*self._cache, info.id])
            self._cache[info.id] = info
            self._hashes[info.id] = record["hash"]
        return NewToken(token=token, **info.model_dump())

    def revoke_token(self, token_id: str) -> TokenInfo:
        """Delete a token; the next request using it fails. Raises ``UnknownToken``."""
        with self._lock:
            self._reload()
            info = self._cache.pop(token_id, None)
            if info is None:
                raise UnknownToken(token_id)
            del self._hashes[token_id]
            self._write_index(list(self._cache))
            # already gone is fine: the index no longer names it, which is what counts
            with contextlib.suppress(keyring.errors.PasswordDeleteError):
                self._backend.delete_password(SERVICE, token_id)
            return info

    def verify(self, token: str) -> str | None:
        """The id of the token, or ``None`` when it is malformed, unknown or revoked."""
        if not _TOKEN_SHAPE.fullmatch(token):
            return None
        digest = _hash(token)
        with self._lock:
            if time.monotonic() - self._loaded_at > self._refresh_interval:
                self._reload()
            found = None
            for token_id, stored in self._hashes.items():  # no early exit: constant time
                if hmac.compare_digest(digest, stored):
                    found = token_id
            if found is not None and found not in self._index():  # revoked by another process
                self._reload()
                found = None
            return found

    def __len__(self) -> int:
        with self._lock:
            self._reload()
            return len(self._cache)

    def _index(self) -> list[str]:
        ids: list[str] = json.loads(self._backend.get_password(SERVICE, INDEX) or "[]")
        return ids

    def _reload(self) -> None:
        """Bring the cache in line with the index: drop ids that left it, load new ones."""
        ids = self._index()
        for gone in set(self._cache) - set(ids):
            del self._cache[gone], self._hashes[gone]
        for token_id in ids:
            if token_id not in self._cache:
                raw = self._backend.get_password(SERVICE, token_id)
                if raw is None:
                    continue  # an index entry without its item: a half-finished revoke
                record = json.loads(raw)
                self._cache[token_id] = TokenInfo(
                    id=token_id,
                    description=record["description"],
                    created_at=datetime.fromisoformat(record["created_at"]),
                )
                self._hashes[token_id] = record["hash"]
        self._loaded_at = time.monotonic()

    def _write_index(self, ids: list[str]) -> None:
        self._backend.set_password(SERVICE, INDEX, json.dumps(ids))

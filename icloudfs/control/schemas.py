"""The API's request and response bodies (pydantic), shared by the server and the client.

Every error is the envelope ``{"error": true, "reason": "..."}``; ``errors(...)``
declares it in the OpenAPI schema for the given status codes so clients and
schema checkers know what to expect.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from annotated_types import Interval
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr

AuthState = Literal[
    "signed_out",
    "needs_password",
    "needs_2fa",
    "needs_consent",
    "web_access_off",
    "signed_in",
    "session_expired",
    "locked",
    "throttled",
]

_DESCRIPTIONS = {
    400: "Unparsable body, or input that cannot work (e.g. an app-specific password)",
    401: "Missing, malformed or unknown token (remote callers)",
    403: "Forbidden for this caller or account",
    404: "No such item",
    409: "Conflicts with the current state (nothing mounted, signed out, ...)",
    422: "The body or parameters do not match the schema",
    429: "Too many failed authentications from this peer; see Retry-After",
    500: "Internal error",
    503: "Apple is throttling or unreachable; see Retry-After",
}


class ErrorBody(BaseModel):
    """The envelope of every error response."""

    error: Literal[True] = True
    reason: str


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for error ``codes``, all using ``ErrorBody``."""
    return {code: {"model": ErrorBody, "description": _DESCRIPTIONS[code]} for code in codes}


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str


class MountStatus(BaseModel):
    mounted: bool
    mountpoint: str | None = None
    folder: str | None = None
    read_only: bool = False
    since: datetime | None = None


class AccountStatus(BaseModel):
    """What the control plane may say about the account: never the password."""

    apple_id: str | None = Field(default=None, description="None until someone signs in")
    auth_state: AuthState
    trust_days_left: int | None = None
    keyring_backend: str
    keyring_plaintext: bool
    password_stored: bool
    unreachable_since: datetime | None = Field(
        default=None, description="iCloud has not answered since then (None while it answers)"
    )
    unreachable_cause: str | None = Field(default=None, description="why the last call got no answer")


class MetadataCache(BaseModel):
    entries: int
    hits: int
    misses: int


class ContentCache(BaseModel):
    bytes_used: int
    bytes_limit: int
    hits: int
    misses: int


class CacheStatus(BaseModel):
    metadata: MetadataCache
    content: ContentCache


class UploadsStatus(BaseModel):
    queued: int
    in_progress: int
    failed: int
    changes: int = 0  # mkdir/rename/delete made while iCloud was unreachable, not made there yet
    last_error: str | None = None
    paused: str | None = None  # what keeps the write-back from its work (a full cache disk...)


class Status(BaseModel):
    mount: MountStatus
    account: AccountStatus | None = None
    cache: CacheStatus | None = None
    uploads: UploadsStatus | None = None
    ops: dict[str, int] = Field(default_factory=dict)
    errors: dict[str, int] = Field(default_factory=dict)
    last_error: str | None = None


class RequestBody(BaseModel):
    """Request bodies are strict: ``"yes"`` is not a bool, ``"1"`` not a number."""

    model_config = ConfigDict(strict=True)


def _whole(value: object) -> object:
    """JSON Schema's integers include ``8731.0``; strict pydantic does not."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Port = Annotated[int, Interval(ge=1, le=65535), BeforeValidator(_whole)]


class LoginRequest(RequestBody):
    apple_id: str = Field(min_length=1)
    password: SecretStr = Field(min_length=1)
    remember: bool = True


class TwoFactorRequest(RequestBody):
    code: str = Field(pattern=r"^[0-9]{6}$")


class LogoutRequest(RequestBody):
    forget_password: bool = False


class AuthStateBody(BaseModel):
    auth_state: AuthState


class TokenCreate(RequestBody):
    description: str = Field(min_length=1, max_length=200)


class TokenInfo(BaseModel):
    id: str
    description: str
    created_at: datetime


class NewToken(TokenInfo):
    token: str = Field(description="Shown once; only its hash is stored")


class EvictRequest(RequestBody):
    path: str | None = Field(default=None, description="Evict one item; all when omitted")


class EvictResult(BaseModel):
    bytes_freed: int


class RefreshRequest(RequestBody):
    path: str = Field(min_length=1)
    recursive: bool = False


class RefreshResult(BaseModel):
    path: str
    recursive: bool
    folders: int = Field(description="Folders fetched again")


class PinRequest(RequestBody):
    path: str = Field(min_length=1)
    keep: bool = Field(default=True, description="False: stop keeping the files for offline use")


class PinResult(BaseModel):
    path: str
    keep: bool
    files: int = Field(description="Files under the path")
    bytes: int = Field(description="Their total size")


class Upload(BaseModel):
    """One queued or failed upload; the filesystem may add more fields."""

    model_config = ConfigDict(extra="allow")

    path: str
    state: str | None = None
    attempts: int | None = None
    last_error: str | None = None


class RetryResult(BaseModel):
    retried: int


class ControlSettings(BaseModel):
    host: str
    port: int
    allow_remote: bool
    socket: str | None = None


class SettingsUpdate(RequestBody):
    port: Port | None = None
    allow_remote: bool | None = None

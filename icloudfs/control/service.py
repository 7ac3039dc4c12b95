"""The seam between the API and the rest of icloudfs.

The control plane never imports the account or the filesystem: it asks for
these small protocols, so it runs (and is tested) with neither, either or both.
Token management and ``/health`` need neither; ``/status`` says ``mounted:
false`` without a filesystem. Calls on a missing part raise ``NotAttached``.
Control calls into the mount, never the reverse (rclone's rule).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from prometheus_client.registry import Collector

from icloudfs.config import Settings
from icloudfs.control.schemas import (
    AccountStatus,
    CacheStatus,
    MountStatus,
    Status,
    UploadsStatus,
)
from icloudfs.control.tokens import TokenStore


class Account(Protocol):
    """The iCloud account (``icloudfs.icloud.account.Account``).

    ``state`` and the results of ``login``/``submit_2fa`` are ``AuthState``
    values (a ``StrEnum``): ``signed_out``, ``needs_password``, ``needs_2fa``, ``needs_consent``,
    ``web_access_off``, ``signed_in``, ``session_expired``, ``locked``, ``throttled``.
    """

    @property
    def apple_id(self) -> str: ...

    @property
    def state(self) -> str: ...

    def login(self, apple_id: str, password: str, *, remember: bool = True) -> str:
        """Sign in; raises AppSpecificPassword, AccountLocked, Throttled, AuthRequired, ..."""
        ...

    def submit_2fa(self, code: str) -> str:
        """Finish sign-in with a code; raises Needs2FA when it is wrong."""
        ...

    def request_sms(self) -> None: ...

    def logout(self, *, forget_password: bool = False) -> None: ...

    def info(self) -> Mapping[str, Any]:
        """apple_id, auth_state, trust_days_left, keyring_backend, keyring_plaintext,
        password_stored."""
        ...


class FuseCounts(Protocol):
    """The mount's FUSE operation counts (``icloudfs.metrics.FuseMetrics``)."""

    last_error: str

    def counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """Operations by name, failures by errno name."""
        ...


class Filesystem(Protocol):
    """The mounted filesystem.

    ``stats()`` returns ``metadata: {entries, hits, misses}``, ``content:
    {bytes_used, bytes_limit, hits, misses}``, ``uploads: {queued, in_progress,
    failed, last_error}``. ``uploads()`` items have ``path`` and optionally ``state``,
    ``attempts``, ``last_error`` (more keys are passed through).
    """

    @property
    def mountpoint(self) -> str: ...

    @property
    def folder(self) -> str: ...

    @property
    def read_only(self) -> bool: ...

    @property
    def since(self) -> datetime: ...

    def stats(self) -> Mapping[str, Any]: ...

    def refresh(self, path: str, recursive: bool) -> int:
        """Fetch listings under ``path`` again; returns how many folders were fetched."""
        ...

    def evict(self, path: str | None) -> int:
        """Drop cached content (of ``path``, or all); returns the bytes freed."""
        ...

    def pin(self, path: str, keep: bool) -> tuple[int, int]:
        """Keep (or stop keeping) the files under ``path`` cached for offline use: (files, bytes)."""
        ...

    def uploads(self) -> Sequence[Mapping[str, Any]]: ...

    def retry_uploads(self) -> int:
        """Requeue failed uploads now; returns how many."""
        ...


class NotAttached(LookupError):
    """The request needs an account or a filesystem this control plane does not have."""


@dataclass
class ControlService:
    """What the routes work on. ``restart`` is set by ``ControlServer``; ``metrics`` are the
    mount's own Prometheus collectors (FUSE, HTTP), reported by ``/metrics`` beside the status;
    ``fuse`` gives ``/status`` its operation and error counts."""

    settings: Settings
    tokens: TokenStore
    account: Account | None = None
    filesystem: Filesystem | None = None
    restart: Callable[[], None] | None = None
    metrics: Sequence[Collector] = field(default_factory=tuple)
    fuse: FuseCounts | None = None

    def need_account(self) -> Account:
        if self.account is None:
            raise NotAttached("No iCloud account is attached to this control plane")
        return self.account

    def need_filesystem(self) -> Filesystem:
        if self.filesystem is None:
            raise NotAttached("Nothing is mounted")
        return self.filesystem

    def status(self) -> Status:
        """Mount, account, cache and upload state in one report."""
        fs, account = self.filesystem, self.account
        report = Status(
            mount=MountStatus(mounted=fs is not None),
            account=None if account is None else account_status(account),
        )
        if fs is None:
            return report
        stats = fs.stats()
        report.mount = MountStatus(
            mounted=True,
            mountpoint=fs.mountpoint,
            folder=fs.folder,
            read_only=fs.read_only,
            since=fs.since,
        )
        report.cache = CacheStatus.model_validate(
            {"metadata": stats["metadata"], "content": stats["content"]}
        )
        report.uploads = UploadsStatus.model_validate(stats["uploads"])
        if self.fuse is not None:
            report.ops, report.errors = self.fuse.counts()
            report.last_error = self.fuse.last_error or None
        return report


def account_status(account: Account) -> AccountStatus:
    """The account's public facts (``auth_state`` as a plain string, whatever enum it is)."""
    info = dict(account.info())
    info["auth_state"] = str(info.get("auth_state", account.state))
    return AccountStatus.model_validate(info)

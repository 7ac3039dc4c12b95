"""In-process stand-ins for the account and the filesystem, behaving like the real ones
at the protocol level (states, errors), with no network."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from icloudfs import errors
from icloudfs.fs.errors import NotAFolder

PASSWORD = "correct horse battery staple"
CODE = "123456"


@dataclass
class FakeAccount:
    apple_id: str = "someone@example.com"
    state: str = "signed_out"
    password_stored: bool = False
    sms_sent: int = 0
    fail_with: Exception | None = None

    def login(self, apple_id: str, password: str, *, remember: bool = True) -> str:
        if self.fail_with is not None:
            raise self.fail_with
        if re.fullmatch(r"[a-z]{4}(-[a-z]{4}){3}", password):
            raise errors.AppSpecificPassword("app-specific password")
        if password != PASSWORD:
            raise errors.AuthRequired("wrong password")
        self.apple_id, self.password_stored, self.state = apple_id, remember, "needs_2fa"
        return self.state

    def submit_2fa(self, code: str) -> str:
        if self.state != "needs_2fa" or code != CODE:
            raise errors.Needs2FA("wrong code")
        self.state = "signed_in"
        return self.state

    def request_sms(self) -> None:
        if self.state != "needs_2fa":
            raise errors.AuthRequired("sign in first")
        self.sms_sent += 1

    def logout(self, *, forget_password: bool = False) -> None:
        self.state = "signed_out"
        if forget_password:
            self.password_stored = False

    def info(self) -> dict[str, Any]:
        return {
            "apple_id": self.apple_id,
            "auth_state": self.state,
            "trust_days_left": 30 if self.state == "signed_in" else None,
            "keyring_backend": "PlaintextKeyring",
            "keyring_plaintext": True,
            "password_stored": self.password_stored,
        }


@dataclass
class FakeFilesystem:
    mountpoint: str = "/mnt/icloud"
    folder: str = "/"
    read_only: bool = False
    since: datetime = field(default_factory=lambda: datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    cached: set[str] = field(default_factory=lambda: {"/a.txt", "/docs/b.txt"})
    paused: str | None = None
    changes: int = 0
    failed: list[str] = field(default_factory=lambda: ["/docs/report.pdf"])
    refreshed: list[tuple[str, bool]] = field(default_factory=list)
    pinned: set[str] = field(default_factory=set)

    def stats(self) -> dict[str, Any]:
        return {
            "metadata": {"entries": 12, "hits": 40, "misses": 3},
            "content": {
                "bytes_used": len(self.cached) * 1024,
                "bytes_limit": 1 << 30,
                "hits": 7,
                "misses": 2,
            },
            "uploads": {
                "queued": 0,
                "in_progress": 0,
                "failed": len(self.failed),
                "last_error": "Unavailable: network down" if self.failed else None,
                "paused": self.paused,
                "changes": self.changes,
            },
        }

    def refresh(self, path: str, recursive: bool) -> int:
        if not path.startswith("/"):
            raise errors.NotFound(path)
        if any(path.startswith(f"{f}/") for f in self.cached):  # a file used as a folder
            raise NotAFolder(path)
        self.refreshed.append((path, recursive))
        return 1

    def pin(self, path: str, keep: bool) -> tuple[int, int]:
        if not path.startswith("/"):
            raise errors.NotFound(path)
        self.pinned = self.pinned | {path} if keep else self.pinned - {path}
        return 1, 10

    def evict(self, path: str | None) -> int:
        gone = set(self.cached) if path is None else self.cached & {path}
        self.cached -= gone
        return len(gone)

    def uploads(self) -> list[dict[str, Any]]:
        return [
            {"path": p, "state": "failed", "attempts": 3, "last_error": "network down"} for p in self.failed
        ]

    def retry_uploads(self) -> int:
        count, self.failed = len(self.failed), []
        return count

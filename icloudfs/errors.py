"""The error tree every layer speaks.

Backends raise these; the FUSE layer maps them to errno in one place
(``icloudfs.fs.errno_map``), the control plane maps them to HTTP reasons.

    IcloudfsError
    ├── DriveError                  something about a remote item or the service
    │   ├── NotFound                ENOENT
    │   ├── AlreadyExists           EEXIST
    │   ├── Conflict                the item changed remotely (stale etag)
    │   ├── Throttled               Apple answered 503: back off
    │   ├── Unavailable             5xx after retries, malformed answers
    │   │   └── Unreachable         no answer at all: network down, refused, timed out
    │   └── AuthError               the session cannot be used
    │       ├── AuthRequired        signed out, or the saved session is gone
    │       ├── Needs2FA            Apple demands a new code
    │       ├── AccountLocked       too many bad passwords (-20209)
    │       ├── WebAccessBlocked    Advanced Data Protection without web access
    │       └── ConsentPending      Advanced Data Protection: a device must allow this sign-in
    ├── CredentialError             bad input from the user, refused before sending
    │   └── AppSpecificPassword     an app-specific password was offered
    └── Cancelled                   an upload the write-back no longer wants (not a failure)
"""

from __future__ import annotations


class IcloudfsError(Exception):
    """Base of every error icloudfs raises on purpose."""


class DriveError(IcloudfsError):
    """A remote operation failed."""


class NotFound(DriveError):
    """The item does not exist (any more)."""


class AlreadyExists(DriveError):
    """An item with that name already exists in the folder."""


class Conflict(DriveError):
    """The item changed remotely since it was read (its etag is stale)."""


class Throttled(DriveError):
    """Apple is throttling this client (HTTP 503); retry later."""


class Unavailable(DriveError):
    """The service could not be reached or kept failing."""


class Unreachable(Unavailable):
    """Nothing answered: the network is down, the connection was refused or timed out."""


class AuthError(DriveError):
    """The session cannot be used until the user acts."""


class AuthRequired(AuthError):
    """No usable session: sign in again (password needed)."""


class Needs2FA(AuthError):
    """Apple demands a new two-factor code."""


class AccountLocked(AuthError):
    """Apple locked the account after failed attempts (code -20209)."""


class WebAccessBlocked(AuthError):
    """Advanced Data Protection is on and web access to iCloud data is not allowed."""


class ConsentPending(AuthError):
    """Advanced Data Protection is on and a trusted device has been asked to allow this
    sign-in: nothing to do here but wait for the tap (and look again)."""


class CredentialError(IcloudfsError):
    """A credential the user gave cannot work; nothing was sent."""


class AppSpecificPassword(CredentialError):
    """An app-specific password was given where the Apple ID password is needed."""


class Cancelled(IcloudfsError):
    """The write-back cancelled an upload in flight: the file was renamed, deleted or changed
    again before its bytes were committed. Not a failure: nothing appeared remotely, and the
    write-back queues the file again. Not a ``DriveError``, so no retry loop retries it."""

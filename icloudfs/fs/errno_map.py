"""The one place an errno is chosen.

Every failure that reaches the kernel passes through ``errno_for``; the FUSE
layer calls ``failure`` once per failed operation, which logs with context and
returns the errno. Keep this table in step with ``icloudfs.errors`` and
``icloudfs.fs.errors`` (the order matters: subclasses first).

Choices that are not obvious:
- ``Conflict`` -> ESTALE: the item changed remotely under a cached identity,
  exactly what ESTALE means on network filesystems; the kernel's VFS even
  retries a path walk once on ESTALE (``retry_estale``).
- ``Throttled`` -> EAGAIN: Apple asked us to slow down; the condition is
  temporary and "Resource temporarily unavailable" says so.
- ``Unavailable`` (and ``Unreachable``) -> EIO: iCloud kept failing or could
  not be reached within ``--offline-timeout``. EIO is read(2)'s own error for
  "the data could not be fetched", which every program handles; EHOSTDOWN
  (used before) is not among the errors read(2) documents. The log line (a
  warning with the operation, path and cause) says what really happened.
- ``AuthError`` -> EACCES: the session needs the user (sign in, 2FA); "Permission
  denied" points at access, not at corrupt data, and the log says what to do.
- ``Unsupported`` (hard links, symlinks, device nodes, renaming an app library)
  -> EPERM, as POSIX prescribes for ``link`` where unsupported.
- An ``OSError`` from the local cache disk keeps its own errno (ENOSPC...).
- Otherwise EIO only for an unexpected exception (a bug, logged with its
  traceback) or an unclassified drive error.
"""

from __future__ import annotations

import errno
import logging
import sqlite3

from icloudfs import errors
from icloudfs.fs import errors as fs_errors

log = logging.getLogger(__name__)

_TABLE: tuple[tuple[type[BaseException], int], ...] = (
    (errors.NotFound, errno.ENOENT),
    (errors.AlreadyExists, errno.EEXIST),
    (errors.Conflict, errno.ESTALE),
    (errors.Throttled, errno.EAGAIN),
    (errors.Unavailable, errno.EIO),
    (errors.AuthError, errno.EACCES),
    (errors.DriveError, errno.EIO),
    (fs_errors.IsAFolder, errno.EISDIR),
    (fs_errors.NotAFolder, errno.ENOTDIR),
    (fs_errors.FolderNotEmpty, errno.ENOTEMPTY),
    (fs_errors.ReadOnly, errno.EROFS),
    (fs_errors.NotWritable, errno.EACCES),
    (fs_errors.Unsupported, errno.EPERM),
    (fs_errors.BadHandle, errno.EBADF),
    (fs_errors.NameTooLong, errno.ENAMETOOLONG),
    (fs_errors.InvalidRequest, errno.EINVAL),
)

# Failures that are part of normal life (a shell probing for files) log at debug only.
_QUIET = frozenset({errno.ENOENT, errno.EEXIST, errno.ENOTEMPTY, errno.EPERM, errno.ENAMETOOLONG})


def errno_for(error: BaseException) -> int:
    """The errno that tells a POSIX program the most about ``error``."""
    for kind, code in _TABLE:
        if isinstance(error, kind):
            return code
    if isinstance(error, OSError) and isinstance(error.errno, int) and error.errno > 0:
        return error.errno
    if isinstance(error, sqlite3.OperationalError) and "full" in str(error):
        return errno.ENOSPC  # the journal or metadata database could not grow: the cache disk is full
    return errno.EIO


def failure(op: str, path: str | None, error: BaseException) -> int:
    """Log one failed operation with its context; return the errno to send."""
    code = errno_for(error)
    name = errno.errorcode.get(code, str(code))
    if code in _QUIET:
        log.debug("%s %s: %s (%s)", op, path, name, error)
    elif code == errno.EIO and not isinstance(error, errors.DriveError | OSError | sqlite3.Error):
        log.error("%s %s: unexpected %s -> EIO", op, path, type(error).__name__, exc_info=error)
    elif isinstance(error, errors.AuthError):
        log.error("%s %s: %s -> %s; sign in again (icloudfs login)", op, path, error, name)
    else:
        log.warning("%s %s: %s: %s -> %s", op, path, type(error).__name__, error, name)
    return code

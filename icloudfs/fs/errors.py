"""What the filesystem itself refuses, named by meaning rather than by errno.

The POSIX layer raises these (and lets ``icloudfs.errors`` from the drive pass
through); ``errno_map`` is the one place that turns either into an errno.

    FsError
    ├── IsAFolder           a file operation on a folder
    ├── NotAFolder          a folder operation on a file, or a file used as a path prefix
    ├── FolderNotEmpty      rmdir, or rename over a folder that has entries
    ├── ReadOnly            the mount is read-only
    ├── NotWritable         this item cannot be written (packages, app libraries)
    ├── Unsupported         hard links, symlinks, device nodes
    ├── BadHandle           a file handle the kernel should not have sent
    ├── NameTooLong         a new name over 255 bytes (the kernel leaves the check to us)
    └── InvalidRequest      an argument that makes no sense (rename into itself...)
"""

from __future__ import annotations

from icloudfs.errors import IcloudfsError


class FsError(IcloudfsError):
    """A request the filesystem refuses on its own."""


class IsAFolder(FsError):
    pass


class NotAFolder(FsError):
    pass


class FolderNotEmpty(FsError):
    pass


class ReadOnly(FsError):
    pass


class NotWritable(FsError):
    pass


class Unsupported(FsError):
    pass


class BadHandle(FsError):
    pass


class NameTooLong(FsError):
    pass


class InvalidRequest(FsError):
    pass

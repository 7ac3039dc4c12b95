"""POSIX filesystem logic over the caches, testable without a kernel mount."""

from icloudfs.fs.core import Filesystem

__all__ = ["Filesystem"]

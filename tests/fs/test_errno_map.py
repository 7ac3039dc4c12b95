"""Every error kind maps to the errno documented in errno_map."""

from __future__ import annotations

import errno

import pytest

from icloudfs import errors
from icloudfs.fs import errors as fs_errors
from icloudfs.fs.errno_map import errno_for, failure


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.NotFound("x"), errno.ENOENT),
        (errors.AlreadyExists("x"), errno.EEXIST),
        (errors.Conflict("x"), errno.ESTALE),
        (errors.Throttled("x"), errno.EAGAIN),
        (errors.Unavailable("x"), errno.EIO),
        (errors.Unreachable("x"), errno.EIO),
        (errors.AuthRequired("x"), errno.EACCES),
        (errors.Needs2FA("x"), errno.EACCES),
        (errors.DriveError("x"), errno.EIO),
        (fs_errors.IsAFolder("x"), errno.EISDIR),
        (fs_errors.NotAFolder("x"), errno.ENOTDIR),
        (fs_errors.FolderNotEmpty("x"), errno.ENOTEMPTY),
        (fs_errors.ReadOnly("x"), errno.EROFS),
        (fs_errors.NotWritable("x"), errno.EACCES),
        (fs_errors.Unsupported("x"), errno.EPERM),
        (fs_errors.BadHandle("x"), errno.EBADF),
        (fs_errors.InvalidRequest("x"), errno.EINVAL),
        (OSError(errno.ENOSPC, "disk full"), errno.ENOSPC),
        (ValueError("a bug"), errno.EIO),
    ],
)
def test_errno_for(error: BaseException, code: int) -> None:
    assert errno_for(error) == code


def test_failure_logs_bugs_with_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    try:
        raise KeyError("oops")
    except KeyError as error:
        assert failure("read", "/f", error) == errno.EIO
    assert "unexpected KeyError" in caplog.text
    assert caplog.records[-1].exc_info is not None


def test_offline_is_eio_with_a_warning_that_says_why(caplog: pytest.LogCaptureFixture) -> None:
    error = errors.Unreachable("iCloud could not be reached: connection refused")
    assert failure("read", "/2025/brief.pdf", error) == errno.EIO
    record = caplog.records[-1]
    assert record.levelname == "WARNING" and record.exc_info is None
    assert record.getMessage() == (
        "read /2025/brief.pdf: Unreachable: iCloud could not be reached: connection refused -> EIO"
    )

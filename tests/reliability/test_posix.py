"""A POSIX conformance suite of our own, run on real mounts (in-memory drive and iCloud backend).

Each test states the behaviour a program relies on and the errno it gets when it asks for
something iCloud cannot do.
"""

from __future__ import annotations

import errno
import os
import unicodedata

import pytest

from tests.fuse.conftest import LiveMount


def errno_of(call: object) -> int:
    assert callable(call)
    with pytest.raises(OSError) as caught:
        call()
    return caught.value.errno or 0


def test_open_flags(any_mount: LiveMount) -> None:
    path = any_mount.path / "flags.txt"
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    os.write(fd, b"hello world")
    os.close(fd)
    assert errno_of(lambda: os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)) == errno.EEXIST
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    os.write(fd, b"!")
    os.close(fd)
    assert path.read_bytes() == b"hello world!"
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    os.write(fd, b"new")
    os.close(fd)
    assert path.read_bytes() == b"new"
    assert errno_of(lambda: os.open(any_mount.path / "missing", os.O_RDONLY)) == errno.ENOENT
    any_mount.settle()
    assert any_mount.drive.content("flags.txt") == b"new"


def test_rename_rules(any_mount: LiveMount) -> None:
    root = any_mount.path
    (root / "a.txt").write_bytes(b"a")
    (root / "b.txt").write_bytes(b"b")
    os.rename(root / "a.txt", root / "b.txt")  # over a file: replaces it
    assert sorted(os.listdir(root)) == ["b.txt"] and (root / "b.txt").read_bytes() == b"a"
    (root / "empty").mkdir()
    (root / "full").mkdir()
    (root / "full" / "x").write_bytes(b"x")
    (root / "dir").mkdir()
    os.rename(root / "dir", root / "empty")  # a folder over an empty folder
    assert errno_of(lambda: os.rename(root / "empty", root / "full")) == errno.ENOTEMPTY
    assert errno_of(lambda: os.rename(root / "b.txt", root / "full")) == errno.EISDIR
    assert errno_of(lambda: os.rename(root / "full", root / "b.txt")) == errno.ENOTDIR
    os.rename(root / "b.txt", root / "B.TXT")  # case-only rename
    assert sorted(os.listdir(root)) == ["B.TXT", "empty", "full"]
    any_mount.settle()
    assert any_mount.drive.names() == ["B.TXT", "empty", "full"]
    assert any_mount.drive.content("B.TXT") == b"a"


def test_rmdir_unlink_and_open_unlinked_files(any_mount: LiveMount) -> None:
    root = any_mount.path
    (root / "d").mkdir()
    (root / "d" / "f").write_bytes(b"keep reading me")
    assert errno_of(lambda: os.rmdir(root / "d")) == errno.ENOTEMPTY
    assert errno_of(lambda: os.unlink(root / "d")) in (errno.EISDIR, errno.EPERM)
    with open(root / "d" / "f", "rb") as handle:
        os.unlink(root / "d" / "f")
        assert not (root / "d" / "f").exists()
        assert os.listdir(root / "d") == []
        assert os.fstat(handle.fileno()).st_size == len(b"keep reading me")
        assert handle.read() == b"keep reading me"
    with open(root / "d" / "new", "w+b", buffering=0) as handle:
        handle.write(b"written, then unlinked")
        os.unlink(root / "d" / "new")
        handle.write(b", and written again")
        assert os.fstat(handle.fileno()).st_size == len(b"written, then unlinked, and written again")
        handle.seek(0)
        assert handle.read() == b"written, then unlinked, and written again"
    os.rmdir(root / "d")
    any_mount.settle()
    assert not any_mount.drive.exists("d")


def test_truncate_sparse_and_seek_past_end(any_mount: LiveMount) -> None:
    path = any_mount.path / "sparse.bin"
    with open(path, "wb") as handle:
        handle.seek(1_000_000)
        handle.write(b"end")
    assert path.stat().st_size == 1_000_003
    data = path.read_bytes()
    assert data[:1_000_000] == bytes(1_000_000) and data[-3:] == b"end"
    os.truncate(path, 10)
    assert path.read_bytes() == bytes(10)
    os.truncate(path, 20)
    assert path.read_bytes() == bytes(20)
    with open(path, "rb") as handle:
        handle.seek(100)
        assert handle.read() == b""
    any_mount.settle()
    assert any_mount.drive.content("sparse.bin") == bytes(20)


def test_name_length_limit(any_mount: LiveMount) -> None:
    longest = "n" * 251 + ".txt"  # 255 bytes
    (any_mount.path / longest).write_bytes(b"ok")
    assert (any_mount.path / longest).read_bytes() == b"ok"
    too_long = any_mount.path / ("n" * 256)
    for call in (
        lambda: too_long.write_bytes(b"x"),
        lambda: os.stat(too_long),
        lambda: too_long.read_bytes(),
        lambda: os.unlink(too_long),
        lambda: os.rmdir(too_long),
        lambda: os.mkdir(too_long),
        lambda: os.truncate(too_long, 0),
        lambda: os.rename(too_long, any_mount.path / "short"),
        lambda: os.rename(any_mount.path / longest, too_long),
        lambda: os.stat(too_long / "below"),
    ):
        assert errno_of(call) == errno.ENAMETOOLONG
    any_mount.settle()
    assert any_mount.drive.content(longest) == b"ok"


def test_folder_link_counts_and_times(any_mount: LiveMount) -> None:
    """A folder's ``st_nlink`` is 2 + its subfolders (``find`` relies on it), and its mtime and
    ctime move when an entry is created, removed or renamed in it (``make``, backup tools)."""
    root = any_mount.path
    (root / "d").mkdir()
    assert os.stat(root / "d").st_nlink == 2
    (root / "d" / "sub1").mkdir()
    (root / "d" / "sub2").mkdir()
    (root / "d" / "file").write_bytes(b"f")
    assert os.stat(root / "d").st_nlink == 4

    def times() -> tuple[int, int]:
        status = os.stat(root / "d")
        return status.st_mtime_ns, status.st_ctime_ns

    for change in (
        lambda: (root / "d" / "another").write_bytes(b"a"),
        lambda: os.rename(root / "d" / "another", root / "d" / "renamed"),
        lambda: os.unlink(root / "d" / "renamed"),
        lambda: os.rmdir(root / "d" / "sub2"),
    ):
        before = times()
        os.utime(root / "d", ns=(before[0] - 10**9, before[0] - 10**9))  # a second back
        set_back = times()
        change()
        after = times()
        assert after[0] > set_back[0] and after[1] >= set_back[1], change
    assert os.stat(root / "d").st_nlink == 3


def test_nfc_and_nfd_names_are_one_file(any_mount: LiveMount) -> None:
    nfc, nfd = unicodedata.normalize("NFC", "Résumé.txt"), unicodedata.normalize("NFD", "Résumé.txt")
    assert nfc != nfd
    (any_mount.path / nfd).write_bytes(b"first")
    assert (any_mount.path / nfc).read_bytes() == b"first"
    assert (
        errno_of(lambda: os.open(any_mount.path / nfc, os.O_CREAT | os.O_EXCL | os.O_WRONLY)) == errno.EEXIST
    )
    assert len(os.listdir(any_mount.path)) == 1


def test_unsupported_operations_answer_documented_errnos(any_mount: LiveMount) -> None:
    root = any_mount.path
    (root / "f").write_bytes(b"f")
    assert errno_of(lambda: os.link(root / "f", root / "hard")) == errno.EPERM
    assert errno_of(lambda: os.symlink("f", root / "soft")) == errno.EPERM
    assert errno_of(lambda: os.setxattr(root / "f", "user.k", b"v")) == errno.ENOTSUP
    assert errno_of(lambda: os.getxattr(root / "f", "user.k")) in (errno.ENOTSUP, errno.ENODATA)
    assert errno_of(lambda: os.mkfifo(root / "fifo")) == errno.EPERM
    os.chmod(root / "f", 0o600)  # accepted and ignored
    os.chown(root / "f", os.getuid(), os.getgid())
    assert sorted(os.listdir(root)) == ["f"]

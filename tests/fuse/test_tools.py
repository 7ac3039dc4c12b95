"""Ordinary tools on a real mount; every test checks what reached the drive, not only the view."""

from __future__ import annotations

import hashlib
import os
import shutil
import unicodedata
from pathlib import Path

import pytest

from tests.fuse.conftest import LiveMount


def _make_tree(root: Path) -> dict[str, bytes]:
    """A small tree of files with varied sizes; returns relative path -> content."""
    files = {
        "a.txt": b"alpha\n",
        "empty": b"",
        "sub/b.bin": os.urandom(300_000),
        "sub/deeper/c.bin": os.urandom(2_500_000),
        "sub/deeper/d.txt": b"delta\n" * 1000,
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_cp_r_then_sha256sum(any_mount: LiveMount, tmp_path: Path) -> None:
    files = _make_tree(tmp_path / "src")
    any_mount.sh(f"cp -r {tmp_path / 'src'} tree")
    sums = any_mount.sh("find tree -type f -print0 | xargs -0 sha256sum").stdout
    for rel, data in files.items():
        assert f"{_sha(data)}  tree/{rel}" in sums
    any_mount.settle()
    for rel, data in files.items():
        assert any_mount.drive.content(f"tree/{rel}") == data


def test_rsync_a(any_mount: LiveMount, tmp_path: Path) -> None:
    if shutil.which("rsync") is None:
        pytest.skip("rsync is not installed (apt-get install rsync)")
    files = _make_tree(tmp_path / "src")
    any_mount.sh(f"rsync -a {tmp_path / 'src'}/ synced/")
    again = any_mount.sh(f"rsync -a --itemize-changes {tmp_path / 'src'}/ synced/").stdout
    assert again.strip() == "", f"second rsync should transfer nothing: {again}"
    any_mount.settle()
    for rel, data in files.items():
        assert any_mount.drive.content(f"synced/{rel}") == data


def test_tar_into_and_out_of_the_mount(any_mount: LiveMount, tmp_path: Path) -> None:
    files = _make_tree(tmp_path / "src")
    any_mount.sh(f"tar -C {tmp_path / 'src'} -cf {tmp_path / 'in.tar'} .")
    any_mount.sh(f"mkdir x && tar -C x -xf {tmp_path / 'in.tar'}")
    any_mount.sh(f"tar -C x -cf {tmp_path / 'out.tar'} .")
    (tmp_path / "back").mkdir()
    any_mount.sh(f"tar -C {tmp_path / 'back'} -xf {tmp_path / 'out.tar'}")
    for rel, data in files.items():
        assert (tmp_path / "back" / rel).read_bytes() == data
    any_mount.settle()
    assert any_mount.drive.content("x/sub/deeper/c.bin") == files["sub/deeper/c.bin"]
    assert any_mount.drive.names("x/sub/deeper") == ["c.bin", "d.txt"]


def test_find_mv_rm_and_mkdir_p(any_mount: LiveMount) -> None:
    any_mount.sh("mkdir -p a/b/c && echo one > a/b/c/f1 && echo two > a/b/f2")
    found = any_mount.sh("find a -type f | sort").stdout.split()
    assert found == ["a/b/c/f1", "a/b/f2"]
    any_mount.sh("mv a/b/c a/moved && mv a/b/f2 a/moved/f2-renamed")
    any_mount.settle()
    assert any_mount.drive.names("a") == ["b", "moved"]
    assert any_mount.drive.names("a/moved") == ["f1", "f2-renamed"]
    assert any_mount.drive.content("a/moved/f2-renamed") == b"two\n"
    any_mount.sh("rm -r a")
    assert not any_mount.drive.exists("a")
    assert any_mount.sh("ls").stdout == ""


def test_echo_append_and_truncate(any_mount: LiveMount) -> None:
    any_mount.drive.add_file("log.txt", b"first\n")
    any_mount.fs.refresh("/")  # as `icloudfs refresh` does; otherwise seen after the metadata TTL
    any_mount.sh("echo second >> log.txt && echo third >> log.txt")
    any_mount.settle()
    assert any_mount.drive.content("log.txt") == b"first\nsecond\nthird\n"
    any_mount.sh("truncate -s 6 log.txt")
    any_mount.settle()
    assert any_mount.drive.content("log.txt") == b"first\n"
    any_mount.sh("truncate -s 10 log.txt")
    any_mount.settle()
    assert any_mount.drive.content("log.txt") == b"first\n\0\0\0\0"
    assert any_mount.sh("stat -c %s log.txt").stdout.strip() == "10"


def test_git_init_and_commit(any_mount: LiveMount) -> None:
    env = "GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@e GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@e"
    any_mount.sh("mkdir repo && cd repo && git init -q && echo hello > readme && git add readme")
    any_mount.sh(f"cd repo && {env} git commit -qm first && echo more >> readme")
    any_mount.sh(f"cd repo && {env} git commit -qam second")
    log = any_mount.sh("cd repo && git log --oneline | wc -l && git status --porcelain").stdout
    assert log.split() == ["2"]
    assert any_mount.sh("cd repo && git fsck --no-progress 2>&1").returncode == 0
    any_mount.settle()
    assert any_mount.drive.content("repo/readme") == b"hello\nmore\n"
    assert "HEAD" in any_mount.drive.names("repo/.git")


def test_unicode_and_nfd_names(any_mount: LiveMount) -> None:
    nfd = unicodedata.normalize("NFD", "Café résumé.txt")
    nfc = unicodedata.normalize("NFC", nfd)
    (any_mount.path / nfd).write_bytes(b"data")
    assert (any_mount.path / nfc).read_bytes() == b"data"  # same file by either form
    assert (any_mount.path / nfc.upper()).read_bytes() == b"data"  # and either case
    (any_mount.path / "日本語 ✓").mkdir()
    (any_mount.path / "日本語 ✓" / "ファイル").write_bytes(b"x")
    any_mount.settle()
    assert any_mount.drive.content(nfc) == b"data"
    assert any_mount.drive.names("日本語 ✓") == ["ファイル"]


def test_name_with_a_slash_shows_as_a_look_alike(any_mount: LiveMount) -> None:
    parent = any_mount.drive.add_folder("f")
    source = any_mount.path.parent / "slash-source"
    source.write_bytes(b"s")
    any_mount.drive.upload(parent, "a/b", source, 0.0)
    any_mount.fs.refresh("/", recursive=True)  # a remote change: seen at once after a refresh
    assert os.listdir(any_mount.path / "f") == ["a\u2215b"]
    assert (any_mount.path / "f" / "a\u2215b").read_bytes() == b"s"


def test_touch_sets_the_remote_mtime(any_mount: LiveMount) -> None:
    any_mount.sh("echo data > stamped.txt")
    any_mount.settle()
    any_mount.sh("touch -d '2020-01-02 03:04:05 UTC' stamped.txt")
    any_mount.settle()
    expected = 1577934245
    assert int(os.stat(any_mount.path / "stamped.txt").st_mtime) == expected
    listing = any_mount.drive.list_folders([any_mount.fs.top.id])[0]
    (remote,) = [c for c in listing.children if c.name == "stamped.txt"]
    assert int(remote.mtime) == expected, "iCloud got the new mtime (by uploading again)"
    assert any_mount.drive.content("stamped.txt") == b"data\n"

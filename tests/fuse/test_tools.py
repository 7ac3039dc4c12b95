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


def test_cp_r_then_sha256sum(mounted: LiveMount, tmp_path: Path) -> None:
    files = _make_tree(tmp_path / "src")
    mounted.sh(f"cp -r {tmp_path / 'src'} tree")
    sums = mounted.sh("find tree -type f -print0 | xargs -0 sha256sum").stdout
    for rel, data in files.items():
        assert f"{_sha(data)}  tree/{rel}" in sums
    mounted.settle()
    for rel, data in files.items():
        assert mounted.drive.content(f"tree/{rel}") == data


def test_rsync_a(mounted: LiveMount, tmp_path: Path) -> None:
    if shutil.which("rsync") is None:
        pytest.skip("rsync is not installed (apt-get install rsync)")
    files = _make_tree(tmp_path / "src")
    mounted.sh(f"rsync -a {tmp_path / 'src'}/ synced/")
    again = mounted.sh(f"rsync -a --itemize-changes {tmp_path / 'src'}/ synced/").stdout
    assert again.strip() == "", f"second rsync should transfer nothing: {again}"
    mounted.settle()
    for rel, data in files.items():
        assert mounted.drive.content(f"synced/{rel}") == data


def test_tar_into_and_out_of_the_mount(mounted: LiveMount, tmp_path: Path) -> None:
    files = _make_tree(tmp_path / "src")
    mounted.sh(f"tar -C {tmp_path / 'src'} -cf {tmp_path / 'in.tar'} .")
    mounted.sh(f"mkdir x && tar -C x -xf {tmp_path / 'in.tar'}")
    mounted.sh(f"tar -C x -cf {tmp_path / 'out.tar'} .")
    (tmp_path / "back").mkdir()
    mounted.sh(f"tar -C {tmp_path / 'back'} -xf {tmp_path / 'out.tar'}")
    for rel, data in files.items():
        assert (tmp_path / "back" / rel).read_bytes() == data
    mounted.settle()
    assert mounted.drive.content("x/sub/deeper/c.bin") == files["sub/deeper/c.bin"]
    assert mounted.drive.names("x/sub/deeper") == ["c.bin", "d.txt"]


def test_find_mv_rm_and_mkdir_p(mounted: LiveMount) -> None:
    mounted.sh("mkdir -p a/b/c && echo one > a/b/c/f1 && echo two > a/b/f2")
    found = mounted.sh("find a -type f | sort").stdout.split()
    assert found == ["a/b/c/f1", "a/b/f2"]
    mounted.sh("mv a/b/c a/moved && mv a/b/f2 a/moved/f2-renamed")
    mounted.settle()
    assert mounted.drive.names("a") == ["b", "moved"]
    assert mounted.drive.names("a/moved") == ["f1", "f2-renamed"]
    assert mounted.drive.content("a/moved/f2-renamed") == b"two\n"
    mounted.sh("rm -r a")
    assert not mounted.drive.exists("a")
    assert mounted.sh("ls").stdout == ""


def test_echo_append_and_truncate(mounted: LiveMount) -> None:
    mounted.drive.add_file("log.txt", b"first\n")
    mounted.sh("echo second >> log.txt && echo third >> log.txt")
    mounted.settle()
    assert mounted.drive.content("log.txt") == b"first\nsecond\nthird\n"
    mounted.sh("truncate -s 6 log.txt")
    mounted.settle()
    assert mounted.drive.content("log.txt") == b"first\n"
    mounted.sh("truncate -s 10 log.txt")
    mounted.settle()
    assert mounted.drive.content("log.txt") == b"first\n\0\0\0\0"
    assert mounted.sh("stat -c %s log.txt").stdout.strip() == "10"


def test_git_init_and_commit(mounted: LiveMount) -> None:
    env = "GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@e GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@e"
    mounted.sh("mkdir repo && cd repo && git init -q && echo hello > readme && git add readme")
    mounted.sh(f"cd repo && {env} git commit -qm first && echo more >> readme")
    mounted.sh(f"cd repo && {env} git commit -qam second")
    log = mounted.sh("cd repo && git log --oneline | wc -l && git status --porcelain").stdout
    assert log.split() == ["2"]
    assert mounted.sh("cd repo && git fsck --no-progress 2>&1").returncode == 0
    mounted.settle()
    assert mounted.drive.content("repo/readme") == b"hello\nmore\n"
    assert "HEAD" in mounted.drive.names("repo/.git")


def test_unicode_and_nfd_names(mounted: LiveMount) -> None:
    nfd = unicodedata.normalize("NFD", "Café résumé.txt")
    nfc = unicodedata.normalize("NFC", nfd)
    (mounted.path / nfd).write_bytes(b"data")
    assert (mounted.path / nfc).read_bytes() == b"data"  # same file by either form
    assert (mounted.path / nfc.upper()).read_bytes() == b"data"  # and either case
    (mounted.path / "日本語 ✓").mkdir()
    (mounted.path / "日本語 ✓" / "ファイル").write_bytes(b"x")
    mounted.settle()
    assert mounted.drive.content(nfc) == b"data"
    assert mounted.drive.names("日本語 ✓") == ["ファイル"]


def test_name_with_a_slash_shows_as_a_look_alike(mounted: LiveMount) -> None:
    parent = mounted.drive.add_folder("f")
    source = mounted.path.parent / "slash-source"
    source.write_bytes(b"s")
    mounted.drive.upload(parent, "a/b", source, 0.0)
    assert os.listdir(mounted.path / "f") == ["a\u2215b"]
    assert (mounted.path / "f" / "a\u2215b").read_bytes() == b"s"

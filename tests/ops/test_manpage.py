"""``make man`` builds ``icloudfs.1`` from the parser, and ``man`` renders it with every command,
option help and the mount examples; ``--help`` leaves no option without a word of help."""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

import pytest

from icloudfs.cli import build_parser

REPO = Path(__file__).resolve().parents[2]


def test_every_option_has_help() -> None:
    missing = []

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    walk(child, f"{path} {name}")
            elif not action.help:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")

    walk(build_parser(), "icloudfs")
    assert not missing


@pytest.mark.skipif(shutil.which("man") is None or shutil.which("make") is None, reason="needs make and man")
def test_make_man_builds_a_page_man_renders() -> None:
    subprocess.run(["make", "-s", "man"], cwd=REPO, check=True, capture_output=True)
    page = subprocess.run(
        ["man", "-l", str(REPO / "build" / "icloudfs.1")],
        capture_output=True,
        text=True,
        check=True,
        env={"MANWIDTH": "120", "PATH": "/usr/bin:/bin", "MANPAGER": "cat", "LANG": "C.UTF-8"},
    ).stdout
    wanted = ("icloudfs mount", "icloudfs unmount", "--offline-timeout", "--folder /LegalCases", "exit 75")
    assert [words for words in wanted if words not in page] == []

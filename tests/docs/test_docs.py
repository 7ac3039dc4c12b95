"""README.md and docs/*.md: links that resolve, and only commands and options that exist.

Relative links must name an existing file, and an ``#anchor`` a heading of the target (GitHub's
slugs). Every ``icloudfs COMMAND`` in inline code or a code block must be a real subcommand, and
every ``--option`` after it on the same line (or in the same code span) one of that command's.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from icloudfs.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^\s*(```|~~~)")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|!\[[^\]]*\]\(([^)\s]+)\)")
SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
COMMAND = re.compile(r"(?<![\w/.@-])icloudfs[ \t]+([a-z][\w-]*)(.*)")
OPTION = re.compile(r"(?<![\w-])--[a-zA-Z0-9][\w-]*")
END_OF_COMMAND = re.compile(r"\s(?:#|\|\||&&|;|\|)(?:\s|$)")


def split(text: str) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(prose lines, code-block lines), each as (line number, text)."""
    prose: list[tuple[int, str]] = []
    code: list[tuple[int, str]] = []
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        (code if fenced else prose).append((number, line))
    return prose, code


def spans(prose: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Inline code spans outside code blocks (a span may run over a line break)."""
    numbers = [number for number, _ in prose]
    text = "\n".join(line for _, line in prose)
    found = []
    for match in SPAN.finditer(text):
        found.append((numbers[text.count("\n", 0, match.start())], match.group(2).replace("\n", " ")))
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    prose, _ = split(path.read_text())
    for _, line in prose:
        match = HEADING.match(line)
        if match:
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    if parser._subparsers is None:
        return {}
    return dict(parser._subparsers._group_actions[0].choices)  # type: ignore[attr-defined]


COMMANDS = _subcommands(build_parser())


def command_errors(line: str) -> list[str]:
    """What is wrong with the ``icloudfs`` commands written in one line or span."""
    errors = []
    for match in COMMAND.finditer(line):
        name, rest = match.group(1), match.group(2)
        if name not in COMMANDS:
            errors.append(f"`icloudfs {name}` is not a command")
            continue
        parser, shown = COMMANDS[name], f"icloudfs {name}"
        rest = END_OF_COMMAND.split(rest, maxsplit=1)[0]
        rest = rest.split("icloudfs", 1)[0]  # a second command on the line is checked on its own
        words = rest.split()
        nested = _subcommands(parser)
        if nested and words and words[0] in nested:
            parser, shown = nested[words[0]], f"{shown} {words[0]}"
        for option in OPTION.findall(rest):
            if option not in parser._option_string_actions:
                errors.append(f"`{shown}` has no option {option}")
    return errors


@pytest.mark.parametrize("path", DOCS, ids=lambda path: str(path.relative_to(ROOT)))
def test_relative_links_resolve(path: Path) -> None:
    prose, _ = split(path.read_text())
    text = "\n".join(SPAN.sub("", line) for _, line in prose)
    broken = []
    for match in LINK.finditer(text):
        target = match.group(1) or match.group(2)
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading #{anchor} in {resolved.relative_to(ROOT)}")
    assert not broken, f"{path.relative_to(ROOT)}: " + "; ".join(broken)


@pytest.mark.parametrize("path", DOCS, ids=lambda path: str(path.relative_to(ROOT)))
def test_commands_and_options_exist(path: Path) -> None:
    prose, code = split(path.read_text())
    wrong = [
        f"{path.relative_to(ROOT)}:{number}: {error}"
        for number, line in [*code, *spans(prose)]
        for error in command_errors(line)
    ]
    assert not wrong, "\n".join(wrong)


def test_the_checks_catch_mistakes() -> None:
    assert command_errors("icloudfs mount --folder /x ~/iCloud") == []
    assert command_errors("icloudfs token create --description laptop") == []
    assert command_errors("icloudfs mountt ~/iCloud") == ["`icloudfs mountt` is not a command"]
    assert command_errors("icloudfs unmount --lazy ~/iCloud  # --nothing") == [
        "`icloudfs unmount` has no option --lazy"
    ]
    assert command_errors("icloudfs/fs/core.py --nope") == []
    assert slug("The kernel's cache") == "the-kernels-cache"
    assert slug("mount(8) and /etc/fstab") == "mount8-and-etcfstab"

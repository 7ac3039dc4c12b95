"""docs/configuration.md names every setting, and only flags that exist."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from icloudfs.cli import build_parser
from icloudfs.config import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def rows() -> list[list[str]]:
    table = [line for line in DOC.read_text().splitlines() if line.startswith("| `")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in table]


def test_every_setting_is_documented_once() -> None:
    keys = [re.sub(r"`", "", row[0]) for row in rows()]
    assert sorted(keys) == sorted(f.name for f in dataclasses.fields(Settings))


def test_every_flag_named_exists() -> None:
    parser = build_parser()
    commands = {name: sub for action in parser._subparsers._actions  # type: ignore[union-attr]
                if hasattr(action, "choices") and isinstance(action.choices, dict)
                for name, sub in action.choices.items()}  # fmt: skip
    for row in rows():
        named = row[1].strip("`")
        if named == "\u2013":  # an en dash: no flag
            continue
        *command, flag = named.split()
        owner = commands[command[0]] if command else commands["mount"]
        assert flag in owner._option_string_actions, f"{named} is not a flag"

"""iCloud's naming rules: ``name`` + ``extension`` split, NFC/case-insensitive uniqueness, "stem 2.ext".

Names are stored as given (case preserved). Two names clash when their NFC forms
are equal ignoring case, which is how iCloud (and rclone's client) compare them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable


def name_key(name: str) -> str:
    """The form two names are compared in."""
    return unicodedata.normalize("NFC", name).casefold()


def split_name(name: str) -> tuple[str, str | None]:
    """``report.final.pdf`` -> (``report.final``, ``pdf``); no extension for dotfiles or a trailing dot."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or not ext:
        return name, None
    return stem, ext


def free_name(name: str, is_taken: Callable[[str], bool], is_file: bool) -> str:
    """The first of ``name``, ``stem 2.ext``, ``stem 3.ext``... that is free, as iCloud names copies."""
    if not is_taken(name):
        return name
    stem, ext = split_name(name) if is_file else (name, None)
    suffix = f".{ext}" if ext else ""
    n = 2
    while is_taken(f"{stem} {n}{suffix}"):
        n += 1
    return f"{stem} {n}{suffix}"

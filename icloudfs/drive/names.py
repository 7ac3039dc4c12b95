"""How names are compared and shown.

iCloud Drive treats names as case-insensitive after Unicode NFC normalisation,
while Linux tools may send NFD (macOS habit) or any case. Everything that asks
"is this name taken?" goes through ``key``; the name itself is kept as given, so
case is preserved.

A remote name may contain ``/``, which no POSIX name can. It is shown with the
look-alike U+2215 (DIVISION SLASH) and turned back into ``/`` when sent to the
drive. Keys are computed on the local form, so a remote name that already
contained U+2215 still resolves. A server could also send names no POSIX
folder may hold (NUL, ``.``, ``..``, empty): they get look-alikes too (U+2400,
U+2024), so a hostile listing can never make a path leave the mount's folder.
"""

from __future__ import annotations

import re
import unicodedata

SLASH_LOOKALIKE = "\u2215"
NUL_LOOKALIKE = "\u2400"  # SYMBOL FOR NULL
DOT_LOOKALIKE = "\u2024"  # ONE DOT LEADER
_RESERVED = {"": NUL_LOOKALIKE, ".": DOT_LOOKALIKE, "..": DOT_LOOKALIKE * 2}


def key(name: str) -> str:
    """The comparison key of a name: NFC, then case-folded (the name itself when that changes
    nothing, so a cached listing does not hold each lower-case name twice)."""
    folded = unicodedata.normalize("NFC", name).casefold()
    return name if folded == name else folded


def to_local(remote_name: str) -> str:
    """The name as a POSIX path component (``/`` becomes U+2215; see the module note)."""
    if remote_name in _RESERVED:
        return _RESERVED[remote_name]
    return remote_name.replace("/", SLASH_LOOKALIKE).replace("\0", NUL_LOOKALIKE)


def to_remote(local_name: str) -> str:
    """The name as the drive stores it (U+2215 becomes ``/``), normalised to NFC."""
    return unicodedata.normalize("NFC", local_name).replace(SLASH_LOOKALIKE, "/")


def split_extension(name: str) -> tuple[str, str]:
    """``archive.tar.gz`` -> (``archive.tar``, ``.gz``); dotfiles and names ending in a dot
    have no extension (``.bashrc`` -> (``.bashrc``, ``""``)), as iCloud sees them."""
    stem, dot, ext = name.rpartition(".")
    return (stem, dot + ext) if dot and stem and ext else (name, "")


def numbered_copy(candidate: str, name: str) -> bool:
    """Whether ``candidate`` is how iCloud names an upload to the taken ``name``: ``stem N.ext``
    (N >= 2; dotfiles and names without an extension get `` N`` at the end)."""
    stem, ext = split_extension(name)
    pattern = rf"{re.escape(key(stem))} ([2-9]|[1-9][0-9]+){re.escape(key(ext))}"
    return re.fullmatch(pattern, key(candidate)) is not None

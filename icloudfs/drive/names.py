"""How names are compared and shown.

iCloud Drive treats names as case-insensitive after Unicode NFC normalisation,
while Linux tools may send NFD (macOS habit) or any case. Everything that asks
"is this name taken?" goes through ``key``; the name itself is kept as given, so
case is preserved.

A remote name may contain ``/``, which no POSIX name can. It is shown with the
look-alike U+2215 (DIVISION SLASH) and turned back into ``/`` when sent to the
drive. Keys are computed on the local form, so a remote name that already
contained U+2215 still resolves.
"""

from __future__ import annotations

import unicodedata

SLASH_LOOKALIKE = "\u2215"


def key(name: str) -> str:
    """The comparison key of a name: NFC, then case-folded."""
    return unicodedata.normalize("NFC", name).casefold()


def to_local(remote_name: str) -> str:
    """The name as a POSIX path component (``/`` becomes U+2215)."""
    return remote_name.replace("/", SLASH_LOOKALIKE)


def to_remote(local_name: str) -> str:
    """The name as the drive stores it (U+2215 becomes ``/``), normalised to NFC."""
    return unicodedata.normalize("NFC", local_name).replace(SLASH_LOOKALIKE, "/")

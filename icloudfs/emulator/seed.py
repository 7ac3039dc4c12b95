"""Initial drive contents, written straight into the store (``--seed``, repeatable, each applied once).

* ``demo``: a small realistic tree (nested case folders, PDFs/DOCX-like files,
  Unicode and emoji names, a name with ``/``, an empty folder, a few-MB file and a
  ``.pages`` package in the Pages library);
* ``tree:FILES:FOLDERS[:BYTES]``: a synthetic tree under ``/tree-FILES-FOLDERS`` with
  FOLDERS folders (in a shallow fan-out) holding FILES files of BYTES bytes (default 1024);
* ``file:NAME:BYTES``: one file ``/NAME`` of BYTES pattern bytes (streamed, so GiB files are cheap);
* ``copy:PATH``: the local folder PATH, copied under ``/`` with its name, files and mtimes (a git
  checkout, for instance).

``tree_layout`` and ``write_pattern`` let a benchmark build the same files elsewhere.

New seeds are a function taking the store and the spec's arguments, added to ``SEEDS``.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from icloudfs.emulator.store import ROOT_ID, Item, Store


def _file(store: Store, parent: Item, name: str, data: bytes, mtime: float | None = None) -> Item:
    fd, tmp = tempfile.mkstemp(dir=store.staging)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return store.add_file(parent, name, Path(tmp), zone=parent.zone, mtime=mtime)


def _folder(store: Store, parent: Item, name: str) -> Item:
    return store.create_folder(parent, name)


def _pattern(label: str, size: int) -> bytes:
    """Deterministic, label-specific bytes (so every file's content differs)."""
    block = hashlib.sha256(label.encode()).digest() * 128  # 4 KiB
    return (block * (size // len(block) + 1))[:size]


def write_pattern(path: Path, label: str, size: int) -> None:
    """Write ``_pattern(label, size)`` to ``path`` without holding it all in memory."""
    chunk = _pattern(label, 4 << 20)
    with path.open("wb") as out:
        left = size
        while left > 0:
            left -= out.write(chunk[: min(left, len(chunk))])


def tree_layout(files: int, folders: int) -> tuple[list[str], list[tuple[str, str]]]:
    """The ``tree`` seed's folders (parents first) and (file path, content label), relative to its top.

    Folder ``n`` goes under folder ``n // 8`` (a broad, shallow tree); file ``n`` into folder ``n % folders``.
    """
    folders = max(1, folders)
    paths = [""]
    for n in range(folders - 1):
        parent = paths[n // 8]
        paths.append(f"{parent}/dir{n:05d}" if parent else f"dir{n:05d}")
    made = []
    for n in range(files):
        parent = paths[n % folders]
        made.append((f"{parent}/file{n:06d}.bin" if parent else f"file{n:06d}.bin", f"tree-{n}"))
    return paths[1:], made


def _pdf(title: str) -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n% "
        + title.encode()
        + b"\n"
        + _pattern(title, 2048)
        + b"\n%%EOF\n"
    )


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def seed_demo(store: Store, args: list[str]) -> None:
    root = store.get(ROOT_ID)
    assert root is not None
    day = 86400.0
    then = time.time() - 90 * day
    cases = _folder(store, root, "LegalCases")
    y2024 = _folder(store, cases, "2024")
    smith = _folder(store, y2024, "Smith v Jones")
    _file(store, smith, "Complaint.pdf", _pdf("Complaint"), then)
    _file(store, smith, "Exhibit A/B.pdf", _pdf("Exhibit A/B"), then + day)
    discovery = _folder(store, smith, "Discovery")
    _file(
        store,
        discovery,
        "Deposition transcript.txt",
        b"Q. Please state your name for the record.\nA. John Smith.\n" * 40,
        then + 2 * day,
    )
    _file(
        store,
        discovery,
        "Interrogatories.docx",
        _zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>"}),
        then + 3 * day,
    )
    y2025 = _folder(store, cases, "2025")
    doe = _folder(store, y2025, "Doe v Roe")
    _file(store, doe, "Notes.txt", b"Initial consultation notes.\n", then + 10 * day)
    templates = _folder(store, cases, "Templates")
    _file(store, templates, "Engagement Letter.docx", _zip({"word/document.xml": b"<w:document/>"}))
    _file(store, root, "Café Résumé.txt", "Café, résumé, naïve — ünïcödé.\n".encode())
    _file(store, root, "Ideas 💡.txt", "Build a FUSE driver 🚀\n".encode())
    _folder(store, root, "Empty Folder")
    media = _folder(store, root, "Media")
    _file(store, media, "recording.bin", _pattern("recording", 3 * 1024 * 1024 + 123))
    pages = store.get("FOLDER::com.apple.Pages::documents")
    assert pages is not None
    _file(
        store,
        pages,
        "Brief.pages",
        _zip(
            {
                "Index/Document.iwa": _pattern("Brief", 4096),
                "Metadata/Properties.plist": b"<plist/>",
                "preview.jpg": _pattern("preview", 1024),
            }
        ),
    )


def seed_tree(store: Store, args: list[str]) -> None:
    files, folders = int(args[0]), max(1, int(args[1]))
    size = int(args[2]) if len(args) > 2 else 1024
    root = store.get(ROOT_ID)
    assert root is not None
    made = {"": _folder(store, root, f"tree-{files}-{folders}")}
    folder_paths, file_paths = tree_layout(files, folders)
    for path in folder_paths:
        parent, _, name = path.rpartition("/")
        made[path] = _folder(store, made[parent], name)
    for path, label in file_paths:
        parent, _, name = path.rpartition("/")
        _file(store, made[parent], name, _pattern(label, size))


def seed_file(store: Store, args: list[str]) -> None:
    name, size = args[0], int(args[1])
    root = store.get(ROOT_ID)
    assert root is not None
    fd, tmp = tempfile.mkstemp(dir=store.staging)
    os.close(fd)
    write_pattern(Path(tmp), name, size)
    store.add_file(root, name, Path(tmp), zone=root.zone)


def seed_copy(store: Store, args: list[str]) -> None:
    source = Path(":".join(args))
    root = store.get(ROOT_ID)
    assert root is not None
    made = {source: _folder(store, root, source.name)}
    for folder, subfolders, files in os.walk(source):
        here = made[Path(folder)]
        for name in sorted(subfolders):
            made[Path(folder) / name] = _folder(store, here, name)
        for name in sorted(files):
            path = Path(folder) / name
            _file(store, here, name, path.read_bytes(), path.stat().st_mtime)


SEEDS: dict[str, Callable[[Store, list[str]], None]] = {
    "demo": seed_demo,
    "tree": seed_tree,
    "file": seed_file,
    "copy": seed_copy,
}


def apply_seed(store: Store, spec: str) -> None:
    """Apply ``name[:arg...]`` unless this exact spec was already applied to this data dir."""
    name, *args = spec.split(":")
    if name not in SEEDS:
        raise ValueError(f"unknown seed {name!r} (known: {', '.join(SEEDS)})")
    marker = f"seeded:{spec}"
    if store.get_value(marker):
        return
    SEEDS[name](store, args)
    store.set_value(marker, "1")

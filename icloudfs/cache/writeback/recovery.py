"""Start-up: every journal row becomes a node again, with its staged copy, to be uploaded.

A small file's bytes are in its row: if a crash emptied, tore or lost its staged copy, the copy
is put back from the row. A bigger file's copy was synced before its row was written; one that
is missing all the same (the disk lost it) is logged and its row dropped, as there is nothing
left to upload.

Two rows for one name (a stored version whose row was not forgotten yet, and a newer one written
over it) resume as one: only the newer is uploaded (racing it, the older could overwrite it or
make it a conflict copy), knowing the older's uploads as ours too. Staged copies no row refers
to are strays of a crash and are removed. A row in a folder made offline whose mkdir iCloud has
made since names the folder's placeholder id: it is given the real id (the journal's aliases).
"""

from __future__ import annotations

import logging

from icloudfs.cache.writeback import staged
from icloudfs.cache.writeback.journal import Journal, Row
from icloudfs.cache.writeback.node import MAX_ATTEMPTS, FileNode
from icloudfs.drive import names

log = logging.getLogger(__name__)


def resume(journal: Journal, files: staged.StagedFiles) -> list[FileNode]:
    """The nodes of every journal row, newest per name; strays removed."""
    newest: dict[tuple[str, str], FileNode] = {}  # (folder id, name key) -> its latest row's node
    aliases = journal.aliases()
    for key, data in journal.rows():  # oldest write first
        node = _node_from(journal, files, key, data)
        if node is None:
            continue
        if node.parent_id in aliases:
            node.parent_id = aliases[node.parent_id]
            _rewrite(journal, node)
        place = (node.parent_id, names.key(node.name))
        older = newest.pop(place, None)
        if older is not None:
            _supersede(journal, older, node)
        newest[place] = node
    files.remove_strays({n.staged.path.name for n in newest.values() if n.staged is not None})
    journal.forget_aliases()
    return list(newest.values())


def _node_from(journal: Journal, files: staged.StagedFiles, key: str, data: str) -> FileNode | None:
    row = Row.decode(data)
    content = journal.content(key)
    if content is not None and staged.restore(files.folder / row.file, content):
        log.warning("write-back: %s was cut short by a crash; restored from the journal", row.name)
    copy = files.reopen(row.file, row.mtime)
    if copy is None:
        log.error("write-back: staged copy of %s is missing; dropping it", row.name)
        journal.delete(key)
        return None
    copy.attempts = list(row.attempts)
    copy.resumed = bool(copy.attempts)
    copy.generation, copy.stored_generation, copy.journaled_generation = 1, 0, 1
    copy.journal_row = data
    node = FileNode(key, row.parent_id, row.name, row.base)
    node.staged = copy
    return node


def _supersede(journal: Journal, older: FileNode, newer: FileNode) -> None:
    """Resume only ``newer``, knowing ``older``'s uploads as ours (its digests go in first, so a
    crash now keeps both)."""
    log.info("write-back: %s was journaled twice; resuming the newer version", newer.name)
    assert older.staged is not None and newer.staged is not None
    merged = [d for d in older.staged.attempts if d not in newer.staged.attempts] + newer.staged.attempts
    newer.staged.attempts = merged[-MAX_ATTEMPTS:]
    _rewrite(journal, newer)
    journal.delete(older.key)
    staged.close_fd(older.staged)


def _rewrite(journal: Journal, node: FileNode) -> None:
    """Write the node's row again, as it is now (its bytes kept as they were)."""
    copy = node.staged
    assert copy is not None
    row = Row(node.parent_id, node.name, node.remote, copy.mtime, copy.path.name, copy.attempts).encode()
    journal.write(node.key, row, journal.content(node.key))
    copy.journal_row = row

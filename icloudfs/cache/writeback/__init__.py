"""Safe write-back: staged copies, a durable journal, and uploads that never lose data.

The design, in the order a file meets it:

- **A node per file** (``node.py``). A file the mount is working on (open, staged, being
  renamed) is a ``FileNode`` with a key that never changes while it lives; where it is stored
  remotely (``remote``) is an attribute that its upload changes (iCloud gives every version a
  new id). Handles, the journal, the upload queue and the folder view refer to the node, so a
  decision made about a file stays true while its upload runs. ``table.py`` finds nodes by key,
  by any remote id they have had, and by where they are shown.
- **Staged copies** (``staged.py``). Writes go to a local copy at any offset; nothing is sent
  until the file has been closed for ``delay`` seconds (a burst of writes, or an editor's save
  dance, costs one upload), or at once on ``fsync``, which returns once the bytes are stored.
- **The journal** (``journal.py``, ``rows.py``). When a written file is closed its row (SQLite,
  synchronous=FULL) is committed before the call returns, durably with the bytes it stands for:
  a small file's bytes are in the row itself, a bigger file's copy is fdatasync'ed first. On
  start every row is resumed (``recovery.py``), so a crash or a kill between close and upload
  only delays the upload. Rows of stored files are forgotten in batches, after the listings
  that show the stored versions are on disk.
- **Uploads** (``queue.py``, ``upload.py``, ``conflicts.py``, ``settle.py``). A scheduler hands due nodes to
  upload threads as jobs: snapshots of one version. A rename, unlink, truncate or new write of
  a file whose upload is in flight cancels it, unless it is past its commit point (then the
  namespace operation waits the few requests left, never a transfer); a cancelled upload is
  queued again at once. Replacing uses the stored version the local bytes were based on, so a
  file changed elsewhere meanwhile is kept and the local bytes go beside it as a conflict copy.
  A failed upload keeps its bytes and is retried with backoff (2 s doubling to 5 min). No
  thread of the write-back ends on an error; what keeps failing shows in ``stats``
  (``health.py``).
- **Namespace operations** on files that are not stored yet are local only: renaming one moves
  the node (and over an existing file, the node takes over that file's stored version, which its
  upload then replaces); deleting one voids its upload. Those on stored files are made remotely
  by the filesystem, with the node quiesced, and the node told the result.

``WriteBack`` (``writeback.py``) is what the filesystem calls.
"""

from icloudfs.cache.writeback.node import FileNode, NodeState
from icloudfs.cache.writeback.rows import DIGEST_AT_CLOSE, IN_ROW
from icloudfs.cache.writeback.writeback import Found, WriteBack

__all__ = ["DIGEST_AT_CLOSE", "IN_ROW", "FileNode", "Found", "NodeState", "WriteBack"]

"""One upload job: it stores one version of a node's staged copy, unless it is cancelled first.

The job is a snapshot (``Job``: the generation, the copy it reads, the stored version it
replaces, the folder and name) taken when the upload starts; nothing is held while it runs, so
the file can be written, renamed or deleted meanwhile. Whoever does that cancels the job, and
its ``UploadControl`` stops it: ``check`` as the bytes go out, and ``committing`` just before
the request that would make them appear, which raises ``Cancelled`` instead. Setting
``committed`` there, under the node's lock, is the line: before it a cancel is immediate and
nothing appears remotely; after it the job ends as stored or failed, and namespace operations
wait the few requests that takes (never a transfer).

``conflicts.store`` does the storing; this module keeps the node's books before and after.
"""

from __future__ import annotations

from typing import Protocol

from icloudfs.cache.writeback.node import FileNode, Job
from icloudfs.errors import Cancelled


class Recorder(Protocol):
    """What the write-back does with a digest at the commit point: journal it."""

    def record_attempt(self, node: FileNode, digest: str) -> None: ...


class JobControl:
    """The ``UploadControl`` of one job."""

    def __init__(self, node: FileNode, job: Job, recorder: Recorder) -> None:
        self._node, self._job, self._recorder = node, job, recorder

    def check(self) -> None:
        if self._job.cancelled:
            raise Cancelled(self._job.cancelled)

    def committing(self, sha256: str) -> None:
        with self._node.lock:
            if self._job.cancelled:
                raise Cancelled(self._job.cancelled)
            self._job.committed = True
        self._recorder.record_attempt(self._node, sha256)


def new_job(node: FileNode) -> Job:
    """The job for the node's current version (hold its lock; it has a dirty staged copy)."""
    staged = node.staged
    assert staged is not None
    job = Job(staged.generation, staged.path, node.remote, node.parent_id, node.name, staged.mtime)
    node.job = job
    return job


def cancel(node: FileNode, why: str) -> bool:
    """Cancel the node's upload if it has not reached its commit point (hold its lock);
    True if one was cancelled."""
    job = node.job
    if job is None or job.committed or job.cancelled:
        return False
    job.cancelled = why
    return True

"""Mount status and the filesystem's knobs: caches, refresh, uploads.

Handlers are plain ``def``: FastAPI runs them in its thread pool, so a
filesystem call that waits on the network does not stall the event loop.
"""

from __future__ import annotations

from fastapi import APIRouter

from icloudfs.control.routes.deps import GUARDED, Service
from icloudfs.control.schemas import (
    CacheStatus,
    EvictRequest,
    EvictResult,
    PinRequest,
    PinResult,
    RefreshRequest,
    RefreshResult,
    RetryResult,
    Status,
    Upload,
    errors,
)

router = APIRouter(tags=["mount"], responses=GUARDED)
_MOUNTED = errors(409)  # nothing mounted


@router.get("/status")
def status(service: Service) -> Status:
    """Mount, account, cache, uploads and counters."""
    return service.status()


@router.get("/cache", responses=_MOUNTED)
def cache(service: Service) -> CacheStatus:
    service.need_filesystem()
    report = service.status().cache
    assert report is not None  # a filesystem always reports its caches
    return report


@router.post("/cache/evict", responses=_MOUNTED)
def evict(service: Service, body: EvictRequest | None = None) -> EvictResult:
    """Drop cached content of one path, or all of it."""
    path = body.path if body else None
    return EvictResult(bytes_freed=service.need_filesystem().evict(path))


@router.post("/refresh", responses={**_MOUNTED, **errors(404, 503)})
def refresh(service: Service, body: RefreshRequest) -> RefreshResult:
    """Forget cached metadata under ``path`` and fetch it again."""
    folders = service.need_filesystem().refresh(body.path, body.recursive)
    return RefreshResult(path=body.path, recursive=body.recursive, folders=folders)


@router.post("/pin", responses={**_MOUNTED, **errors(404, 503)})
def pin(service: Service, body: PinRequest) -> PinResult:
    """Keep the files under ``path`` in the content cache for offline use (or stop keeping them).

    The files are cached as they are read; ``icloudfs pin`` reads them with a progress bar."""
    files, size = service.need_filesystem().pin(body.path, body.keep)
    return PinResult(path=body.path, keep=body.keep, files=files, bytes=size)


@router.get("/uploads", responses=_MOUNTED)
def uploads(service: Service) -> list[Upload]:
    return [Upload.model_validate(dict(item)) for item in service.need_filesystem().uploads()]


@router.post("/uploads/retry", responses=_MOUNTED)
def retry_uploads(service: Service) -> RetryResult:
    """Requeue failed uploads now."""
    return RetryResult(retried=service.need_filesystem().retry_uploads())

"""``/health`` (open to everyone, says nothing private) and ``/metrics`` (Prometheus).

Metrics come from a private ``CollectorRegistry`` whose one collector reads the
service's stats at scrape time, then the mount's own collectors (FUSE latency,
HTTP calls: ``icloudfs.metrics``), so nothing is counted twice and nothing global
is registered (several apps can live in one process, as in the tests).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import get_args

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

import icloudfs
from icloudfs.control.routes.deps import GUARDED
from icloudfs.control.schemas import AuthState, Health
from icloudfs.control.service import ControlService

router = APIRouter(tags=["health"])


@router.get("/health")
def health() -> Health:
    """Liveness; needs no token."""
    return Health(version=icloudfs.__version__)


class _StatusCollector(Collector):
    def __init__(self, service: ControlService) -> None:
        self._service = service

    def collect(self) -> Iterable[Metric]:
        status = self._service.status()
        yield GaugeMetricFamily("icloudfs_mounted", "1 while mounted", value=status.mount.mounted)
        if status.account is not None:
            states = GaugeMetricFamily("icloudfs_auth_state", "1 for the current state", labels=["state"])
            for state in get_args(AuthState):
                states.add_metric([state], float(state == status.account.auth_state))
            yield states
        if status.cache is not None:
            meta, content = status.cache.metadata, status.cache.content
            yield GaugeMetricFamily("icloudfs_metadata_cache_entries", "Cached entries", value=meta.entries)
            yield CounterMetricFamily("icloudfs_metadata_cache_hits", "Hits", value=meta.hits)
            yield CounterMetricFamily("icloudfs_metadata_cache_misses", "Misses", value=meta.misses)
            yield GaugeMetricFamily("icloudfs_content_cache_bytes", "Bytes used", value=content.bytes_used)
            yield GaugeMetricFamily(
                "icloudfs_content_cache_limit_bytes", "Byte limit", value=content.bytes_limit
            )
            yield CounterMetricFamily("icloudfs_content_cache_hits", "Hits", value=content.hits)
            yield CounterMetricFamily("icloudfs_content_cache_misses", "Misses", value=content.misses)
        if status.uploads is not None:
            for name in ("queued", "in_progress", "failed"):
                yield GaugeMetricFamily(
                    f"icloudfs_uploads_{name}", f"Uploads {name}", value=getattr(status.uploads, name)
                )
        for collector in self._service.metrics:
            yield from collector.collect()


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        **GUARDED,
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "Prometheus text format",
        },
    },
)
def metrics(request: Request) -> Response:
    """Prometheus text format."""
    registry: CollectorRegistry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def metrics_registry(service: ControlService) -> CollectorRegistry:
    """A private registry reporting ``service`` (one per app)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StatusCollector(service))
    return registry

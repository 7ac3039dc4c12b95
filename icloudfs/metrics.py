"""What a mount measures for ``/metrics``: FUSE operations and HTTP calls to iCloud.

Every mount keeps its own registries, never prometheus_client's global one
(several mounts and control planes live in one process in the tests). The
metrics are prometheus_client's, which are thread-safe; an observation costs a
few microseconds. The control plane reads the registries at scrape time.

- ``FuseMetrics``: the latency of every FUSE operation by ``op``, and failures
  by ``op`` and ``errno``; one per ``Mount``. The operation and error counts in
  ``/status`` are read from these too (``counts``): each call is counted once.
- ``HttpMetrics``: every HTTP call to iCloud timed by ``endpoint`` and
  ``status`` (``error`` when nothing answered), and the body bytes sent and
  received per endpoint. ``instrument(session)`` wraps a ``requests``
  session's transport adapters (pyicloud's), so nothing above the transport
  knows; the Drive backend's own ``Transport`` calls ``observe``. An
  ``Account`` owns one for all its sessions.
  Received bytes are the body read for ordinary calls and the declared
  ``Content-Length`` for streamed ones (downloads), whose body is read later.
- ``endpoint_label``: service and path with ids stripped, so the labels stay
  few: ``docws:/ws/{zone}/download/by_id``, ``setup:/setup/ws/1/accountLogin``;
  signed content URLs are all ``content:/{signed}``.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Iterable, Mapping
from typing import Generic, TypeVar
from urllib.parse import urlsplit

import requests
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import Metric
from requests.adapters import BaseAdapter

#: From a cached ``getattr`` (tens of microseconds) to an uncached read on a slow link.
FUSE_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0)
HTTP_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_M = TypeVar("_M", Histogram, Counter)


class _Labelled(Generic[_M]):
    """A metric's children by label values, each looked up once: ``labels()`` validates the
    values and takes a lock on every call (2% of the daemon's time in `cp -r` of small files)."""

    def __init__(self, metric: _M) -> None:
        self._metric: _M = metric
        self._children: dict[tuple[str, ...], _M] = {}

    def __call__(self, *values: str) -> _M:
        child = self._children.get(values)
        if child is None:
            child = self._children.setdefault(values, self._metric.labels(*values))
        return child


# Errors that answer the question asked rather than report a failure: ``rsync``, editors and
# shells look up names that do not exist, create lock files with O_EXCL, probe extended
# attributes and try rmdir on full folders all the time. Counting them as errors buried the real
# failures (EIO, EACCES, ENOSPC, EAGAIN, ESTALE...) under hundreds of ENOENT.
ANSWERS = frozenset(
    {"ENOENT", "EEXIST", "ENOTEMPTY", "ENOTDIR", "EISDIR", "ENODATA", "ERANGE", "ENAMETOOLONG"}
    | {"EPERM", "EROFS", "ENOTSUP", "EOPNOTSUPP", "ENOSYS", "EXDEV"}
)


class FuseMetrics:
    """Latency and failures of one mount's FUSE operations."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._seconds = _Labelled(
            Histogram(
                "icloudfs_fuse_op_seconds",
                "Time spent in each FUSE operation",
                ["op"],
                buckets=FUSE_BUCKETS,
                registry=self.registry,
            )
        )
        self._failures = _Labelled(
            Counter(
                "icloudfs_fuse_op_errors",
                "FUSE operations that failed, by errno",
                ["op", "errno"],
                registry=self.registry,
            )
        )
        self.last_error = ""  # "op: ERRNO" of the latest failure

    def observe(self, op: str, seconds: float, errno_name: str | None = None) -> None:
        """One operation that took ``seconds``; ``errno_name`` when it returned an error. Only
        failures count as errors: an answer about the namespace (``ANSWERS``) does not."""
        self._seconds(op).observe(seconds)
        if errno_name is not None and errno_name not in ANSWERS:
            self._failures(op, errno_name).inc()
            self.last_error = f"{op}: {errno_name}"

    def counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """Operations by name, and failures by errno name, so far."""
        ops: dict[str, int] = {}
        failures: dict[str, int] = {}
        for metric in self.registry.collect():
            for sample in metric.samples:
                if sample.name == "icloudfs_fuse_op_seconds_count":
                    ops[sample.labels["op"]] = int(sample.value)
                elif sample.name == "icloudfs_fuse_op_errors_total":
                    errno_name = sample.labels["errno"]
                    failures[errno_name] = failures.get(errno_name, 0) + int(sample.value)
        return ops, failures

    def collect(self) -> Iterable[Metric]:
        return self.registry.collect()


class HttpMetrics:
    """Every HTTP call to iCloud made through the sessions given to ``instrument``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._seconds = _Labelled(
            Histogram(
                "icloudfs_http_request_seconds",
                "HTTP calls to iCloud by endpoint and status (_count counts them)",
                ["endpoint", "status"],
                buckets=HTTP_BUCKETS,
                registry=self.registry,
            )
        )
        self._sent = _Labelled(
            Counter(
                "icloudfs_http_sent_bytes",
                "Request body bytes sent",
                ["endpoint"],
                registry=self.registry,
            )
        )
        self._received = _Labelled(
            Counter(
                "icloudfs_http_received_bytes",
                "Response body bytes received",
                ["endpoint"],
                registry=self.registry,
            )
        )

    def instrument(self, session: requests.Session) -> None:
        """Measure every call ``session`` makes from now on (call it after mounting adapters)."""
        for prefix, adapter in list(session.adapters.items()):
            if not isinstance(adapter, _MeasuredAdapter):
                session.mount(prefix, _MeasuredAdapter(adapter, self))

    def observe(self, endpoint: str, status: str, seconds: float, *, sent: int, received: int) -> None:
        self._seconds(endpoint, status).observe(seconds)
        if sent:
            self._sent(endpoint).inc(sent)
        if received:
            self._received(endpoint).inc(received)

    def collect(self) -> Iterable[Metric]:
        return self.registry.collect()


class _MeasuredAdapter(BaseAdapter):
    """A transport adapter that times the one it wraps and counts body bytes."""

    def __init__(self, inner: BaseAdapter, metrics: HttpMetrics) -> None:
        super().__init__()
        self.inner = inner
        self._metrics = metrics

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        started = time.perf_counter()
        status, received = "error", 0
        try:
            response = self.inner.send(
                request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies
            )
            # A plain call's body is read now (requests would read it next), so it is timed too;
            # a streamed one (a download) is read later by the caller: count what it declares.
            received = _int(response.headers.get("Content-Length")) if stream else len(response.content)
            status = str(response.status_code)
            return response
        finally:
            endpoint = endpoint_label(request.url or "")
            elapsed = time.perf_counter() - started
            self._metrics.observe(endpoint, status, elapsed, sent=_body_size(request), received=received)

    def close(self) -> None:
        self.inner.close()


_APPLE_DOMAINS = ("apple.com", "icloud.com", "icloud-content.com", "apple-cloudkit.com", "icloud.com.cn")
#: Services that keep their root in the path at Apple too (``idmsa.apple.com/appleauth/...``).
_ROOTED = {"appleauth": "idmsa", "setup": "setup"}
_CONTENT_ROOTS = frozenset({"content", "upload"})
_WORD = re.compile(r"[A-Za-z_]+|[A-Za-z0-9_]{1,4}")  # accountLogin, by_id, 2sv, 1; not ids


@functools.lru_cache(maxsize=1024)  # the same few URLs over and over (their query included)
def endpoint_label(url: str) -> str:
    """``service:/path`` with ids, zones and signed parts replaced, for a low-cardinality label.

    At Apple the service is the host (``p42-docws.icloud.com`` -> ``docws``); on one origin
    that serves them all by path, as the emulator does, it is the path's root.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    segments = [s for s in parts.path.split("/") if s]
    if any(host == d or host.endswith("." + d) for d in _APPLE_DOMAINS):
        service = "content" if "content" in host else re.sub(r"^p\d+-", "", host.split(".")[0])
    elif segments and segments[0] in _ROOTED:
        service = _ROOTED[segments[0]]
    elif segments and segments[0] in _CONTENT_ROOTS:
        service = "content"
    elif segments and segments[0].isalpha() and segments[0].endswith("ws"):  # /drivews/..., /docws/...
        service, segments = segments[0], segments[1:]
    else:
        return "other"
    if service == "content":
        return "content:/{signed}"
    shown = []
    for index, segment in enumerate(segments):
        if service == "docws" and index == 1 and segments[0] == "ws":
            shown.append("{zone}")
        elif _WORD.fullmatch(segment):
            shown.append(segment)
        else:
            shown.append("{id}")
    return f"{service}:/" + "/".join(shown)


def _body_size(request: requests.PreparedRequest) -> int:
    body = request.body
    if isinstance(body, bytes | str):
        return len(body)
    return _int(request.headers.get("Content-Length"))  # a streamed body with a known length


def _int(text: str | bytes | None) -> int:
    try:
        return max(0, int(text or 0))
    except ValueError:
        return 0

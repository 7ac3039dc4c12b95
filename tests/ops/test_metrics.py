"""``/metrics`` of a real mount daemon (``icloudfs mount``) against the emulator, after real file
operations: FUSE latency histograms, HTTP calls by endpoint and status, body bytes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from icloudfs.control.client import ControlClient
from icloudfs.runner import mount_log
from tests.ops.conftest import Remote, Run, wait_for

pytestmark = pytest.mark.usefixtures("signed_in")


@pytest.fixture
def control(mounted: Path) -> Iterator[ControlClient]:
    with ControlClient.for_mount(mounted) as client:
        yield client


@pytest.fixture
def mounted(icloudfs: Run, mountpoint: Path) -> Path:
    done = icloudfs("mount", str(mountpoint), "--write-back", "100ms")
    assert done.returncode == 0, done.stderr + mount_log(mountpoint).read_text()
    return mountpoint


def samples(control: ControlClient) -> list[Sample]:
    return [s for family in text_string_to_metric_families(control.metrics()) for s in family.samples]


def value(found: list[Sample], name: str, **labels: str) -> float:
    return sum(s.value for s in found if s.name == name and labels.items() <= s.labels.items())


def stored(control: ControlClient) -> bool:
    uploads = control.status().uploads
    return uploads is not None and uploads.queued + uploads.in_progress + uploads.failed == 0


def test_metrics_after_real_file_operations(mounted: Path, control: ControlClient, remote: Remote) -> None:
    data = os.urandom(300_000)
    (mounted / "measured.bin").write_bytes(data)
    assert "measured.bin" in os.listdir(mounted)
    assert not (mounted / "not-there.txt").exists()
    wait_for(lambda: stored(control), what="the upload")
    assert remote.files()["measured.bin"] == data
    control.evict()
    assert (mounted / "measured.bin").read_bytes() == data  # asks docws for a download URL again

    found = samples(control)
    # FUSE: every operation timed by op, in cumulative buckets that end with the count
    for op in ("getattr", "create", "write", "release", "read", "readdir_with_offset"):
        assert value(found, "icloudfs_fuse_op_seconds_count", op=op) >= 1, op
    buckets = sorted(
        (float(s.labels["le"]), s.value)
        for s in found
        if s.name == "icloudfs_fuse_op_seconds_bucket" and s.labels["op"] == "getattr"
    )
    counts = [count for _, count in buckets]
    assert counts == sorted(counts), "buckets are cumulative"
    assert buckets[-1] == (float("inf"), value(found, "icloudfs_fuse_op_seconds_count", op="getattr"))
    assert value(found, "icloudfs_fuse_op_seconds_sum", op="write") > 0
    # the lookup of not-there.txt was answered, not failed (issue 21: counters that cry wolf)
    assert value(found, "icloudfs_fuse_op_errors_total", errno="ENOENT") == 0
    status = control.status()  # /status reads the same counters: each operation counted once
    assert status.ops["write"] == value(found, "icloudfs_fuse_op_seconds_count", op="write")
    assert status.errors == {} and status.last_error is None
    assert "icloudfs_operations_total" not in control.metrics()

    # HTTP: calls by endpoint (ids stripped) and status, and the bytes of their bodies
    seconds = "icloudfs_http_request_seconds_count"
    for endpoint in (
        "drivews:/retrieveItemDetailsInFolders",
        "docws:/ws/{zone}/upload/web",
        "docws:/ws/{zone}/update/documents",
        "docws:/ws/{zone}/download/by_id",
    ):
        assert value(found, seconds, endpoint=endpoint, status="200") >= 1, endpoint
    labels = {s.labels["endpoint"] for s in found if s.name == seconds}
    assert all(":/" in label or label == "other" for label in labels), labels
    assert not any("measured" in label or "CloudDocs" in label for label in labels), labels
    assert value(found, "icloudfs_http_sent_bytes_total", endpoint="content:/{signed}") >= len(data)
    listing = "drivews:/retrieveItemDetailsInFolders"
    assert value(found, "icloudfs_http_received_bytes_total", endpoint=listing) > 0


def test_downloaded_bytes_are_counted(mounted: Path, control: ControlClient) -> None:
    data = os.urandom(200_000)
    (mounted / "download.bin").write_bytes(data)
    wait_for(lambda: stored(control), what="the upload")
    control.evict()
    assert (mounted / "download.bin").read_bytes() == data
    received = value(samples(control), "icloudfs_http_received_bytes_total", endpoint="content:/{signed}")
    assert received >= len(data)

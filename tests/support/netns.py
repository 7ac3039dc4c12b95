"""A real remote peer for tests: a network namespace joined to this one by a veth pair.

Addresses are a /30 of 10.200-201.x.0 between this machine's own namespaces only. A namespace is
named after the pid of the test run that made it, so one left by a killed run (whose addresses
would clash) is recognised and removed before a new one is made.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


def addresses(second_octet: int) -> tuple[str, str]:
    """(host, namespace) addresses of a /30 of 10.<second_octet>.x.0 that is this test run's own,
    so two runs on one machine (a developer's and CI's) never claim the same address."""
    third = os.getpid() % 250
    return f"10.{second_octet}.{third}.1", f"10.{second_octet}.{third}.2"


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True, timeout=30)


def _clear_stale(prefix: str, link_prefix: str) -> None:
    for line in ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        owner = name.removeprefix(f"{prefix}-")
        if name.startswith(f"{prefix}-") and owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
            ip("link", "del", f"{link_prefix}{owner}h", check=False)
            ip("netns", "del", name, check=False)


@contextmanager
def veth_namespace(prefix: str, link_prefix: str, host_ip: str, ns_ip: str) -> Iterator[str]:
    """Yield the name of a fresh namespace reachable at ``ns_ip`` from ``host_ip`` (both /30)."""
    if shutil.which("ip") is None:
        pytest.skip("needs `ip` (Debian package iproute2) to make a network namespace")
    if os.geteuid() != 0:
        pytest.skip("needs root to make a network namespace")
    _clear_stale(prefix, link_prefix)
    tag = os.getpid()
    name, host_end, ns_end = f"{prefix}-{tag}", f"{link_prefix}{tag}h", f"{link_prefix}{tag}n"
    try:
        ip("netns", "add", name)
        ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end)
        ip("link", "set", ns_end, "netns", name)
        ip("addr", "add", f"{host_ip}/30", "dev", host_end)
        ip("link", "set", host_end, "up")
        ip("netns", "exec", name, "ip", "addr", "add", f"{ns_ip}/30", "dev", ns_end)
        ip("netns", "exec", name, "ip", "link", "set", ns_end, "up")
        ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
    except subprocess.CalledProcessError as exc:
        ip("link", "del", host_end, check=False)
        ip("netns", "del", name, check=False)
        pytest.skip(f"cannot make a network namespace here: {exc.stderr!r}")
    try:
        yield name
    finally:
        ip("link", "del", host_end, check=False)
        ip("netns", "del", name, check=False)

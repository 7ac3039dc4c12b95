"""Fixtures: real servers on real ports, and a network namespace whose address is a
genuinely remote peer (the isolated home comes from ``tests/conftest.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from icloudfs.config import Settings
from icloudfs.control import ControlServer, ControlService, TokenStore
from icloudfs.metrics import FuseMetrics
from tests.support.netns import addresses, veth_namespace

from .fakes import FakeAccount, FakeFilesystem

HOST_IP, NS_IP = addresses(200)
CLI = {"X-Icloudfs-Client": "tests"}  # what the CLI sends: a change with no JSON body needs it


@pytest.fixture(autouse=True)
def home(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The suite-wide isolated home (XDG dirs, plain-file keyring), with no ``ICLOUDFS_*``
    setting leaking in from the environment."""
    for var in [v for v in os.environ if v.startswith("ICLOUDFS_")]:
        monkeypatch.delenv(var)
    return isolated_home


def keyring_file(home: Path) -> Path:
    return home / "data" / "python_keyring" / "keyring_pass.cfg"


@pytest.fixture
def service() -> ControlService:
    fuse = FuseMetrics()  # the real one: /status and /metrics read the same counts
    for op, times in (("read", 10), ("write", 2)):
        for _ in range(times):
            fuse.observe(op, 0.001)
    fuse.observe("getattr", 0.0001, "EIO")
    fuse.observe("getattr", 0.0001, "ENOENT")  # an answer (no such name), not a failure
    return ControlService(
        settings=Settings(control_addr="127.0.0.1:0"),
        tokens=TokenStore(),
        account=FakeAccount(),
        filesystem=FakeFilesystem(),
        metrics=(fuse,),
        fuse=fuse,
    )


ServerFactory = Callable[..., ControlServer]


@pytest.fixture
def server(service: ControlService, start_server: ServerFactory) -> ControlServer:
    return start_server(service)


@pytest.fixture
def base_url(server: ControlServer) -> str:
    return server.address


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


_REMOTE_CLIENT = r"""
import http.client, json, sys
port, requests = int(sys.argv[1]), json.loads(sys.stdin.read())
replies = []
for method, path, headers, body in requests:
    conn = http.client.HTTPConnection(sys.argv[2], port, timeout=10)
    conn.request(method, path, body=None if body is None else json.dumps(body),
                 headers={"Content-Type": "application/json", **headers})
    r = conn.getresponse()
    raw = r.read()
    replies.append([r.status, {k.lower(): v for k, v in r.getheaders()}, raw.decode()])
    conn.close()
print(json.dumps(replies))
"""


class RemotePeer:
    """Sends HTTP requests from inside the network namespace (peer address ``NS_IP``)."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", self.namespace, *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )

    def requests(self, port: int, *requests: tuple[str, str, dict[str, str], Any]) -> list[Reply]:
        done = subprocess.run(
            ["ip", "netns", "exec", self.namespace, sys.executable, "-c", _REMOTE_CLIENT, str(port), HOST_IP],
            input=json.dumps(requests),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return [
            Reply(s, h, json.loads(b) if b.startswith(("{", "[")) else b)
            for s, h, b in json.loads(done.stdout)
        ]

    def get(self, port: int, path: str, token: str | None = None) -> Reply:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.requests(port, ("GET", path, headers, None))[0]


@pytest.fixture(scope="session")
def remote_peer() -> Iterator[RemotePeer]:
    """A network namespace joined to this one by a veth pair (10.200.x.0/30 only)."""
    with veth_namespace("icfs-ctl", "icc", HOST_IP, NS_IP) as namespace:
        yield RemotePeer(namespace)


@pytest.fixture
def remote_service(service: ControlService) -> ControlService:
    """Remote access on, over plain HTTP (asked for: the tests' peer speaks HTTP; HTTPS has
    ``test_tls.py``)."""
    service.settings.allow_remote = True
    service.settings.insecure_http = True
    return service

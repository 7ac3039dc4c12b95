"""Remote access is HTTPS with a certificate icloudfs makes; clients pin its fingerprint."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import httpx
import pytest

from icloudfs.control import ControlService, tls
from icloudfs.control.client import ControlClient, ServerNotTrusted
from tests.control.conftest import HOST_IP, RemotePeer

REMOTE_HTTPS = r"""
import json, ssl, sys, urllib.request
context = ssl.create_default_context()
context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # what pinning replaces
request = urllib.request.Request(sys.argv[1], headers={"Authorization": "Bearer " + sys.argv[2]})
print(urllib.request.urlopen(request, context=context).status)
"""


def test_remote_access_is_https_and_the_python_client_pins_it(
    service: ControlService, start_server: object, remote_peer: RemotePeer
) -> None:
    service.settings.allow_remote = True
    token = service.tokens.create_token("laptop").token
    server = start_server(service)  # type: ignore[operator]
    assert server.address.startswith("https://")
    cert = tls.server_cert()
    assert stat.S_IMODE(os.stat(cert.key).st_mode) == 0o600
    # this machine's own network address reaches the listener every other machine reaches
    with ControlClient(HOST_IP, server.port, token=token, fingerprint=cert.fingerprint) as client:
        assert client.status().mount.mounted
    with pytest.raises(ServerNotTrusted):
        ControlClient(HOST_IP, server.port, token=token, fingerprint="AB:" * 31 + "AB").status()
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"http://{HOST_IP}:{server.port}/health")  # no plain HTTP there
    assert httpx.get(f"http://127.0.0.1:{server.port}/health").status_code == 200, "loopback: the page"
    url = f"https://{HOST_IP}:{server.port}/status"
    done = remote_peer.run(sys.executable, "-c", REMOTE_HTTPS, url, token)
    assert done.stdout.strip() == "200"


def test_token_create_prints_the_fingerprint_to_pin(tmp_path: object) -> None:
    env = {**os.environ, "ICLOUDFS_ALLOW_REMOTE": "true"}
    done = subprocess.run(
        [sys.executable, "-m", "icloudfs", "token", "create", "--description", "phone"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert f"SHA-256 (pin it in the client): {tls.server_cert().fingerprint}" in done.stderr


def test_plain_http_for_remote_access_needs_asking_for(service: ControlService, start_server: object) -> None:
    service.settings.allow_remote = True
    service.settings.insecure_http = True
    server = start_server(service)  # type: ignore[operator]
    assert server.address.startswith("http://")
    assert httpx.get(f"{server.address}/health").status_code == 200

"""The CLI subcommands, run in-process through an argparse parser built by ``register``."""

from __future__ import annotations

import argparse
import io
import json
import socket

import httpx
import pytest

from icloudfs.control import ControlServer, TokenStore
from icloudfs.control.commands import register
from icloudfs.control.service import ControlService
from tests.control.fakes import FakeFilesystem


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="icloudfs")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


@pytest.fixture
def nothing_running(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("ICLOUDFS_CONTROL_ADDR", f"127.0.0.1:{port}")


@pytest.fixture
def running(server: ControlServer, monkeypatch: pytest.MonkeyPatch) -> ControlServer:
    monkeypatch.setenv("ICLOUDFS_CONTROL_ADDR", f"127.0.0.1:{server.port}")
    return server


@pytest.mark.usefixtures("nothing_running")
def test_tokens_without_a_mount_use_the_keyring(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("token", "create", "--description", "backup") == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert "This token will only be shown once" in err
    assert TokenStore().verify(token) is not None

    assert run("token", "list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [t["description"] for t in listed] == ["backup"] and "token" not in listed[0]

    assert run("token", "revoke", listed[0]["id"], "--yes") == 0
    assert TokenStore().verify(token) is None


@pytest.mark.usefixtures("nothing_running")
@pytest.mark.parametrize(("answer", "code", "kept"), [("y\n", 0, False), ("n\n", 1, True), ("", 1, True)])
def test_revoke_asks_first(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    answer: str,
    code: int,
    kept: bool,
) -> None:
    created = TokenStore().create_token("phone")
    monkeypatch.setattr("sys.stdin", io.StringIO(answer))
    assert run("token", "revoke", created.id) == code
    assert "Revoke token 'phone'? Clients using this token will stop working." in capsys.readouterr().out
    assert (TokenStore().verify(created.token) is not None) == kept


@pytest.mark.usefixtures("nothing_running")
def test_revoke_unknown_id_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("token", "revoke", "nope", "--yes") == 1
    assert "no token with id nope" in capsys.readouterr().err


def test_with_a_mount_running_revocation_goes_through_the_api(
    running: ControlServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("token", "create", "--description", "via api") == 0
    token = capsys.readouterr().out.strip()
    remote = {"Host": "nas.example", "Authorization": f"Bearer {token}"}
    base = running.address
    assert httpx.get(f"{base}/status", headers=remote).status_code == 200
    assert run("token", "list") == 0
    listing = capsys.readouterr().out
    assert "via api" in listing and token not in listing
    token_id = listing.split()[0]
    assert run("token", "revoke", token_id, "--yes") == 0
    # the server's cache is refreshed only every 2 s: an immediate 401 proves the API path
    assert httpx.get(f"{base}/status", headers=remote).status_code == 401


@pytest.mark.usefixtures("running")
def test_status_table_and_json(capsys: pytest.CaptureFixture[str], service: ControlService) -> None:
    assert run("status") == 0
    table = capsys.readouterr().out
    assert "/mnt/icloud" in table and "someone@example.com: signed_out" in table
    assert "1 failed" in table and "PlaintextKeyring (plaintext file)" in table
    assert "Uploads paused" not in table
    assert isinstance(service.filesystem, FakeFilesystem)
    service.filesystem.paused = "cache disk full (database or disk is full)"
    assert run("status") == 0
    assert "Uploads paused  cache disk full (database or disk is full)" in capsys.readouterr().out
    assert isinstance(service.filesystem, FakeFilesystem)
    service.filesystem.changes = 2
    assert run("status") == 0
    assert "Folder changes  2 made here wait for iCloud" in capsys.readouterr().out
    assert run("status", "--json") == 0
    assert json.loads(capsys.readouterr().out)["mount"]["mounted"] is True


@pytest.mark.usefixtures("nothing_running")
def test_status_without_a_mount(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("status") == 1
    assert "no icloudfs mount is running" in capsys.readouterr().err

"""TokenStore over a real (file) keyring: hashes only, an index, revocation."""

from __future__ import annotations

import base64
import configparser
import hashlib
import json
import re
from pathlib import Path

import keyring
import pytest

from icloudfs.control import TokenStore, UnknownToken
from icloudfs.control.tokens import INDEX, SERVICE

from .conftest import keyring_file


def _keyring_text(home: Path) -> str:
    """The keyring file plus every base64 value in it decoded."""
    raw = keyring_file(home).read_text()
    parser = configparser.ConfigParser()
    parser.read_string(raw)
    decoded = [
        base64.b64decode("".join(value.split())).decode()
        for section in parser.sections()
        for value in parser[section].values()
    ]
    return "\n".join([raw, *decoded])


def test_only_hashes_reach_the_keyring(home: Path) -> None:
    store = TokenStore()
    created = store.create_token("backup script")
    stored = _keyring_text(home)
    assert created.token not in stored
    assert hashlib.sha256(created.token.encode()).hexdigest() in stored
    record = json.loads(keyring.get_password(SERVICE, created.id) or "")
    assert set(record) == {"hash", "description", "created_at"}
    assert json.loads(keyring.get_password(SERVICE, INDEX) or "") == [created.id]


def test_tokens_are_43_char_base64url_and_verify(home: Path) -> None:
    store = TokenStore()
    created = store.create_token("a")
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", created.token)
    assert store.verify(created.token) == created.id
    assert store.verify(created.token[:-1] + ("A" if created.token[-1] != "A" else "B")) is None
    assert store.verify("") is None


def test_a_second_store_sees_tokens_and_revocations(home: Path) -> None:
    server_side = TokenStore(refresh_interval=0.0)
    cli_side = TokenStore()
    created = cli_side.create_token("from the cli")
    assert server_side.verify(created.token) == created.id
    assert [t.description for t in server_side.list_tokens()] == ["from the cli"]
    cli_side.revoke_token(created.id)
    assert server_side.verify(created.token) is None
    assert keyring.get_password(SERVICE, created.id) is None


def test_revoking_an_unknown_id_raises(home: Path) -> None:
    with pytest.raises(UnknownToken):
        TokenStore().revoke_token("no-such-id")

"""App-specific passwords are refused before anything is sent; the keyring is described honestly."""

from __future__ import annotations

import pytest

from icloudfs.errors import AppSpecificPassword, CredentialError
from icloudfs.icloud.passwords import PasswordStore, check_password, keyring_info


@pytest.mark.parametrize("password", ["abcd-efgh-ijkl-mnop", " wxyz-abcd-efgh-ijkl "])
def test_app_specific_shape_is_refused_with_advice(password: str) -> None:
    with pytest.raises(AppSpecificPassword, match="Apple ID password"):
        check_password(password)


@pytest.mark.parametrize(
    "password", ["Abcd-efgh-ijkl-mnop", "abcd-efgh-ijkl-mnop1", "correct-Horse-9", "abc-defg-hijk-lmno"]
)
def test_real_passwords_pass(password: str) -> None:
    check_password(password)


def test_empty_password_is_refused() -> None:
    with pytest.raises(CredentialError):
        check_password("")


def test_plaintext_backend_is_reported_and_store_round_trips() -> None:
    # tests/conftest.py installs a real PlaintextKeyring in a private folder.
    info = keyring_info()
    assert info.plaintext and info.usable and "plain file" in (info.warning or "")
    store = PasswordStore()
    assert store.get("a@b.c") is None
    store.set("a@b.c", "S3cret-pass")
    assert store.get("a@b.c") == "S3cret-pass"
    assert store.delete("a@b.c") is True
    assert store.delete("a@b.c") is False

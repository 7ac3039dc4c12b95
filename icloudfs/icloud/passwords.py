"""The Apple ID password: checked before anything is sent, kept only in the keyring.

The password is stored under pyicloud's own keyring service
(``pyicloud://icloud-password``, username = Apple ID), so pyicloud's ``icloud``
command and icloudfs share one entry instead of two copies.

App-specific passwords (``abcd-efgh-ijkl-mnop``) only work for mail, calendar
and contacts protocols; iCloud web sign-in refuses them. Apple's password rules
(at least one digit and one upper-case letter) make that exact shape impossible
for a real Apple ID password, so refusing it never blocks a real one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import keyring
import keyring.backend
from keyring.errors import KeyringError, NoKeyringError, PasswordDeleteError
from pyicloud.utils import (
    delete_password_in_keyring,
    get_password_from_keyring,
    store_password_in_keyring,
)

from icloudfs.errors import AppSpecificPassword, CredentialError

_APP_SPECIFIC = re.compile(r"[a-z]{4}-[a-z]{4}-[a-z]{4}-[a-z]{4}")

APP_SPECIFIC_MESSAGE = (
    "That looks like an app-specific password (xxxx-xxxx-xxxx-xxxx). Apple accepts those "
    "only for mail, calendar and contacts apps, never for iCloud web sign-in. Use your "
    "Apple ID password; icloudfs then asks for a two-factor code once and keeps the "
    "session trusted."
)


def check_password(password: str) -> None:
    """Refuse passwords that cannot work, before anything is sent to Apple."""
    if not password:
        raise CredentialError("The password is empty.")
    if _APP_SPECIFIC.fullmatch(password.strip()):
        raise AppSpecificPassword(APP_SPECIFIC_MESSAGE)


@dataclass(frozen=True, slots=True)
class KeyringInfo:
    """Which keyring backend holds secrets, and whether it keeps them in plain text."""

    backend: str
    plaintext: bool
    usable: bool

    @property
    def warning(self) -> str | None:
        if not self.usable:
            return (
                "No keyring backend is available, so the password cannot be saved: you will be "
                "asked again after the session expires. Install a Secret Service (e.g. "
                "gnome-keyring) or set PYTHON_KEYRING_BACKEND."
            )
        if self.plaintext:
            return (
                f"The keyring backend {self.backend} stores passwords in a plain file, readable "
                "by anyone with access to your home folder. Use --no-remember to keep the "
                "password out of it, or set PYTHON_KEYRING_BACKEND to a secure backend."
            )
        return None


def keyring_info() -> KeyringInfo:
    """Describe the active keyring backend (honours ``PYTHON_KEYRING_BACKEND``)."""
    backend: keyring.backend.KeyringBackend = keyring.get_keyring()
    name = f"{type(backend).__module__}.{type(backend).__name__}"
    plaintext = "plaintext" in type(backend).__name__.lower()
    usable = not type(backend).__module__.startswith("keyring.backends.fail")
    return KeyringInfo(backend=name, plaintext=plaintext, usable=usable)


class PasswordStore:
    """Apple ID passwords in the keyring; every failure of the keyring is a clear error."""

    def get(self, apple_id: str) -> str | None:
        try:
            password: str | None = get_password_from_keyring(apple_id)
            return password
        except NoKeyringError:
            return None
        except KeyringError as error:
            raise CredentialError(f"Could not read the keyring: {error}") from error

    def set(self, apple_id: str, password: str) -> None:
        try:
            store_password_in_keyring(apple_id, password)
        except KeyringError as error:
            raise CredentialError(f"Could not save the password in the keyring: {error}") from error

    def delete(self, apple_id: str) -> bool:
        """Forget the password; False when none was stored."""
        try:
            delete_password_in_keyring(apple_id)
        except (PasswordDeleteError, NoKeyringError):
            return False
        return True

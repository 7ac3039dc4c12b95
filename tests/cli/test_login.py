"""``icloudfs login`` / ``logout`` as a user runs them, against a real emulator process."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from icloudfs.icloud.passwords import PasswordStore
from tests.support.emulator import Emulator, start_emulator


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with start_emulator(tmp_path_factory.mktemp("emulator")) as emu:
        yield emu


@pytest.fixture(autouse=True)
def bogus_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    """--ca-file must win over REQUESTS_CA_BUNDLE, which requests would otherwise prefer."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/ignored-when-a-ca-file-is-given")


def test_login_with_code_then_logout(emulator: Emulator, isolated_home: Path) -> None:
    done = emulator.cli_login()
    assert done.returncode == 0, done.stderr
    assert "Signed in as" in done.stdout
    assert "plain file" in done.stderr, "a plaintext keyring must be named as such"
    assert PasswordStore().get(emulator.apple_id) == emulator.password
    config = (isolated_home / "config" / "icloudfs" / "config.toml").read_text()
    assert emulator.apple_id in config and emulator.password not in config
    session = isolated_home / "state" / "icloudfs" / "session"
    assert session.stat().st_mode & 0o777 == 0o700 and any(session.iterdir())

    again = emulator.cli("login", "--password-stdin", stdin=emulator.password + "\n")
    assert again.returncode == 0, again.stderr  # trusted session: no code asked for

    out = emulator.cli("logout", "--forget-password")
    assert out.returncode == 0 and "Password removed" in out.stdout
    assert (
        "icloud-password" not in (isolated_home / "data" / "python_keyring" / "keyring_pass.cfg").read_text()
    )


def test_app_specific_password_is_explained_and_never_sent(emulator: Emulator) -> None:
    emulator.reset_stats()
    done = emulator.cli(
        "login", "--apple-id", emulator.apple_id, "--password-stdin", stdin="abcd-efgh-ijkl-mnop\n"
    )
    assert done.returncode == 1
    assert "app-specific password" in done.stderr and "Apple ID password" in done.stderr
    assert not any("/appleauth/" in path for path in emulator.stats()["requests"])


def test_wrong_code_fails_clearly(emulator: Emulator) -> None:
    done = emulator.cli(
        "login",
        "--apple-id",
        emulator.apple_id,
        "--password-stdin",
        "--code",
        "000000",
        stdin=emulator.password + "\n",
    )
    assert done.returncode == 1 and "did not accept that code" in done.stderr
    assert "pyicloud" not in done.stderr, "pyicloud's own log lines stay out of the CLI's output"


def test_a_wrong_code_is_asked_for_again(emulator: Emulator, isolated_home: Path) -> None:
    """Issue 21: a wrong code ended the command; a person types the next one."""
    login = ("login", "--apple-id", emulator.apple_id, "--password-stdin")
    done = emulator.cli(*login, stdin=f"{emulator.password}\n000000\n{emulator.code}\n")
    assert done.returncode == 0, done.stderr
    assert "did not accept that code" in done.stderr and "Signed in as" in done.stdout


def test_a_code_due_without_one_to_read_says_so(emulator: Emulator, isolated_home: Path) -> None:
    done = emulator.cli(
        "login", "--apple-id", emulator.apple_id, "--password-stdin", stdin=emulator.password + "\n"
    )
    assert done.returncode == 1, "not 130, as for an interrupt"
    assert "two-factor code is needed" in done.stderr and "--code" in done.stderr


def test_login_waits_for_a_device_to_allow_it_under_advanced_data_protection(
    tmp_path: Path, isolated_home: Path
) -> None:
    with start_emulator(tmp_path, "--adp") as adp:
        login = subprocess.Popen(
            [*adp.cli_command("login", "--apple-id", adp.apple_id, "--password-stdin", "--code", adp.code)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert login.stdin is not None and login.stderr is not None
        login.stdin.write(adp.password + "\n")
        login.stdin.close()
        asked = login.stderr.readline()
        while "Tap Allow" not in asked:
            assert asked, "login ended without asking for a device's Allow"
            asked = login.stderr.readline()
        adp.adp_consent()  # the tap on a trusted device
        assert login.wait(timeout=60) == 0, login.stderr.read()
        assert login.stdout is not None and "Signed in as" in login.stdout.read()


def test_apple_throttling_is_honoured_by_the_next_login_too(emulator: Emulator, isolated_home: Path) -> None:
    """Issue 21: the 503 back-off lived in one process, so two logins in a row both reached Apple
    (each attempt during Apple's block extends it)."""
    emulator.faults(rules=[{"path": "/appleauth/auth/signin", "status": 503, "times": 100}])
    try:
        emulator.reset_stats()
        first = emulator.cli_login()
        assert first.returncode == 1 and "throttling" in first.stderr
        tried = emulator.stats()["requests"]
        second = emulator.cli_login()
        assert second.returncode == 1 and "waiting" in second.stderr, second.stderr
        assert emulator.stats()["requests"] == tried, "the second login never reached Apple"
    finally:
        emulator.clear_faults()

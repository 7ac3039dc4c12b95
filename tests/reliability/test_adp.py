"""Advanced Data Protection on a real mount: PCS cookies that expire are renewed unseen, and web
access turned off then allowed again holds the user's writes and stores them once a device
taps Allow, with nobody remounting."""

from __future__ import annotations

import time
from pathlib import Path

from icloudfs.icloud.account import Account, AuthState
from tests.fuse.conftest import MountFactory
from tests.support.emulator import start_emulator
from tests.support.icloud_view import EmulatorView


def wait_for(account: Account, state: AuthState, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while account.state is not state:
        assert time.monotonic() < deadline, f"state stayed {account.state}"
        time.sleep(0.1)


def test_pcs_cookies_expire_and_web_access_comes_back(mount_factory: MountFactory, tmp_path: Path) -> None:
    with start_emulator(tmp_path / "emu", "--adp") as emu:
        emu.adp_consent()
        account = Account("", session_dir=tmp_path / "session", endpoint=emu.url, ca_file=emu.ca)
        account.login(emu.apple_id, emu.password, remember=False)
        assert account.submit_2fa(emu.code) is AuthState.SIGNED_IN
        view = EmulatorView(account, emu.ca, emu.signed_in(tmp_path / "checker"), base="/adp")
        live = mount_factory(view, folder=view.base, write_back=0.1)

        emu.expire_pcs()  # an hour later: Drive answers 423 until new cookies are asked for
        (live.path / "after-expiry.txt").write_bytes(b"stored with renewed cookies")
        live.settle(30)
        assert view.content("after-expiry.txt") == b"stored with renewed cookies"
        assert account.state is AuthState.SIGNED_IN
        assert live.fs.stats()["uploads"]["failed"] == 0

        emu.adp_web_access(False)  # someone turns "Access iCloud Data on the Web" off
        (live.path / "held.txt").write_bytes(b"kept while web access is off")
        wait_for(account, AuthState.WEB_ACCESS_OFF)
        assert (live.path / "held.txt").read_bytes() == b"kept while web access is off"

        emu.adp_web_access(True)  # ...and on again; signing in asks a device, no code
        assert account.login(emu.apple_id, emu.password, remember=False) is AuthState.NEEDS_CONSENT
        emu.adp_consent()
        wait_for(account, AuthState.SIGNED_IN)  # the mount looked again by itself
        live.settle(30)
        assert view.content("held.txt") == b"kept while web access is off"

"""The trusted session is revoked server-side while mounted: the mount reports needs_2fa, cached
files stay readable, writes queue, and a code entered through the control plane resumes all."""

from __future__ import annotations

import time
from pathlib import Path

from icloudfs.config import Settings
from icloudfs.control.client import ControlClient
from icloudfs.control.server import ControlServer
from icloudfs.control.service import ControlService
from icloudfs.control.tokens import TokenStore
from icloudfs.icloud.account import Account, AuthState
from tests.fuse.conftest import MountFactory
from tests.support.emulator import start_emulator
from tests.support.icloud_view import EmulatorView


def test_revoked_trust_waits_for_a_code_then_resumes(mount_factory: MountFactory, tmp_path: Path) -> None:
    with start_emulator(tmp_path / "emu") as emu:
        account = Account("", session_dir=tmp_path / "session", endpoint=emu.url, ca_file=emu.ca)
        account.login(emu.apple_id, emu.password, remember=False)
        account.submit_2fa(emu.code)
        view = EmulatorView(account, emu.ca, emu.signed_in(tmp_path / "checker"), base="/revoked")
        live = mount_factory(view, folder=view.base, write_back=0.1)
        (live.path / "cached.txt").write_bytes(b"read me offline")
        live.settle()
        assert (live.path / "cached.txt").read_bytes() == b"read me offline"

        emu.revoke_trust()
        (live.path / "queued.txt").write_bytes(b"written while signed out")
        deadline = time.monotonic() + 30
        while account.state is not AuthState.NEEDS_2FA:
            assert time.monotonic() < deadline, f"state stayed {account.state}"
            time.sleep(0.1)
        assert (live.path / "cached.txt").read_bytes() == b"read me offline"
        assert (live.path / "queued.txt").read_bytes() == b"written while signed out"
        assert live.fs.stats()["uploads"]["queued"] + live.fs.stats()["uploads"]["failed"] >= 1

        settings = Settings(control_addr="127.0.0.1:0")
        server = ControlServer(ControlService(settings, TokenStore(), account=account, filesystem=live.fs))
        server.start()
        try:
            client = ControlClient(port=server.port)
            assert client.status().account is not None
            assert client.status().account.auth_state == "needs_2fa"  # type: ignore[union-attr]
            assert client.submit_2fa(emu.code) == "signed_in"
        finally:
            server.stop()
        live.settle(30)
        checker = emu.signed_in(tmp_path / "checker-after")
        folder = next(n for n in checker.drive.root.get_children(force=True) if n.name == "revoked")
        stored = {n.name: n.open().content for n in folder.get_children(force=True)}
        assert stored == {"cached.txt": b"read me offline", "queued.txt": b"written while signed out"}

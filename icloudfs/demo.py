"""``icloudfs demo``: the whole product against a local emulator, in one command.

It starts the emulator with the demo tree in the state dir, signs in through
the full SRP + two-factor path (the code is read from the emulator, as a user
would read it off a phone), mounts, and unmounts on Ctrl-C. Start-up shows its
steps (a progress bar on a terminal, plain lines otherwise).

Settings load as for every other command (config file, ``ICLOUDFS_*``), so the
control plane listens where it is configured to; the demo overrides only what
must be the emulator's: the account, endpoint and CA, the whole drive as the
folder, and a cache of its own. Everything it keeps (emulator data, session,
cache) lives under ``$XDG_STATE_HOME/icloudfs/demo``, away from a real account.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from icloudfs import config, runner
from icloudfs.config import Settings
from icloudfs.emulator.process import spawn
from icloudfs.errors import IcloudfsError
from icloudfs.icloud.account import Account, AuthState
from icloudfs.ops.progress import Steps

log = logging.getLogger(__name__)

STEPS = 4  # emulator, sign-in, two-factor code, mount


def run(mountpoint: Path) -> int:
    home = config.state_dir() / "demo"
    mountpoint = mountpoint.resolve()  # libfuse changes the working folder to /
    mountpoint.mkdir(parents=True, exist_ok=True)
    steps = Steps(STEPS)
    emulator: subprocess.Popen[bytes] | None = None
    try:
        steps.step("starting the emulator")
        emulator, info = start_emulator(home / "emulator")
        settings = demo_settings(info, home)
        account = Account(
            info["apple_id"], session_dir=_private(home / "session"), endpoint=info["url"], ca_file=info["ca"]
        )
        steps.step(f"signing in as {info['apple_id']} (SRP)")
        state = account.login(info["apple_id"], info["password"], remember=False)
        if state is AuthState.NEEDS_2FA:
            steps.step("two-factor code")
            print(f"Two-factor code requested; the emulator's 'phone' shows {info['code']}.")
            account.submit_2fa(info["code"])
        steps.step(f"mounting on {mountpoint}")

        def ready() -> None:
            steps.done("mounted")
            _welcome(mountpoint)

        session = runner.Session(settings, account, runner.drive_for(settings, account))
        return runner.run_foreground(session, runner.mount_options(settings, mountpoint), on_ready=ready)
    except IcloudfsError as error:
        print(f"icloudfs demo: {error}", file=sys.stderr)
        return 1
    finally:
        steps.done()
        if emulator is not None:
            emulator.terminate()
            emulator.wait(timeout=10)


def demo_settings(emulator: Mapping[str, Any], home: Path) -> Settings:
    """The user's settings with the emulator's account, the whole drive and the demo's cache."""
    return Settings.load(
        apple_id=emulator["apple_id"],
        endpoint=emulator["url"],
        ca_file=emulator["ca"],
        folder="/",
        cache_dir=str(home / "cache"),
    )


def start_emulator(data: Path) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """The emulator as a child process with the demo tree; waits until it serves.

    Its two-factor route is the legacy one: on the bridge (the emulator's default) pyicloud
    opens a websocket that trusts only Python's default CAs, never the demo's ``ca_file``, and
    pyicloud 2026.10.1 lets that TLS failure end the sign-in (``hsa2_bridge.py`` line 1107)
    instead of falling back to SMS. Trusting the CA process-wide is not the demo's to do."""
    child, info = spawn(data, "--seed", "demo", "--2fa-route", "legacy")
    print(f"Emulator: {info['url']} (data in {data})")
    return child, info


def _private(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _welcome(where: Path) -> None:
    print(
        f"""
iCloud Drive (emulated) is mounted on {where}. Try, in another terminal:

  ls -l {where}
  find {where}/LegalCases -type f
  cat "{where}/Café Résumé.txt"
  cp /etc/hostname {where}/LegalCases/ && ls -l {where}/LegalCases
  cd {where} && git init demo-repo

Press Ctrl-C here to unmount (pending uploads are stored first).
""",
        flush=True,
    )

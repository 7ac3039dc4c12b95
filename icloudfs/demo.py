"""``icloudfs demo``: the whole product against a local emulator, in one command.

It starts the emulator with the demo tree in the state dir, signs in through
the full SRP + two-factor path (the code is read from the emulator, as a user
would read it off a phone), mounts, and unmounts on Ctrl-C. Everything it
keeps (emulator data, session, cache) lives under ``$XDG_STATE_HOME/icloudfs/demo``
so it never touches a real account's settings.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from icloudfs import config, runner
from icloudfs.config import Settings
from icloudfs.emulator.process import spawn
from icloudfs.errors import IcloudfsError
from icloudfs.icloud.account import Account, AuthState
from icloudfs.icloud.drive import ICloudDrive

log = logging.getLogger(__name__)


def run(mountpoint: Path) -> int:
    home = config.state_dir() / "demo"
    mountpoint = mountpoint.resolve()  # libfuse changes the working folder to /
    mountpoint.mkdir(parents=True, exist_ok=True)
    emulator, info = start_emulator(home / "emulator")
    try:
        settings = Settings(
            apple_id=info["apple_id"],
            endpoint=info["url"],
            ca_file=info["ca"],
            cache_dir=str(home / "cache"),
            write_back="1s",
        )
        account = Account(
            info["apple_id"], session_dir=_private(home / "session"), endpoint=info["url"], ca_file=info["ca"]
        )
        print(f"Signing in as {info['apple_id']} (SRP) ...")
        state = account.login(info["apple_id"], info["password"], remember=False)
        if state is AuthState.NEEDS_2FA:
            print(f"Two-factor code requested; the emulator's 'phone' shows {info['code']}.")
            account.submit_2fa(info["code"])
        session = runner.Session(settings, account, ICloudDrive(account, ca_file=info["ca"]))
        options = runner.mount_options(settings, mountpoint)
        return runner.run_foreground(session, options, on_ready=lambda: _welcome(mountpoint))
    except IcloudfsError as error:
        print(f"icloudfs demo: {error}", file=sys.stderr)
        return 1
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)


def start_emulator(data: Path) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """The emulator as a child process with the demo tree; waits until it serves."""
    child, info = spawn(data, "--seed", "demo")
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

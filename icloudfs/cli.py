"""The ``icloudfs`` command: subcommands only; the work lives in the packages they call.

Every subcommand that talks to iCloud accepts ``--endpoint URL`` and
``--ca-file PATH`` (also ``ICLOUDFS_ENDPOINT`` / ``ICLOUDFS_CA_FILE``) so it can
talk to the emulator instead of Apple; every subcommand takes the logging
options (``-v``/``-q``, ``--log-file``, ``--log-format``). Errors the user can
act on are printed as one clear line and exit with status 1; usage errors exit
with 2. ``icloudfs icloud:/FOLDER DIR -o OPTS`` is a mount(8) call (see
``ops.mount_helper``).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from icloudfs import __version__, demo, runner
from icloudfs.config import Settings, session_dir
from icloudfs.control.client import ControlClient, ControlError, ControlUnreachable
from icloudfs.control.commands import register as register_control
from icloudfs.control.runtime import NoMount, mount_for, running_mounts
from icloudfs.emulator.command import register as register_emulator
from icloudfs.errors import IcloudfsError, Needs2FA
from icloudfs.icloud.account import CONSENT_RECHECK_S, Account, AuthState
from icloudfs.icloud.passwords import check_password, keyring_info
from icloudfs.icloud.web_access import CONSENT_MESSAGE
from icloudfs.ops import logging as ops_logging
from icloudfs.ops import mount_helper, privacy
from icloudfs.ops.commands import register as register_ops
from icloudfs.ops.progress import Progress

log = logging.getLogger("icloudfs")

MOUNT_EXAMPLES = """examples:
  icloudfs mount ~/iCloud                              the whole drive
  icloudfs mount --folder /LegalCases ~/legal          one folder of it
  icloudfs mount --read-only --cache-size 20G ~/iCloud
  icloudfs mount --foreground ~/iCloud                 as systemd runs it (Ctrl-C unmounts)
  icloudfs unmount ~/iCloud                            stores pending uploads first (exit 75: some wait)
"""
CODE_TRIES = 3  # two-factor codes asked for in one login before giving up
CONSENT_WAIT_S = 120.0  # how long `login` waits for a device's Allow before leaving it to the mount


class Credentials(Protocol):
    """What login/logout need: an ``Account``, or the running mount's ``ControlClient``."""

    def login(self, apple_id: str, password: str, *, remember: bool = True) -> str: ...
    def submit_2fa(self, code: str) -> str: ...
    def check_consent(self) -> str: ...
    def logout(self, *, forget_password: bool = False) -> object: ...


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--endpoint", help="base URL of an iCloud emulator (default: Apple)")
    common.add_argument("--ca-file", help="CA bundle to trust for --endpoint")

    parser = argparse.ArgumentParser(
        prog="icloudfs",
        description="iCloud Drive as a local folder.",
        epilog=MOUNT_EXAMPLES,  # in `icloudfs --help` and the man page (which leaves out subcommand epilogs)
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"icloudfs {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    login = commands.add_parser("login", parents=[common], help="sign in to iCloud (password + 2FA)")
    login.add_argument("--apple-id", help="Apple ID e-mail (default: the one signed in last)")
    login.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    login.add_argument("--code", help="two-factor code (asked for when needed)")
    login.add_argument("--no-remember", action="store_true", help="do not keep the password in the keyring")
    login.add_argument("--mount", type=Path, help="sign in through this mount (when several run)")
    login.set_defaults(func=cmd_login)

    logout = commands.add_parser("logout", parents=[common], help="end the iCloud session")
    logout.add_argument("--forget-password", action="store_true", help="also remove it from the keyring")
    logout.add_argument("--mount", type=Path, help="sign out through this mount (when several run)")
    logout.set_defaults(func=cmd_logout)

    mount = commands.add_parser(
        "mount",
        parents=[common],
        help="mount iCloud Drive on a folder",
        description="Mount iCloud Drive (or one folder of it) on MOUNTPOINT and return once it answers; "
        "the mount runs in the background until `icloudfs unmount`.",
        epilog=MOUNT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mount.add_argument("mountpoint", type=Path, help="an existing folder (empty, or its files are hidden)")
    mount.add_argument("--folder", help="remote folder to mount, e.g. /LegalCases (default: whole drive)")
    mount.add_argument("--foreground", action="store_true", help="stay in the foreground until Ctrl-C")
    mount.add_argument("--read-only", action="store_true", help="refuse every change (EROFS)")
    mount.add_argument("--cache-dir", help="content cache location")
    mount.add_argument("--cache-size", help="content cache bound, e.g. 10G")
    mount.add_argument("--metadata-ttl", help="how long listings are trusted, e.g. 60s")
    mount.add_argument("--negative-ttl", help="how long 'not found' is trusted, e.g. 5s")
    mount.add_argument("--write-back", help="quiet time after close before uploading, e.g. 2s")
    mount.add_argument("--poll-interval", help="re-list recently used folders this often, e.g. 60s (0: off)")
    mount.add_argument("--offline-timeout", help="how long a call waits for an unreachable iCloud, e.g. 30s")
    mount.add_argument("--uid", type=int, help="owner shown for all files (default: yours)")
    mount.add_argument("--gid", type=int, help="group shown for all files (default: yours)")
    mount.add_argument("--umask", type=lambda text: int(text, 8), default=0o022, help="default 022")
    mount.add_argument("--allow-other", action="store_true", help="let other users see the mount")
    mount.set_defaults(func=cmd_mount)

    unmount = commands.add_parser("unmount", help="unmount, after pending uploads are stored")
    unmount.add_argument("mountpoint", type=Path, help="where icloudfs is mounted")
    unmount.add_argument("--force", action="store_true", help="detach now; pending uploads stay journaled")
    unmount.set_defaults(func=cmd_unmount)

    refresh = commands.add_parser("refresh", help="show remote changes under PATH now, not after the TTL")
    refresh.add_argument("path", type=Path, help="a path inside the mount")
    refresh.add_argument("-r", "--recursive", action="store_true", help="the whole subtree")
    refresh.set_defaults(func=cmd_refresh)

    pin = commands.add_parser("pin", help="download PATH into the cache and keep it there for offline use")
    pin.add_argument("path", type=Path, help="a file or folder inside the mount")
    pin.set_defaults(func=cmd_pin, unpin=False)
    unpin = commands.add_parser("unpin", help="let PATH be evicted from the cache again")
    unpin.add_argument("path", type=Path, help="a file or folder inside the mount")
    unpin.set_defaults(func=cmd_pin, unpin=True)

    demo = commands.add_parser("demo", help="emulator + sign-in + mount, to try icloudfs")
    demo.add_argument(
        "mountpoint", type=Path, nargs="?", default=Path("icloud-demo"), help="default ./icloud-demo"
    )
    demo.set_defaults(func=cmd_demo)

    register_emulator(commands)
    register_control(commands)
    register_ops(commands, common)
    ops_logging.add_options(parser)
    parser.set_defaults(parser=parser)  # commands that describe the whole CLI (completion) get it
    return parser


def open_account(args: argparse.Namespace, apple_id: str | None = None) -> tuple[Settings, Credentials]:
    """The running mount's control plane when there is one (so the mount resumes at once;
    ``--mount`` says which when several run), else the account directly."""
    settings = Settings.load(endpoint=args.endpoint, ca_file=args.ca_file, apple_id=apple_id)
    if args.mount is None and len(running_mounts()) > 1:
        raise NoMount("several mounts are running: say which to sign in through, with --mount PATH")
    client = None
    try:
        client = ControlClient.for_mount(args.mount)
        client.health()
    except ControlUnreachable:
        if client is not None:
            client.close()
        if args.mount is not None:
            raise
        account = Account(
            settings.apple_id,
            session_dir=session_dir(),
            endpoint=settings.endpoint or None,
            ca_file=settings.ca_file or None,
        )
        return settings, account
    print(f"Signing in through the running mount's control plane ({client.where}).", file=sys.stderr)
    return settings, client


def cmd_login(args: argparse.Namespace) -> int:
    settings, account = open_account(args, args.apple_id)
    apple_id = settings.apple_id or input("Apple ID: ").strip()
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"Password for {apple_id}: ")
    check_password(password)
    remember = not args.no_remember and _confirm_keyring(interactive=not args.password_stdin)
    state = account.login(apple_id, password, remember=remember)
    if state == AuthState.NEEDS_2FA:
        state = account.submit_2fa(args.code) if args.code else _ask_for_code(account)
    if state == AuthState.NEEDS_CONSENT:
        state = _wait_for_consent(account)
    settings.save(apple_id=apple_id)
    if state != AuthState.SIGNED_IN:
        return 1
    print(f"Signed in as {apple_id}; the session is trusted, so no code is needed next time.")
    if remember:
        print(f"Password saved in the keyring ({keyring_info().backend}).")
    return 0


def _ask_for_code(account: Credentials) -> str:
    """Read the two-factor code (from the terminal, or the next line of stdin), again after a
    wrong one, up to ``CODE_TRIES`` times: Apple stops taking codes after a few wrong ones."""
    tries = 0
    while True:
        tries += 1
        try:
            code = input("Two-factor code (sent to your trusted devices): ").strip()
        except EOFError:
            raise IcloudfsError(
                "a two-factor code is needed: pass it with --code, or run `icloudfs login` in a terminal"
            ) from None
        try:
            return account.submit_2fa(code)
        except (Needs2FA, ControlError) as refused:
            if tries >= CODE_TRIES or (isinstance(refused, ControlError) and refused.status != 400):
                raise
            last = (
                " One more wrong code may lock two-factor sign-in for a while."
                if tries == CODE_TRIES - 1
                else ""
            )
            print(f"icloudfs: {refused}{last}", file=sys.stderr)


def _wait_for_consent(account: Credentials) -> str:
    """Advanced Data Protection: wait a while for a device's Allow, then leave it to the mount."""
    print(CONSENT_MESSAGE, file=sys.stderr)
    deadline = time.monotonic() + CONSENT_WAIT_S
    state: str = AuthState.NEEDS_CONSENT
    while state == AuthState.NEEDS_CONSENT and time.monotonic() < deadline:
        time.sleep(CONSENT_RECHECK_S)
        state = account.check_consent()
    if state == AuthState.NEEDS_CONSENT:
        print(
            f"No device allowed this sign-in within {CONSENT_WAIT_S:.0f} s. The session is kept: "
            "a mount goes on by itself once someone taps Allow.",
            file=sys.stderr,
        )
    return state


def _confirm_keyring(*, interactive: bool) -> bool:
    """Warn when the keyring is insecure or missing; ask when a person is there to answer."""
    info = keyring_info()
    if info.warning:
        print(f"warning: {info.warning}", file=sys.stderr)
    if not info.usable:
        return False
    if info.plaintext and interactive and sys.stdin.isatty():
        return input("Save the password in that plain file anyway? [y/N] ").strip().lower() == "y"
    return True


def cmd_logout(args: argparse.Namespace) -> int:
    settings, account = open_account(args)
    account.logout(forget_password=args.forget_password)
    print(f"Signed out{f' {settings.apple_id}' if settings.apple_id else ''}.")
    if args.forget_password:
        print("Password removed from the keyring.")
    return 0


def cmd_mount(args: argparse.Namespace) -> int:
    settings = Settings.load(
        endpoint=args.endpoint,
        ca_file=args.ca_file,
        folder=args.folder,
        cache_dir=args.cache_dir,
        cache_size=args.cache_size,
        metadata_ttl=args.metadata_ttl,
        negative_ttl=args.negative_ttl,
        write_back=args.write_back,
        poll_interval=args.poll_interval,
        offline_timeout=args.offline_timeout,
    )
    options = runner.mount_options(
        settings,
        args.mountpoint,
        read_only=args.read_only,
        uid=args.uid,
        gid=args.gid,
        umask=args.umask,
        allow_other=args.allow_other or settings.allow_other,
    )
    warning = runner.check_mountpoint(args.mountpoint)
    if warning and args.foreground:
        log.warning("%s", warning)
    elif warning:  # said by the command the user typed, not again in the daemon's log
        print(f"icloudfs: warning: {warning}", file=sys.stderr)
    if not args.foreground:
        return runner.daemonize(args.argv, args.mountpoint, args.log_file)
    return runner.run_foreground(runner.open_session(settings), options)


def cmd_unmount(args: argparse.Namespace) -> int:
    return runner.stop(args.mountpoint, force=args.force)


def _mount_hint(path: Path) -> Path | None:
    """The mount a command's path names: a local path names the mount it is in; a
    mount-relative one (``/Docs``, not a local path) the only mount running."""
    try:
        mount_for(path)
    except NoMount:
        if os.path.lexists(path):  # a real local path outside every mount: not ours to look up
            raise
        return None
    return path


def _in_mount(client: ControlClient, path: Path) -> tuple[str, Path | None]:
    """A path inside the running mount as the mount names it, and as a local path when it is one."""
    mountpoint = client.status().mount.mountpoint
    local = path.absolute()
    if mountpoint and local.is_relative_to(mountpoint):
        inside = local.relative_to(mountpoint).as_posix()
        return ("/" if inside == "." else f"/{inside}"), local
    remote = "/" + path.as_posix().lstrip("/")
    return remote, (Path(mountpoint) / remote.lstrip("/") if mountpoint else None)


def cmd_refresh(args: argparse.Namespace) -> int:
    """Ask the running mount to fetch listings again; the path may be local or mount-relative."""
    with ControlClient.for_mount(_mount_hint(args.path)) as client:
        remote, _ = _in_mount(client, args.path)
        done = client.refresh(remote, recursive=args.recursive)
    print(f"Refreshed {done.path}: {done.folders} folder(s) fetched again.")
    return 0


def cmd_pin(args: argparse.Namespace) -> int:
    """Keep PATH cached for offline use: mark it, then read every file through the mount."""
    with ControlClient.for_mount(_mount_hint(args.path)) as client:
        remote, local = _in_mount(client, args.path)
        done = client.pin(remote, keep=not args.unpin)
    if args.unpin:
        print(f"{done.path}: {done.files} file(s) may be evicted again.")
        return 0
    if local is None:
        raise IcloudfsError("the mount's folder is unknown; pass a path inside the mount")
    files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
    progress = Progress(f"pinning {done.path}", total=done.bytes, files=len(files))
    for path in files:
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                progress.advance(len(chunk))
        progress.file_done()
    progress.done(f"{len(files)} file(s), {done.bytes / 1e6:.1f} MB kept for offline use")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    return demo.run(args.mountpoint)


def main(argv: Sequence[str] | None = None) -> int:
    privacy.restrict_umask()
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        if mount_helper.is_helper_call(words):
            words = mount_helper.adopt(words)
        args = build_parser().parse_args(words)
        args.argv = words
        ops_logging.configure(args)
        return int(args.func(args))
    except (IcloudfsError, ControlError, NoMount) as error:
        print(f"icloudfs: {error}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, EOFError):
        print("", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

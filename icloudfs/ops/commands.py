"""CLI subcommands for operations: ``doctor``, ``completion`` and ``install-mount-helper``.

``register(subparsers)`` adds them to the main parser, as ``control.commands``
does for its own; each parser's ``func(args) -> int`` is the exit status.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from icloudfs.config import Settings
from icloudfs.ops import completion, doctor, mount_helper


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """``common`` is the main parser's shared parent (``--endpoint``, ``--ca-file``)."""
    check = subparsers.add_parser(
        "doctor", parents=[common], help="check this machine and account; red lines come with a fix"
    )
    check.add_argument("--allow-other", action="store_true", help="check as for a mount with --allow-other")
    check.set_defaults(func=_doctor)

    complete = subparsers.add_parser("completion", help="print a shell completion script")
    complete.add_argument(
        "shell", choices=("bash",), help="bash (zsh: after `autoload bashcompinit; bashcompinit`)"
    )
    complete.set_defaults(func=_completion)

    helper = subparsers.add_parser(
        "install-mount-helper", help=f"link {mount_helper.HELPER_NAME} for `mount -t fuse.icloudfs` and fstab"
    )
    helper.add_argument("--dir", type=Path, default=Path("/sbin"), help="default /sbin, where mount(8) looks")
    helper.set_defaults(func=_install_mount_helper)


def _doctor(args: argparse.Namespace) -> int:
    wanted = args.allow_other or None
    settings = Settings.load(endpoint=args.endpoint, ca_file=args.ca_file, allow_other=wanted)
    checks = doctor.run(settings)
    color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    print(doctor.render(checks, color=color))
    return 1 if any(c.level is doctor.Level.FAIL for c in checks) else 0


def _completion(args: argparse.Namespace) -> int:
    from icloudfs.cli import build_parser  # the whole tree, this command included

    print(completion.bash(build_parser()), end="")
    return 0


def _install_mount_helper(args: argparse.Namespace) -> int:
    link = mount_helper.install(args.dir)
    print(f"{link} -> {link.readlink()}")
    print("`mount -t fuse.icloudfs icloud:/FOLDER MOUNTPOINT -o OPTIONS` and fstab lines now work.")
    return 0

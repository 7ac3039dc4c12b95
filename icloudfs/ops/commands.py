"""CLI subcommands for operations: ``doctor``, ``completion`` (``shtab``) and ``install-mount-helper``.

``register(subparsers)`` adds them to the main parser, as ``control.commands``
does for its own; each parser's ``func(args) -> int`` is the exit status.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import shtab

from icloudfs.config import Settings
from icloudfs.ops import doctor, mount_helper


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """``common`` is the main parser's shared parent (``--endpoint``, ``--ca-file``)."""
    check = subparsers.add_parser(
        "doctor", parents=[common], help="check this machine and account; red lines come with a fix"
    )
    check.add_argument("--allow-other", action="store_true", help="check as for a mount with --allow-other")
    check.set_defaults(func=_doctor)

    complete = subparsers.add_parser(
        "completion",
        help="print a shell completion script",
        description="Print a completion script: `icloudfs completion bash > "
        "~/.local/share/bash-completion/completions/icloudfs` (zsh: into a folder on $fpath as _icloudfs).",
    )
    complete.add_argument("shell", choices=shtab.SUPPORTED_SHELLS, help="the shell to complete in")
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
    parser: argparse.ArgumentParser = args.parser  # the whole tree (set by ``cli.build_parser``)
    print(shtab.complete(_paths_complete(parser), shell=args.shell), end="")
    return 0


def _paths_complete(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments that take a path complete as one: folders for mountpoints, files otherwise."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _paths_complete(child)
        elif action.type is Path:
            folder = action.dest in {"mountpoint", "mount", "dir", "data"}
            action.complete = shtab.DIRECTORY if folder else shtab.FILE  # type: ignore[attr-defined]
    return parser


def _install_mount_helper(args: argparse.Namespace) -> int:
    link = mount_helper.install(args.dir)
    print(f"{link} -> {link.readlink()}")
    print("`mount -t fuse.icloudfs icloud:/FOLDER MOUNTPOINT -o OPTIONS` and fstab lines now work.")
    return 0

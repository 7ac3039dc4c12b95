"""``python -m icloudfs.emulator --data DIR ...``: the emulator without the main CLI."""

from __future__ import annotations

import argparse
import sys

from icloudfs.emulator.command import register


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m icloudfs.emulator")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["emulator", *(sys.argv[1:] if argv is None else argv)])
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())

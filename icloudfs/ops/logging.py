"""Logging for every command: ``-v``/``-q``, ``--log-file`` and ``--log-format text|json``.

The options are added to every leaf command by walking the parser tree
(``add_options``), so commands registered elsewhere (``status``, ``token``,
``emulator``) get them without knowing about them. JSON lines carry the
standard fields plus anything passed as ``extra=`` — that is how warnings
carry their context (account, endpoint, file) in machine-readable form.
"""

from __future__ import annotations

import argparse
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``, extras, ``exc``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def add_options(parser: argparse.ArgumentParser) -> None:
    """Give every leaf command of ``parser`` the logging options."""
    children = [
        child
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for child in dict.fromkeys(action.choices.values())
    ]
    for child in children:
        add_options(child)
    if children:
        return
    group = parser.add_argument_group("logging")
    volume = group.add_mutually_exclusive_group()
    volume.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    volume.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    group.add_argument("--log-file", type=Path, help="append the log to this file instead of stderr")
    group.add_argument("--log-format", choices=("text", "json"), default="text", help="default text")


def configure(args: argparse.Namespace) -> None:
    """Set up the root logger from the options ``add_options`` added."""
    verbose, quiet = getattr(args, "verbose", False), getattr(args, "quiet", False)
    log_file: Path | None = getattr(args, "log_file", None)
    handler: logging.Handler
    if log_file is not None:
        log_file = log_file.expanduser().resolve()  # the daemon's working folder becomes /
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_file, encoding="utf-8")
    else:
        handler = logging.StreamHandler()
    json_lines = getattr(args, "log_format", "text") == "json"
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    logging.getLogger("httpx").setLevel(logging.NOTSET if verbose else logging.WARNING)  # per request
    # pyicloud's own lines ("ERROR pyicloud.base: Code verification failed.") repeat what icloudfs
    # says in its words: detail for -v only.
    logging.getLogger("pyicloud").setLevel(logging.NOTSET if verbose else logging.CRITICAL)

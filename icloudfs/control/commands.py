"""CLI subcommands of the control plane: ``status`` and ``token create|list|revoke``.

``status [PATH]`` asks the control plane of the mount PATH is in (or of the only one running),
through its unix socket. Token commands work on the keyring, where every running control plane
looks: a revoked token is refused on its next request (``tokens``). ``token create`` also prints
the HTTPS certificate's fingerprint when remote access is on, for clients to pin.
``register(subparsers)`` adds them to the main CLI; each parser's ``func(args) -> int`` is the
exit status.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path

from icloudfs.config import Settings
from icloudfs.control import tls
from icloudfs.control.client import ControlClient, ControlError
from icloudfs.control.schemas import Status
from icloudfs.control.tokens import TokenStore

Handler = Callable[[argparse.Namespace], int]
SHOWN_ONCE = "This token will only be shown once"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``status`` and ``token`` to the main parser's subcommands."""
    status = subparsers.add_parser("status", help="show the running mount's state")
    status.add_argument("path", type=Path, nargs="?", help="a path in the mount (default: the only one)")
    status.add_argument("--json", action="store_true", help="print the raw JSON")
    status.set_defaults(func=_status)

    token = subparsers.add_parser("token", help="manage API tokens for remote clients")
    actions = token.add_subparsers(dest="token_command", required=True)
    create = actions.add_parser("create", help="make a token (shown once)")
    create.add_argument("--description", required=True, help="what the token is for")
    create.set_defaults(func=_token_create)
    listing = actions.add_parser("list", help="list tokens (never their values)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=_token_list)
    revoke = actions.add_parser("revoke", help="revoke a token")
    revoke.add_argument("id", help="the token's id (see `token list`)")
    revoke.add_argument("--yes", action="store_true", help="do not ask")
    revoke.set_defaults(func=_token_revoke)


def _reported(handler: Handler) -> Handler:
    """Turn control-plane refusals into a message on stderr and exit status 1."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except ControlError as exc:
            print(f"icloudfs: {exc.reason}", file=sys.stderr)
            return 1

    return run


@_reported
def _status(args: argparse.Namespace) -> int:
    with ControlClient.for_mount(args.path) as client:
        report = client.status()
    print(report.model_dump_json(indent=2) if args.json else render_status(report))
    return 0


def render_status(report: Status) -> str:
    """The status as an aligned, human-readable table."""
    mount, account = report.mount, report.account
    rows = [
        (
            "Mounted",
            "no"
            if not mount.mounted
            else f"{mount.mountpoint} ← iCloud {mount.folder}"
            + (" (read-only)" if mount.read_only else "")
            + (f" since {mount.since:%Y-%m-%d %H:%M}" if mount.since else ""),
        )
    ]
    if account is not None:
        trust = (
            f", trusted {account.trust_days_left} more days" if (account.trust_days_left is not None) else ""
        )
        rows.append(("Account", f"{account.apple_id}: {account.auth_state}{trust}"))
        if account.unreachable_since is not None:  # signed in, but nothing answers
            since = account.unreachable_since.astimezone()
            rows.append(("iCloud", f"unreachable since {since:%H:%M} ({account.unreachable_cause})"))
        where = account.keyring_backend + (" (plaintext file)" if account.keyring_plaintext else "")
        stored = "stored" if account.password_stored else "not stored"
        rows.append(("Password", f"{stored}, keyring {where}"))
    if report.cache is not None:
        meta, content = report.cache.metadata, report.cache.content
        rows.append(("Metadata", f"{meta.entries} entries, {meta.hits} hits, {meta.misses} misses"))
        rows.append(
            (
                "Content",
                f"{_size(content.bytes_used)} of {_size(content.bytes_limit)}, "
                f"{content.hits} hits, {content.misses} misses",
            )
        )
    if report.uploads is not None:
        up = report.uploads
        rows.append(("Uploads", f"{up.queued} queued, {up.in_progress} in progress, {up.failed} failed"))
        if up.changes:
            rows.append(("Folder changes", f"{up.changes} made here wait for iCloud"))
        if up.paused:
            rows.append(("Uploads paused", up.paused))
    if report.errors:
        rows.append(("Errors", ", ".join(f"{k} {v}" for k, v in sorted(report.errors.items()))))
    if report.last_error:
        rows.append(("Last error", report.last_error))
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


@_reported
def _token_create(args: argparse.Namespace) -> int:
    created = TokenStore().create_token(args.description)
    print(created.token)
    print(f"{SHOWN_ONCE} (id {created.id}).", file=sys.stderr)
    settings = Settings.load()
    if settings.allow_remote and not settings.insecure_http:
        cert = tls.server_cert(settings.control_cert, settings.control_key)
        print(f"Server certificate SHA-256 (pin it in the client): {cert.fingerprint}", file=sys.stderr)
    return 0


@_reported
def _token_list(args: argparse.Namespace) -> int:
    tokens = TokenStore().list_tokens()
    if args.json:
        print(json.dumps([t.model_dump(mode="json") for t in tokens], indent=2))
        return 0
    if not tokens:
        print("No tokens.")
    for t in tokens:
        print(f"{t.id}  {t.created_at:%Y-%m-%d %H:%M}  {t.description}")
    return 0


@_reported
def _token_revoke(args: argparse.Namespace) -> int:
    admin = TokenStore()
    match = [t for t in admin.list_tokens() if t.id == args.id]
    if not match:
        print(f"icloudfs: no token with id {args.id}", file=sys.stderr)
        return 1
    question = f"Revoke token '{match[0].description}'? Clients using this token will stop working. [y/N] "
    if not args.yes and not _confirm(question):
        print("Not revoked.")
        return 1
    admin.revoke_token(args.id)
    print(f"Revoked {args.id}.")
    return 0


def _confirm(question: str) -> bool:
    try:
        return input(question).strip().lower() in ("y", "yes")
    except EOFError:
        return False

"""The ``emulator`` subcommand, shared by ``icloudfs emulator`` and ``python -m icloudfs.emulator``."""

from __future__ import annotations

import argparse
from pathlib import Path

from icloudfs.emulator.config import DEFAULT_APPLE_ID, DEFAULT_CODE, DEFAULT_PASSWORD, EmulatorConfig

CONTROLS = """faults and the user's devices, at run time: POST (GET, DELETE) https://HOST:PORT/__emulator__/NAME
  faults           {"latency_ms": 20, "bandwidth_mbps": 200, "rules": [{"path": "/docws/", "status": 503,
                   "times": 2}]}; a status is 503, 421, 500, "drop" (close unanswered) or "lost" (make the
                   change, then close unanswered); "rate": 0.1 instead of "times". DELETE clears them
  expire-sessions  every web session expires now (trust survives): Drive answers 421
  revoke-trust     trusted sessions end too: the next sign-in needs a code
  adp-consent      a trusted device taps Allow (with --adp)
  adp-web-access   {"allowed": false}: "Access iCloud Data on the Web" off
  expire-pcs       PCS cookies stop opening Drive: 423 until requested again
  unlock           clear the lockout after bad passwords
  stats            requests per endpoint and content bytes (DELETE resets); trust: live trust tokens
"""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``emulator`` with its options; the parsed args carry ``func`` returning an exit code."""
    parser = subparsers.add_parser(
        "emulator",
        help="run the iCloud web-services emulator",
        description="Serve iCloud's sign-in and Drive endpoints over HTTPS for pyicloud-based clients.",
        epilog=CONTROLS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", type=Path, required=True, help="state directory (created if missing)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (see DIR/emulator.json)")
    parser.add_argument(
        "--account",
        default=f"{DEFAULT_APPLE_ID}:{DEFAULT_PASSWORD}",
        metavar="EMAIL:PASSWORD",
        help=f"the one account (default {DEFAULT_APPLE_ID}:{DEFAULT_PASSWORD})",
    )
    codes = parser.add_mutually_exclusive_group()
    codes.add_argument(
        "--2fa-code",
        dest="code",
        default=DEFAULT_CODE,
        metavar="CODE",
        help=f"the code Apple 'sends' (default {DEFAULT_CODE})",
    )
    codes.add_argument("--no-2fa", dest="two_factor", action="store_false", help="sign in without a code")
    parser.add_argument(
        "--2fa-route",
        dest="two_factor_route",
        choices=["bridge", "legacy"],
        default="bridge",
        help="bridge: Apple's trusted-device bridge (push websocket + SPAKE2), as pyicloud uses on "
        "Apple; legacy: only the SMS and trusted-device securitycode endpoints",
    )
    parser.add_argument(
        "--seed",
        action="append",
        default=[],
        metavar="SPEC",
        help="demo | tree:FILES:FOLDERS[:BYTES] | file:NAME:BYTES | copy:PATH; repeatable, each applied once "
        "per DIR",
    )
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every request (a WAN)")
    parser.add_argument("--bandwidth-mbps", type=float, default=0.0, help="total content cap, 0 = none")
    parser.add_argument(
        "--session-ttl", type=float, default=86400.0, metavar="SECONDS", help="web sessions then answer 421"
    )
    parser.add_argument("--trust-days", type=float, default=30.0, help="lifetime of 2FA trust tokens")
    parser.add_argument("--adp", action="store_true", help="Advanced Data Protection: Drive needs consent")
    parser.add_argument(
        "--pcs-ttl", type=float, default=3600.0, metavar="SECONDS", help="lifetime of ADP's PCS cookies"
    )
    parser.add_argument(
        "--url-ttl", type=float, default=300.0, metavar="SECONDS", help="lifetime of signed content URLs"
    )
    parser.add_argument(
        "--accepted-code-409",
        dest="accepted_code_conflicts",
        type=float,
        default=0.0,
        metavar="RATE",
        help="share of right codes on the trusted-device endpoint answered 409 with securityCode.valid (0-1)",
    )
    parser.add_argument(
        "--download-redirects",
        type=float,
        default=0.0,
        metavar="RATE",
        help="share of downloads answered 330 with a Location on another host name (0-1)",
    )
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    apple_id, _, password = str(args.account).partition(":")
    if not apple_id or not password:
        raise SystemExit("--account must be EMAIL:PASSWORD")
    return EmulatorConfig(
        data_dir=args.data,
        host=args.host,
        port=args.port,
        apple_id=apple_id,
        password=password,
        code=args.code,
        two_factor=args.two_factor,
        two_factor_route=args.two_factor_route,
        seeds=tuple(args.seed),
        latency_ms=args.latency_ms,
        bandwidth_mbps=args.bandwidth_mbps,
        session_ttl=args.session_ttl,
        trust_days=args.trust_days,
        adp=args.adp,
        url_ttl=args.url_ttl,
        pcs_ttl=args.pcs_ttl,
        download_redirects=args.download_redirects,
        accepted_code_conflicts=args.accepted_code_conflicts,
    )


def run(args: argparse.Namespace) -> int:
    from icloudfs.emulator.server import serve  # uvicorn and friends only when actually serving

    return serve(config_from_args(args))

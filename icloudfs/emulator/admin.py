"""The test/benchmark control surface under ``/__emulator__/`` (no auth, same origin).

* ``GET|POST|DELETE /faults``: read, change (``latency_ms``, ``bandwidth_mbps``, ``rules``) or reset;
* ``POST /expire-sessions``: every session token and web session expires now (trust survives);
* ``POST /revoke-trust``: trusted sessions are revoked too, so the next sign-in needs a 2FA code;
* ``POST /adp-consent``: the account's device approves web access under ADP;
* ``POST /adp-web-access`` ``{"allowed": bool}``: "Access iCloud Data on the Web" on or off
  (off withdraws the consent and every PCS grant);
* ``POST /expire-pcs``: every PCS cookie granted so far stops opening Drive (423);
* ``POST /unlock``: clear a lockout from repeated bad passwords;
* ``GET|DELETE /stats``: request counts per endpoint and content bytes, or reset them;
* ``GET /trust``: live trust tokens with their expiry and days left.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response

from icloudfs.emulator.context import Stats, emulator_of
from icloudfs.emulator.middleware import ADMIN_PREFIX
from icloudfs.emulator.responses import json_response, read_json
from icloudfs.emulator.routing import Routes
from icloudfs.emulator.sessions import TRUST

router = Routes(ADMIN_PREFIX)


@router.get("/faults")
async def get_faults(request: Request) -> Response:
    return json_response(emulator_of(request).faults.state())


@router.post("/faults")
async def set_faults(request: Request) -> Response:
    faults = emulator_of(request).faults
    try:
        faults.update(await read_json(request) or {})
    except (KeyError, TypeError, ValueError) as err:
        return json_response({"errorCode": "INVALID_ARGUMENT", "errorReason": str(err)}, 400)
    return json_response(faults.state())


@router.delete("/faults")
async def clear_faults(request: Request) -> Response:
    faults = emulator_of(request).faults
    faults.clear()
    return json_response(faults.state())


@router.post("/expire-sessions")
async def expire_sessions(request: Request) -> Response:
    return json_response({"expired": emulator_of(request).sessions.expire_all()})


@router.post("/revoke-trust")
async def revoke_trust(request: Request) -> Response:
    return json_response({"revoked": emulator_of(request).sessions.revoke_trust()})


@router.post("/adp-consent")
async def adp_consent(request: Request) -> Response:
    emulator_of(request).sessions.consent()
    return json_response({"consented": True})


@router.post("/adp-web-access")
async def adp_web_access(request: Request) -> Response:
    """``{"allowed": false}``: the user turned "Access iCloud Data on the Web" off on a device."""
    allowed = bool((await read_json(request) or {}).get("allowed", True))
    emulator_of(request).sessions.set_web_access(allowed)
    return json_response({"allowed": allowed})


@router.post("/expire-pcs")
async def expire_pcs(request: Request) -> Response:
    """Every PCS grant ends now: Drive answers 423 until PCS is requested again."""
    emulator_of(request).sessions.expire_pcs()
    return json_response({"expired": True})


@router.post("/unlock")
async def unlock(request: Request) -> Response:
    emulator_of(request).sessions.unlock()
    return json_response({"locked": False})


@router.get("/stats")
async def get_stats(request: Request) -> Response:
    return json_response(emulator_of(request).stats.as_json())


@router.delete("/stats")
async def reset_stats(request: Request) -> Response:
    emulator = emulator_of(request)
    emulator.stats = Stats()
    return json_response(emulator.stats.as_json())


@router.get("/trust")
async def trust_tokens(request: Request) -> Response:
    now = time.time()
    tokens = [t for t in emulator_of(request).store.tokens(TRUST) if t.alive(now)]
    return json_response(
        {
            "trust_tokens": [
                {
                    "token": t.token[:8] + "…",
                    "expires": int(t.expires),
                    "days_left": round((t.expires - now) / 86400, 2),
                }
                for t in tokens
            ]
        }
    )

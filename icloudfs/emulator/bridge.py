"""The HSA2 trusted-device bridge routes (``--2fa-route bridge``, the default): Apple's way to 2FA.

Real Apple's web sign-in, and so the maintained pyicloud since its PR 210, asks for the code
this way: ``GET /appleauth/auth`` with ``Accept: text/html`` answers the HTML auth shell whose
``<script class="boot_args">`` JSON says ``direct.authInitialRoute: "auth/bridge/step"``,
``hasTrustedDevices`` and ``twoSV.bridgeInitiateData`` (``apnsTopic``, ``webSocketUrl``,
``phoneNumberVerification``: shape from pyicloud ``tests/test_hsa2_bridge.py``,
``test_parse_boot_args_html_extracts_bridge_context``). pyicloud then
(``base.py`` ``request_2fa_code``, run by ``authenticate`` as soon as the 409 comes):

1. opens ``wss://<webSocketUrl>/v2/<hex connection message>`` and waits for its push token;
2. subscribes to the topic and POSTs ``bridge/step/0``; the push that follows brings the salt;
3. on ``validate_2fa_code``: SPAKE2 over the code through ``bridge/step/2`` and ``/4`` (each
   answered by a push), ``bridge/code/validate`` with the decrypted code, and a closing step.

Apple's ``webSocketUrl`` is ``websocket.push.apple.com``; the emulator names itself
(``host:port`` of the request, which pyicloud's ``_resolve_websocket_host`` keeps) and serves
the websocket on its one origin, so the bridge needs no second port or certificate. A client
that cannot open it (pyicloud's websocket trusts only Python's default CAs: ``SSL_CERT_FILE``)
falls back, as on Apple, to SMS: the shell offers the trusted phone too.

A wrong code shows at step 4 (the prover's confirmation fails) or at ``bridge/code/validate``;
both answer 412 with Apple's wrong-code error (``-21669``): pyicloud reads a 412 from
``code/validate`` as "code refused" (``hsa2_bridge.py`` ``validate_code``, and its test
``test_trusted_device_bridge_validate_code_returns_false_on_412``), while any other failure
status raises. pyicloud's own prover catches a wrong code first, before posting step 4, and
returns False without touching these endpoints. Other protocol misuse is a 400.
"""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from icloudfs.emulator import bridge_wire as wire
from icloudfs.emulator.bridge_hub import TOPIC, BridgeError, WrongCode
from icloudfs.emulator.context import emulator_of, origin_of
from icloudfs.emulator.responses import json_response, read_json, service_error
from icloudfs.emulator.routing import Routes

router = Routes("/appleauth/auth/bridge")
NONCE_WINDOW_S = 300  # how far the client's clock may be off before INVALID_NONCE
SOURCE_APP_ID = 1159  # Apple's boot args (pyicloud test fixtures); sent back as X-Apple-App-Id


def auth_shell(request: Request, phone_verification: dict[str, Any], headers: dict[str, str]) -> Response:
    """Apple's HTML auth shell, whose boot args route pyicloud to the bridge."""
    boot_args = {
        "direct": {
            "authInitialRoute": "auth/bridge/step",
            "hasTrustedDevices": True,
            "twoSV": {
                "authFactors": ["web_piggybacking", "sms", "generatedcode"],
                "sourceAppId": SOURCE_APP_ID,
                "bridgeInitiateData": {
                    "apnsTopic": TOPIC,
                    "apnsEnvironment": "prod",
                    "webSocketUrl": origin_of(request).removeprefix("https://"),
                    "phoneNumberVerification": phone_verification,
                },
            },
        }
    }
    script = json.dumps(boot_args).replace("</", "<\\/")
    page = (
        "<!DOCTYPE html><html><head><title>Apple Account</title></head><body>"
        f'<script type="application/json" class="boot_args">{script}</script></body></html>'
    )
    return Response(page, media_type="text/html", headers=headers)


def _refused(reason: str) -> Response:
    return service_error(400, "-1", f"Bridge request refused: {reason}")


def _wrong_code() -> Response:
    return service_error(412, "-21669", "Incorrect verification code.")


async def _signed_in_attempt(request: Request) -> tuple[str, dict[str, Any]] | Response:
    """The sign-in (past its password) this bridge request belongs to, and the JSON body."""
    attempt = emulator_of(request).sessions.attempt(request.headers.get("X-Apple-ID-Session-Id"))
    if attempt is None or not attempt.password_ok:
        return service_error(401, "-20101", "Your Apple ID or password was incorrect.")
    body = await read_json(request)
    return attempt.session_id, body if isinstance(body, dict) else {}


@router.post("/step/{step:int}")
async def bridge_step(request: Request, step: int) -> Response:
    found = await _signed_in_attempt(request)
    if isinstance(found, Response):
        return found
    attempt_id, body = found
    hub = emulator_of(request).bridge
    session_uuid, data = str(body.get("sessionUUID") or ""), str(body.get("data") or "")
    try:
        if step == 0:
            await hub.start(session_uuid, str(body.get("ptkn") or ""), attempt_id)
        else:
            await hub.step(hub.prompt(session_uuid, attempt_id), step, data)
    except WrongCode:
        return _wrong_code()
    except BridgeError as error:
        return _refused(str(error))
    return json_response({})


@router.post("/code/validate")
async def bridge_code_validate(request: Request) -> Response:
    found = await _signed_in_attempt(request)
    if isinstance(found, Response):
        return found
    attempt_id, body = found
    emulator = emulator_of(request)
    try:
        emulator.bridge.prompt(str(body.get("sessionUUID") or ""), attempt_id)
    except BridgeError as error:
        return _refused(str(error))
    if not emulator.bridge.code_ok(str(body.get("code") or "")):
        return _wrong_code()
    attempt = emulator.sessions.attempt(attempt_id)
    if attempt is not None:
        attempt.code_ok = True
    return Response(status_code=204)


async def push_socket(websocket: WebSocket) -> None:
    """``wss://HOST/v2/<hex>``: Apple's push websocket, carrying the bridge's pushes."""
    try:
        hello = wire.Hello.from_path(websocket.path_params["connection"])
    except ValueError:
        await websocket.close(1008)
        return
    if not hello.signed():
        await websocket.close(1008)
        return
    await websocket.accept()
    now = time.time()
    if abs(now - hello.nonce_ms() / 1000) > NONCE_WINDOW_S:
        await websocket.send_bytes(wire.connection_response(b"", wire.STATUS_INVALID_NONCE, int(now)))
        await websocket.close()
        return
    hub = emulator_of(websocket).bridge
    channel = hub.open_channel(websocket.send_bytes)
    try:
        await websocket.send_bytes(wire.connection_response(channel.token, wire.STATUS_OK, int(now)))
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            try:
                frame = wire.decode(message.get("bytes") or b"")
            except ValueError:
                continue  # not protobuf: ignored, as an unknown frame would be
            topics = wire.filter_topics(frame)
            if topics is not None:
                message_id = channel.subscribe(topics)
                await websocket.send_bytes(wire.subscription_response(topics, message_id))
            # Acknowledgements (field 2) need no answer.
    except (WebSocketDisconnect, RuntimeError):
        pass  # the client went away while we sent (pyicloud sends a close frame, then drops)
    finally:
        hub.close_channel(channel)


websocket_routes = [WebSocketRoute("/v2/{connection}", push_socket)]

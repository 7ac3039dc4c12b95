"""Live state of the HSA2 trusted-device bridge: open push websockets and the prompts on them.

On real Apple the bridge joins three parties: the browser (here pyicloud), idmsa's
``/appleauth/auth/bridge/...`` endpoints and a trusted device that shows a code. The browser
holds a push websocket open; each ``bridge/step/N`` it POSTs makes Apple push the next
message of the exchange to that websocket. The emulator plays idmsa and the device at once:

* step 0 (``sessionUUID`` + push token ``ptkn``): the device shows the code; push
  ``nextStep: "2"`` with a fresh scrypt ``salt``;
* step 2 (prover's SPAKE2 share): push ``nextStep: "4"`` with ``data`` =
  base64(base64(verifier share) ``_`` base64(verifier confirmation));
* step 4 (prover's confirmation): if it holds, the code was right: push ``nextStep: "6"``
  with ``encryptedCode`` (the code, AES-GCM under the SPAKE2 key); if not, refuse;
* ``bridge/code/validate`` (the decrypted code) passes the attempt's 2FA, and step 6 (or 4)
  with ``data`` = base64("done") closes the prompt.

The push payloads carry the keys Apple's do: ``aps``, ``txnid`` (``..._S``: a bridge-verified
challenge; ``_W`` would route pyicloud to the legacy verifier), ``flowid`` (Apple's newer
pushes carry it instead of echoing ``sessionUUID``: pyicloud issue 232, PR 233), ``idmsdata``
and ``akdata`` which the client echoes back (shapes from pyicloud ``tests/test_hsa2_bridge.py``).
The emulator's ``flowid`` is the client's ``sessionUUID``: how Apple derives it is not known.

The SPAKE2 verifier is pyicloud's own ``_TrustedDeviceBridgeServerProver`` (P-256 SPAKE2+
with Apple's identities, scrypt and AES-GCM layout): the emulator checks the message flow and
the code, not pyicloud's curve arithmetic, which only real Apple can.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pyicloud.hsa2_bridge_prover import _TrustedDeviceBridgeServerProver

from icloudfs.emulator import bridge_wire as wire

TOPIC = "com.apple.idmsauthwidget"  # the apnsTopic of Apple's boot args (pyicloud test fixtures)
SUBSCRIBE_WAIT_S = 10.0


class BridgeError(Exception):
    """The client broke the bridge protocol (unknown token or session, step out of order)."""


class WrongCode(Exception):
    """The code behind the client's SPAKE2 confirmation is not the one the device shows."""


class Channel:
    """One push websocket: its push token, the topics it subscribed to, and how to send on it."""

    def __init__(self, send: Callable[[bytes], Awaitable[None]]) -> None:
        self.token = secrets.token_bytes(32)
        self.topics: set[str] = set()
        self.subscribed = asyncio.Event()
        self._send = send
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        return next(self._ids)

    def subscribe(self, topics: list[str]) -> int:
        self.topics.update(topics)
        self.subscribed.set()
        return self.next_id()

    async def push(self, payload: dict[str, Any]) -> None:
        """Deliver one bridge message, once the client has subscribed to the bridge topic."""
        try:
            await asyncio.wait_for(self.subscribed.wait(), SUBSCRIBE_WAIT_S)
        except TimeoutError as error:
            raise BridgeError("the push websocket never subscribed to a topic") from error
        if TOPIC not in self.topics:
            raise BridgeError(f"the push websocket did not subscribe to {TOPIC}")
        body = json.dumps(payload, separators=(",", ":")).encode()
        await self._send(wire.push(TOPIC, self.next_id(), body))


def _txnid() -> str:
    return f"{secrets.randbelow(9000) + 1000}_{secrets.randbelow(10**9)}_S"


@dataclass
class Prompt:
    """One trusted-device prompt: a bridge session from step 0 until the code is validated."""

    session_uuid: str
    attempt_id: str
    channel: Channel
    salt: str = field(default_factory=lambda: base64.b64encode(secrets.token_bytes(16)).decode())
    txnid: str = field(default_factory=_txnid)
    idmsdata: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    next_step: int = 2
    verifier: Any = None
    proven: bool = False

    def payload(self, next_step: int, **extra: Any) -> dict[str, Any]:
        return {
            "aps": {"alert": ""},
            "txnid": self.txnid,
            "flowid": self.session_uuid,
            "nextStep": str(next_step),
            "idmsdata": self.idmsdata,
            "akdata": {"lat": 0.0, "lng": 0.0},
            **extra,
        }


class BridgeHub:
    """Every open push websocket (by push token) and every live prompt (by ``sessionUUID``)."""

    def __init__(self, code: str) -> None:
        self._code = code
        self._channels: dict[str, Channel] = {}
        self._prompts: dict[str, Prompt] = {}

    def open_channel(self, send: Callable[[bytes], Awaitable[None]]) -> Channel:
        channel = Channel(send)
        self._channels[channel.token.hex()] = channel
        return channel

    def close_channel(self, channel: Channel) -> None:
        """The websocket closed: its prompts can go no further (the browser tab went away)."""
        self._channels.pop(channel.token.hex(), None)
        for uuid in [uuid for uuid, prompt in self._prompts.items() if prompt.channel is channel]:
            del self._prompts[uuid]

    async def start(self, session_uuid: str, push_token: str, attempt_id: str) -> None:
        """Step 0: the device shows the code; the browser learns the salt."""
        channel = self._channels.get(push_token)
        if channel is None or not session_uuid:
            raise BridgeError("no open push websocket has that push token")
        prompt = Prompt(session_uuid, attempt_id, channel)
        self._prompts[session_uuid] = prompt
        await channel.push(prompt.payload(2, salt=prompt.salt, ruiURLKey="hsa2TwoFactorAuthApprovalFlowUrl"))

    def prompt(self, session_uuid: str, attempt_id: str) -> Prompt:
        prompt = self._prompts.get(session_uuid)
        if prompt is None or prompt.attempt_id != attempt_id:
            raise BridgeError("no bridge session of this sign-in has that sessionUUID")
        return prompt

    async def step(self, prompt: Prompt, step: int, data: str) -> None:
        """Steps 2, 4 and the closing 6 (or 4, once proven) of one prompt."""
        if step == prompt.next_step == 2:
            prompt.verifier, share, confirmation = await asyncio.to_thread(
                _answer_share, self._code, prompt.salt, _hex(data)
            )
            joined = f"{_b64(share)}_{_b64(confirmation)}"
            prompt.next_step = 4
            await prompt.channel.push(prompt.payload(4, data=base64.b64encode(joined.encode()).decode()))
        elif step == prompt.next_step == 4:
            try:
                await asyncio.to_thread(prompt.verifier.verify_message2, _hex(data))
            except ValueError as error:
                self._prompts.pop(prompt.session_uuid, None)
                raise WrongCode from error
            prompt.proven, prompt.next_step = True, 6
            encrypted = prompt.verifier.encrypt_message(self._code)
            await prompt.channel.push(prompt.payload(6, encryptedCode=encrypted, mid=secrets.token_hex(8)))
        elif prompt.proven and step in (4, 6) and data == base64.b64encode(b"done").decode():
            self._prompts.pop(prompt.session_uuid, None)
        else:
            raise BridgeError(f"step {step} is out of order (expected {prompt.next_step})")

    def code_ok(self, code: str) -> bool:
        """``bridge/code/validate``: the code the device showed (the prompt stays open for step 6)."""
        return secrets.compare_digest(code.encode(), self._code.encode())


def _answer_share(code: str, salt: str, prover_share: str) -> tuple[Any, str, str]:
    """A verifier for ``code``, its SPAKE2 share and its confirmation, both hex (scrypt and the
    curve arithmetic take tens of milliseconds: run in a thread, off the event loop)."""
    verifier = _TrustedDeviceBridgeServerProver(password=code, salt_b64=salt)
    share = str(verifier.get_message1())
    try:
        confirmation = str(verifier.process_message1(prover_share))
    except ValueError as error:
        raise BridgeError("the prover's share is not a P-256 point") from error
    return verifier, share, confirmation


def _hex(data: str) -> str:
    try:
        return base64.b64decode(data.encode("ascii"), validate=True).hex()
    except (ValueError, UnicodeEncodeError) as error:
        raise BridgeError("step data is not base64") from error


def _b64(hex_text: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_text)).decode()

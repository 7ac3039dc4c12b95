"""The wire format of Apple's push websocket (``wss://HOST/v2/<hex>``), as the HSA2 bridge uses it.

Apple's web sign-in learns the trusted-device prompt through an APNS-style websocket whose
frames are bare protobuf messages. Field numbers follow pyicloud's client
(``pyicloud/hsa2_bridge.py``: ``_encode_connection_message``, ``_decode_server_message``,
``_encode_web_filter_message``, ``_encode_ack_message``), which was written from captures of
Apple's browser client; this module is an independent codec for the server side, so a
mistake on either side shows up as a failed sign-in rather than being shared.

Client to server:

* the *connection message* travels hex-encoded in the URL path: field 1 holds
  {1: P-256 public key (X9.62 uncompressed), 2: nonce (``0x00`` + 8-byte big-endian
  milliseconds + 8 random bytes), 3: ``0x01 0x03`` + DER ECDSA-SHA256 signature of the nonce,
  5: {1: expiry seconds}};
* field 3: the topic filter {1: topic name, repeated};
* field 2: an acknowledgement {1: topic hash, 2: message id}.

Server to client (one top-level field per frame):

* 1: connection response {1: push token, base64 text; 2: status (0 ok, 2 invalid nonce);
  3: server time, seconds};
* 3: channel subscription response {1: {1: {1: topic}, repeated}, 2: message id, 3: status,
  4: retry seconds};
* 2: push {1: SHA-1 of the topic name, 2: message id, 4: JSON payload}.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

STATUS_OK = 0
STATUS_INVALID_NONCE = 2
_SIGNATURE_PREFIX = b"\x01\x03"

Fields = dict[int, list[int | bytes]]


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(data: bytes, offset: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if offset >= len(data) or shift > 63:
            raise ValueError("truncated or overlong varint")
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
        shift += 7


def field_bytes(number: int, value: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def field_uint(number: int, value: int) -> bytes:
    """A varint field (wire type 0)."""
    return _varint(number << 3) + _varint(value)


def decode(data: bytes) -> Fields:
    """Every field of one message, by number; only the two wire types the protocol uses."""
    fields: Fields = {}
    offset = 0
    while offset < len(data):
        key, offset = _read_varint(data, offset)
        value: int | bytes
        if key & 7 == 0:
            value, offset = _read_varint(data, offset)
        elif key & 7 == 2:
            length, offset = _read_varint(data, offset)
            if offset + length > len(data):
                raise ValueError("truncated field")
            value, offset = data[offset : offset + length], offset + length
        else:
            raise ValueError(f"unsupported wire type {key & 7}")
        fields.setdefault(key >> 3, []).append(value)
    return fields


def _first_bytes(fields: Fields, number: int) -> bytes:
    value = fields.get(number, [b""])[0]
    if not isinstance(value, bytes):
        raise ValueError(f"field {number} is not length-delimited")
    return value


def topic_hash(topic: str) -> bytes:
    """How pushes name their topic on the wire (pyicloud's ``_topic_hash``: SHA-1 of the name)."""
    return hashlib.sha1(topic.encode()).digest()


@dataclass(frozen=True)
class Hello:
    """The connection message a client puts in the websocket URL."""

    public_key: bytes
    nonce: bytes
    signature: bytes

    @classmethod
    def from_path(cls, hex_text: str) -> Hello:
        outer = decode(bytes.fromhex(hex_text))
        inner = decode(_first_bytes(outer, 1))
        signature = _first_bytes(inner, 3)
        if signature.startswith(_SIGNATURE_PREFIX):
            signature = signature[len(_SIGNATURE_PREFIX) :]
        return cls(_first_bytes(inner, 1), _first_bytes(inner, 2), signature)

    def signed(self) -> bool:
        """The nonce is signed by the key the client presents (proof it holds that key)."""
        try:
            key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), self.public_key)
            key.verify(self.signature, self.nonce, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            return False
        return True

    def nonce_ms(self) -> int:
        """The client's clock in the nonce, milliseconds since the epoch (0 if malformed)."""
        if len(self.nonce) < 9 or self.nonce[0] != 0:
            return 0
        return int.from_bytes(self.nonce[1:9], "big")


def connection_response(push_token: bytes, status: int, server_seconds: int) -> bytes:
    body = field_bytes(1, base64.b64encode(push_token)) if status == STATUS_OK else b""
    return field_bytes(1, body + field_uint(2, status) + field_uint(3, server_seconds))


def subscription_response(topics: list[str], message_id: int) -> bytes:
    listed = b"".join(field_bytes(1, field_bytes(1, topic.encode())) for topic in topics)
    body = field_bytes(1, listed) + field_uint(2, message_id) + field_uint(3, STATUS_OK) + field_uint(4, 0)
    return field_bytes(3, body)


def push(topic: str, message_id: int, payload: bytes) -> bytes:
    body = field_bytes(1, topic_hash(topic)) + field_uint(2, message_id) + field_bytes(4, payload)
    return field_bytes(2, body)


def filter_topics(frame: Fields) -> list[str] | None:
    """The topics of a filter message (top-level field 3), or None if ``frame`` is not one."""
    if 3 not in frame:
        return None
    listed = decode(_first_bytes(frame, 3)).get(1, [])
    return [topic.decode("utf-8", "replace") for topic in listed if isinstance(topic, bytes)]

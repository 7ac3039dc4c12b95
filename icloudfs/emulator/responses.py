"""The few answer shapes Apple's services share, so every route words its failures the same way.

* idmsa failures: ``{"serviceErrors": [{"code": "-20101", "message": ..., "suppressDismissal": false}]}``
  (the verify endpoints use the same list);
* web session missing or expired: HTTP 421
  ``{"success": false, "error": "Missing X-APPLE-WEBAUTH-TOKEN cookie"}``;
* drivews/docws refusals: ``{"errorCode": CODE, "errorReason": text, <items key>: [...per item status...]}``.
Success bodies never carry ``error``/``reason``/``errorReason``/``errorMessage``: pyicloud
raises on those keys.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(data, status_code=status, headers=headers, media_type="application/json")


def service_error(status: int, code: str, message: str) -> Response:
    """An idmsa-style failure."""
    return json_response(
        {"serviceErrors": [{"code": code, "message": message, "suppressDismissal": False}]},
        status=status,
    )


def session_expired() -> Response:
    """What setup, drivews and docws answer when the web session cookie is missing or stale."""
    return json_response({"success": False, "error": "Missing X-APPLE-WEBAUTH-TOKEN cookie"}, 421)


def drive_error(
    status: int, code: str, reason: str, key: str = "items", items: list[dict[str, Any]] | None = None
) -> Response:
    """A drivews/docws refusal with per-item statuses under the same key a success would use."""
    return json_response({"errorCode": code, "errorReason": reason, key: items or []}, status)


async def read_json(request: Any) -> Any:
    """Parse a body whatever its Content-Type says (pyicloud sends JSON as ``plain/text``)."""
    raw = await request.body()
    return json.loads(raw) if raw.strip() else None

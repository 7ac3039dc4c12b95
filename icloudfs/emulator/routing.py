"""Route tables on Starlette alone: ``Routes(prefix)`` with ``@routes.get(path)`` and friends.

Every emulator handler takes the ``Request`` (and its path parameters) and returns a
``Response``. FastAPI's layers around them (dependency solving, included routers, its own
middleware) added nothing here; without them the emulator spends 15-20% less CPU per upload,
CPU which the benchmarks' small-file copy shares two cores with the client for.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Handler = Callable[..., Awaitable[Response]]


class Routes:
    """The routes of one family of endpoints, under a common path prefix."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.routes: list[Route] = []

    def get(self, path: str) -> Callable[[Handler], Handler]:
        return self._add("GET", path)

    def post(self, path: str) -> Callable[[Handler], Handler]:
        return self._add("POST", path)

    def put(self, path: str) -> Callable[[Handler], Handler]:
        return self._add("PUT", path)

    def delete(self, path: str) -> Callable[[Handler], Handler]:
        return self._add("DELETE", path)

    def _add(self, method: str, path: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            async def endpoint(request: Request) -> Response:
                return await handler(request, **request.path_params)

            self.routes.append(Route(self.prefix + path, endpoint, methods=[method], name=handler.__name__))
            return handler

        return register


async def http_error(request: Request, error: Any) -> Response:
    """Unknown paths and methods answer as FastAPI did: ``{"detail": ...}`` with the status."""
    assert isinstance(error, HTTPException)
    return JSONResponse({"detail": error.detail}, status_code=error.status_code, headers=error.headers)

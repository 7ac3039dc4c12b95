"""``create_app(service)``: the FastAPI application of the control plane.

Routes live in ``routes/``; this module wires them to the service, the auth
middleware and the error envelope, and writes the security scheme into the
OpenAPI document: bearer auth on every operation but ``/health``, optional
(``{}``) because local callers need none.

Outside the auth middleware sits ``WebShell`` (``routes/web.py``): it serves the
control page at ``/`` and its static files, which hold no data, to any caller;
the page's data calls come back in through the auth middleware like any client's.
Outside both, ``RequestGuard`` (``guards.py``) checks every request (one Host, no
cross-site changes, a bounded body) and writes the access log. FastAPI's ``/docs``
and ``/redoc`` (scripts from a CDN) are off; ``control_docs`` serves ``/docs`` from
the installed package (``routes/docs.py``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

import icloudfs
from icloudfs.control import errors
from icloudfs.control.auth import OPEN_PATHS, AuthMiddleware, FailureLimiter
from icloudfs.control.guards import RequestGuard
from icloudfs.control.routes import ROUTERS, docs
from icloudfs.control.routes.health import metrics_registry
from icloudfs.control.routes.web import WebShell
from icloudfs.control.service import ControlService


def create_app(service: ControlService, *, limiter: FailureLimiter | None = None) -> FastAPI:
    """The control plane's ASGI app, working on ``service``."""
    app = FastAPI(
        title="icloudfs control plane",
        version=icloudfs.__version__,
        description="Status and credential work for a running icloudfs mount.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    app.state.metrics_registry = metrics_registry(service)
    for router in ROUTERS:
        app.include_router(router)
    errors.install(app)
    app.add_middleware(AuthMiddleware, tokens=service.tokens, limiter=limiter or FailureLimiter())
    app.add_middleware(WebShell)  # added after the auth, so it runs before it: the shell needs no token
    app.add_middleware(RequestGuard)  # added last, so it runs first, for every request
    if service.settings.control_docs:
        docs.install(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _with_security(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _with_security(schema: dict[str, Any]) -> dict[str, Any]:
    schema.setdefault("components", {})["securitySchemes"] = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "Needed by remote callers; local callers may omit it",
        }
    }
    for path, operations in schema["paths"].items():
        if path not in OPEN_PATHS:
            for operation in operations.values():
                operation["security"] = [{"bearer": []}, {}]
    return schema

"""Assemble the emulator's ASGI app: open the store, apply seeds, mount every route family.

Routes by file: ``auth`` and ``bridge`` (idmsa; the HSA2 bridge with its push websocket),
``setup_ws`` (setup), ``drive`` and ``drive_details`` (drivews), ``docws`` and ``docws_items``
(docws), ``content`` (signed download/upload URLs) and ``admin`` (``/__emulator__``); the
``LinkMiddleware`` wraps them all with stats, latency and fault injection.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute

from icloudfs.emulator import (
    admin,
    auth,
    bridge,
    content,
    docws,
    docws_items,
    drive,
    drive_details,
    setup_ws,
)
from icloudfs.emulator.config import EmulatorConfig
from icloudfs.emulator.context import Emulator
from icloudfs.emulator.middleware import LinkMiddleware
from icloudfs.emulator.routing import http_error
from icloudfs.emulator.seed import apply_seed


def create_app(config: EmulatorConfig) -> LinkMiddleware:
    """The ASGI app for ``config``; its ``emulator`` attribute exposes the live state."""
    emulator = Emulator.open(config)
    emulator.store.clear_staging()
    for spec in config.seeds:
        apply_seed(emulator.store, spec)
    # The upload and download families first: they take most requests, and routes match in order.
    families = (
        docws.router,
        content.router,
        drive.router,
        docws_items.router,
        drive_details.router,
        setup_ws.router,
        auth.router,
        bridge.router,
        admin.router,
    )
    routes: list[BaseRoute] = [route for family in families for route in family.routes]
    routes += bridge.websocket_routes
    api = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    api.state.emulator = emulator
    return LinkMiddleware(api, emulator)

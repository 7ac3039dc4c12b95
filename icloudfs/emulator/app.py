"""Assemble the emulator's ASGI app: open the store, apply seeds, mount every route family.

Routes by file: ``auth`` (idmsa), ``setup_ws`` (setup), ``drive`` (drivews), ``docws``,
``content`` (signed download/upload URLs) and ``admin`` (``/__emulator__``); the
``LinkMiddleware`` wraps them all with stats, latency and fault injection.
"""

from __future__ import annotations

from fastapi import FastAPI

from icloudfs.emulator import admin, auth, content, docws, drive, setup_ws
from icloudfs.emulator.config import EmulatorConfig
from icloudfs.emulator.context import Emulator
from icloudfs.emulator.middleware import LinkMiddleware
from icloudfs.emulator.seed import apply_seed


def create_app(config: EmulatorConfig) -> LinkMiddleware:
    """The ASGI app for ``config``; its ``emulator`` attribute exposes the live state."""
    emulator = Emulator.open(config)
    emulator.store.clear_staging()
    for spec in config.seeds:
        apply_seed(emulator.store, spec)
    api = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    api.state.emulator = emulator
    for router in (auth.router, setup_ws.router, drive.router, docws.router, content.router, admin.router):
        api.include_router(router)
    return LinkMiddleware(api, emulator)

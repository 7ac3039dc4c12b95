"""The API's routers, one module per area; ``deps`` holds what they share."""

from __future__ import annotations

from icloudfs.control.routes import credentials, health, mount, settings, tokens

ROUTERS = [health.router, mount.router, credentials.router, tokens.router, settings.router]

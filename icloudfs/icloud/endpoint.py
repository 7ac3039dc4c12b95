"""Point unmodified pyicloud at another origin (the emulator) by overriding one method.

pyicloud has no setting for its hosts; ``PyiCloudService._setup_endpoints`` is
the one place they are chosen, so a subclass that overrides it is the least
invasive redirect. With no endpoint, Apple's hosts are used as they are.
"""

from __future__ import annotations

from functools import cache
from typing import cast

from pyicloud import PyiCloudService


@cache
def service_class(endpoint: str | None) -> type[PyiCloudService]:
    """A ``PyiCloudService`` whose Apple hosts all live under ``endpoint`` (or Apple's own)."""
    if not endpoint:
        return cast(type[PyiCloudService], PyiCloudService)
    base = endpoint.rstrip("/")

    class EndpointService(PyiCloudService):  # type: ignore[misc]
        def _setup_endpoints(self) -> None:
            self._idmsa_endpoint = base
            self._auth_endpoint = f"{base}/appleauth/auth"
            self._home_endpoint = base
            self._setup_endpoint = f"{base}/setup/ws/1"

    EndpointService.__name__ = EndpointService.__qualname__ = "EndpointService"
    return EndpointService

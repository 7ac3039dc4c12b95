"""``/settings``: the control plane's own port and ``allow_remote``.

A change is saved to the config file and then restarts only the control
plane's server (never the mount), after this response has gone out. Local
callers only: these settings decide who can reach the API at all. A new port
is tried before it is saved, so a taken port is a 409, not a dead server.
"""

from __future__ import annotations

import socket

from fastapi import APIRouter, BackgroundTasks, Depends

from icloudfs.control.address import ALL_INTERFACES, Binding, split_addr
from icloudfs.control.auth import require_local
from icloudfs.control.errors import ApiError
from icloudfs.control.routes.deps import GUARDED, Service
from icloudfs.control.schemas import ControlSettings, SettingsUpdate, errors
from icloudfs.control.service import ControlService

router = APIRouter(
    prefix="/settings",
    tags=["settings"],
    dependencies=[Depends(require_local)],
    responses={**GUARDED, **errors(403)},
)


def _current(service: ControlService) -> ControlSettings:
    binding = Binding.of(service.settings)
    return ControlSettings(
        host=binding.host,
        port=binding.port,
        allow_remote=service.settings.allow_remote,
        socket=binding.socket,
    )


@router.get("")
def get_settings(service: Service) -> ControlSettings:
    return _current(service)


@router.put("", responses=errors(409))
def put_settings(service: Service, body: SettingsUpdate, background: BackgroundTasks) -> ControlSettings:
    """Save ``port``/``allow_remote`` and restart the control plane on them."""
    host, port = split_addr(service.settings.control_addr)
    remote = service.settings.allow_remote if body.allow_remote is None else body.allow_remote
    changes: dict[str, object] = {}
    if body.port is not None and body.port != port:
        _check_free(ALL_INTERFACES if remote else host, body.port)
        changes["control_addr"] = f"[{host}]:{body.port}" if ":" in host else f"{host}:{body.port}"
    if remote != service.settings.allow_remote:
        changes["allow_remote"] = remote
    if changes:
        service.settings.save(**changes)
        if service.restart is not None:
            background.add_task(service.restart)
    return _current(service)


def _check_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ApiError(409, f"Port {port} is not available: {exc.strerror}") from exc

"""Dependencies shared by the routers: the service, and the error codes every guarded route
can answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from icloudfs.control.schemas import errors
from icloudfs.control.service import ControlService

#: what any route behind the auth middleware may answer (400: an unparsable body)
GUARDED = errors(400, 401, 422, 429, 500)


def _service(request: Request) -> ControlService:
    service: ControlService = request.app.state.service
    return service


Service = Annotated[ControlService, Depends(_service)]

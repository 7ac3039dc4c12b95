"""Token management: list, create (the token is in this one response), revoke.

Local callers only — a remote caller with a valid token gets 403, so a leaked
token cannot mint more or revoke the owner's.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from icloudfs.control.auth import require_local
from icloudfs.control.routes.deps import GUARDED, Service
from icloudfs.control.schemas import NewToken, TokenCreate, TokenInfo, errors

router = APIRouter(
    prefix="/tokens",
    tags=["tokens"],
    dependencies=[Depends(require_local)],
    responses={**GUARDED, **errors(403)},
)


@router.get("")
def list_tokens(service: Service) -> list[TokenInfo]:
    return service.tokens.list_tokens()


@router.post("", status_code=201)
def create_token(service: Service, body: TokenCreate, response: Response) -> NewToken:
    """Make a token; it is shown here once and only its hash is kept (and no cache keeps the
    answer)."""
    response.headers["Cache-Control"] = "no-store"
    return service.tokens.create_token(body.description)


@router.delete("/{token_id}", status_code=204, response_class=Response, responses=errors(404))
def revoke_token(service: Service, token_id: str) -> None:
    """Revoke a token; requests using it fail from the next one on."""
    service.tokens.revoke_token(token_id)

"""``/docs``: the OpenAPI page, only when ``control_docs`` is on, and only from this machine's disk.

FastAPI's default pages load Swagger UI and ReDoc from a CDN, on the API's own origin, with no
integrity hashes: whoever serves that script runs it with the page's rights. So they are off,
and with ``control_docs`` ``/docs`` serves Swagger UI from the ``swagger-ui-bundle`` package
(the ``docs`` extra) under the same Content-Security-Policy as the control page: no script but
its own files. Like every route but ``/health``, it needs a local caller or a token.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from icloudfs.control.routes.web import SECURITY_HEADERS

log = logging.getLogger(__name__)

PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>icloudfs control plane API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script><script src="/docs/start.js"></script>
</body></html>
"""
START = b'window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});\n'


def install(app: FastAPI) -> None:
    """Serve ``/docs`` from the installed bundle (a warning if it is not installed)."""
    try:
        import swagger_ui_bundle
    except ImportError:
        log.warning("control_docs is on, but swagger-ui-bundle is not installed: no /docs")
        return
    app.mount("/docs/assets", StaticFiles(directory=Path(swagger_ui_bundle.swagger_ui_path)), "docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(PAGE, headers=SECURITY_HEADERS)

    @app.get("/docs/start.js", include_in_schema=False)
    def start() -> Response:
        return Response(START, media_type="text/javascript", headers=SECURITY_HEADERS)

"""The page shell over real HTTP, without a browser: what is served to whom, with which headers,
and that it stays out of the auth middleware's way (and out of the OpenAPI document)."""

from __future__ import annotations

from html.parser import HTMLParser
from importlib import resources

import httpx
import pytest

from icloudfs.control import ControlServer

from .conftest import DemoFilesystem, ServerFactory

REMOTE = {"X-Forwarded-For": "203.0.113.9"}  # relayed: not local by the auth rules
ASSETS = {
    "/web/app.js": "text/javascript",
    "/web/app.css": "text/css",
    "/web/icon.svg": "image/svg+xml",
}


@pytest.fixture
def server(start_control: ServerFactory) -> ControlServer:
    return start_control(filesystem=DemoFilesystem())


def test_page_and_assets_carry_the_security_headers(server: ControlServer) -> None:
    for path, kind in {"/": "text/html", **ASSETS}.items():
        reply = httpx.get(server.address + path)
        assert reply.status_code == 200, path
        assert reply.headers["content-type"].startswith(kind), path
        csp = reply.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert "frame-ancestors 'none'" in csp and "form-action 'none'" in csp
        assert reply.headers["x-frame-options"] == "DENY"
        assert reply.headers["referrer-policy"] == "no-referrer"
        assert reply.headers["x-content-type-options"] == "nosniff"
        assert reply.headers["cache-control"] == "no-store"
    head = httpx.head(server.address + "/")
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) > 1000


def test_shell_is_open_but_data_is_not(server: ControlServer) -> None:
    local = httpx.get(server.address + "/")
    assert 'data-caller="local"' in local.text
    remote = httpx.get(server.address + "/", headers=REMOTE)
    assert remote.status_code == 200 and 'data-caller="remote"' in remote.text
    assert httpx.get(server.address + "/web/app.js", headers=REMOTE).status_code == 200
    assert httpx.get(server.address + "/status", headers=REMOTE).status_code == 401
    # a file that is not part of the shell goes to the API: a token is needed, then 404
    assert httpx.get(server.address + "/web/secret.txt", headers=REMOTE).status_code == 401
    assert httpx.get(server.address + "/web/secret.txt").status_code == 404
    # only GET/HEAD are the shell's; a POST to / is the API's business
    assert httpx.post(server.address + "/", json={}, headers=REMOTE).status_code == 401


def test_reloading_the_page_never_counts_as_a_failed_login(server: ControlServer) -> None:
    for _ in range(12):
        assert httpx.get(server.address + "/", headers=REMOTE).status_code == 200
    token = httpx.post(server.address + "/tokens", json={"description": "t"}).json()["token"]
    auth = {**REMOTE, "Authorization": f"Bearer {token}"}
    assert httpx.get(server.address + "/status", headers=auth).status_code == 200


def test_shell_is_not_in_the_openapi_document(server: ControlServer) -> None:
    paths = httpx.get(server.address + "/openapi.json").json()["paths"]
    assert "/" not in paths and not any(p.startswith("/web") for p in paths)


class _Inline(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        self.problems += [f"<{tag} {n}>" for n in names if n.startswith("on") or n == "style"]
        if tag == "script" and "src" not in names:
            self.problems.append("<script> without src")
        if tag == "link" and ("href", None) not in attrs:
            href = dict(attrs).get("href") or ""
            if href.startswith(("http:", "https:", "//")):
                self.problems.append(f"external {href}")
        self.in_script = tag == "script"

    def handle_data(self, data: str) -> None:
        if self.in_script and data.strip():
            self.problems.append("inline script text")

    def handle_endtag(self, tag: str) -> None:
        self.in_script = False


def test_shipped_html_has_no_inline_code_or_external_resources() -> None:
    web = resources.files("icloudfs.control").joinpath("web")
    parser = _Inline()
    parser.feed(web.joinpath("index.html").read_text())
    assert parser.problems == []
    for name in ("index.html", "app.js", "app.css"):
        text = web.joinpath(name).read_text()
        assert "http://" not in text and "https://" not in text, name  # no CDN: works offline

"""A remote visitor is asked for a token before any data call, keeps it in ``sessionStorage``
only, sees no local-only panels, and is sent back to the token prompt once it is revoked.

Two ways to be remote: Chromium really running in another network namespace (root only),
and, everywhere, Chromium on this machine adding ``X-Forwarded-For``, which the auth rules
take as relayed, hence remote."""

from __future__ import annotations

import json
import sys

import httpx
import pytest

from tests.control.fakes import FakeAccount

from .conftest import (
    ARTIFACTS,
    HOST_IP,
    BrowserFactory,
    DemoFilesystem,
    Namespace,
    PageProblems,
    ServerFactory,
)

expect = pytest.importorskip("playwright.sync_api").expect

NOT_ACCEPTED = "That token was not accepted: it is unknown or was revoked."
LOCAL_ONLY = "Server settings and API tokens can only be changed on the machine running icloudfs."


def _token(port: int, description: str) -> dict[str, str]:
    reply = httpx.post(f"http://127.0.0.1:{port}/tokens", json={"description": description})
    assert reply.status_code == 201
    created: dict[str, str] = reply.json()
    return created


def test_remote_visitor_from_another_network_namespace(
    remote_net: Namespace, start_control: ServerFactory
) -> None:
    server = start_control(
        account=FakeAccount(state="signed_in"), filesystem=DemoFilesystem(), allow_remote=True
    )
    token = _token(server.port, "remote browser")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    plan = {
        "url": f"http://{HOST_IP}:{server.port}/",
        "bad_token": "b" * 43,
        "token": token["token"],
        "shots": str(ARTIFACTS),
    }
    seen = json.loads(
        remote_net.run(sys.executable, "-m", "tests.web.remote_visitor", stdin=json.dumps(plan), timeout=120)
    )
    assert seen["caller"] == "remote"
    api_calls = [url for url in seen["before_token"] if "/web/" not in url and not url.endswith("/")]
    assert api_calls == [f"http://{HOST_IP}:{server.port}/health"]  # nothing that needs a token
    assert seen["stored_after_bad"] is None  # a refused token is not kept
    assert seen["settings_hidden"] is True and seen["local_only"] == LOCAL_ONLY
    assert seen["forget_visible"] is True
    assert seen["session"] == token["token"]
    assert seen["local_storage"] == 0 and seen["document_cookie"] == "" and seen["cookies"] == []
    assert seen["session_after_forget"] is None


def test_remote_visitor_by_forwarded_header(
    start_control: ServerFactory, new_browser: BrowserFactory
) -> None:
    server = start_control(account=FakeAccount(state="signed_in"), filesystem=DemoFilesystem())
    base = f"http://127.0.0.1:{server.port}"
    token = _token(server.port, "relayed visitor")
    context = new_browser(extra_http_headers={"X-Forwarded-For": "203.0.113.9"})
    problems = PageProblems()
    page = problems.watch(context.pages[0])
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(base + "/")

    expect(page.locator("#token-gate")).to_be_visible()
    expect(page.locator("#connection")).to_have_text("Token needed")
    assert [u for u in requests if "/web/" not in u and u != base + "/"] == [base + "/health"]

    page.fill("#token-input", "too short")
    page.click("#token-form button[type=submit]")
    expect(page.locator("#token-message")).to_have_text(
        "A token is 43 characters: letters, digits, “-” and “_”."
    )

    page.fill("#token-input", token["token"])
    page.click("#token-form button[type=submit]")
    expect(page.locator("#mount-badge")).to_have_text("Mounted")
    expect(page.locator("#settings-card")).to_be_hidden()
    expect(page.locator("#local-only")).to_have_text(LOCAL_ONLY)
    assert page.evaluate("sessionStorage.getItem('icloudfs-token')") == token["token"]
    assert page.evaluate("localStorage.length") == 0
    assert page.evaluate("document.cookie") == "" and context.cookies() == []
    sent = [r for r in requests if r.endswith("/status")]
    assert sent, "the page polls /status"

    # still signed in to the page after a reload of the tab (sessionStorage survives that)
    page.reload()
    expect(page.locator("#dashboard")).to_be_visible()
    expect(page.locator("#token-gate")).to_be_hidden()

    # the owner revokes the token: the next refresh sends the visitor back to the prompt
    assert (
        httpx.delete(f"{base}/tokens/{token['id']}", headers={"X-Icloudfs-Client": "tests"}).status_code
        == 204
    )
    expect(page.locator("#token-gate")).to_be_visible(timeout=8000)
    expect(page.locator("#token-message")).to_have_text(NOT_ACCEPTED)
    assert page.evaluate("sessionStorage.getItem('icloudfs-token')") is None
    assert problems.errors == [] and problems.csp == []

    # a fresh tab of a new browser session knows no token
    other = new_browser(extra_http_headers={"X-Forwarded-For": "203.0.113.9"}).pages[0]
    other.goto(base + "/")
    expect(other.locator("#token-gate")).to_be_visible()

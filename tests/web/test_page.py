"""The control page in headless Chromium against a real server, the real ``Account`` and the
real emulator: sign-in with 2FA, server settings, tokens used and refused by a remote peer."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from icloudfs.control import ControlServer
from tests.support.emulator import Emulator

from .conftest import (
    SCREENSHOTS,
    BrowserFactory,
    DemoFilesystem,
    Namespace,
    PageProblems,
    ServerFactory,
    real_account,
    shot,
)

expect = pytest.importorskip("playwright.sync_api").expect

NO_TOKENS = "Remote connections enabled but no tokens exist. Remote clients won't authenticate."


class Remote:
    """A remote client: from the network namespace when we may make one, otherwise a request
    that the auth rules take as remote (``X-Forwarded-For``), as tests/control does."""

    def __init__(self, namespace: Namespace | None) -> None:
        self.namespace = namespace

    def get(self, server: ControlServer, path: str, token: str = "") -> int:
        """The status of ``GET path``; 0 when the server cannot be reached."""
        if self.namespace is not None:
            scheme = "https" if server.address.startswith("https://") else "http"
            return self.namespace.get(server.port, path, token, scheme)[0]
        headers = {"X-Forwarded-For": "203.0.113.9"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.get(f"http://127.0.0.1:{server.port}{path}", headers=headers).status_code


@pytest.fixture
def remote(request: pytest.FixtureRequest) -> Remote:
    try:
        return Remote(request.getfixturevalue("remote_net"))
    except pytest.skip.Exception:
        return Remote(None)


def _message(page: Any, selector: str, text: str, timeout: float = 10_000) -> None:
    expect(page.locator(selector)).to_have_text(text, timeout=timeout)


def test_sign_in_tokens_and_remote_access(
    emulator: Emulator,
    tmp_path: Path,
    start_control: ServerFactory,
    new_browser: BrowserFactory,
    remote: Remote,
) -> None:
    emulator.clear_faults()
    server = start_control(account=real_account(emulator, tmp_path), filesystem=DemoFilesystem())
    base = f"http://127.0.0.1:{server.port}"
    context = new_browser()
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    problems = PageProblems()
    page = problems.watch(context.pages[0])
    page.goto(base + "/")

    # signed out: the account card asks for the password (even while /status fails for a
    # never-signed-in account, see test_first_run_status_before_any_sign_in)
    expect(page.locator("#login-form")).to_be_visible()
    expect(page.locator("#token-gate")).to_be_hidden()

    # password, then the code step, with "send SMS instead" and a wrong code first
    page.fill("#apple-id", emulator.apple_id)
    page.fill("#password", emulator.password)
    page.click("#login-button")
    expect(page.locator("#code-form")).to_be_visible()
    _message(page, "#account-message", "Apple sent a code to your trusted devices.")
    expect(page.locator("#code")).to_be_focused()
    page.click("#send-sms")
    _message(page, "#account-message", "A code was sent by SMS to your trusted phone number.")
    shot(page, "02-two-factor")
    page.fill("#code", "000000")
    page.click("#code-button")
    _message(page, "#account-message", "The two-factor code was not accepted; use the newest code")
    page.fill("#code", emulator.code)
    page.click("#code-button")
    expect(page.locator("#signed-in")).to_be_visible()
    expect(page.locator("#account-badge")).to_have_text("Signed in")
    expect(page.locator("#account-summary")).to_have_text(f"{emulator.apple_id} (signed in)")
    expect(page.locator("#trust-warning")).to_be_hidden()  # a fresh trust: 60 days
    expect(page.locator("#status-error")).to_be_hidden()
    expect(page.locator("#mount-badge")).to_have_text("Mounted")
    expect(page.locator("#mount-folder")).to_have_text("/")
    expect(page.locator("#cache-text")).to_have_text("3.4 GB of 10 GB (34%)")
    expect(page.locator("#cache-bar")).to_have_attribute("aria-valuenow", "34")
    expect(page.locator("#password")).to_have_value("")

    # settings: remote off, tokens hidden; the toggle reveals them, with the no-tokens warning
    expect(page.locator("#port")).to_have_value(str(server.port))
    expect(page.locator("#allow-remote")).not_to_be_checked()
    expect(page.locator("#token-panel")).to_be_hidden()
    page.check("#allow-remote")
    expect(page.locator("#token-panel")).to_be_visible()
    expect(page.locator("#no-tokens-warning")).to_have_text(NO_TOKENS)
    shot(page, "03-remote-without-tokens", full_page=True)
    page.click("#save-settings")  # saving is allowed without tokens
    _message(page, "#settings-message", "Saved and restarted: remote connections are on.", 15_000)
    assert server.address.startswith("https://0.0.0.0:"), "remote access is HTTPS"
    assert remote.get(server, "/status") == 401
    expect(page.locator("#connection")).to_have_text("Live", timeout=10_000)

    # Add Token: a description, then a modal that shows the token once and must be dismissed
    page.click("#add-token")
    expect(page.locator("#add-token-dialog")).to_be_visible()
    expect(page.locator("#token-description")).to_be_focused()
    page.fill("#token-description", "laptop")
    page.get_by_role("button", name="Create").click()
    dialog = page.locator("#new-token-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#add-token-dialog")).to_be_hidden()
    expect(page.locator("#copy-token")).to_be_focused()
    expect(dialog).to_contain_text("This token will only be shown once")
    token = page.input_value("#new-token-value")
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
    page.keyboard.press("Escape")
    expect(dialog).to_be_visible()  # only "Done" closes it
    page.click("#copy-token")
    _message(page, "#copy-message", "Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == token
    shot(page, "04-new-token")
    page.click("#new-token-done")
    expect(dialog).to_be_hidden()
    expect(page.locator("#new-token-value")).to_have_value("")
    expect(page.locator("#add-token")).to_be_focused()
    expect(page.locator("#token-rows tr")).to_have_count(1)
    expect(page.locator("#token-rows tr").first).to_contain_text("laptop")
    expect(page.locator("#no-tokens-warning")).to_be_hidden()

    # the token works from another machine, but not for token management
    assert remote.get(server, "/status", token) == 200
    assert remote.get(server, "/tokens", token) == 403

    # a second token made by the CLI's route shows up after a reload; keep a picture for the README
    created = httpx.post(f"{base}/tokens", json={"description": "backup script on the NAS"})
    assert created.status_code == 201
    page.reload()
    expect(page.locator("#token-rows tr")).to_have_count(2)
    expect(page.locator("#token-panel")).to_be_visible()
    expect(page.locator("#signed-in")).to_be_visible()
    expect(page.locator("#connection")).to_have_text("Live")
    picture = shot(page, "05-status-and-tokens", full_page=True)
    readme_picture = SCREENSHOTS / "control-page.png"  # committed: rewritten only when asked
    if not readme_picture.exists() or os.environ.get("UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(picture, readme_picture)

    # revoke, with the confirmation the issue asks for; the remote client is refused at once
    asked: list[str] = []

    def confirm(box: Any) -> None:
        asked.append(box.message)
        box.accept()

    page.once("dialog", confirm)
    page.get_by_role("button", name="Revoke token laptop").click()
    _message(page, "#settings-message", "Token 'laptop' revoked.")
    assert asked == ["Revoke token 'laptop'? Clients using this token will stop working."]
    expect(page.locator("#token-rows tr")).to_have_count(1)
    assert remote.get(server, "/status", token) == 401

    # a declined confirmation revokes nothing
    page.once("dialog", lambda box: box.dismiss())
    page.get_by_role("button", name="Revoke token backup script on the NAS").click()
    expect(page.locator("#token-rows tr")).to_have_count(1)

    # remote access off again: the server goes back to loopback
    page.uncheck("#allow-remote")
    expect(page.locator("#token-panel")).to_be_hidden()
    page.click("#save-settings")
    _message(page, "#settings-message", "Saved and restarted: remote connections are off.", 15_000)
    assert server.address.startswith("http://127.0.0.1:")
    assert remote.get(server, "/status", created.json()["token"]) == (0 if remote.namespace else 401)

    page.click("#sign-out")
    expect(page.locator("#login-form")).to_be_visible()
    expect(page.locator("#account-badge")).to_have_text("Signed out")
    assert problems.errors == [] and problems.csp == []


def test_first_run_status_before_any_sign_in(
    emulator: Emulator, tmp_path: Path, start_control: ServerFactory, new_browser: BrowserFactory
) -> None:
    server = start_control(account=real_account(emulator, tmp_path), filesystem=DemoFilesystem())
    page = new_browser().pages[0]
    page.goto(f"http://127.0.0.1:{server.port}/")
    expect(page.locator("#login-form")).to_be_visible()
    shot(page, "00-first-run")
    expect(page.locator("#account-badge")).to_have_text("Signed out", timeout=3000)
    expect(page.locator("#status-error")).to_be_hidden()

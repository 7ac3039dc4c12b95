"""A remote visitor, run inside the test network namespace by ``test_remote_visitor.py``:
``ip netns exec NS python -m tests.web.remote_visitor`` with a JSON plan on stdin
(``url``, ``bad_token``, ``token``, ``shots``). It opens the page in headless Chromium from
there and prints what it saw as JSON. Not a test module: it runs in the namespace, where the
test process cannot."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from playwright.sync_api import expect, sync_playwright

from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS


def visit(plan: dict[str, Any]) -> dict[str, Any]:
    seen: dict[str, Any] = {"requests": []}
    shots = Path(plan["shots"])
    with tempfile.TemporaryDirectory(prefix="icfs-remote-chromium-") as profile, sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1100, "height": 700},
            reduced_motion="reduce",
        )
        context.set_default_timeout(10_000)
        page = context.pages[0]
        page.on("request", lambda request: seen["requests"].append(request.url))
        page.goto(plan["url"])

        expect(page.locator("#token-gate")).to_be_visible()
        expect(page.locator("#dashboard")).to_be_hidden()
        expect(page.locator("#token-input")).to_be_focused()
        expect(page.locator("#version")).not_to_be_empty()  # /health is open
        seen["caller"] = page.evaluate("document.documentElement.dataset.caller")
        page.screenshot(path=str(shots / "12-remote-token-prompt.png"))
        seen["before_token"] = list(seen["requests"])

        page.fill("#token-input", plan["bad_token"])
        page.click("#token-form button[type=submit]")
        expect(page.locator("#token-message")).to_have_text(
            "That token was not accepted: it is unknown or was revoked."
        )
        seen["stored_after_bad"] = page.evaluate("sessionStorage.getItem('icloudfs-token')")

        page.fill("#token-input", plan["token"])
        page.click("#token-form button[type=submit]")
        expect(page.locator("#dashboard")).to_be_visible()
        expect(page.locator("#mount-badge")).to_have_text("Mounted")
        expect(page.locator("#connection")).to_have_text("Live")
        seen["settings_hidden"] = page.locator("#settings-card").is_hidden()
        seen["local_only"] = page.locator("#local-only").inner_text()
        seen["forget_visible"] = page.locator("#forget-token").is_visible()
        seen["session"] = page.evaluate("sessionStorage.getItem('icloudfs-token')")
        seen["local_storage"] = page.evaluate("localStorage.length")
        seen["document_cookie"] = page.evaluate("document.cookie")
        seen["cookies"] = context.cookies()
        page.screenshot(path=str(shots / "13-remote-status.png"), full_page=True)

        page.click("#forget-token")
        expect(page.locator("#token-gate")).to_be_visible()
        seen["session_after_forget"] = page.evaluate("sessionStorage.getItem('icloudfs-token')")
        context.close()
    return seen


if __name__ == "__main__":
    print(json.dumps(visit(json.loads(sys.stdin.read()))))

"""Page states that need no emulator: nothing attached, the trust warning, settings errors and
a move to another port (in-process fakes for the account; a real server and browser)."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from tests.control.fakes import FakeAccount, FakeFilesystem
from tests.support.ports import free_port

from .conftest import BrowserFactory, DemoFilesystem, PageProblems, ServerFactory, shot

expect = pytest.importorskip("playwright.sync_api").expect


def test_signed_out_and_mounted(start_control: ServerFactory, new_browser: BrowserFactory) -> None:
    server = start_control(account=FakeAccount(), filesystem=DemoFilesystem())
    problems = PageProblems()
    page = problems.watch(new_browser().pages[0])
    page.goto(f"http://127.0.0.1:{server.port}/")
    expect(page.locator("#account-badge")).to_have_text("Signed out")
    expect(page.locator("#apple-id")).to_have_value("someone@example.com")  # known Apple ID prefilled
    expect(page.locator("#login-form")).to_be_visible()
    expect(page.locator("#mount-badge")).to_have_text("Mounted")
    expect(page.locator("#uploads")).to_have_text("2 queued · 1 in progress · 0 failed")
    expect(page.locator("#last-error")).to_have_text("None")
    expect(page.locator("#connection")).to_have_text("Live")
    shot(page, "01-signed-out")
    assert problems.errors == [] and problems.csp == []


def test_nothing_attached(start_control: ServerFactory, new_browser: BrowserFactory) -> None:
    server = start_control()
    page = new_browser().pages[0]
    page.goto(f"http://127.0.0.1:{server.port}/")
    expect(page.locator("#mount-badge")).to_have_text("Not mounted")
    expect(page.locator("#account-summary")).to_have_text("No account attached")
    expect(page.locator("#account-message")).to_have_text(
        "No iCloud account is attached to this control plane."
    )
    for form in ("#login-form", "#code-form", "#signed-in"):
        expect(page.locator(form)).to_be_hidden()
    expect(page.locator("#cache-text")).to_have_text("—")


def test_failed_uploads_and_last_error_stand_out(
    start_control: ServerFactory, new_browser: BrowserFactory
) -> None:
    server = start_control(account=FakeAccount(state="signed_in"), filesystem=FakeFilesystem())
    page = new_browser().pages[0]
    page.goto(f"http://127.0.0.1:{server.port}/")
    expect(page.locator("#uploads-failed")).to_have_text("1")
    expect(page.locator("#uploads-failed")).to_have_class("failed")
    expect(page.locator("#last-error")).to_have_text("Unavailable: network down")


def test_paused_uploads_show_their_cause(start_control: ServerFactory, new_browser: BrowserFactory) -> None:
    filesystem = FakeFilesystem()
    server = start_control(account=FakeAccount(state="signed_in"), filesystem=filesystem)
    page = new_browser().pages[0]
    page.goto(f"http://127.0.0.1:{server.port}/")
    expect(page.locator("#uploads-paused")).to_be_hidden()
    expect(page.locator("#uploads-changes-row")).to_be_hidden()
    filesystem.paused = "cache disk full (database or disk is full)"
    expect(page.locator("#uploads-paused")).to_have_text(filesystem.paused, timeout=5000)
    expect(page.locator("#uploads-paused")).to_have_class("failed")
    filesystem.changes = 3  # mkdir, mv, rm made while iCloud was unreachable
    expect(page.locator("#uploads-changes")).to_have_text("3", timeout=5000)
    expect(page.locator("#uploads-changes-row")).to_be_visible()


def test_status_refreshes_by_itself(start_control: ServerFactory, new_browser: BrowserFactory) -> None:
    filesystem = DemoFilesystem()
    server = start_control(account=FakeAccount(state="signed_in"), filesystem=filesystem)
    page = new_browser().pages[0]
    page.goto(f"http://127.0.0.1:{server.port}/")
    expect(page.locator("#mount-point")).to_have_text("/home/alex/iCloud")
    filesystem.mountpoint = "/mnt/elsewhere"
    expect(page.locator("#mount-point")).to_have_text("/mnt/elsewhere", timeout=5000)


@pytest.mark.parametrize(("days", "shown"), [(30, None), (7, "in 7 days"), (1, "in 1 day"), (0, "today")])
def test_trust_warning_when_the_session_is_close_to_its_end(
    start_control: ServerFactory, new_browser: BrowserFactory, days: int, shown: str | None
) -> None:
    server = start_control(account=FakeAccount(state="signed_in"), filesystem=DemoFilesystem())
    page = new_browser().pages[0]

    def fewer_days(route: Any) -> None:  # the fake always says 30: change the real answer
        reply = route.fetch()
        body = reply.json()
        body["account"]["trust_days_left"] = days
        route.fulfill(response=reply, body=json.dumps(body))

    page.route("**/status", fewer_days)
    page.goto(f"http://127.0.0.1:{server.port}/")
    expect(page.locator("#signed-in")).to_be_visible()
    expect(page.locator("#trust-days")).to_have_text(f"{days} day{'' if days == 1 else 's'} left")
    warning = page.locator("#trust-warning")
    if shown is None:
        expect(warning).to_be_hidden()
    else:
        expect(warning).to_have_text(
            f"The trusted session ends {shown}. Sign in again with a two-factor code before then, "
            "or the mount stops working."
        )
        if days == 1:
            shot(page, "06-trust-warning")


def test_settings_refuse_a_bad_or_taken_port(
    start_control: ServerFactory, new_browser: BrowserFactory
) -> None:
    server = start_control(account=FakeAccount(), filesystem=DemoFilesystem())
    page = new_browser().pages[0]
    page.goto(f"http://127.0.0.1:{server.port}/")
    expect(page.locator("#port")).to_have_value(str(server.port))
    page.click("#save-settings")
    expect(page.locator("#settings-message")).to_have_text("Nothing changed.")
    page.fill("#port", "70000")
    page.click("#save-settings")
    expect(page.locator("#settings-message")).to_have_text("The port must be a whole number from 1 to 65535.")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        page.fill("#port", str(port))
        page.click("#save-settings")
        expect(page.locator("#settings-message")).to_contain_text(f"Port {port} is not available")
    assert server.port != port  # nothing was saved, nothing restarted


def test_a_new_port_sends_the_user_to_the_new_address(
    start_control: ServerFactory, new_browser: BrowserFactory
) -> None:
    server = start_control(account=FakeAccount(state="signed_in"), filesystem=DemoFilesystem())
    old = server.port
    problems = PageProblems()
    page = problems.watch(new_browser().pages[0])
    page.goto(f"http://127.0.0.1:{old}/")
    expect(page.locator("#port")).to_have_value(str(old))
    new = free_port()
    page.fill("#port", str(new))
    page.click("#save-settings")
    notice = page.locator("#restart-notice")
    expect(notice).to_have_text(
        f"The server restarted on port {new}. Continue at http://127.0.0.1:{new}/.", timeout=10_000
    )
    expect(page.locator("#connection")).to_have_text("Moved")
    expect(page.locator("#new-address")).to_be_focused()
    shot(page, "07-moved-to-a-new-port")
    page.click("#new-address")
    page.wait_for_url(f"http://127.0.0.1:{new}/")
    expect(page.locator("#port")).to_have_value(str(new))
    expect(page.locator("#listening")).to_have_text(f"127.0.0.1:{new}")
    expect(page.locator("#connection")).to_have_text("Live")
    assert server.port == new
    assert problems.errors == [] and problems.csp == []

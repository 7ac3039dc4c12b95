"""What the page says when sign-in goes wrong, against the real ``Account`` and emulator: the
API's ``reason`` texts, shown as they are (app-specific password, wrong password, locked
account, Apple throttling with a 503, Advanced Data Protection)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from icloudfs.control.errors import APP_SPECIFIC_REASON
from tests.support.emulator import Emulator, start_emulator

from .conftest import BrowserFactory, DemoFilesystem, PageProblems, ServerFactory, real_account, shot

expect = pytest.importorskip("playwright.sync_api").expect

WRONG = "The Apple ID or password was not accepted"
LOCKED = "Apple locked this Apple ID after failed sign-ins; unlock it at https://iforgot.apple.com"
THROTTLED = "Apple is throttling requests; retry later"
CONSENT = (
    "Advanced Data Protection is on: Apple asked your trusted devices to allow this sign-in. "
    "Tap Allow on one of them; the mount goes on by itself."
)
ADP = (
    "Advanced Data Protection blocks web access: turn on 'Access iCloud Data on the Web' on a trusted device"
)


def _sign_in(page: Any, apple_id: str, password: str) -> None:
    page.fill("#apple-id", apple_id)
    page.fill("#password", password)
    page.click("#login-button")
    expect(page.locator("#login-button")).to_be_enabled(timeout=15_000)  # the answer is in


def test_app_specific_wrong_password_locked_and_throttled(
    emulator: Emulator, tmp_path: Path, start_control: ServerFactory, new_browser: BrowserFactory
) -> None:
    emulator.clear_faults()
    server = start_control(account=real_account(emulator, tmp_path), filesystem=DemoFilesystem())
    problems = PageProblems()
    page = problems.watch(new_browser().pages[0])
    page.goto(f"http://127.0.0.1:{server.port}/")
    message = page.locator("#account-message")
    before = emulator.stats()

    _sign_in(page, emulator.apple_id, emulator.app_password)
    expect(message).to_have_text(APP_SPECIFIC_REASON)
    expect(message).to_have_class("message error")
    expect(page.locator("#password")).to_have_value(emulator.app_password)  # kept, to correct it
    assert emulator.stats() == before  # refused before anything went to Apple
    shot(page, "08-app-specific-password")

    _sign_in(page, emulator.apple_id, "Wrong-password-1")
    expect(message).to_have_text(WRONG)
    try:
        for _ in range(10):  # the emulator locks the Apple ID after a few wrong passwords
            _sign_in(page, emulator.apple_id, "Wrong-password-1")
            if message.text_content() == LOCKED:
                break
            expect(message).to_have_text(WRONG)
        expect(message).to_have_text(LOCKED)
        expect(page.locator("#account-badge")).to_have_text("Locked", timeout=5000)
        shot(page, "09-locked")
    finally:
        emulator.unlock()

    emulator.faults(rules=[{"path": "/appleauth/auth/signin/init", "status": 503, "times": 1}])
    try:
        _sign_in(page, emulator.apple_id, emulator.password)
        expect(message).to_have_text(THROTTLED)
        expect(page.locator("#account-badge")).to_have_text("Throttled", timeout=5000)
        _sign_in(page, emulator.apple_id, emulator.password)  # backing off: nothing sent to Apple
        expect(message).to_have_text(THROTTLED)
        shot(page, "10-throttled")
    finally:
        emulator.clear_faults()
    assert problems.errors == [] and problems.csp == []


def test_advanced_data_protection(
    tmp_path: Path, start_control: ServerFactory, new_browser: BrowserFactory
) -> None:
    with start_emulator(tmp_path, "--adp") as emu:
        server = start_control(account=real_account(emu, tmp_path), filesystem=DemoFilesystem())
        page = new_browser().pages[0]
        page.goto(f"http://127.0.0.1:{server.port}/")
        _sign_in(page, emu.apple_id, emu.password)
        expect(page.locator("#code-form")).to_be_visible()
        page.fill("#code", emu.code)
        page.click("#code-button")
        expect(page.locator("#account-message")).to_have_text(CONSENT)
        expect(page.locator("#account-badge")).to_have_text("Waiting for Allow")
        shot(page, "11-advanced-data-protection")
        emu.adp_consent()  # the tap on a trusted device: the page sees it arrive, nobody types
        expect(page.locator("#signed-in")).to_be_visible(timeout=15_000)
        expect(page.locator("#account-badge")).to_have_text("Signed in")


def test_advanced_data_protection_without_web_access(
    tmp_path: Path, start_control: ServerFactory, new_browser: BrowserFactory
) -> None:
    with start_emulator(tmp_path, "--adp") as emu:
        emu.adp_web_access(False)
        server = start_control(account=real_account(emu, tmp_path), filesystem=DemoFilesystem())
        page = new_browser().pages[0]
        page.goto(f"http://127.0.0.1:{server.port}/")
        _sign_in(page, emu.apple_id, emu.password)
        page.fill("#code", emu.code)
        page.click("#code-button")
        expect(page.locator("#account-message")).to_have_text(ADP)
        expect(page.locator("#account-badge")).to_have_text("Web access off")

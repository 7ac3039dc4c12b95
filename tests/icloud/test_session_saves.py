"""pyicloud's session files are rewritten only when the session or a cookie changed."""

from __future__ import annotations

from typing import Any

from requests.cookies import RequestsCookieJar

from icloudfs.icloud.session_files import save_only_changes


class _Session:
    """The two things pyicloud's ``_save_session_data`` writes out, and a count of the writes."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {"session_token": "a"}
        self.cookies = RequestsCookieJar()
        self.saves = 0

    def _save_session_data(self) -> None:
        self.saves += 1


def test_saves_only_when_the_session_or_a_cookie_changed() -> None:
    session = _Session()
    save_only_changes(session)
    for _ in range(5):
        session._save_session_data()
    assert session.saves == 1
    session.cookies.set("X-APPLE-WEBAUTH-TOKEN", "v1", domain=".icloud.com")
    session._save_session_data()
    session._save_session_data()
    assert session.saves == 2
    session.cookies.set("X-APPLE-WEBAUTH-TOKEN", "v2", domain=".icloud.com")
    session._save_session_data()
    assert session.saves == 3
    session.data["trust_token"] = "t"
    session._save_session_data()
    session._save_session_data()
    assert session.saves == 4

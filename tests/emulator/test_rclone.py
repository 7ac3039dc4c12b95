"""A second real client: unmodified rclone (``iclouddrive`` backend) against the emulator.

rclone authenticates by cookies alone and sends no ``dsid``/``clientBuildNumber``/``token``
query parameters, reads ``item_id`` from listings before it deletes, asks PCS cookies when
drivews says ``pcsRequired``, and uploads a raw (non-multipart) body; these tests fail on an
emulator that is stricter than Apple there. Every step rclone takes is checked through
pyicloud, an independent client, and the docws lookups of rclone's API client that its
commands do not reach are checked in the shapes its Go structs decode.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from pyicloud import PyiCloudService
from pyicloud.services.drive import DriveNode

from tests.support.apple_proxy import apple_proxy
from tests.support.emulator import Emulator
from tests.support.rclone import REMOTE, Rclone, rclone_binary, session_config

ROOT = "FOLDER::com.apple.CloudDocs::root"
# rclone's headers on every Drive call besides its cookies (api/session.go GetCommonHeaders)
RCLONE_HEADERS = {
    "Content-Type": "application/json",
    "Origin": "https://www.icloud.com",
    "Referer": "https://www.icloud.com/",
    "User-Agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15",
}


@pytest.fixture(scope="module")
def rclone(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rclone]:
    """rclone configured with a session of its own (pyicloud signs in once more to make it)."""
    workdir = tmp_path_factory.mktemp("rclone")
    cookies = workdir / "session"
    emulator.signed_in(cookies)
    binary = rclone_binary()
    config = session_config(cookies, emulator.apple_id, emulator.password, binary)
    with apple_proxy(emulator.url, emulator.ca, workdir / "proxy") as proxy:
        yield Rclone(binary, config, workdir, proxy)


def _folder(api: PyiCloudService, *path: str) -> DriveNode:
    api.drive.refresh_root()
    node: DriveNode = api.drive.root
    for name in path:
        node = node[name]
    return node


def _names(api: PyiCloudService, *path: str) -> set[str]:
    return set(_folder(api, *path).dir())


def _trashed(api: PyiCloudService) -> set[str]:
    """Names in Recently Deleted."""
    api.drive.refresh_trash()
    return {child.name for child in api.drive.trash.get_children()}


def test_rclone_lists_writes_reads_moves_and_deletes(
    rclone: Rclone, api: PyiCloudService, tmp_path: Path
) -> None:
    listing = json.loads(rclone.ok("lsjson", f"{REMOTE}:"))
    assert {entry["Name"] for entry in listing} == _names(api)
    root = _folder(api)
    sizes = {entry["Name"]: entry["Size"] for entry in listing if not entry["IsDir"]}
    assert sizes and all(root[name].size == size for name, size in sizes.items())

    rclone.ok("mkdir", f"{REMOTE}:From rclone")
    assert _folder(api, "From rclone").type == "folder"

    data = os.urandom(300_000)
    local = tmp_path / "upload.bin"
    local.write_bytes(data)
    rclone.ok("copyto", str(local), f"{REMOTE}:From rclone/draft é.bin")
    uploaded = _folder(api, "From rclone")["draft é.bin"]
    assert uploaded.size == len(data) and uploaded.open().content == data

    assert rclone.ok("cat", f"{REMOTE}:From rclone/draft é.bin") == data

    rclone.ok("moveto", f"{REMOTE}:From rclone/draft é.bin", f"{REMOTE}:LegalCases/final.bin")
    assert _names(api, "From rclone") == set()
    assert _folder(api, "LegalCases")["final.bin"].open().content == data

    rclone.ok("deletefile", f"{REMOTE}:LegalCases/final.bin")
    assert "final.bin" not in _names(api, "LegalCases")
    assert "final.bin" in _trashed(api)

    refused = rclone.run("rmdir", f"{REMOTE}:LegalCases")  # rclone asks lookup_by_path first
    assert b"directory not empty" in refused.stderr and "LegalCases" in _names(api)
    rclone.ok("rmdir", f"{REMOTE}:From rclone")
    assert "From rclone" not in _names(api)
    assert "From rclone" in _trashed(api)


def _as_rclone(emulator: Emulator, api: PyiCloudService) -> requests.Session:
    """An HTTP client that sends what rclone sends: cookies and headers, no query parameters."""
    session = requests.Session()
    session.verify = emulator.ca
    session.headers.update(RCLONE_HEADERS)
    session.cookies.update({cookie.name: cookie.value or "" for cookie in api.session.cookies})
    return session


def _json(answer: requests.Response) -> Any:
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_rclone_api_lookups_answer_in_the_shapes_rclone_decodes(
    emulator: Emulator, api: PyiCloudService
) -> None:
    web = _as_rclone(emulator, api)
    docws = f"{emulator.url}/docws"
    by_path = f"{docws}/ws/com.apple.CloudDocs/list/lookup_by_path"

    [unified] = _json(web.post(by_path, params={"unified_format": "true"}, json="LegalCases/2024"))
    assert unified["name"] == "2024" and unified["type"] == "FOLDER" and unified["directChildrenCount"] >= 1
    [document] = _json(web.post(by_path, params={"unified_format": "false"}, json="/legalcases/2024"))
    assert f"{document['type']}::{document['zone']}::{document['document_id']}" == unified["drivewsid"]
    assert web.post(by_path, params={"unified_format": "true"}, json="LegalCases/nope").status_code == 404

    by_id = f"{docws}/ws/com.apple.CloudDocs/list/lookup_by_id"
    for handle in (unified["item_id"], unified["drivewsid"], unified["docwsid"]):
        found = _json(web.get(by_id, params={"document_id": handle, "unified_format": "false"}))
        assert found["document_id"] == unified["docwsid"] and found["item_id"] == unified["item_id"]

    complaint = "LegalCases/2024/Smith v Jones/Complaint.pdf"
    [pdf] = _json(web.post(by_path, params={"unified_format": "true"}, json=complaint))
    raw = _json(web.get(f"{docws}/v1/item/{pdf['item_id']}"))
    info = raw["item_info"]
    assert raw["item_id"] == pdf["item_id"] and info["version"] == pdf["etag"]
    assert (info["name"], info["extension"], info["size"]) == ("Complaint.pdf", "pdf", str(pdf["size"]))
    assert info["modified_at"].isdigit() and info["created_at"].isdigit()

    enumerated = _json(web.get(f"{docws}/v1/enumerate/{unified['item_id']}", params={"limit": "1"}))
    [first] = enumerated["drive_item"]
    assert first["item_info"]["name"] in _names(api, "LegalCases", "2024")

    copy = _json(web.post(f"{docws}/v1/item/copy/{pdf['item_id']}", json={"info_to_update": {}}))
    assert copy["item_info"]["name"] == "Complaint 2.pdf" and copy["item_id"] != pdf["item_id"]
    smith = _folder(api, "LegalCases", "2024", "Smith v Jones")
    assert smith["Complaint 2.pdf"].open().content == smith["Complaint.pdf"].open().content

    missing = "FOLDER::com.apple.CloudDocs::NOPE"
    wanted = [{"drivewsid": d, "partialData": False, "includeHierarchy": False} for d in (ROOT, missing)]
    details = _json(web.post(f"{emulator.url}/drivews/retrieveItemDetails", json=[{"items": wanted}]))
    assert details[0]["drivewsid"] == ROOT and "items" not in details[0]
    assert details[1] == {"drivewsid": missing, "status": "ID_INVALID"}


def test_missing_dsid_and_token_pass_wrong_ones_are_refused(emulator: Emulator, api: PyiCloudService) -> None:
    web = _as_rclone(emulator, api)
    listing = f"{emulator.url}/drivews/retrieveItemDetailsInFolders"
    body = [{"drivewsid": ROOT, "partialData": False}]
    assert web.post(listing, json=body).status_code == 200
    assert web.post(listing, params={"dsid": emulator.dsid}, json=body).status_code == 200
    assert web.post(listing, params={"dsid": "1"}, json=body).status_code == 400

    ticket = f"{emulator.url}/docws/ws/com.apple.CloudDocs/upload/web"
    request = {"filename": "x.txt", "type": "FILE", "size": "1", "content_type": "text/plain"}
    assert "url" in _json(web.post(ticket, json=request))[0]
    assert web.post(ticket, params={"token": "wrong"}, json=request).status_code == 401

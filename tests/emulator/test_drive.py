"""Drive fidelity: unmodified pyicloud listing, uploading, downloading and reorganising files."""

from __future__ import annotations

import io
import os
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
import requests
from pyicloud import PyiCloudService
from pyicloud.exceptions import PyiCloudAPIResponseException, PyiCloudConnectionException
from pyicloud.services.drive import DriveNode

from tests.support.emulator import Emulator, start_emulator


def _upload(folder: DriveNode, name: str, data: bytes) -> None:
    handle = io.BytesIO(data)
    handle.name = name
    folder.upload(handle)


def _fresh(api: PyiCloudService, *path: str) -> DriveNode:
    api.drive.refresh_root()
    node = api.drive.root
    for name in path:
        node = node[name]
    return node


def _ticket_url(api: PyiCloudService, node: DriveNode) -> str:
    answer = api.session.get(
        f"{api.get_webservice_url('docws')}/ws/{node.data['zone']}/download/by_id",
        params={**api.params, "document_id": node.data["docwsid"]},
    )
    ticket: dict[str, Any] = answer.json()
    return str((ticket.get("data_token") or ticket["package_token"])["url"])


def test_listing_matches_apple_shapes(api: PyiCloudService) -> None:
    root = _fresh(api)
    names = root.dir()
    assert {"LegalCases", "Café Résumé.txt", "Ideas 💡.txt", "Pages", "Empty Folder"} <= set(names)
    assert root.data["drivewsid"] == "FOLDER::com.apple.CloudDocs::root"
    smith = root["LegalCases"]["2024"]["Smith v Jones"]
    assert set(smith.dir()) == {"Complaint.pdf", "Exhibit A/B.pdf", "Discovery"}
    pdf = smith["Complaint.pdf"]
    assert (pdf.data["name"], pdf.data["extension"], pdf.type) == ("Complaint", "pdf", "file")
    assert pdf.size and pdf.date_modified and "." not in pdf.data["dateModified"]
    for forbidden in ("error", "reason", "errorReason", "errorMessage"):
        assert forbidden not in pdf.data
    missing = api.drive.get_node_data("FOLDER::com.apple.CloudDocs::NOPE")
    assert missing == {"drivewsid": "FOLDER::com.apple.CloudDocs::NOPE", "status": "ID_INVALID"}


def test_app_libraries_and_packages(api: PyiCloudService) -> None:
    libraries = {lib["name"]: lib for lib in api.drive.get_app_data()}
    assert libraries["Pages"]["drivewsid"] == "FOLDER::com.apple.Pages::documents"
    assert libraries["Pages"]["type"] == "APP_LIBRARY"
    pages = _fresh(api, "Pages")
    brief = pages["Brief.pages"]
    assert brief.data["zone"] == "com.apple.Pages"
    with zipfile.ZipFile(io.BytesIO(brief.open().content)) as archive:
        assert "Index/Document.iwa" in archive.namelist()
    _upload(pages, "Draft.txt", b"library upload")
    assert _fresh(api, "Pages")["Draft.txt"].open().content == b"library upload"


def test_upload_download_with_range_and_name_clash(api: PyiCloudService, emulator: Emulator) -> None:
    _fresh(api).mkdir("Uploads")
    folder = _fresh(api, "Uploads")
    data = bytes(range(256)) * 40
    _upload(folder, "blob.bin", data)
    _upload(folder, "blob.bin", b"second")  # iCloud keeps both: the newcomer is renamed
    folder = _fresh(api, "Uploads")
    assert sorted(folder.dir()) == ["blob 2.bin", "blob.bin"]
    node = folder["blob.bin"]
    assert node.size == len(data)
    ranged = node.open(headers={"Range": "bytes=10-19"}, stream=True)
    assert ranged.status_code == 206 and ranged.raw.read() == data[10:20]
    assert ranged.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    assert node.open().content == data
    url = _ticket_url(api, node)
    past_end = requests.get(url, headers={"Range": f"bytes={len(data)}-"}, verify=emulator.ca, timeout=10)
    assert past_end.status_code == 416
    assert requests.get(url, verify=emulator.ca, timeout=10).content == data  # no cookie needed
    node.delete()  # a live item goes to Recently Deleted (pyicloud's README)
    api.drive.refresh_trash()
    assert "blob.bin" in api.drive.trash.dir()
    api.drive.trash["blob.bin"].delete_forever()
    assert requests.get(url, verify=emulator.ca, timeout=10).status_code == 404  # pinned version


def test_rename_move_trash_recover_delete(api: PyiCloudService) -> None:
    root = _fresh(api)
    root.mkdir("Shuffle")
    root.mkdir("Target")
    shuffle = _fresh(api, "Shuffle")
    _upload(shuffle, "a.txt", b"a")
    _upload(shuffle, "b.txt", b"b")
    shuffle = _fresh(api, "Shuffle")
    a, b = shuffle["a.txt"], shuffle["b.txt"]

    stale = dict(a.data)
    current = a.rename("renamed.txt")["items"][0]
    # a refused item is a status inside a 2xx answer, with the current etag (rclone's api/drive.go)
    refused = DriveNode(api.drive, stale).rename("again.txt")["items"][0]  # old etag
    assert (refused["status"], refused["etag"]) == ("ETAG_CONFLICT", current["etag"])
    clash = b.rename("RENAMED.TXT")["items"][0]  # case-insensitive clash
    assert clash["status"] == "NAME_CONFLICT"
    both = api.drive.session.post(  # one refused item does not stop the other
        api.drive.service_root + "/moveItemsToTrash",
        params=api.drive.params,
        json={
            "items": [
                {"drivewsid": stale["drivewsid"], "etag": stale["etag"]},
                {"drivewsid": "FILE::x::nope"},
            ]
        },
    ).json()["items"]
    assert [i["status"] for i in both] == ["ETAG_CONFLICT", "ID_INVALID"]

    with pytest.raises(PyiCloudAPIResponseException) as caught:  # NFC/case-insensitive folder clash
        _fresh(api).mkdir("shuffle")
    assert caught.value.response.json()["folders"][0]["status"] == "NAME_CONFLICT"

    renamed = _fresh(api, "Shuffle", "renamed.txt")
    target = _fresh(api, "Target")
    moved = api.drive.move_nodes_to_node([renamed], target)
    assert moved["items"][0]["parentId"] == target.data["drivewsid"]
    assert _fresh(api, "Target").dir() == ["renamed.txt"]

    _fresh(api, "Shuffle").move_to_trash()
    api.drive.refresh_trash()
    trashed = api.drive.trash["Shuffle"]
    assert trashed.data["restorePath"] == "Shuffle"
    trashed.recover()
    assert _fresh(api, "Shuffle").dir() == ["b.txt"]

    _fresh(api, "Shuffle").move_to_trash()
    api.drive.refresh_trash()
    api.drive.trash["Shuffle"].delete_forever()
    api.drive.refresh_trash()
    assert "Shuffle" not in api.drive.trash.dir()
    assert "Shuffle" not in _fresh(api).dir()


def test_injected_faults_and_stats(api: PyiCloudService, emulator: Emulator) -> None:
    emulator.reset_stats()
    emulator.faults(rules=[{"path": "/drivews/retrieveItemDetailsInFolders", "status": 503, "times": 2}])
    for _ in range(2):
        with pytest.raises(PyiCloudAPIResponseException) as caught:
            api.drive.refresh_root()
        assert caught.value.code == 503
    api.drive.refresh_root()
    assert emulator.stats()["requests"]["/drivews/retrieveItemDetailsInFolders"] == 3

    emulator.faults(latency_ms=60)
    started = time.monotonic()
    api.drive.refresh_root()
    assert time.monotonic() - started >= 0.06
    emulator.clear_faults()

    emulator.faults(rules=[{"path": "/content", "status": "drop", "rate": 1.0}])
    with pytest.raises(PyiCloudConnectionException):
        _fresh(api, "Café Résumé.txt").open().content  # noqa: B018
    emulator.clear_faults()
    assert "Café" in _fresh(api, "Café Résumé.txt").open().content.decode()


def test_bandwidth_cap_is_shared_by_all_connections(api: PyiCloudService, emulator: Emulator) -> None:
    url = _ticket_url(api, _fresh(api, "Media", "recording.bin"))
    chunk, mbps = 1_000_000, 16.0
    emulator.faults(bandwidth_mbps=mbps)
    results: list[int] = []

    def fetch() -> None:
        got = requests.get(url, headers={"Range": f"bytes=0-{chunk - 1}"}, verify=emulator.ca, timeout=30)
        results.append(len(got.content))

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    assert results == [chunk, chunk]
    assert elapsed >= 0.8 * (2 * chunk * 8 / (mbps * 1e6))


def test_data_survives_restart(tmp_path: Path) -> None:
    data_dir, cookies = tmp_path / "state", tmp_path / "cookies"
    with start_emulator(tmp_path, "--seed", "tree:40:5:100", data_dir=data_dir) as first:
        api = first.signed_in(cookies)
        _upload(api.drive.root, "keep.txt", b"persistent")
    with start_emulator(tmp_path, "--seed", "tree:40:5:100", data_dir=data_dir) as second:
        api = second.service(cookies)  # same CA, same sessions: no password prompt, no code
        assert not api.requires_2fa
        root = _fresh(api)
        assert root["keep.txt"].open().content == b"persistent"
        tree = root["tree-40-5"]
        assert tree.data["fileCount"] == 40 and len([n for n in root.dir() if n.startswith("tree-")]) == 1


def test_unknown_paths_and_methods_answer_json_errors(emulator: Emulator) -> None:
    missing = requests.get(f"{emulator.url}/no/such/endpoint", verify=emulator.ca, timeout=10)
    assert (missing.status_code, missing.json()) == (404, {"detail": "Not Found"})
    listing = f"{emulator.url}/drivews/retrieveItemDetailsInFolders"
    wrong = requests.get(listing, verify=emulator.ca, timeout=10)
    assert (wrong.status_code, wrong.json()) == (405, {"detail": "Method Not Allowed"})


def test_a_commit_addressed_to_the_wrong_zone_is_412(api: PyiCloudService) -> None:
    """rclone issue 9729: an upload into an app container committed under com.apple.CloudDocs
    (rclone hard-coded the zone) is refused with 412 VALIDATING_REFERENCE_ERROR."""
    pages = _fresh(api, "Pages")
    with pytest.raises(PyiCloudAPIResponseException) as caught:
        api.session.post(
            f"{api.get_webservice_url('docws')}/ws/com.apple.CloudDocs/update/documents",
            params=api.params,
            json={
                "command": "add_file",
                "path": {"starting_document_id": pages.data["docwsid"], "path": "Wrong zone.txt"},
                "data": {},
            },
        )
    assert caught.value.code == 412
    assert "Wrong zone.txt" not in _fresh(api, "Pages").dir()


def test_a_copy_seed_brings_a_local_folder_byte_for_byte(tmp_path: Path) -> None:
    source = tmp_path / "checkout"
    (source / "src" / "deep").mkdir(parents=True)
    (source / "README").write_bytes(b"read me")
    (source / "src" / "deep" / "main.py").write_bytes(b"print('hi')\n")
    os.utime(source / "README", (1_600_000_000, 1_600_000_000))
    with start_emulator(tmp_path, "--seed", f"copy:{source}") as emulator:
        root = _fresh(emulator.signed_in(tmp_path / "cookies"))
        checkout = root["checkout"]
        assert sorted(checkout.dir()) == ["README", "src"]
        assert checkout["README"].open().content == b"read me"
        assert checkout["README"].date_modified.timestamp() == 1_600_000_000
        assert checkout["src"]["deep"]["main.py"].open().content == b"print('hi')\n"

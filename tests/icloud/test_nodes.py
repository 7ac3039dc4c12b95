"""Drive JSON (pyicloud's fixture shapes) becomes Items."""

from __future__ import annotations

from icloudfs.drive.types import ItemKind
from icloudfs.icloud.nodes import ROOT_ID, to_item


def test_file_node_from_pyicloud_fixture_shape() -> None:
    item = to_item(
        {
            "drivewsid": "FILE::com.apple.CloudDocs::516C896C",
            "docwsid": "516C896C",
            "zone": "com.apple.CloudDocs",
            "name": "Scanned document 1",
            "parentId": "FOLDER::com.apple.CloudDocs::D5AA",
            "dateModified": "2020-05-03T00:15:17Z",
            "dateChanged": "2020-05-02T17:16:17-07:00",
            "size": 21644358,
            "etag": "32::2x",
            "extension": "pdf",
            "type": "FILE",
        }
    )
    assert item.name == "Scanned document 1.pdf"
    assert item.kind is ItemKind.FILE and item.size == 21644358 and item.etag == "32::2x"
    assert item.mtime == 1588464917.0
    assert item.parent_id == "FOLDER::com.apple.CloudDocs::D5AA"


def test_root_app_library_and_package() -> None:
    root = to_item({"drivewsid": ROOT_ID, "docwsid": "root", "name": "", "etag": "31", "type": "FOLDER"})
    assert root.name == "" and root.is_folder and root.mtime == 0.0
    library = to_item(
        {
            "drivewsid": "FOLDER::com.apple.Pages::documents",
            "name": "Pages",
            "type": "APP_LIBRARY",
            "zone": "com.apple.Pages",
        }
    )
    assert library.kind is ItemKind.APP_LIBRARY and library.is_folder and library.zone == "com.apple.Pages"
    package = to_item(
        {"drivewsid": "FILE::com.apple.Pages::X", "name": "Brief", "extension": "pages", "size": 10}
    )
    assert package.kind is ItemKind.PACKAGE and package.name == "Brief.pages" and not package.is_folder

"""The ``accountLogin``/``validate`` body, shaped like Apple's (pyicloud's LOGIN_WORKING fixture).

Every webservice Apple advertises is listed, all on this one origin: ``account``
is the origin itself (pyicloud appends ``/setup/ws/1/...``), the rest live under
``/<key>``; only drivews, docws and account are implemented.
"""

from __future__ import annotations

from typing import Any

_SERVICES = (
    "reminders",
    "notes",
    "mail",
    "ckdatabasews",
    "photosupload",
    "photos",
    "drivews",
    "uploadimagews",
    "cksharews",
    "findme",
    "premiummailsettings",
    "ckdeviceservice",
    "iworkthumbnailws",
    "calendar",
    "docws",
    "settings",
    "ubiquity",
    "streams",
    "keyvalue",
    "archivews",
    "push",
    "iwmb",
    "iworkexportws",
    "geows",
    "account",
    "fmf",
    "contacts",
)
_PCS_REQUIRED = {"ckdatabasews", "photosupload", "photos", "drivews", "docws"}
_APPS: dict[str, dict[str, bool]] = {
    "calendar": {},
    "reminders": {},
    "keynote": {"isQualifiedForBeta": True},
    "settings": {"canLaunchWithOneFactor": True},
    "mail": {},
    "numbers": {"isQualifiedForBeta": True},
    "photos": {},
    "pages": {"isQualifiedForBeta": True},
    "notes3": {},
    "find": {"canLaunchWithOneFactor": True},
    "iclouddrive": {},
    "newspublisher": {"isHidden": True},
    "fmf": {},
    "contacts": {},
}


def webservices(origin: str) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = {}
    for key in _SERVICES:
        entry: dict[str, Any] = {"url": origin if key == "account" else f"{origin}/{key}", "status": "active"}
        if key in _PCS_REQUIRED:
            entry["pcsRequired"] = True
        if key == "account":
            entry["iCloudEnv"] = {"shortId": "p", "vipSuffix": "prod"}
        services[key] = entry
    services["schoolwork"] = {}
    return services


def account_login_body(origin: str, apple_id: str, dsid: str, trusted: bool) -> dict[str, Any]:
    """What ``accountLogin`` and ``validate`` answer; ``trusted`` is whether 2FA is satisfied."""
    first = apple_id.split("@")[0].capitalize()
    return {
        "dsInfo": {
            "lastName": "Emulator",
            "iCDPEnabled": False,
            "tantorMigrated": True,
            "dsid": dsid,
            "hsaEnabled": True,
            "ironcadeMigrated": True,
            "locale": "en-us_US",
            "brZoneConsolidated": False,
            "isManagedAppleID": False,
            "gilligan-invited": "true",
            "appleIdAliases": [],
            "hsaVersion": 2,
            "isPaidDeveloper": False,
            "countryCode": "USA",
            "notificationId": f"00000000-0000-0000-0000-{dsid.zfill(12)[-12:]}",
            "primaryEmailVerified": True,
            "aDsID": f"000000-00-{dsid}",
            "locked": False,
            "hasICloudQualifyingDevice": True,
            "primaryEmail": apple_id,
            "appleIdEntries": [{"isPrimary": True, "type": "EMAIL", "value": apple_id}],
            "gilligan-enabled": "true",
            "fullName": f"{first} Emulator",
            "languageCode": "en-us",
            "appleId": apple_id,
            "firstName": first,
            "iCloudAppleIdAlias": "",
            "notesMigrated": True,
            "hasPaymentInfo": False,
            "pcsDeleted": False,
            "appleIdAlias": "",
            "brMigrated": True,
            "statusCode": 2,
            "familyEligible": True,
        },
        "hasMinimumDeviceForPhotosWeb": True,
        "iCDPEnabled": False,
        "webservices": webservices(origin),
        "pcsEnabled": True,
        "configBag": {
            "urls": {
                "accountLogin": f"{origin}/setup/ws/1/accountLogin",
                "accountAuthorizeUI": f"{origin}/appleauth/auth/authorize/signin",
                "getICloudTerms": f"{origin}/setup/ws/1/getTerms",
                "repairDone": f"{origin}/setup/ws/1/repairDone",
            },
            "accountCreateEnabled": "true",
        },
        "hsaTrustedBrowser": trusted,
        "appsOrder": list(_APPS),
        "version": 2,
        "isExtendedLogin": True,
        "pcsServiceIdentitiesIncluded": trusted,
        "hsaChallengeRequired": not trusted,
        "ICDRSCapableDeviceCount": 1,
        "requestInfo": {"country": "US", "timeZone": "GMT+0", "region": "CA"},
        "pcsDeleted": False,
        "iCloudInfo": {"SafariBookmarksHasMigratedToCloudKit": True},
        "apps": _APPS,
    }

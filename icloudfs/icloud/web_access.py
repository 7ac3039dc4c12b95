"""Advanced Data Protection: the web-access consent and the PCS cookies that Drive needs.

With ADP on (``requestWebAccessState`` answers ``isICDRSDisabled``), Drive answers 423 ("Missing
PCS cookies") until this web session holds PCS cookies (``X-APPLE-WEBAUTH-PCS-Documents``;
rclone PR 9448, issue 8310; foxt/icloud.js issue 4). Getting them takes the user, once: a device
must allow this web session (``enableDeviceConsentForPCS`` sends the notification, the user taps
Allow); then ``requestPCS`` grants cookies. They expire: a 423 later means asking again, which
needs nobody while the consent holds. With "Access iCloud Data on the Web" off on the device there
is nobody to ask: the notification is not sent.

pyicloud's ``api.drive`` does all of it, but by sleeping in a loop for a minute or more; a mount
cannot hold a FUSE call for a person. So ``open_drive`` asks once and answers at once: the drive,
``ConsentPending`` (the notification went out: the account waits and looks again when next
used), or ``WebAccessBlocked`` (nothing can be asked).
"""

from __future__ import annotations

from typing import Any, NoReturn

from pyicloud import PyiCloudService
from pyicloud.services.drive import DriveService

from icloudfs.errors import ConsentPending, WebAccessBlocked

PCS_APP = "iclouddrive"
# requestPCS answers these while the device has not uploaded the cookies yet (pyicloud base.py)
_NOT_YET = ("Requested the device to upload cookies.", "Cookies not available yet on server.")

ADP_MESSAGE = (
    "Advanced Data Protection is on and this account does not allow web access to iCloud "
    "data. On an iPhone or iPad open Settings > [your name] > iCloud and turn on "
    "'Access iCloud Data on the Web', then sign in again."
)
CONSENT_MESSAGE = (
    "Advanced Data Protection is on: Apple has asked your trusted devices to allow this "
    "sign-in. Tap Allow on one of them; the mount goes on by itself."
)


def open_drive(api: PyiCloudService) -> DriveService:
    """Drive, once web access is open (see the module note); raises ``ConsentPending`` or
    ``WebAccessBlocked`` instead of waiting for the user."""
    state = _post(api, "requestWebAccessState")
    if state.get("isICDRSDisabled"):
        if not state.get("isDeviceConsentedForPCS"):
            _ask_consent(api)
        request_pcs(api, user_action=True)
    return api.drive


def request_pcs(api: PyiCloudService, *, user_action: bool) -> None:
    """PCS cookies for Drive, while the consent holds (a 423 means the last ones expired)."""
    answer = _post(api, "requestPCS", {"appName": PCS_APP, "derivedFromUserAction": user_action})
    if answer.get("status") == "success":
        return
    if answer.get("message") in _NOT_YET:
        raise ConsentPending("Waiting for a trusted device to hand iCloud the keys for this sign-in.")
    if not _post(api, "requestWebAccessState").get("isDeviceConsentedForPCS"):
        _ask_consent(api)  # the consent was withdrawn: ask again
    raise WebAccessBlocked(f"{ADP_MESSAGE} (iCloud said: {answer.get('message')})")


def _ask_consent(api: PyiCloudService) -> NoReturn:
    """Have Apple ask the user's devices; with web access off on them there is nobody to ask."""
    if not _post(api, "enableDeviceConsentForPCS").get("isDeviceConsentNotificationSent"):
        raise WebAccessBlocked(ADP_MESSAGE)
    raise ConsentPending(CONSENT_MESSAGE)


def _post(api: PyiCloudService, call: str, body: Any = None) -> dict[str, Any]:
    answer: dict[str, Any] = api.session.post(
        f"{api._setup_endpoint}/{call}", json=body, params=api.params
    ).json()
    return answer

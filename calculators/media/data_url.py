"""`data:image/...;base64,...` URLs: media type checked, size bounded before decoding."""

from __future__ import annotations

import base64
import binascii

from calculators.media.policy import MediaPolicy, refuse, too_many_bytes

#: What a data URL may declare (image/jpg is a common misspelling of image/jpeg). The bytes are
#: decoded by their content, so a mislabelled png among these still decodes.
MEDIA_TYPES = frozenset({"image/png", "image/jpeg", "image/jpg", "image/webp", "image/gif"})
_WHITESPACE = str.maketrans("", "", " \t\r\n")


def decode_data_url(url: str, policy: MediaPolicy) -> bytes:
    """The image bytes of a base64 data URL (CPU work on big payloads: call it off the event loop)."""
    header, comma, payload = url[len("data:") :].partition(",")
    if not comma:
        raise refuse("image_url data URL has no ',' before its data")
    media_type, *parameters = (part.strip().lower() for part in header.split(";"))
    if media_type not in MEDIA_TYPES:
        shown = media_type[:40] or "none"
        raise refuse(f"image_url data URL has media type '{shown}'; supported: image/png, image/jpeg, image/webp, image/gif")
    if "base64" not in parameters:
        raise refuse("image_url data URL must be base64-encoded (';base64,')")
    if len(payload) // 4 * 3 > policy.max_image_bytes:
        raise too_many_bytes(policy)
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        pass
    try:  # some clients wrap base64 in lines: accept whitespace, nothing else
        return base64.b64decode(payload.translate(_WHITESPACE), validate=True)
    except (binascii.Error, ValueError):
        raise refuse("image_url data URL is not valid base64") from None

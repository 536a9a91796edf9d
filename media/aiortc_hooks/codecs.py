"""Codecs: narrow a transceiver's negotiated list between setRemoteDescription and createAnswer.

aiortc's answer follows the offer's codec order, and setCodecPreferences cannot
be applied to transceivers that setRemoteDescription creates.
"""

from __future__ import annotations

from aiortc import RTCRtpTransceiver
from aiortc.codecs import is_rtx


def negotiated_codecs(transceiver: RTCRtpTransceiver) -> list[str]:
    """Lower-case mime types the offer and aiortc have in common, offer order, no RTX."""
    seen: list[str] = []
    for codec in transceiver._codecs:
        mime = codec.mimeType.lower()
        if not is_rtx(codec) and mime not in seen:
            seen.append(mime)
    return seen


def restrict_codecs(transceiver: RTCRtpTransceiver, mime: str) -> bool:
    """Keep only ``mime`` (and its RTX) in the answer. False if the offer lacks it."""
    kept = [c for c in transceiver._codecs if c.mimeType.lower() == mime and not is_rtx(c)]
    if not kept:
        return False
    payload_types = {c.payloadType for c in kept}
    rtx = [c for c in transceiver._codecs if is_rtx(c) and c.parameters.get("apt") in payload_types]
    transceiver._codecs = kept + rtx
    return True

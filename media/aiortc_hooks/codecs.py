"""Codecs: narrow a transceiver's negotiated list between setRemoteDescription and createAnswer.

aiortc's answer follows the offer's codec order, and setCodecPreferences cannot
be applied to transceivers that setRemoteDescription creates.
"""

from __future__ import annotations

from aiortc import RTCRtpCodecParameters, RTCRtpTransceiver
from aiortc.codecs import is_rtx

#: the Opus fmtp of every answer (aiortc's own has none): ``useinbandfec=1`` asks a
#: publisher's encoder for in-band FEC and tells a viewer ours carries it; ``minptime``
#: as browsers offer it
OPUS_PARAMETERS = {"minptime": 10, "useinbandfec": 1}


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
    if mime == "audio/opus":
        for codec in kept:
            codec.parameters = {**codec.parameters, **OPUS_PARAMETERS}
    transceiver._codecs = kept + rtx
    return True


def add_red(transceiver: RTCRtpTransceiver, payload_type: int) -> bool:
    """Also answer ``audio/red`` (RFC 2198) at ``payload_type``, wrapping the kept Opus.

    aiortc knows no RED, so the offer's is dropped from its common codecs; put back,
    it is answered and :class:`~media.aiortc_hooks.RtpForwarder` sends each Opus frame
    with the previous one as its redundant block. False when no Opus was kept.
    """
    opus = next((c for c in transceiver._codecs if c.mimeType.lower() == "audio/opus"), None)
    if opus is None or opus.payloadType is None:
        return False
    block = str(opus.payloadType)
    transceiver._codecs.append(
        RTCRtpCodecParameters(
            mimeType="audio/red",
            clockRate=48000,
            channels=2,
            payloadType=payload_type,
            parameters={f"{block}/{block}": None},
        )
    )
    return True

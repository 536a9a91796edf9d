"""Which transceiver answers which m-line of an offer, what feeds it, and in which codec.

A viewer m-line is fed by one fan-out, chosen by its position among the
offer's m-lines of its kind (:data:`VIEWER_FEEDS`). Media is never re-encoded,
so every transceiver is narrowed to the one codec the room forwards.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiortc import RTCRtpTransceiver

from .aiortc_hooks import negotiated_codecs, restrict_codecs
from .errors import CodecMismatch
from .sdp import MediaLine, OfferSummary
from .session import PeerSession

KINDS = ("audio", "video")
#: the fan-out of the floor speaker's audio (the others are named by their kind)
FLOOR = "floor"
#: which fan-out feeds a viewer's n-th m-line of each kind: the first audio
#: m-line gets the main audio, the first video the main video, the second audio
#: the floor. m-lines beyond these, inactive or disabled ones get nothing (they
#: still count for the position, so a host that wants only the floor offers
#: audio inactive, video inactive, audio recvonly).
VIEWER_FEEDS = {"audio": ("audio", FLOOR), "video": ("video",)}
AUDIO_CODEC = "audio/opus"


def choose_codecs(
    transceivers: Iterable[RTCRtpTransceiver], pinned: str | None, preferred: tuple[str, ...]
) -> str | None:
    """Narrow each of ``transceivers`` to the room's codecs; return the video one.

    Video keeps the ``pinned`` codec (the room's), or else the first of
    ``preferred`` that the offer has.
    """
    video_codec = None
    for transceiver in transceivers:
        wanted: str | None
        if transceiver.kind == "audio":
            wanted = AUDIO_CODEC
        else:
            offered = negotiated_codecs(transceiver)
            wanted = pinned or next((c for c in preferred if c in offered), None)
            video_codec = wanted
        if wanted is None or not restrict_codecs(transceiver, wanted):
            raise CodecMismatch(
                f"this meeting is forwarded as {wanted or 'H.264 or VP8'} "
                f"({transceiver.kind}) without re-encoding, and the offer does not include it"
            )
    return video_codec


def offered_lines(
    session: PeerSession, offer: OfferSummary
) -> list[tuple[RTCRtpTransceiver, MediaLine]]:
    """Pair each of the session's transceivers with the offer's m-line it answers."""
    by_mid = {line.mid: line for line in offer.lines if line.mid is not None}
    pairs = []
    for index, transceiver in enumerate(session.pc.getTransceivers()):
        line = by_mid.get(transceiver.mid) if transceiver.mid is not None else None
        if line is None and index < len(offer.lines):
            line = offer.lines[index]  # an offer without a=mid: aiortc keeps the order
        if line is not None and line.kind == transceiver.kind:
            pairs.append((transceiver, line))
    return pairs


def viewer_feeds(session: PeerSession, offer: OfferSummary) -> list[tuple[RTCRtpTransceiver, str]]:
    """``(transceiver, fan-out name)`` for each viewer m-line that gets media (VIEWER_FEEDS)."""
    feeds = []
    position = {kind: 0 for kind in VIEWER_FEEDS}
    for transceiver, line in offered_lines(session, offer):
        names = VIEWER_FEEDS.get(line.kind, ())
        index = position.get(line.kind, 0)
        position[line.kind] = index + 1
        if index < len(names) and line.receives:
            feeds.append((transceiver, names[index]))
    return feeds

"""Checks on SDP offers and trickle-ICE fragments, before aiortc sees them.

aiortc's own parser raises assorted exceptions (or none) on garbage; these
checks turn bad input into :class:`InvalidOffer` with a reason a client
developer can act on.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from aiortc import RTCIceCandidate
from aiortc.sdp import SessionDescription, candidate_from_sdp

from .errors import IceRestartUnsupported, InvalidOffer, InvalidTrickle

#: An offer larger than this is refused before parsing (browsers send ~5-10 KB).
MAX_SDP_BYTES = 64 * 1024

_SENDING = ("sendonly", "sendrecv")
_RECEIVING = ("recvonly", "sendrecv")


@dataclass(frozen=True)
class MediaLine:
    """One audio or video m-line of an offer, as the offerer wrote it."""

    kind: str  # "audio" or "video"
    #: the offerer's direction; "inactive" also for a disabled (port 0) m-line
    direction: str | None
    mid: str | None

    @property
    def sends(self) -> bool:
        """The offerer will send on this m-line."""
        return self.direction in _SENDING

    @property
    def receives(self) -> bool:
        """The offerer wants to receive on this m-line."""
        return self.direction in _RECEIVING


@dataclass(frozen=True)
class OfferSummary:
    """What an offer asks for, per media kind and per m-line."""

    sends: frozenset[str]  # kinds the remote will send to us
    receives: frozenset[str]  # kinds the remote wants to receive
    ice_ufrag: str
    #: the audio and video m-lines, in the offer's order
    lines: tuple[MediaLine, ...] = ()


def normalize(sdp: str) -> str:
    """SDP lines end in CRLF; tolerate clients (and curl users) that send LF."""
    lines = [line.rstrip("\r") for line in sdp.strip().split("\n")]
    return "\r\n".join(lines) + "\r\n"


def check_offer(sdp: str) -> OfferSummary:
    """Parse ``sdp`` as an offer and say what it sends and receives."""
    if not sdp.strip():
        raise InvalidOffer("the offer is empty")
    if len(sdp.encode("utf-8", "replace")) > MAX_SDP_BYTES:
        raise InvalidOffer(f"the offer is larger than {MAX_SDP_BYTES} bytes")
    if not sdp.lstrip().startswith("v=0"):
        raise InvalidOffer("an SDP offer must start with 'v=0'")
    try:
        parsed = SessionDescription.parse(normalize(sdp))
    except Exception as exc:  # aiortc's parser raises many types on garbage
        raise InvalidOffer(f"the SDP could not be parsed: {exc!r}") from exc
    media = [m for m in parsed.media if m.kind in ("audio", "video")]
    if not media:
        raise InvalidOffer("the offer has no audio or video section")
    ufrag = None
    for m in media:
        if m.port == 0:
            continue
        if not m.ice.usernameFragment or not m.ice.password:
            raise InvalidOffer(f"the {m.kind} section has no a=ice-ufrag / a=ice-pwd")
        if m.dtls is None or not m.dtls.fingerprints:
            raise InvalidOffer(f"the {m.kind} section has no a=fingerprint (DTLS is required)")
        if not m.rtp.codecs:
            raise InvalidOffer(f"the {m.kind} section lists no codecs")
        ufrag = ufrag or m.ice.usernameFragment
    if ufrag is None:
        raise InvalidOffer("every media section of the offer is disabled")
    return OfferSummary(
        sends=frozenset(m.kind for m in media if m.port and m.direction in _SENDING),
        receives=frozenset(m.kind for m in media if m.port and m.direction in _RECEIVING),
        ice_ufrag=ufrag,
        lines=tuple(
            MediaLine(m.kind, m.direction if m.port else "inactive", m.rtp.muxId) for m in media
        ),
    )


def is_loopback_candidate(candidate: RTCIceCandidate) -> bool:
    try:
        return ipaddress.ip_address(candidate.ip).is_loopback
    except ValueError:  # an mDNS name such as 1f0c....local
        return False


def keep_loopback_candidates(sdp: str) -> str:
    """Drop the offer's non-loopback candidates.

    With ``ICE_HOST_ADDRESSES=127.0.0.1`` our side offers only loopback, but a
    browser also lists its other interfaces and ICE would send checks there.
    Dropping them keeps every packet on loopback.
    """
    kept = []
    for line in sdp.split("\r\n"):
        if line.startswith("a=candidate:"):
            try:
                candidate = candidate_from_sdp(line[len("a=candidate:") :])
            except Exception:
                continue
            if not is_loopback_candidate(candidate):
                continue
        kept.append(line)
    return "\r\n".join(kept)


@dataclass
class TrickleFragment:
    """The content of an ``application/trickle-ice-sdpfrag`` body (RFC 8840)."""

    ice_ufrag: str | None = None
    ice_pwd: str | None = None
    candidates: list[RTCIceCandidate] = field(default_factory=list)
    end_of_candidates: bool = False


def parse_trickle(fragment: str, *, session_ufrag: str) -> TrickleFragment:
    """Parse a trickle fragment; refuse one that asks for an ICE restart."""
    result = TrickleFragment()
    mid: str | None = None
    mline_index = -1
    if len(fragment.encode("utf-8", "replace")) > MAX_SDP_BYTES:
        raise InvalidTrickle(f"the fragment is larger than {MAX_SDP_BYTES} bytes")
    for raw in fragment.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("m="):
            mline_index += 1
            mid = None
        elif line.startswith("a=mid:"):
            mid = line[len("a=mid:") :]
        elif line.startswith("a=ice-ufrag:"):
            result.ice_ufrag = line[len("a=ice-ufrag:") :]
        elif line.startswith("a=ice-pwd:"):
            result.ice_pwd = line[len("a=ice-pwd:") :]
        elif line.startswith("a=candidate:"):
            try:
                candidate = candidate_from_sdp(line[len("a=candidate:") :])
            except Exception as exc:
                raise InvalidTrickle(f"bad candidate line {line!r}: {exc!r}") from exc
            candidate.sdpMid = mid
            candidate.sdpMLineIndex = max(mline_index, 0)
            result.candidates.append(candidate)
        elif line == "a=end-of-candidates":
            result.end_of_candidates = True
        elif not (line[:2] in ("a=", "m=", "c=") or line.startswith("a=group")):
            raise InvalidTrickle(f"unexpected line in a trickle fragment: {line!r}")
    if result.ice_ufrag is not None and result.ice_ufrag != session_ufrag:
        raise IceRestartUnsupported("ICE restart is not supported: publish again instead")
    return result

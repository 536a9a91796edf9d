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

# Limits on an offer or a trickle fragment, checked on the raw text before
# aiortc parses it (a parsed candidate costs aioice a pair check per local
# candidate, and an m-line a transceiver): 1,000 candidates blocked the event
# loop for 0.22 s. A browser's offer is 5-10 KB, ~250 lines for three m-lines,
# a dozen candidates per network interface set, and no line beyond ~200 bytes.

#: An offer (or fragment) larger than this is refused before parsing.
MAX_SDP_BYTES = 64 * 1024
#: lines in an offer or fragment
MAX_LINES = 1000
#: characters in one line (``a=fmtp``, ``a=candidate`` and the like are < 200)
MAX_LINE_LENGTH = 1024
#: m-lines in an offer or fragment (a viewer uses three: audio, video, floor)
MAX_MEDIA_LINES = 8
#: remote ICE candidates per session: in the offer and all its trickle fragments
#: together (a phone with Wi-Fi, 4G and IPv6 gathers about a dozen)
MAX_CANDIDATES = 64

_SENDING = ("sendonly", "sendrecv")
_RECEIVING = ("recvonly", "sendrecv")


@dataclass(frozen=True)
class MediaLine:
    """One audio or video m-line of an offer, as the offerer wrote it."""

    kind: str  # "audio" or "video"
    #: the offerer's direction; "inactive" also for a disabled (port 0) m-line
    direction: str | None
    mid: str | None
    #: the payload type of ``audio/red`` carrying this m-line's Opus (RFC 2198, as
    #: Chromium offers it: ``a=fmtp:63 111/111``), if the offer has one
    red: int | None = None

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
    #: a=candidate lines in the offer (counted toward MAX_CANDIDATES)
    candidates: int = 0


def normalize(sdp: str) -> str:
    """SDP lines end in CRLF; tolerate clients (and curl users) that send LF."""
    lines = [line.rstrip("\r") for line in sdp.strip().split("\n")]
    return "\r\n".join(lines) + "\r\n"


def check_bounds(sdp: str, what: str, error: type[Exception] = InvalidOffer) -> int:
    """Refuse ``sdp`` (an offer or fragment) beyond the limits above; return its candidates.

    Runs on the raw text, before any parser: cheap even on a hostile 64 KB body.
    """
    if len(sdp.encode("utf-8", "replace")) > MAX_SDP_BYTES:
        raise error(f"the {what} is larger than {MAX_SDP_BYTES} bytes")
    if not sdp:
        return 0
    # aiortc splits with str.splitlines(), which also breaks at \r, \v, \x1c,
    # U+2028...: refuse those, or lines could hide from the counts below
    lines = sdp.splitlines()
    if len(lines) != sdp.count("\n") + (not sdp.endswith("\n")):
        raise error(f"the {what} may break lines only with CRLF or LF")
    text = "\n" + sdp  # every line now starts after a "\n": counted at C speed
    candidates = text.count("\na=candidate:")
    if candidates > MAX_CANDIDATES:
        raise error(
            f"the {what} has {candidates} ICE candidates; at most {MAX_CANDIDATES} "
            "are accepted per session"
        )
    media = text.count("\nm=")
    if media > MAX_MEDIA_LINES:
        raise error(f"the {what} has {media} m-lines; at most {MAX_MEDIA_LINES} are accepted")
    if len(lines) > MAX_LINES:
        raise error(f"the {what} has {len(lines)} lines; at most {MAX_LINES} are accepted")
    longest = max(lines, key=len)
    if len(longest) > MAX_LINE_LENGTH:
        raise error(
            f"a line of the {what} ({longest[:20]!r}...) is {len(longest)} characters "
            f"long; at most {MAX_LINE_LENGTH} are accepted"
        )
    return candidates


def check_offer(sdp: str) -> OfferSummary:
    """Parse ``sdp`` as an offer and say what it sends and receives."""
    if not sdp.strip():
        raise InvalidOffer("the offer is empty")
    candidates = check_bounds(sdp, "offer")
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
        if m.ice is None or not m.ice.usernameFragment or not m.ice.password:
            raise InvalidOffer(f"the {m.kind} section has no a=ice-ufrag / a=ice-pwd")
        if m.dtls is None or not m.dtls.fingerprints:
            raise InvalidOffer(f"the {m.kind} section has no a=fingerprint (DTLS is required)")
        if not m.rtp.codecs:
            raise InvalidOffer(f"the {m.kind} section lists no codecs")
        ufrag = ufrag or m.ice.usernameFragment
    if ufrag is None:
        raise InvalidOffer("every media section of the offer is disabled")
    return OfferSummary(
        candidates=candidates,
        sends=frozenset(m.kind for m in media if m.port and m.direction in _SENDING),
        receives=frozenset(m.kind for m in media if m.port and m.direction in _RECEIVING),
        ice_ufrag=ufrag,
        lines=tuple(
            MediaLine(m.kind, m.direction if m.port else "inactive", m.rtp.muxId, _red(m))
            for m in media
        ),
    )


def _red(media) -> int | None:
    """The payload type of the m-line's RED codec whose blocks are all its Opus, if any."""
    codecs = media.rtp.codecs
    opus = next((c.payloadType for c in codecs if c.mimeType.lower() == "audio/opus"), None)
    if opus is None:
        return None
    for codec in codecs:
        if codec.mimeType.lower() == "audio/red" and codec.payloadType is not None:
            blocks = [key for key in codec.parameters if "/" in key]
            if blocks and all(set(key.split("/")) == {str(opus)} for key in blocks):
                return codec.payloadType
    return None


def without_data_channels(sdp: str) -> tuple[str, list[tuple[int, str | None]]]:
    """``sdp`` (normalised, CRLF) without its m=application sections, and where they were.

    The server opens no data channel; aiortc would accept one (an SCTP association per
    viewer for nothing). So the offer aiortc sees has no such m-line, and
    :func:`reject_data_channels` puts each back into the answer, rejected (port 0), at
    its place: the answer keeps the offer's m-lines in order, as SDP requires.
    Returns ``(sdp, [(m-line index, mid), ...])``.
    """
    head, *sections = sdp.split("\r\nm=")
    kept, removed = [], []
    for index, section in enumerate(sections):
        if section.startswith("application "):
            mid = next(
                (
                    line[len("a=mid:") :]
                    for line in section.split("\r\n")
                    if line.startswith("a=mid:")
                ),
                None,
            )
            removed.append((index, mid))
        else:
            kept.append(section)
    if not removed:
        return sdp, []
    gone = {mid for _, mid in removed if mid is not None}
    lines = []
    for line in head.split("\r\n"):
        if line.startswith("a=group:BUNDLE"):
            line = " ".join(word for word in line.split(" ") if word not in gone)
        lines.append(line)
    result = "\r\n".join(lines) + "".join("\r\nm=" + section for section in kept)
    return (result if result.endswith("\r\n") else result + "\r\n"), removed


def reject_data_channels(answer: str, removed: list[tuple[int, str | None]]) -> str:
    """Put the offer's m=application lines back into ``answer``, rejected (port 0)."""
    if not removed:
        return answer
    head, *sections = answer.rstrip("\r\n").split("\r\nm=")
    # a rejected m-line needs no ICE or DTLS lines, but some parsers (aiortc's) want them
    transport = [
        line
        for line in (sections[0].split("\r\n") if sections else [])
        if line.startswith(("a=ice-ufrag:", "a=ice-pwd:", "a=fingerprint:", "a=setup:"))
    ]
    for index, mid in removed:
        rejected = "\r\n".join(
            ["application 0 UDP/DTLS/SCTP webrtc-datachannel", "c=IN IP4 0.0.0.0", *transport]
        )
        if mid is not None:
            rejected += f"\r\na=mid:{mid}"
        sections.insert(min(index, len(sections)), rejected)
    return head + "".join("\r\nm=" + section for section in sections) + "\r\n"


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
    check_bounds(fragment, "fragment", InvalidTrickle)
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
            if len(result.candidates) > MAX_CANDIDATES:  # indented lines escape the count
                raise InvalidTrickle(
                    f"the fragment has more than {MAX_CANDIDATES} ICE "
                    "candidates; at most that many are accepted per session"
                )
        elif line == "a=end-of-candidates":
            result.end_of_candidates = True
        elif not (line[:2] in ("a=", "m=", "c=") or line.startswith("a=group")):
            raise InvalidTrickle(f"unexpected line in a trickle fragment: {line!r}")
    if result.ice_ufrag is not None and result.ice_ufrag != session_ufrag:
        raise IceRestartUnsupported("ICE restart is not supported: publish again instead")
    return result

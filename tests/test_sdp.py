"""Offer and trickle checks of media/sdp.py on hand-written input."""

from __future__ import annotations

import pytest

from media.errors import IceRestartUnsupported, InvalidOffer, InvalidTrickle
from media.sdp import check_offer, keep_loopback_candidates, parse_trickle

from .support.peers import publisher_offer, viewer_offer


async def test_offer_summary_says_what_is_sent_and_received():
    published = check_offer(await publisher_offer())
    assert published.sends == {"audio", "video"} and published.receives == frozenset()
    watched = check_offer(await viewer_offer())
    assert watched.receives == {"audio", "video"} and watched.sends == frozenset()


async def test_lf_only_offers_are_accepted():
    offer = (await publisher_offer()).replace("\r\n", "\n")
    assert check_offer(offer).sends == {"audio", "video"}


@pytest.mark.parametrize(
    "body,reason",
    [
        ("", "empty"),
        ("x=1", "v=0"),
        ("v=0\r\ns=-\r\n", "no audio or video"),
    ],
)
def test_garbage_offers_name_the_problem(body, reason):
    with pytest.raises(InvalidOffer, match=reason):
        check_offer(body)


async def test_non_loopback_candidates_are_dropped():
    offer = await publisher_offer()
    line = next(x for x in offer.split("\r\n") if x.startswith("a=candidate"))
    lan = line.replace("127.0.0.1", "192.0.2.7")
    mdns = line.replace("127.0.0.1", "0f6c2a1e-2b4c-4bd0-9a3e-0d54e8c1a1b2.local")
    mixed = offer.replace(line, "\r\n".join([line, lan, mdns]))
    kept = keep_loopback_candidates(mixed)
    assert line in kept and lan not in kept and mdns not in kept


def test_trickle_fragment_parsing_and_ice_restart():
    fragment = (
        "a=ice-ufrag:abcd\r\na=ice-pwd:secretsecretsecretsecret\r\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n"
        "a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host\r\n"
        "a=end-of-candidates\r\n"
    )
    parsed = parse_trickle(fragment, session_ufrag="abcd")
    assert [c.port for c in parsed.candidates] == [50000]
    assert parsed.candidates[0].sdpMid == "0" and parsed.end_of_candidates
    with pytest.raises(IceRestartUnsupported):
        parse_trickle(fragment, session_ufrag="other")
    with pytest.raises(InvalidTrickle):
        parse_trickle("a=candidate:garbage", session_ufrag="abcd")

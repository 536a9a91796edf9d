"""Bad input on the media endpoints: a clear status, the contract's error code, no peer left."""

from __future__ import annotations

from aiortc import RTCPeerConnection

from server.keys import MEDIA

from .support.api import auth, error_code
from .support.peers import (
    NO_ICE_SERVERS,
    SDP,
    gathered_offer,
    publisher_offer,
    viewer_offer,
)


def open_sessions(client) -> int:
    return sum(
        len(room.viewers) + (room.publisher is not None)
        for room in client.app[MEDIA]._rooms.values()
    )


async def test_malformed_or_empty_sdp_is_400_and_leaves_no_peer(client, clerk_token, live_meeting):
    url = f"/whip/{live_meeting['id']}"
    offer = await publisher_offer()
    for body in (
        "",
        "hello",
        "v=0\r\n",
        offer.replace("a=fingerprint", "a=nofingerprint"),
        offer.replace("a=ice-ufrag", "a=ice-nope"),
        "v=0\r\nm=video\r\n",
    ):
        response = await client.post(url, data=body, headers={**SDP, **auth(clerk_token)})
        assert response.status == 400, body[:40]
        assert await error_code(response) == "bad_request"
    # a viewer's recvonly offer is not a publication either
    response = await client.post(
        url, data=await viewer_offer(), headers={**SDP, **auth(clerk_token)}
    )
    assert response.status == 400
    assert open_sessions(client) == 0


async def test_whep_offer_that_receives_nothing_is_400(client, live_meeting):
    response = await client.post(
        f"/whep/{live_meeting['id']}", data=await publisher_offer(), headers=SDP
    )
    assert response.status == 400 and await error_code(response) == "bad_request"
    assert open_sessions(client) == 0


async def test_whip_needs_a_committee_token(client, clerk_token, live_meeting):
    url = f"/whip/{live_meeting['id']}"
    offer = await publisher_offer()
    for headers in ({}, auth("not-a-token"), {"Authorization": "Bearer"}):
        response = await client.post(url, data=offer, headers={**SDP, **headers})
        assert response.status == 401
        assert await error_code(response) == "unauthorized"


async def test_unknown_meeting_is_404(client, clerk_token):
    offer = await publisher_offer()
    for url in ("/whip/424242", "/whip/abc"):
        response = await client.post(url, data=offer, headers={**SDP, **auth(clerk_token)})
        assert response.status == 404 and await error_code(response) == "not_found"
    response = await client.post("/whep/424242", data=await viewer_offer(), headers=SDP)
    assert response.status == 404 and await error_code(response) == "not_found"


async def test_meeting_not_live_is_409(client, clerk_token):
    created = await (
        await client.post(
            "/api/meetings", json={"title": "t", "allow_guests": True}, headers=auth(clerk_token)
        )
    ).json()
    response = await client.post(
        f"/whip/{created['id']}", data=await publisher_offer(), headers={**SDP, **auth(clerk_token)}
    )
    assert response.status == 409 and await error_code(response) == "conflict"
    response = await client.post(f"/whep/{created['id']}", data=await viewer_offer(), headers=SDP)
    assert response.status == 409 and await error_code(response) == "conflict"


async def test_oversized_sdp_is_413(client, clerk_token, live_meeting):
    body = "v=0\r\n" + "a=x-padding:" + "x" * 70_000 + "\r\n"
    response = await client.post(
        f"/whip/{live_meeting['id']}", data=body, headers={**SDP, **auth(clerk_token)}
    )
    assert response.status == 413 and await error_code(response) == "too_large"


async def test_wrong_content_type_is_415(client, clerk_token, live_meeting):
    response = await client.post(
        f"/whip/{live_meeting['id']}",
        data=await publisher_offer(),
        headers={"Content-Type": "text/plain", **auth(clerk_token)},
    )
    assert response.status == 415 and await error_code(response) == "unsupported_media_type"


async def test_whep_to_members_only_meeting_needs_a_token(client, clerk_token):
    created = await (
        await client.post("/api/meetings", json={"title": "t"}, headers=auth(clerk_token))
    ).json()
    await client.post(f"/api/meetings/{created['id']}/start", headers=auth(clerk_token))
    response = await client.post(f"/whep/{created['id']}", data=await viewer_offer(), headers=SDP)
    assert response.status == 401 and await error_code(response) == "unauthorized"


async def test_cors_preflight_and_exposed_headers(client, clerk_token, live_meeting):
    response = await client.options(
        f"/whep/{live_meeting['id']}",
        headers={"Origin": "https://player.example", "Access-Control-Request-Method": "POST"},
    )
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    exposed = response.headers["Access-Control-Expose-Headers"]
    for header in ("Location", "Link", "ETag"):
        assert header in exposed
    assert "POST" in response.headers["Access-Control-Allow-Methods"]


async def test_trickle_patch_adds_candidates_and_refuses_ice_restart(client, live_meeting):
    pc = RTCPeerConnection(NO_ICE_SERVERS)
    pc.addTransceiver("video", direction="recvonly")
    try:
        offer = await gathered_offer(pc)
        # send the offer without its candidates, as a trickling browser does
        lines = offer.splitlines()
        stripped = (
            "\r\n".join(
                x for x in lines if not x.startswith("a=candidate") and x != "a=end-of-candidates"
            )
            + "\r\n"
        )
        candidates = [x for x in lines if x.startswith("a=candidate")]
        ufrag = next(x for x in lines if x.startswith("a=ice-ufrag"))
        pwd = next(x for x in lines if x.startswith("a=ice-pwd"))
        mid = next(x for x in lines if x.startswith("a=mid"))
        response = await client.post(f"/whep/{live_meeting['id']}", data=stripped, headers=SDP)
        assert response.status == 201
        location, etag = response.headers["Location"], response.headers["ETag"]

        fragment = (
            "\r\n".join(
                [
                    ufrag,
                    pwd,
                    "m=video 9 UDP/TLS/RTP/SAVPF 0",
                    mid,
                    *candidates,
                    "a=end-of-candidates",
                ]
            )
            + "\r\n"
        )
        patch = await client.patch(
            location,
            data=fragment,
            headers={"Content-Type": "application/trickle-ice-sdpfrag", "If-Match": etag},
        )
        assert patch.status == 204
        hub_session = client.app[MEDIA].session(str(live_meeting["id"]), location.rsplit("/", 1)[1])
        remote = hub_session.pc.getTransceivers()[
            0
        ].receiver.transport.transport.getRemoteCandidates()
        assert len(remote) == len(candidates) >= 1

        restart = fragment.replace(ufrag, "a=ice-ufrag:newufrag")
        response = await client.patch(
            location, data=restart, headers={"Content-Type": "application/trickle-ice-sdpfrag"}
        )
        assert response.status == 422
        garbage = await client.patch(
            location,
            data="a=candidate:nonsense",
            headers={"Content-Type": "application/trickle-ice-sdpfrag"},
        )
        assert garbage.status == 400
        stale = await client.patch(
            location,
            data=fragment,
            headers={"Content-Type": "application/trickle-ice-sdpfrag", "If-Match": '"other"'},
        )
        assert stale.status == 412
    finally:
        await pc.close()

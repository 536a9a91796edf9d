"""The whole media path with real aiortc peers: WHIP in, WHEP out, on loopback."""

from __future__ import annotations

import asyncio

from server.keys import MEDIA

from .support.peers import Publisher, Viewer


async def test_two_viewers_receive_published_video_and_audio(client, clerk_token, live_meeting):
    publisher = Publisher(width=640, height=480)
    viewers = [Viewer(), Viewer()]
    try:
        await publisher.publish(client, live_meeting["id"], clerk_token)
        for viewer in viewers:
            await viewer.watch(client, live_meeting["id"])
        await asyncio.gather(*(v.wait_for(video=60, audio=10, timeout=10) for v in viewers))
        for viewer in viewers:
            assert viewer.sizes == {(640, 480)}
        assert client.app[MEDIA].stats(str(live_meeting["id"])).viewers == 2
    finally:
        for viewer in viewers:
            await viewer.close()
        await publisher.close()


async def test_second_publisher_replaces_the_first_and_viewers_keep_playing(
    client, clerk_token, live_meeting
):
    first, second = Publisher(width=320, height=240), Publisher(width=640, height=360)
    viewer = Viewer()
    try:
        await first.publish(client, live_meeting["id"], clerk_token)
        await viewer.watch(client, live_meeting["id"])
        await viewer.wait_for(video=20)
        assert (320, 240) in viewer.sizes

        await second.publish(client, live_meeting["id"], clerk_token)
        # the host's phone reconnected: the old peer connection is hung up ...
        for _ in range(100):
            if first.pc.connectionState == "closed" or first.pc.iceConnectionState in (
                "closed",
                "failed",
            ):
                break
            await asyncio.sleep(0.05)
        hub = client.app[MEDIA]
        assert hub.room(str(live_meeting["id"])).publisher.id == second.location.rsplit("/", 1)[1]
        # ... and the same viewer, without renegotiating, now gets the new camera
        for _ in range(200):
            if (640, 360) in viewer.sizes:
                break
            await asyncio.sleep(0.05)
        assert (640, 360) in viewer.sizes
        before = viewer.video_frames
        await viewer.wait_for(video=before + 20)
    finally:
        await viewer.close()
        await first.close()
        await second.close()


async def test_delete_ends_sessions_and_meeting_end_hangs_up_everyone(
    client, clerk_token, live_meeting
):
    publisher, viewer = Publisher(), Viewer()
    meeting_id = live_meeting["id"]
    hub = client.app[MEDIA]
    try:
        await publisher.publish(client, meeting_id, clerk_token)
        await viewer.watch(client, meeting_id)
        await viewer.wait_for(video=5)

        response = await client.delete(viewer.location)
        assert response.status == 200
        assert hub.stats(str(meeting_id)).viewers == 0
        response = await client.delete(viewer.location)
        assert response.status == 404

        response = await client.post(
            f"/api/meetings/{meeting_id}/end", headers={"Authorization": f"Bearer {clerk_token}"}
        )
        assert response.status == 200
        assert hub.stats(str(meeting_id)).publishing is False
        response = await client.delete(
            publisher.location, headers={"Authorization": f"Bearer {clerk_token}"}
        )
        assert response.status == 404
    finally:
        await viewer.close()
        await publisher.close()

"""Every live meeting is recorded: real aiortc publishers, real files read back with ffmpeg.

The publisher's camera shows the wall clock (tests/support/peers.py ClockVideoTrack), so
the tests can check what the recording shows at a timeline event's ``t``
against when the event really happened.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from media import postprocess
from server.archive import lifecycle
from server.keys import ARCHIVE, MEDIA, SETTINGS
from server.services import replays

from .support.api import auth
from .support.peers import NO_ICE_SERVERS, ClockVideoTrack, Publisher, gathered_offer, read_clock
from .support.recording import (
    SEGMENT,
    at_time,
    audio_samples,
    codecs,
    duration,
    frame_at,
    playlist_seconds,
    publishing,
    recording_of,
    sleep_until,
    tone_level,
    wait_recording,
)

RECORD_SECONDS = 30
CHAT_AT = 12


def part_directory(client, meeting_id: int, part: int = 1):
    return client.app[SETTINGS].recordings_dir / f"{meeting_id}/{part}"


async def test_thirty_second_meetings_are_recorded_and_replay_agrees_with_the_timeline(
    client, clerk_token, live_meeting, room_of
):
    """An H.264 and a VP8 meeting, published and recorded at the same time, each 30 s."""
    second = await (
        await client.post(
            "/api/meetings",
            json={"title": "第二个会", "agenda": [{"title": "议程"}]},
            headers=auth(clerk_token),
        )
    ).json()
    await client.post(f"/api/meetings/{second['id']}/start", headers=auth(clerk_token))
    recorded = await asyncio.gather(
        record_thirty_seconds(client, clerk_token, live_meeting, room_of, "video/H264"),
        record_thirty_seconds(client, clerk_token, second, room_of, "video/VP8"),
    )
    # read back only once both are over (ffmpeg here blocks the event loop)
    for facts in recorded:
        await check_recording(client, clerk_token, **facts)


async def record_thirty_seconds(client, clerk_token, meeting, room_of, codec) -> dict:
    """Publish with a clock for a camera; a chat line at second 12; end at 30."""
    meeting_id = meeting["id"]
    epoch = time.time()
    publisher = Publisher(codec=codec, video=ClockVideoTrack(epoch, 320, 240))
    room = room_of(meeting)
    try:
        await publisher.publish(client, meeting_id, clerk_token)
        live = await wait_recording(
            client, clerk_token, meeting_id, lambda r: r["started_at"], timeout=15
        )
        assert live["status"] == "recording" and live["mp4"] is None
        started = at_time(live["started_at"])
        clerk, _ = await room.join(clerk_token)

        # the host page's "recording" and its duration, live
        await sleep_until(started + 4)
        _, now = await recording_of(client, clerk_token, meeting_id)
        assert now["status"] == "recording" and 3.5 <= now["duration"] <= 6
        # while recording, the MP4 is not ready: 409 with the progress, not a half file
        early = await client.get(
            now["hls"].rsplit("/", 1)[0] + "/meeting.mp4", headers=auth(clerk_token)
        )
        assert early.status == 409
        assert (await early.json())["error"]["code"] == "processing"
        # live HLS: a playlist with segments anyone allowed can fetch
        playlist = await client.get(now["hls"], headers=auth(clerk_token))
        assert playlist.status == 200 and (await playlist.text()).startswith("#EXTM3U")
        playlist = await client.get(now["renditions"]["full"], headers=auth(clerk_token))
        assert playlist.status == 200 and "#EXTINF" in await playlist.text()

        await sleep_until(started + CHAT_AT)
        ack = await clerk.call("chat:send", {"text": "第12秒的发言"})
        assert ack["ok"], ack
        await sleep_until(started + RECORD_SECONDS)
        ended = await client.post(f"/api/meetings/{meeting_id}/end", headers=auth(clerk_token))
        assert ended.status == 200
        published = time.time() - started
    finally:
        await publisher.close()
    done = await wait_recording(
        client, clerk_token, meeting_id, lambda r: r["status"] not in ("recording", "processing")
    )
    return {
        "meeting_id": meeting_id,
        "codec": codec,
        "epoch": epoch,
        "started": started,
        "published": published,
        "done": done,
    }


async def check_recording(
    client, clerk_token, *, meeting_id, codec, epoch, started, published, done
) -> None:
    assert done["status"] == "ready", done
    assert done["video_codec"] == codec.lower()
    assert {s: v["status"] for s, v in done["steps"].items()} == {
        "hls": "done",
        "mp4": "done",
        "audio": "done",
        "thumbnails": "done",
    }
    directory = part_directory(client, meeting_id)

    # the MP4 and the HLS playlist last as long as the meeting was published
    mp4 = directory / postprocess.MP4
    assert abs(duration(mp4) - published) <= SEGMENT, (duration(mp4), published)
    assert abs(done["duration"] - published) <= SEGMENT
    assert codecs(mp4) == [("video", "h264"), ("audio", "aac")]  # VP8: transcoded once
    assert abs(playlist_seconds(directory / "index.m3u8") - published) <= SEGMENT
    assert abs(duration(directory / "index.m3u8") - published) <= SEGMENT
    assert (directory / "index.m3u8").read_text().rstrip().endswith("#EXT-X-ENDLIST")
    # the master playlist names the low picture, the full one and the sound alone, all ended
    assert done["hls"].endswith("/master.m3u8")
    assert set(done["renditions"]) == {"low", "full", "audio"}
    for name in ("low.m3u8", "audio.m3u8"):
        assert name in (directory / "master.m3u8").read_text()
        assert (directory / name).read_text().rstrip().endswith("#EXT-X-ENDLIST")
        assert abs(playlist_seconds(directory / name) - published) <= SEGMENT
    # the small audio-only file: audio, nothing else, the whole meeting
    audio = directory / postprocess.AUDIO
    assert codecs(audio) == [("audio", "aac")]
    assert abs(duration(audio) - published) <= SEGMENT
    assert audio.stat().st_size < mp4.stat().st_size

    # downloads through the server: by id, with range requests for seeking
    whole = await client.get(done["mp4"], headers=auth(clerk_token))
    assert whole.status == 200 and whole.headers["Content-Type"] == "video/mp4"
    assert len(await whole.read()) == mp4.stat().st_size
    ranged = await client.get(done["mp4"], headers={**auth(clerk_token), "Range": "bytes=100-199"})
    assert ranged.status == 206 and len(await ranged.read()) == 100
    assert (await client.get(done["audio"], headers=auth(clerk_token))).status == 200

    # the chat line sent at second 12 is at 12 on the timeline, and the replay's
    # picture at that t was shot when the line was sent
    timeline = await (
        await client.get(f"/api/meetings/{meeting_id}/timeline", headers=auth(clerk_token))
    ).json()
    chat = next(e for e in timeline["events"] if e["type"] == "chat:message")
    assert abs(chat["t"] - CHAT_AT) <= 0.5, chat
    shot = read_clock(frame_at(mp4, chat["t"]), epoch)
    assert abs(shot - at_time(chat["at"])) <= 0.5, (shot, at_time(chat["at"]))
    # and the same holds at the end and the start of the recording
    assert abs(read_clock(frame_at(mp4, 1.0), epoch) - (started + 1.0)) <= 0.5


@pytest.mark.parametrize("hall_microphone", [True, False])
async def test_the_floor_speakers_voice_is_in_the_recording(
    client, clerk_token, live_meeting, hall_microphone
):
    """The hall's microphone plays 440 Hz, the floor speaker 1000 Hz: both are in the file.

    Also when the hall sends a picture only: the floor's voice is the recording's sound.
    """
    from aiortc import RTCPeerConnection, RTCSessionDescription

    from .support.peers import ToneAudioTrack

    class HighTone(ToneAudioTrack):
        async def recv(self):
            frame = await super().recv()
            import math

            import numpy as np

            n = frame.samples
            t = (np.arange(n) + frame.pts) / self.RATE
            samples = (np.sin(2 * math.pi * 1000 * t) * 8000).astype(np.int16).reshape(1, -1)
            import av

            out = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
            out.sample_rate, out.pts, out.time_base = frame.sample_rate, frame.pts, frame.time_base
            return out

    meeting_id = live_meeting["id"]
    hub = client.app[MEDIA]
    publisher = Publisher(width=320, height=240, audio=hall_microphone)
    speaker = RTCPeerConnection(NO_ICE_SERVERS)
    speaker.addTransceiver(HighTone(), direction="sendonly")
    try:
        await publisher.publish(client, meeting_id, clerk_token)
        live = await wait_recording(
            client, clerk_token, meeting_id, lambda r: r["started_at"], timeout=15
        )
        started = at_time(live["started_at"])
        await sleep_until(started + 3)
        # the floor, as the media hub sees it (who may speak is tested in test_floor_media.py)
        session = await hub.publish_floor(str(meeting_id), await gathered_offer(speaker))
        await speaker.setRemoteDescription(
            RTCSessionDescription(sdp=session.answer_sdp, type="answer")
        )
        floor_from = time.time() - started
        await sleep_until(started + 8)
        await hub.stop_floor(str(meeting_id))
        floor_to = time.time() - started
        await sleep_until(started + 11)
        await client.post(f"/api/meetings/{meeting_id}/end", headers=auth(clerk_token))
    finally:
        await publisher.close()
        await speaker.close()
    await wait_recording(client, clerk_token, meeting_id, lambda r: r["status"] == "ready")
    rate = 16000
    sound = audio_samples(part_directory(client, meeting_id) / postprocess.AUDIO, rate)

    def window(a: float, b: float):
        return sound[int(a * rate) : int(b * rate)]

    during = window(floor_from + 1.0, floor_to - 0.5)
    before = window(0.5, floor_from - 0.5)
    assert tone_level(during, rate, 1000) > 0.1, "the floor speaker is not in the recording"
    assert tone_level(before, rate, 1000) < 0.01
    if hall_microphone:
        assert tone_level(during, rate, 440) > 0.1, "the hall went silent while the floor spoke"
        assert tone_level(before, rate, 440) > 0.2
    else:
        assert np.abs(before).max() < 0.01  # silence, not noise, before anyone spoke


async def test_an_audio_only_publisher_is_recorded(client, clerk_token, live_meeting):
    from aiortc import RTCPeerConnection, RTCSessionDescription

    from .support.peers import ToneAudioTrack

    meeting_id = live_meeting["id"]
    pc = RTCPeerConnection(NO_ICE_SERVERS)
    pc.addTransceiver(ToneAudioTrack(), direction="sendonly")
    try:
        response = await client.post(
            f"/whip/{meeting_id}",
            data=await gathered_offer(pc),
            headers={**auth(clerk_token), "Content-Type": "application/sdp"},
        )
        assert response.status == 201
        await pc.setRemoteDescription(
            RTCSessionDescription(sdp=await response.text(), type="answer")
        )
        live = await wait_recording(
            client, clerk_token, meeting_id, lambda r: r["started_at"], timeout=15
        )
        await sleep_until(at_time(live["started_at"]) + 5)
        await client.post(f"/api/meetings/{meeting_id}/end", headers=auth(clerk_token))
    finally:
        await pc.close()
    done = await wait_recording(client, clerk_token, meeting_id, lambda r: r["status"] == "ready")
    directory = part_directory(client, meeting_id)
    assert codecs(directory / postprocess.MP4) == [("audio", "aac")]
    assert abs(duration(directory / postprocess.MP4) - 5) <= SEGMENT
    assert done["audio"] and done["thumbnails"] == {}
    # its live HLS is sound only: the master names one variant, which is also "audio"
    assert done["hls"].endswith("/master.m3u8")
    assert done["renditions"] == {
        "full": done["renditions"]["full"],
        "audio": done["renditions"]["full"],
    }
    assert 'CODECS="mp4a.40.2"' in (directory / "master.m3u8").read_text()


async def test_a_meeting_nobody_published_in_leaves_no_recording(client, clerk_token, live_meeting):
    meeting_id = live_meeting["id"]
    status, body = await recording_of(client, clerk_token, meeting_id)
    assert status == 404 and body["error"]["code"] == "not_found"
    await client.post(f"/api/meetings/{meeting_id}/end", headers=auth(clerk_token))
    status, _ = await recording_of(client, clerk_token, meeting_id)
    assert status == 404
    assert not part_directory(client, meeting_id).exists()
    assert client.app[ARCHIVE].lifecycle.active == {}


async def test_a_recording_that_could_not_start_is_tried_again(
    client, clerk_token, live_meeting, monkeypatch
):
    """The database refuses the new part once (busy, failing over): the host's publish
    is recorded anyway, without anyone publishing again."""
    meeting_id = live_meeting["id"]
    real_new_part = replays.new_part
    refused: list[int] = []

    async def busy_once(db, meeting):
        if not refused:
            refused.append(meeting.id)
            raise RuntimeError("database is locked")
        return await real_new_part(db, meeting)

    monkeypatch.setattr(replays, "new_part", busy_once)
    monkeypatch.setattr(lifecycle, "RESTART_DELAY", 0.2)
    async with publishing(client, clerk_token, meeting_id) as started_at:
        assert refused == [meeting_id]
        status, body = await recording_of(client, clerk_token, meeting_id)
        assert status == 200 and body["status"] == "recording" and started_at > 0
    await client.post(f"/api/meetings/{meeting_id}/end", headers=auth(clerk_token))
    await wait_recording(client, clerk_token, meeting_id, lambda r: r["status"] == "ready")

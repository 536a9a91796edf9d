"""``kill -9`` of the server mid-meeting: the recording, the chat and the votes survive.

The server runs as a real child process (``python -m server serve``); the test
publishes into it with a real aiortc peer, kills it with SIGKILL 20 s into the
recording, starts it again on the same database and recordings folder, and
reads the files back with ffprobe.
"""

from __future__ import annotations

import asyncio
import subprocess

import aiohttp
import pytest

from media import postprocess

from .support.api import PASSWORD, auth
from .support.peers import Publisher
from .support.processes import Remote, ServerProcess
from .support.realtime import Recorder
from .support.recording import at_time, codecs, duration, sleep_until

KILL_AFTER = 10  # seconds of recording before the kill: several 2 s fragments


@pytest.fixture
def server_process(tmp_path):
    process = ServerProcess(tmp_path)
    yield process
    process.stop()


async def test_kill_minus_nine_leaves_a_playable_recording_listed_as_interrupted(
    server_process, tmp_path
):
    created = server_process.cli("admin", "create-user", "clerk", "--password", PASSWORD)
    assert created.returncode == 0, created.stderr
    await server_process.start()
    publisher = Publisher(width=320, height=240)
    person = Recorder()
    async with aiohttp.ClientSession() as http:
        login = await (
            await http.post(
                server_process.url + "/api/login", json={"username": "clerk", "password": PASSWORD}
            )
        ).json()
        token = login["token"]
        meeting = await (
            await http.post(
                server_process.url + "/api/meetings",
                json={"title": "村民会议", "agenda": [{"title": "修路"}]},
                headers=auth(token),
            )
        ).json()
        meeting_id = meeting["id"]
        await http.post(
            f"{server_process.url}/api/meetings/{meeting_id}/start", headers=auth(token)
        )
        await publisher.publish(Remote(http, server_process.url), meeting_id, token)
        recording = {}
        for _ in range(100):
            recording = await (
                await http.get(
                    f"{server_process.url}/api/meetings/{meeting_id}/recording", headers=auth(token)
                )
            ).json()
            if recording.get("started_at"):
                break
            await asyncio.sleep(0.1)
        started = at_time(recording["started_at"])
        # a committed chat line and a committed vote, before the crash
        await person.connect(Remote(http, server_process.url), token)
        assert (await person.call("join", {"meeting_id": meeting_id}))["ok"]
        assert (await person.call("chat:send", {"text": "断电前的最后一句"}))["ok"]
        opened = await person.call(
            "vote:open",
            {
                "item_id": meeting["agenda"][0]["id"],
                "question": "修路?",
                "secret": False,
                "rule": "simple_majority",
            },
        )
        assert opened["ok"], opened
        await sleep_until(started + KILL_AFTER)
        await person.close()
        server_process.kill()
        await publisher.close()

        raw = tmp_path / "recordings" / f"{meeting_id}/1" / "raw.mp4"
        assert raw.exists()
        await server_process.start()  # the same database and recordings folder
        for _ in range(300):
            recording = await (
                await http.get(
                    f"{server_process.url}/api/meetings/{meeting_id}/recording", headers=auth(token)
                )
            ).json()
            if recording["status"] not in ("recording", "processing"):
                break
            await asyncio.sleep(0.1)
        assert recording["status"] == "interrupted", recording
        assert recording["interrupted"] is True and recording["mp4"] and recording["audio"]
        directory = tmp_path / "recordings" / f"{meeting_id}/1"
        mp4 = directory / postprocess.MP4
        assert duration(mp4) >= KILL_AFTER - 5, duration(mp4)
        assert codecs(mp4) == [("video", "h264"), ("audio", "aac")]
        # the whole file decodes, the crash's torn last fragment aside
        check = subprocess.run(
            ["ffmpeg", "-v", "error", "-i", str(mp4), "-f", "null", "-"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert check.returncode == 0, check.stderr
        assert raw.exists()  # the raw recording is kept, never deleted
        # every rendition of the live HLS is ended, the master names them all, and
        # nothing of ffmpeg's private playlists is left
        for name in ("index.m3u8", "low.m3u8", "audio.m3u8"):
            playlist = (directory / name).read_text()
            assert "#EXTINF" in playlist and playlist.rstrip().endswith("#EXT-X-ENDLIST"), name
            assert name in (directory / "master.m3u8").read_text()
        assert not list(directory.glob(".*.live.m3u8"))
        assert recording["hls"].endswith("/master.m3u8")
        assert set(recording["renditions"]) == {"low", "full", "audio"}
        master = await http.get(server_process.url + recording["hls"], headers=auth(token))
        assert master.status == 200 and "low.m3u8" in await master.text()
        served = await http.get(server_process.url + recording["mp4"], headers=auth(token))
        assert served.status == 200

        # every committed chat line and vote survived
        timeline = await (
            await http.get(
                f"{server_process.url}/api/meetings/{meeting_id}/timeline", headers=auth(token)
            )
        ).json()
        types = [e["type"] for e in timeline["events"]]
        assert "chat:message" in types and "vote:opened" in types
        chat = next(e for e in timeline["events"] if e["type"] == "chat:message")
        assert chat["text"] == "断电前的最后一句"
        votes = await (
            await http.get(
                f"{server_process.url}/api/meetings/{meeting_id}/votes", headers=auth(token)
            )
        ).json()
        assert len(votes["votes"]) == 1

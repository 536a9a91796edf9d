"""Recording files are served by id only; failures keep the raw file; retention keeps the record."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import timedelta

import pytest
from yarl import URL

from media import postprocess
from server.keys import ARCHIVE, DATABASE, MEDIA, SETTINGS
from server.services import accounts, replays
from server.store import Meeting, Recording, utcnow

from .support.api import PASSWORD, auth
from .support.recording import duration, publishing, recording_of, sleep_until, wait_recording


@pytest.fixture
async def recorded(client, clerk_token, live_meeting):
    """A live meeting published for 5 s, ended, its recording ready."""
    meeting_id = live_meeting["id"]
    async with publishing(client, clerk_token, meeting_id) as started:
        await sleep_until(started + 5)
        await client.post(f"/api/meetings/{meeting_id}/end", headers=auth(clerk_token))
    done = await wait_recording(client, clerk_token, meeting_id, lambda r: r["status"] == "ready")
    return {
        "meeting": live_meeting,
        "recording": done,
        "directory": client.app[SETTINGS].recordings_dir / f"{meeting_id}/1",
    }


TRAVERSALS = [
    "../../../etc/passwd",
    "..%2F..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "%252e%252e%252fetc%252fpasswd",
    "..%5c..%5cetc%5cpasswd",
    "%2Fetc%2Fpasswd",
    "/etc/passwd",
    "raw.mp4",  # a real file in the folder, but not one that is served
    ".lock",
    "meeting.mp4%00.jpg",
    "seg_00000.ts/../../raw.mp4",
    "index.m3u8%2F..%2F..%2F..%2Fdata%2Fsecret_key",
]


async def test_path_traversal_in_every_spelling_is_404(client, clerk_token, recorded):
    meeting_id = recorded["meeting"]["id"]
    headers = auth(clerk_token)
    good = await client.get(f"/recordings/{meeting_id}/1/index.m3u8", headers=headers)
    assert good.status == 200
    base = str(client.make_url("")).rstrip("/")
    for tail in TRAVERSALS:
        # sent exactly as written: no client-side normalising of "..", no re-encoding
        url = URL(f"{base}/recordings/{meeting_id}/1/{tail}", encoded=True)
        response = await client.session.get(url, headers=headers)
        assert response.status == 404, (tail, response.status)
        body = await response.read()
        assert b"root:" not in body and b"ftyp" not in body
    for part in ("..", "%2e%2e", "1%2F..", "-1", "2/../1", "99"):
        url = URL(f"{base}/recordings/{meeting_id}/{part}/index.m3u8", encoded=True)
        response = await client.session.get(url, headers=headers)
        assert response.status == 404, (part, response.status)
    for meeting in ("..", "%2e%2e", "abc", "99999", f"{meeting_id}/..%2F{meeting_id}"):
        url = URL(f"{base}/recordings/{meeting}/1/index.m3u8", encoded=True)
        response = await client.session.get(url, headers=headers)
        assert response.status == 404, (meeting, response.status)


async def test_recordings_of_a_meeting_the_viewer_may_not_see_are_refused(
    client, clerk_token, recorded
):
    meeting_id = recorded["meeting"]["id"]
    async with client.app[DATABASE].session() as db:
        await accounts.create_user(db, "b-clerk", PASSWORD, village="李家村")
        meeting = await db.get(Meeting, meeting_id)
        meeting.allow_guests = False  # members only from now on
        db.add(meeting)
        await db.commit()
    other = (
        await (
            await client.post("/api/login", json={"username": "b-clerk", "password": PASSWORD})
        ).json()
    )["token"]
    client.session.cookie_jar.clear()
    for url in (
        recorded["recording"]["mp4"],
        recorded["recording"]["hls"],
        f"/api/meetings/{meeting_id}/recording",
    ):
        assert (await client.get(url)).status == 401
        assert (await client.get(url, headers=auth(other))).status == 404
        assert (await client.get(url, headers=auth(clerk_token))).status == 200


async def test_a_failed_step_shows_its_reason_keeps_the_raw_file_and_the_published_one(
    client, clerk_token, recorded
):
    meeting_id = recorded["meeting"]["id"]
    directory = recorded["directory"]
    raw, mp4 = directory / "raw.mp4", directory / postprocess.MP4
    published = mp4.read_bytes()
    kept = directory.parent / "raw.kept"
    shutil.copy(raw, kept)
    raw.write_bytes(b"\x00\x00\x00\x18ftypisom this is not a recording" * 10)  # damaged
    os.utime(raw, (mp4.stat().st_mtime + 5,) * 2)  # newer than its MP4: the step runs again
    recording_id = await _recording_id(client, meeting_id)
    async with client.app[DATABASE].session() as db:  # as if processing had not run yet
        await replays.update(db, recording_id, status="processing", steps={})
    await client.app[ARCHIVE].postprocessing.process(recording_id)

    status = await (
        await client.get(f"/api/meetings/{meeting_id}/recording", headers=auth(clerk_token))
    ).json()
    assert status["status"] == "failed"
    assert status["steps"]["mp4"]["status"] == "failed" and status["steps"]["mp4"]["error"]
    assert status["error"].startswith("mp4: ")
    assert raw.exists()  # the raw recording is kept
    assert mp4.read_bytes() == published  # never replaced by a half-made file
    assert not list(directory.glob(".*.tmp*"))  # no temporary file left behind
    refused = await client.get(f"/recordings/{meeting_id}/1/meeting.mp4", headers=auth(clerk_token))
    assert refused.status == 409
    assert (await refused.json())["error"]["code"] == "processing_failed"

    # the committee retries once the cause is mended; finished steps are not redone
    shutil.copy(kept, raw)
    os.utime(raw, (mp4.stat().st_mtime + 10,) * 2)
    members_only = await client.post(f"/api/meetings/{meeting_id}/recording/retry")
    assert members_only.status == 401
    retried = await client.post(
        f"/api/meetings/{meeting_id}/recording/retry", headers=auth(clerk_token)
    )
    assert retried.status == 202
    done = await wait_recording(client, clerk_token, meeting_id, lambda r: r["status"] == "ready")
    assert done["error"] is None and abs(duration(mp4) - 5) <= 2.0
    again = await client.post(
        f"/api/meetings/{meeting_id}/recording/retry", headers=auth(clerk_token)
    )
    assert again.status == 409  # nothing has failed


async def test_retention_removes_old_media_but_never_the_minutes_or_events(
    client, clerk_token, recorded
):
    meeting_id = recorded["meeting"]["id"]
    recordings = client.app[ARCHIVE]
    assert await recordings.sweep_retention() == 0  # RECORDINGS_RETENTION_DAYS=0: forever
    object.__setattr__(client.app[SETTINGS], "recordings_retention_days", 30)
    assert await recordings.sweep_retention() == 0  # ended today: kept
    async with client.app[DATABASE].session() as db:
        meeting = await db.get(Meeting, meeting_id)
        meeting.ended_at = utcnow() - timedelta(days=31)
        db.add(meeting)
        await db.commit()
    events_before = await (
        await client.get(f"/api/meetings/{meeting_id}/timeline", headers=auth(clerk_token))
    ).json()
    assert await recordings.sweep_retention() == 1
    status = await (
        await client.get(f"/api/meetings/{meeting_id}/recording", headers=auth(clerk_token))
    ).json()
    assert status["status"] == "expired" and status["mp4"] is None and status["hls"] is None
    assert not recorded["directory"].exists()
    gone = await client.get(recorded["recording"]["mp4"], headers=auth(clerk_token))
    assert gone.status == 404
    events_after = await (
        await client.get(f"/api/meetings/{meeting_id}/timeline", headers=auth(clerk_token))
    ).json()
    assert events_after == events_before
    minutes = await client.get(f"/api/meetings/{meeting_id}/minutes.md", headers=auth(clerk_token))
    assert minutes.status == 200


async def _recording_id(client, meeting_id: int) -> int:
    from sqlmodel import select

    async with client.app[DATABASE].session() as db:
        found = await db.exec(select(Recording).where(Recording.meeting_id == meeting_id))
        return found.first().id


async def test_a_part_whose_files_are_gone_fails_with_a_reason_not_forever_processing(
    client, clerk_token, recorded
):
    meeting_id = recorded["meeting"]["id"]
    shutil.move(recorded["directory"], recorded["directory"].parent / "moved-away")
    recording_id = await _recording_id(client, meeting_id)
    async with client.app[DATABASE].session() as db:
        await replays.update(db, recording_id, status="failed")
    retried = await client.post(
        f"/api/meetings/{meeting_id}/recording/retry", headers=auth(clerk_token)
    )
    assert retried.status == 202
    done = await wait_recording(
        client, clerk_token, meeting_id, lambda r: r["status"] != "processing", timeout=10
    )
    assert done["status"] == "failed" and "missing" in done["error"]
    assert str(client.app[SETTINGS].recordings_dir) not in done["error"]  # no server paths


async def test_a_meeting_that_ended_is_never_recorded_again(client, clerk_token, live_meeting):
    """A WHIP publish racing the end: the late start finds the meeting over and records nothing."""
    meeting_id = live_meeting["id"]
    await client.post(f"/api/meetings/{meeting_id}/end", headers=auth(clerk_token))
    await client.app[ARCHIVE].lifecycle.ensure_recording(meeting_id)  # as a publisher on the air
    status, _ = await recording_of(client, clerk_token, meeting_id)
    assert status == 404
    assert client.app[ARCHIVE].lifecycle.active == {}
    assert client.app[MEDIA].recorder(str(meeting_id)) is None


async def test_a_meeting_ended_by_another_process_stops_recording_here(
    client, clerk_token, live_meeting
):
    """/end served by another process: the process recording it notices and finishes the file."""
    meeting_id = live_meeting["id"]
    async with publishing(client, clerk_token, meeting_id) as started:
        await sleep_until(started + 3)
        async with client.app[DATABASE].session() as db:  # as the other process's /end does
            meeting = await db.get(Meeting, meeting_id)
            meeting.status, meeting.ended_at = "ended", utcnow()
            db.add(meeting)
            await db.commit()
        done = await wait_recording(
            client, clerk_token, meeting_id, lambda r: r["status"] == "ready", timeout=30
        )
    assert abs(done["duration"] - 3) <= 7  # stopped within the check interval (5 s)
    assert client.app[MEDIA].stats(str(meeting_id)).publishing is False  # hung up too


@pytest.mark.parametrize("kept", ["nothing", "half its header"])
async def test_an_mp4_cut_before_its_first_fragment_is_made_from_the_live_segments(tmp_path, kept):
    """A full disk stopped the MP4's writes before its header was out (ffmpeg buffers the
    MP4 in 32 KB; the HLS segments were already written): the downloadable MP4 is made
    from the segments, not lost."""
    source = (
        *("-v", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10"),
        *("-f", "lavfi", "-i", "sine=frequency=440", "-t", "4", "-c:v", "libx264", "-g", "10"),
        *("-c:a", "aac"),
    )
    hls = ("-f", "hls", "-hls_time", "1", "-hls_list_size", "0")
    segment_names = str(tmp_path / "seg%05d.ts")
    playlist = str(tmp_path / postprocess.PLAYLIST)
    fragmented = ("-movflags", "frag_keyframe+empty_moov", "-f", "mp4")
    raw = tmp_path / postprocess.RAW_MP4
    for output in (
        (*hls, "-hls_segment_filename", segment_names, playlist),
        (*fragmented, str(raw)),
    ):
        subprocess.run(["ffmpeg", *source, *output], check=True, timeout=60)
    # what the disk kept of the fragmented MP4
    data = raw.read_bytes()
    raw.write_bytes(b"" if kept == "nothing" else data[: data.index(b"moov") + 100])
    assert not await postprocess.duration_of(raw)

    mp4 = await postprocess.faststart_mp4(tmp_path, 4.0)
    assert abs((await postprocess.duration_of(mp4) or 0) - 4.0) < 0.5
    kinds = {s["codec_type"] for s in (await postprocess.probe(mp4))["streams"]}
    assert kinds == {"video", "audio"}

"""Live HLS that saves data: a master playlist naming a low picture, the full one and sound alone.

A real aiortc publisher sends a 640×480 picture and a tone; the recorder makes the
renditions once; the files are read back with ffprobe, and their bitrates measured
from the segments on disk (what a viewer's data plan pays).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from server.keys import SETTINGS

from .support.api import auth
from .support.recording import (
    SEGMENT,
    master_variants,
    measured_kbps,
    playlist_seconds,
    probe,
    publishing,
    sleep_until,
    wait_recording,
)

PUBLISH_SECONDS = 10


def has_master(body: dict) -> bool:
    return bool(body.get("hls")) and body["hls"].endswith("/master.m3u8")


def has_every_rendition(body: dict) -> bool:
    """The master names all three (a low encoder behind on a busy machine joins it later)."""
    return has_master(body) and {"audio", "low", "full"} <= set(body.get("renditions") or {})


async def record(
    client, token: str, meeting_id: int, *, check_live, ready=has_every_rendition
) -> tuple[dict, Path]:
    """Publish 640×480 for PUBLISH_SECONDS (``check_live(recording)`` once ``ready``), end, wait."""
    async with publishing(client, token, meeting_id, width=640, height=480) as started:
        live = await wait_recording(client, token, meeting_id, ready, timeout=60)
        await check_live(live)
        await sleep_until(started + PUBLISH_SECONDS)
        await client.post(f"/api/meetings/{meeting_id}/end", headers=auth(token))
    done = await wait_recording(client, token, meeting_id, lambda r: r["status"] == "ready")
    return done, client.app[SETTINGS].recordings_dir / f"{meeting_id}/1"


async def test_the_master_playlist_names_a_low_picture_the_full_one_and_the_sound_alone(
    client, clerk_token, live_meeting
):
    meeting_id = live_meeting["id"]
    headers = auth(clerk_token)

    async def check_live(live: dict) -> None:
        # while the meeting goes on: the master and every rendition are served
        assert live["status"] == "recording"
        assert set(live["renditions"]) == {"audio", "low", "full"}, live["renditions"]
        master = await client.get(live["hls"], headers=headers)
        assert master.status == 200
        assert master.headers["Content-Type"] == "application/vnd.apple.mpegurl"
        assert master.headers["Cache-Control"].endswith("max-age=1")  # it is rewritten
        text = await master.text()
        # players start at the first variant: the low one
        assert [name for name, _ in master_variants(text)] == [
            "low.m3u8",
            "index.m3u8",
            "audio.m3u8",
        ], text
        for kind, url in live["renditions"].items():
            playlist = await client.get(url, headers=headers)
            assert playlist.status == 200, kind
            body = await playlist.text()
            segment = next(line for line in body.splitlines() if line and line[0] != "#")
            served = await client.get(url.rsplit("/", 1)[0] + "/" + segment, headers=headers)
            assert served.status == 200 and served.headers["Content-Type"] == "video/mp2t"
            assert "immutable" in served.headers["Cache-Control"]

    done, directory = await record(client, clerk_token, meeting_id, check_live=check_live)
    assert done["hls"].endswith("/master.m3u8")
    assert set(done["renditions"]) == {"audio", "low", "full"}
    assert done["parts"][0]["renditions"] == done["renditions"]

    variants = dict(master_variants((directory / "master.m3u8").read_text()))
    assert set(variants) == {"low.m3u8", "index.m3u8", "audio.m3u8"}
    for name in variants:
        playlist = directory / name
        text = playlist.read_text()
        assert text.rstrip().endswith("#EXT-X-ENDLIST"), name  # finished: players stop
        assert abs(playlist_seconds(playlist) - PUBLISH_SECONDS) <= 2 * SEGMENT, name
        # each plays as a whole (ffprobe reads it through the playlist)
        assert float(probe(playlist)["format"]["duration"]) > PUBLISH_SECONDS - 2 * SEGMENT
    assert not list(directory.glob(".*.live.m3u8"))  # ffmpeg's private copies are gone

    # the sound alone: AAC, no picture, at most 48 kbit/s as stored
    audio = directory / "audio.m3u8"
    assert [(s["codec_type"], s["codec_name"]) for s in probe(audio)["streams"]] == [
        ("audio", "aac")
    ]
    assert measured_kbps(audio) <= 48, measured_kbps(audio)
    assert 'CODECS="mp4a.40.2"' in variants["audio.m3u8"]
    assert "RESOLUTION" not in variants["audio.m3u8"]

    # the low picture: at most 360 lines, the aspect kept, at most 300 kbit/s with its sound
    low = directory / "low.m3u8"
    streams = {s["codec_type"]: s for s in probe(low)["streams"]}
    assert streams["video"]["codec_name"] == "h264" and streams["audio"]["codec_name"] == "aac"
    assert (streams["video"]["width"], streams["video"]["height"]) == (480, 360)
    assert measured_kbps(low) <= 300, measured_kbps(low)
    assert "RESOLUTION=480x360" in variants["low.m3u8"]
    assert "RESOLUTION=640x480" in variants["index.m3u8"]
    # the master's bandwidths are the measured ones
    average = int(variants["low.m3u8"].split("AVERAGE-BANDWIDTH=")[1].split(",")[0])
    assert abs(average / 1000 - measured_kbps(low)) <= 5, (average, measured_kbps(low))

    # the sound is the same in every rendition: encoded once
    full = directory / "index.m3u8"
    assert [s["codec_type"] for s in probe(full)["streams"]] == ["video", "audio"]
    assert all(s["codec_name"] != "opus" for s in probe(full)["streams"])


async def test_a_node_may_turn_the_low_rendition_off(client, clerk_token, live_meeting):
    object.__setattr__(client.app[SETTINGS], "hls_low_rendition", False)
    meeting_id = live_meeting["id"]

    async def check_live(live: dict) -> None:
        assert set(live["renditions"]) == {"audio", "full"}, live["renditions"]

    done, directory = await record(
        client, clerk_token, meeting_id, check_live=check_live, ready=has_master
    )
    variants = dict(master_variants((directory / "master.m3u8").read_text()))
    assert set(variants) == {"index.m3u8", "audio.m3u8"}
    assert not list(directory.glob("low*"))
    assert set(done["renditions"]) == {"audio", "full"}


@pytest.mark.parametrize("name", ["master.m3u8", "low.m3u8", "audio.m3u8", "low_00000.ts"])
async def test_rendition_files_are_served_with_the_recordings_access_check(
    client, clerk_token, live_meeting, name
):
    meeting_id = live_meeting["id"]
    async with publishing(client, clerk_token, meeting_id) as started:
        await wait_recording(client, clerk_token, meeting_id, has_every_rendition, timeout=60)
        url = f"/recordings/{meeting_id}/1/{name}"
        assert (await client.get(url, headers=auth(clerk_token))).status == 200
        assert (await client.get(url + ".tmp", headers=auth(clerk_token))).status == 404
        await sleep_until(started + 1)


def test_the_published_playlist_keeps_every_segment_of_ffmpegs_window(tmp_path):
    """ffmpeg lists only the last WINDOW segments (its list costs memory per segment);
    the served playlist is still the whole event playlist, in order, ended at the end."""
    from media.renditions import WINDOW, PublishedPlaylist

    variant = PublishedPlaylist(tmp_path, "index.m3u8", ".live.m3u8")
    total = WINDOW * 3
    for n in range(1, total + 1):
        (tmp_path / f"index_{n - 1:05d}.ts").write_bytes(b"ts")
        first = max(0, n - WINDOW)
        window = [
            "#EXTM3U",
            "#EXT-X-VERSION:3",
            f"#EXT-X-TARGETDURATION:{3 if n == 5 else 2}",
            f"#EXT-X-MEDIA-SEQUENCE:{first}",
            "#EXT-X-INDEPENDENT-SEGMENTS",
        ]
        for k in range(first, n):
            window += [f"#EXTINF:{2.5 if k == 4 else 2.0:.6f},", f"index_{k:05d}.ts"]
        if n == total:
            window.append("#EXT-X-ENDLIST")
        (tmp_path / ".live.m3u8").write_text("\n".join(window) + "\n")
        variant._seen = None  # the same second and size can repeat here
        assert variant.publish()
    served = (tmp_path / "index.m3u8").read_text().splitlines()
    uris = [line for line in served if line and not line.startswith("#")]
    assert uris == [f"index_{k:05d}.ts" for k in range(total)]
    assert "#EXT-X-MEDIA-SEQUENCE:0" in served and "#EXT-X-PLAYLIST-TYPE:EVENT" in served
    assert "#EXT-X-TARGETDURATION:3" in served  # the longest segment's, though out of the window
    assert served[served.index("index_00004.ts") - 1] == "#EXTINF:2.500000,"
    assert served[-1] == "#EXT-X-ENDLIST" and variant.ended
    assert len(variant.segments) == total

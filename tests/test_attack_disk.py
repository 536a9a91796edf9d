"""Full and read-only disks: health says so, and a full disk never destroys a recording.

The database and the recordings live on small tmpfs mounts the tests make (they
need root; they are skipped, loudly, when mounting is not permitted). Before:
``/healthz`` answered 200 while SQLite refused every write; a recordings disk
that filled up mid-meeting left the live playlist at 0 bytes, marked the part
failed, and made an empty part marked failed every 5 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import re
import shutil
import subprocess
import time
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import event
from sqlmodel import select

from media import recorder
from media.files import free_bytes
from server.app import create_app
from server.archive.disk import STOPPED_DISK_FULL
from server.keys import DATABASE
from server.services import accounts
from server.settings import Settings
from server.store import Event

from .support.api import PASSWORD, auth, server_env
from .support.databases import ADMIN_DSN, fresh_database
from .support.peers import Publisher, Viewer
from .support.realtime import Recorder
from .support.recording import duration, playlist_seconds, probe, wait_recording


@contextlib.contextmanager
def tmpfs(directory: Path, size: str):
    directory.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(
            f"SKIPPED LOUDLY: these tests need to mount a tmpfs (as root): {mounted.stderr.strip()}"
        )
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


def fill(directory: Path, name: str = "filler", leave: int = 0) -> Path:
    """Take the file system's free space, all of it or all but ``leave`` bytes."""
    path = directory / name
    with open(path, "ab") as file:
        with contextlib.suppress(OSError):  # ENOSPC: full, as wanted
            while (free := free_bytes(directory) - leave) > 0:
                file.write(b"\0" * min(free, 1 << 20))
                file.flush()
    return path


def part_stopped(index: int):
    """A predicate for ``wait_recording``: part ``index`` (0-based) is no longer recording."""
    return lambda recording: recording["parts"][index]["status"] != "recording"


def app_settings(tmp_path: Path, **env) -> Settings:
    return Settings.from_env(
        {
            **server_env(tmp_path),
            **env,
        }
    )


async def health(
    client, path: str = "/healthz", want: int | None = None, timeout: float = 5.0
) -> tuple[int, dict]:
    """The health answer; with ``want``, polled until it is that (results are cached ~1 s)."""
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(path)
        body = await response.json()
        if want is None or response.status == want or time.monotonic() > deadline:
            return response.status, body
        await asyncio.sleep(0.2)


async def test_a_full_database_disk_makes_health_503_until_space_is_freed(aiohttp_client, tmp_path):
    with tmpfs(tmp_path / "data", "2m") as data:
        client = await aiohttp_client(create_app(app_settings(tmp_path)))
        status, body = await health(client)
        assert status == 200 and body == {"ok": True, "database": "ok", "recordings": "ok"}

        filler = fill(data)
        status, body = await health(client, want=503)
        assert status == 503, body
        assert body["ok"] is False and body["database"] == "full"
        assert body["failed"] == ["database"] and body["recordings"] == "ok"
        assert body["error"]["code"] == "unavailable" and "database" in body["error"]["message"]
        status, ready = await health(client, "/readyz", want=503)
        assert status == 503 and ready["database"] == "full" and ready["failed"] == ["database"]
        # the server is not down for readers: the public list still answers
        assert (await client.get("/api/meetings")).status == 200

        filler.unlink()
        status, body = await health(client, want=200)
        assert status == 200 and body["ok"] is True and body["database"] == "ok"
        assert (await health(client, "/readyz", want=200))[0] == 200


async def test_a_database_that_refuses_writes_is_not_healthy(client):
    """Read-only (as a replica, or a file the server may no longer write): 503 "read-only"."""
    database = client.app[DATABASE]
    assert (await client.get("/healthz")).status == 200

    def read_only(connection, _record):
        connection.execute("PRAGMA query_only=ON")

    event.listen(database.engine.sync_engine, "connect", read_only)
    await database.engine.dispose()  # new connections: read-only ones
    try:
        status, body = await health(client, want=503)
        assert status == 503 and body["database"] == "read-only", body
        # reads still work, and so does the answer's shape
        assert (await client.get("/api/meetings")).status == 200
    finally:
        event.remove(database.engine.sync_engine, "connect", read_only)
        await database.engine.dispose()
    status, body = await health(client, want=200)
    assert status == 200, body


async def test_a_read_only_postgresql_is_not_healthy(aiohttp_client, tmp_path):
    """A PostgreSQL that answers but refuses writes (a standby, a read-only database)."""
    async with fresh_database("cunhui_health") as url:
        client = await aiohttp_client(create_app(app_settings(tmp_path, DATABASE_URL=url)))
        try:
            assert (await health(client))[0] == 200
            name = url.rsplit("/", 1)[1]
            admin = await asyncpg.connect(ADMIN_DSN, timeout=3)
            try:
                await admin.execute(
                    f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'
                )
                await client.app[DATABASE].engine.dispose()  # new sessions: read-only
                status, body = await health(client, want=503)
                assert status == 503 and body["database"] == "read-only", body
                status, ready = await health(client, "/readyz", want=503)
                assert status == 503 and ready["failed"] == ["database"], ready
                await admin.execute(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
                await client.app[DATABASE].engine.dispose()
            finally:
                await admin.close()
            assert (await health(client, want=200))[0] == 200
        finally:
            await client.close()


async def test_a_full_recordings_disk_makes_health_503_naming_recordings(aiohttp_client, tmp_path):
    with tmpfs(tmp_path / "recordings", "2m") as recordings:
        client = await aiohttp_client(create_app(app_settings(tmp_path)))
        assert (await health(client))[0] == 200
        filler = fill(recordings)
        status, body = await health(client, want=503)
        assert status == 503 and body["recordings"].startswith("full"), body
        assert body["failed"] == ["recordings"] and body["database"] == "ok"
        # readiness is about the database and Redis: still ready to serve
        assert (await client.get("/readyz")).status == 200
        filler.unlink()
        assert (await health(client, want=200))[0] == 200


async def test_health_ignores_a_full_recordings_disk_when_nothing_is_recorded(
    aiohttp_client, tmp_path
):
    with tmpfs(tmp_path / "recordings", "1m") as recordings:
        client = await aiohttp_client(create_app(app_settings(tmp_path, RECORD_MEETINGS="0")))
        fill(recordings)
        status, body = await health(client)
        assert status == 200 and body["recordings"] == "off", body


async def test_a_recordings_disk_filling_up_mid_meeting_loses_nothing(
    aiohttp_client, tmp_path, caplog, monkeypatch
):
    """The disk fills while a meeting is live: viewers keep watching, what was recorded is
    kept whole and listed as interrupted (never failed, never a 0-byte playlist), health
    says why, the host page says "磁盘已满，录制已暂停" (``paused: "disk_full"``, rendered
    by the page's own module), chat and votes are stored, and recording (a new part) and
    post-processing resume by themselves once space is freed."""
    caplog.set_level(logging.INFO)
    with tmpfs(tmp_path / "recordings", "8m") as recordings:
        client = await aiohttp_client(create_app(app_settings(tmp_path)))
        async with client.app[DATABASE].session() as db:
            await accounts.create_user(db, "clerk", PASSWORD)
        token = (
            await (
                await client.post("/api/login", json={"username": "clerk", "password": PASSWORD})
            ).json()
        )["token"]
        meeting = await (
            await client.post(
                "/api/meetings",
                json={"title": "村民会议", "agenda": [{"title": "修路"}]},
                headers=auth(token),
            )
        ).json()
        meeting_id = meeting["id"]
        await client.post(f"/api/meetings/{meeting_id}/start", headers=auth(token))

        publisher, viewer = Publisher(width=320, height=240), Viewer(decode=False)
        watching = True
        sizes: dict[Path, list[int]] = {}

        async def watch_playlists() -> None:
            """Every 20 ms, the size of each part's live playlist (a player's view)."""
            while watching:
                for playlist in recordings.glob(f"{meeting_id}/*/index.m3u8"):
                    with contextlib.suppress(FileNotFoundError):
                        sizes.setdefault(playlist, []).append(playlist.stat().st_size)
                await asyncio.sleep(0.02)

        watcher = asyncio.ensure_future(watch_playlists())
        host = Recorder()  # the host page's socket: it shows what recording:status says
        try:
            await host.connect(client, token)
            assert (await host.call("join", {"meeting_id": meeting_id}))["ok"]
            await publisher.publish(client, meeting_id, token)
            await viewer.watch(client, meeting_id, token)
            await viewer.wait_for(video=10, timeout=15)
            part1 = recordings / f"{meeting_id}/1"
            await wait_until(lambda: segments(part1) >= 1, 20)

            # the disk fills up: most of it at once, the recording itself does the rest
            filler = fill(recordings, leave=(1 << 20) + 300_000)
            stopped = await wait_recording(
                client,
                token,
                meeting_id,
                part_stopped(0),
                timeout=30,
            )
            first = stopped["parts"][0]
            assert first["status"] == "processing" and first["interrupted"] is True, first
            assert first["error"].startswith(STOPPED_DISK_FULL), first
            assert first["hls"], first  # still playable as HLS meanwhile
            status, body = await health(client, want=503)
            assert status == 503 and body["recordings"].startswith("full"), body

            # the host page says so, in its words: "磁盘已满，录制已暂停"
            assert stopped["paused"] == "disk_full", stopped
            told = await host.wait_for(
                "recording:status", lambda d: d.get("paused") == "disk_full", timeout=10
            )
            assert told["parts"][0]["interrupted"] is True
            zh = await host_page_strings(client, token, meeting_id, "zh-CN")
            assert render_recording_status(zh, told)["text"] == "磁盘已满，录制已暂停"
            en = await host_page_strings(client, token, meeting_id, "en")
            assert render_recording_status(en, stopped) == {
                "text": "Disk full: recording paused",
                "status": "paused",
                "hidden": False,
            }

            # the meeting goes on: the viewer still gets pictures, chat and votes are stored
            frames = viewer.video_frames
            chat = await host.call("chat:send", {"text": "磁盘满了也能发言"})
            vote = await host.call("vote:open", {"question": "录像满了还表决吗?"})
            assert chat["ok"] and vote["ok"], (chat, vote)
            assert (await host.call("vote:close", {"vote_id": vote["vote_id"]}))["ok"]
            await wait_until(lambda: viewer.video_frames >= frames + 20, 10)

            # nothing is destroyed: the playlist is whole, every listed segment plays
            check_playable(part1)
            assert duration(part1 / "raw.mp4") > 1.0
            await asyncio.sleep(SPACE_CHECK + 1)  # no new part on a full disk
            listed = await parts_of(client, token, meeting_id)
            assert [p["part"] for p in listed] == [1], listed

            # space is freed: part 1 is processed, recording resumes as part 2
            filler.unlink()
            resumed = await wait_recording(
                client,
                token,
                meeting_id,
                lambda r: (
                    len(r["parts"]) == 2
                    and r["parts"][1]["started_at"]
                    and r["parts"][0]["status"] == "interrupted"
                ),
                timeout=40,
            )
            assert resumed["paused"] is None, resumed
            first = resumed["parts"][0]
            assert first["mp4"] and first["error"] == STOPPED_DISK_FULL, first
            # the host page is told (nobody pressed anything): recording again, part 2
            back = await host.wait_for(
                "recording:status",
                lambda d: d.get("paused") is None and len(d["parts"]) == 2,
                timeout=10,
            )
            assert back["parts"][1]["status"] == "recording", back
            assert "磁盘" not in render_recording_status(zh, back)["text"]
            assert duration(part1 / "meeting.mp4") > 1.0
            assert (await health(client, want=200))[0] == 200

            # now all at once, and the writer does not look first: a write fails (ENOSPC)
            monkeypatch.setattr(recorder, "MIN_FREE_BYTES", 0)
            part2 = recordings / f"{meeting_id}/2"
            await wait_until(lambda: segments(part2) >= 1, 20)
            filler = fill(recordings)
            cut = await wait_recording(
                client,
                token,
                meeting_id,
                part_stopped(1),
                timeout=30,
            )
            assert cut["parts"][1]["status"] == "processing", cut["parts"][1]
            assert cut["parts"][1]["interrupted"] is True
            check_playable(part2)
            frames = viewer.video_frames
            await wait_until(lambda: viewer.video_frames >= frames + 20, 10)

            await client.post(f"/api/meetings/{meeting_id}/end", headers=auth(token))
            filler.unlink()
            done = await wait_recording(
                client,
                token,
                meeting_id,
                lambda r: all(p["status"] not in ("recording", "processing") for p in r["parts"]),
                timeout=60,
            )
        finally:
            watching = False
            await watcher
            await host.close()
            await viewer.close()
            await publisher.close()

        # nothing the meeting did while the disk was full is lost
        async with client.app[DATABASE].session() as db:
            stored = (
                await db.exec(select(Event.type, Event.data).where(Event.meeting_id == meeting_id))
            ).all()
        assert ("chat:message", "磁盘满了也能发言") in [
            (kind, data.get("text")) for kind, data in stored
        ]
        assert {"vote:opened", "vote:closed"} <= {kind for kind, _ in stored}

        assert any(
            "No space left on device" in r.getMessage()
            for r in caplog.records
            if r.name == "media.recorder"
        )  # the second time, a write failed
        assert [p["status"] for p in done["parts"]] == ["interrupted", "interrupted"], done
        assert all(p["mp4"] for p in done["parts"])
        # a player never saw an empty or missing-then-empty playlist
        assert sizes and all(min(seen) > 0 for seen in sizes.values()), {
            str(p): min(s) for p, s in sizes.items()
        }
        # a warning per episode of a full disk and one per part waiting to be processed,
        # not one per frame, attempt or step
        warnings = [
            r.getMessage()
            for r in caplog.records
            if r.levelno >= logging.WARNING and r.name.startswith("server.archive")
        ]
        assert len([w for w in warnings if w.startswith("the recordings disk is full")]) == 2
        assert len([w for w in warnings if "waits for space" in w]) == 2, warnings
        assert len(warnings) == 6, warnings  # and "has space again", twice
        assert not [
            r
            for r in caplog.records
            if r.levelno >= logging.ERROR
            and r.name.startswith(("server.archive", "media.recorder"))
        ]


SPACE_CHECK = 2.0  # server.archive.SPACE_CHECK_SECONDS
RECORDING_STATUS_JS = Path(__file__).resolve().parent.parent / (
    "web/static/components/recording-status.js"
)
#: the host page's recording line, rendered by its own module with a stand-in DOM
RENDER_JS = """
const [strings, payload, module] = process.argv.slice(1);
class Node {
  constructor() { this.children = []; this.dataset = {}; this.hidden = false; this.text = ""; }
  set textContent(v) { this.text = String(v); this.children = []; }
  get textContent() {
    const parts = this.children.map((c) => (typeof c === "string" ? c : c.textContent));
    return this.text + parts.join("");
  }
  append(...nodes) { this.children.push(...nodes); }
  replaceChildren() { this.children = []; this.text = ""; }
  addEventListener() {}
}
globalThis.document = {
  getElementById: (id) => (id === "i18n" ? { textContent: strings } : null),
  createElement: () => new Node(),
};
globalThis.setInterval = () => 0;
const { createRecordingStatus } = await import(module);
const root = new Node();
createRecordingStatus({ meetingId: 1, root }).update(JSON.parse(payload));
const shown = { text: root.textContent, status: root.dataset.status, hidden: root.hidden };
console.log(JSON.stringify(shown));
"""


async def host_page_strings(client, token: str, meeting_id: int, language: str) -> str:
    """The host page's translated strings for its scripts (its ``#i18n`` JSON)."""
    response = await client.get(
        f"/meetings/{meeting_id}/host",
        headers={**auth(token), "Accept-Language": language},
    )
    assert response.status == 200
    found = re.search(
        r'<script type="application/json" id="i18n">(.*?)</script>', await response.text(), re.S
    )
    assert found, "no i18n block on the host page"
    return html.unescape(found.group(1))


def render_recording_status(strings: str, recording: dict) -> dict:
    """What web/static/components/recording-status.js shows for ``recording`` (node)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("SKIPPED LOUDLY: node is needed to render the host page's recording line")
    shown = subprocess.run(
        [
            node,
            "--experimental-default-type=module",
            "--input-type=module",
            "-e",
            RENDER_JS,
            strings,
            json.dumps(recording),
            RECORDING_STATUS_JS.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def segments(directory: Path) -> int:
    try:
        text = (directory / "index.m3u8").read_text()
    except FileNotFoundError:
        return 0
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def check_playable(directory: Path) -> None:
    """The published playlist lists only whole segments, and ffmpeg decodes each of them.

    (Segment by segment: a playlist cut short has no end mark yet, and a player of
    a live playlist would wait for more.)
    """
    playlist = directory / "index.m3u8"
    text = playlist.read_text()
    assert text.startswith("#EXTM3U") and "#EXTINF" in text, text
    assert playlist_seconds(playlist) > 1.0, text
    for line in text.splitlines():
        if line and not line.startswith("#"):
            segment = directory / line
            assert float(probe(segment)["format"]["duration"]) > 0, line
            decoded = subprocess.run(
                ["ffmpeg", "-v", "error", "-i", str(segment), "-f", "null", "-"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert decoded.returncode == 0 and not decoded.stderr.strip(), decoded.stderr


async def parts_of(client, token: str, meeting_id: int) -> list[dict]:
    response = await client.get(f"/api/meetings/{meeting_id}/recording", headers=auth(token))
    return (await response.json())["parts"]


async def wait_until(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)

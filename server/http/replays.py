"""The replay over HTTP: the recording's status, its files (by id, never by path), retries.

Files are named by the meeting id, the part number and one of a fixed set of
names (:data:`FILE_NAME`); anything else, including every spelling of ``..``
or an absolute path, is a 404 before the disk is touched. MP4 and audio answer
HTTP range requests (206) for seeking; HLS files may be cached by any HTTP
cache or CDN (segments never change once written).
"""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

from media import postprocess
from media.files import MASTER_PLAYLIST, VARIANT_PLAYLISTS

from .. import keys
from ..errors import Conflict, NotFound, Phrase, ProcessingFailed, StillProcessing
from ..services import replays
from ..services.replays import file_url
from ..store import Recording, pk
from .api import meeting_to_run, meeting_to_watch

routes = web.RouteTableDef()

#: the only file names ever served (the live HLS: the master playlist, the variant
#: playlists index, low and audio, and their segments seg_, low_ and audio_NNNNN.ts)
FILE_NAME = re.compile(
    r"^(?:meeting\.mp4|audio\.m4a|(?:master|index|low|audio)\.m3u8"
    r"|(?:seg|low|audio)_\d{5}\.ts|thumb_\d{1,12}\.jpg)$"
)
#: the playlists that change while a part is recorded
PLAYLISTS = {MASTER_PLAYLIST, *VARIANT_PLAYLISTS}
#: the status of a recording with no part yet (``?if_none=empty``)
NOT_STARTED = "not_started"
#: files that exist only once post-processing made them
PROCESSED = {postprocess.MP4, postprocess.AUDIO}
CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".m4a": "audio/mp4",
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
    ".jpg": "image/jpeg",
}


@routes.get("/api/meetings/{id}/recording")
async def recording_status(request: web.Request) -> web.Response:
    """The recording's parts and files; nothing recorded (yet) is a 404, or with
    ``?if_none=empty`` a 200 ``{"status": "not_started", "parts": []}`` (the pages ask
    before the first picture, and a 404 would be an error in the browser's console)."""
    async with request.app[keys.DATABASE].session() as db:
        meeting = await meeting_to_watch(request, db)
        parts = await replays.parts(db, pk(meeting))
    # "disk_full" while a full recordings disk holds the recording up (else null)
    paused = request.app[keys.ARCHIVE].paused_reason(pk(meeting))
    if not parts:
        if request.query.get("if_none") == "empty" or paused:
            return web.json_response(
                {
                    "meeting_id": pk(meeting),
                    "status": NOT_STARTED,
                    "parts": [],
                    "thumbnails": {},
                    "paused": paused,
                }
            )
        raise NotFound("this meeting has no recording (yet)")
    root = request.app[keys.SETTINGS].recordings_dir
    payload = replays.describe(pk(meeting), parts, root)
    payload["paused"] = paused
    for part in payload["parts"]:
        part["thumbnails"] = _thumbnails(root, pk(meeting), part)
    payload["thumbnails"] = payload["parts"][0]["thumbnails"]
    return web.json_response(payload)


def _thumbnails(root: Path, meeting_id: int, part: dict) -> dict[str, str]:
    """{agenda item id: URL} for the part's thumbnails that exist."""
    if (part["steps"].get("thumbnails") or {}).get("status") != "done":
        return {}
    directory = root / f"{meeting_id}/{part['part']}"
    found = {}
    for path in sorted(directory.glob("thumb_*.jpg")):
        key = path.stem.removeprefix("thumb_")
        if key.isdigit():
            found[key] = file_url(meeting_id, part["part"], path.name)
    return found


@routes.post("/api/meetings/{id}/recording/retry")
async def retry_processing(request: web.Request) -> web.Response:
    """Run a failed part's post-processing again (committee); done steps are not redone."""
    async with request.app[keys.DATABASE].session() as db:
        meeting = await meeting_to_run(request, db)
        parts = await replays.parts(db, pk(meeting))
    failed = [p for p in parts if p.status == replays.FAILED]
    if not failed:
        raise Conflict("no part of this recording has failed")
    await request.app[keys.ARCHIVE].retry([pk(p) for p in failed])
    return web.json_response({"retrying": [p.part for p in failed]}, status=202)


@routes.get("/recordings/{id}/{part}/{name}")
async def recording_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    part_text = request.match_info["part"]
    if not FILE_NAME.match(name) or not part_text.isdigit() or len(part_text) > 6:
        raise NotFound("no such recording file")
    async with request.app[keys.DATABASE].session() as db:
        meeting = await meeting_to_watch(request, db)
        recording = await replays.get_part(db, pk(meeting), int(part_text))
    if recording.status == replays.EXPIRED:
        raise NotFound("this recording's media was removed after the retention period")
    if name in PROCESSED and recording.status not in replays.FINISHED:
        if recording.status == replays.FAILED:
            raise ProcessingFailed(
                "post-processing failed: {error}", params={"error": recording.error}
            )
        raise StillProcessing(
            "the recording is {status}; {name} is ready once processing ends",
            {"status": recording.status, "steps": recording.steps or {}},
            params={"status": Phrase(recording.status), "name": name},
        )
    root = Path(request.app[keys.SETTINGS].recordings_dir).resolve()
    path = (root / recording.directory / name).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise NotFound("no such recording file")
    response = web.FileResponse(
        path,
        headers={
            "Content-Type": CONTENT_TYPES[path.suffix],
            "Cache-Control": _cache_control(meeting.allow_guests, name, recording),
        },
    )
    return response


def _cache_control(public: bool, name: str, recording: Recording) -> str:
    scope = "public" if public else "private"
    if name in PLAYLISTS and recording.status == replays.RECORDING:
        # a live playlist grows every segment (the master's measured bandwidths change)
        return f"{scope}, max-age=1"
    if name.endswith(".ts"):
        return f"{scope}, max-age=31536000, immutable"
    return f"{scope}, max-age=3600"

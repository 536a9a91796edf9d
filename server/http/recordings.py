"""A meeting's recording: its status, its files (served by id, never by path), retries.

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
from media.recorder import PLAYLIST

from .. import keys
from ..errors import Conflict, NotFound
from ..services import recordings as store
from ..store import Recording, utcnow
from ..store.models import as_utc
from .api import meeting_to_run, meeting_to_watch

routes = web.RouteTableDef()

#: the only file names ever served (segments: the recorder's seg_NNNNN.ts)
FILE_NAME = re.compile(
    r"^(?:meeting\.mp4|audio\.m4a|index\.m3u8|seg_\d{5}\.ts|thumb_\d{1,12}\.jpg)$"
)
#: files that exist only once post-processing made them
PROCESSED = {postprocess.MP4, postprocess.AUDIO}
CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".m4a": "audio/mp4",
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
    ".jpg": "image/jpeg",
}


class StillProcessing(Conflict):
    """409 with the steps' progress, so a client can show how far processing is."""

    code = "processing"

    def __init__(self, message: str, progress: dict) -> None:
        super().__init__(message)
        self.progress = progress

    def as_dict(self) -> dict:
        return {**super().as_dict(), "details": self.progress}


def file_url(meeting_id: int, part: int, name: str) -> str:
    return f"/recordings/{meeting_id}/{part}/{name}"


def _part(recording: Recording, origin, root: Path) -> dict:
    finished = recording.status in store.FINISHED
    # the playlist is written once the first segment is complete (~2 s after the
    # first picture): a player given its URL earlier would only get a 404
    has_hls = (
        recording.started_at is not None
        and recording.status != store.EXPIRED
        and (root / recording.directory / PLAYLIST).exists()
    )
    started = as_utc(recording.started_at)
    return {
        "part": recording.part,
        "status": recording.status,
        "interrupted": recording.interrupted,
        "started_at": started.isoformat(timespec="milliseconds") if started else None,
        "offset": round((started - origin).total_seconds(), 3) if started and origin else None,
        "duration": _duration(recording),
        "video_codec": recording.video_codec or None,
        "hls": file_url(recording.meeting_id, recording.part, PLAYLIST) if has_hls else None,
        "mp4": file_url(recording.meeting_id, recording.part, postprocess.MP4)
        if finished
        else None,
        "audio": file_url(recording.meeting_id, recording.part, postprocess.AUDIO)
        if finished and (recording.steps or {}).get("audio", {}).get("status") == "done"
        else None,
        "steps": recording.steps or {},
        "error": recording.error or None,
    }


def _duration(recording: Recording) -> float | None:
    if recording.status == store.RECORDING and recording.started_at is not None:
        return round((utcnow() - as_utc(recording.started_at)).total_seconds(), 1)
    return recording.duration


def describe(app: web.Application, meeting_id: int, parts: list[Recording]) -> dict:
    """The contract's recording object: part 1 at the top level, every part in ``parts``."""
    origin = next((as_utc(p.started_at) for p in parts if p.started_at is not None), None)
    root = Path(app[keys.SETTINGS].recordings_dir)
    described = [_part(p, origin, root) for p in parts]
    first = dict(described[0])
    return {**first, "meeting_id": meeting_id, "parts": described}


@routes.get("/api/meetings/{id}/recording")
async def recording_status(request: web.Request) -> web.Response:
    async with request.app[keys.DATABASE].session() as db:
        meeting = await meeting_to_watch(request, db)
        parts = await store.parts(db, meeting.id)
    if not parts:
        raise NotFound("this meeting has no recording (yet)")
    payload = describe(request.app, meeting.id, parts)
    for part in payload["parts"]:
        part["thumbnails"] = _thumbnails(request, meeting.id, part)
    payload["thumbnails"] = payload["parts"][0]["thumbnails"]
    return web.json_response(payload)


def _thumbnails(request: web.Request, meeting_id: int, part: dict) -> dict:
    """{agenda item id: URL} for the part's thumbnails that exist."""
    if (part["steps"].get("thumbnails") or {}).get("status") != "done":
        return {}
    directory = Path(request.app[keys.SETTINGS].recordings_dir) / f"{meeting_id}/{part['part']}"
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
        parts = await store.parts(db, meeting.id)
    failed = [p for p in parts if p.status == store.FAILED]
    if not failed:
        raise Conflict("no part of this recording has failed")
    await request.app[keys.RECORDINGS].retry([p.id for p in failed])
    return web.json_response({"retrying": [p.part for p in failed]}, status=202)


@routes.get("/recordings/{id}/{part}/{name}")
async def recording_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    part_text = request.match_info["part"]
    if not FILE_NAME.match(name) or not part_text.isdigit() or len(part_text) > 6:
        raise NotFound("no such recording file")
    async with request.app[keys.DATABASE].session() as db:
        meeting = await meeting_to_watch(request, db)
        recording = await store.get_part(db, meeting.id, int(part_text))
    if recording.status == store.EXPIRED:
        raise NotFound("this recording's media was removed after the retention period")
    if name in PROCESSED and recording.status not in store.FINISHED:
        if recording.status == store.FAILED:
            raise Conflict(f"post-processing failed: {recording.error}", code="processing_failed")
        raise StillProcessing(
            f"the recording is {recording.status}; {name} is ready once processing ends",
            {"status": recording.status, "steps": recording.steps or {}},
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
    if name == PLAYLIST and recording.status == store.RECORDING:
        return f"{scope}, max-age=1"  # a live playlist grows every segment
    if name.startswith("seg_"):
        return f"{scope}, max-age=31536000, immutable"
    return f"{scope}, max-age=3600"

"""Text goes out compressed (brotli, else gzip); media and partial answers as they are."""

from __future__ import annotations

import asyncio
import gzip
import json
import re
from dataclasses import replace

import brotli
from aiohttp import web

from server.app import create_app
from server.http.compression import MIN_BYTES, FileCache, chosen_coding
from server.keys import DATABASE, SETTINGS
from server.services import replays
from server.settings import REPO_ROOT
from server.store import Recording

from .support.api import auth

STATIC = REPO_ROOT / "web" / "static"
VENDOR = REPO_ROOT / "web" / "node_modules"
IMPORT_MAP = re.compile(r'<script type="importmap">(.*?)</script>', re.S)
DECODE = {"br": brotli.decompress, "gzip": gzip.decompress}


async def fetch(client, url: str, encoding: str | None, **headers):
    """(response, raw body as sent, body decoded): asked with ``Accept-Encoding: encoding``
    (None: no such header at all, as a plain HTTP client sends)."""
    skip = ()
    if encoding is None:
        skip = ("Accept-Encoding",)
    else:
        headers["Accept-Encoding"] = encoding
    response = await client.get(url, headers=headers, skip_auto_headers=skip, auto_decompress=False)
    raw = await response.read()
    coding = response.headers.get("Content-Encoding")
    return response, raw, DECODE[coding](raw) if coding else raw


async def assert_each_coding(client, url: str, original: bytes, **headers) -> dict[str, int]:
    """``url`` answers ``original``: compressed for br and gzip, as it is without the header.
    The bytes sent per coding ("identity": without)."""
    sizes = {"identity": len(original)}
    for encoding, expected in (("br", "br"), ("gzip", "gzip"), ("gzip, deflate, br", "br")):
        response, raw, body = await fetch(client, url, encoding, **headers)
        assert response.status == 200, (url, encoding, response.status)
        assert response.headers.get("Content-Encoding") == expected, (url, encoding)
        assert "accept-encoding" in response.headers.get("Vary", "").lower(), url
        assert body == original, (url, encoding)
        assert len(raw) < len(original), (url, encoding)
        sizes[expected] = len(raw)
    for encoding in (None, "identity", "br;q=0, gzip;q=0"):
        response, raw, body = await fetch(client, url, encoding, **headers)
        assert response.status == 200 and "Content-Encoding" not in response.headers, (
            url,
            encoding,
        )
        assert raw == original, (url, encoding)
    return sizes


def test_the_coding_follows_accept_encoding():
    assert chosen_coding("gzip, deflate, br, zstd") == "br"
    assert chosen_coding("gzip, deflate") == "gzip"
    assert chosen_coding("gzip;q=1.0, br;q=0.5") == "gzip"
    assert chosen_coding("br;q=0, gzip") == "gzip"
    assert chosen_coding("*") == "br"
    assert chosen_coding("*, br;q=0") == "gzip"
    assert chosen_coding("identity") is None
    assert chosen_coding("") is None
    assert chosen_coding("deflate, br;q=nonsense") is None


async def test_pages_and_json_are_compressed_and_decode_to_the_same_bytes(
    client, clerk_token, live_meeting
):
    headers = auth(clerk_token)
    url = f"/meetings/{live_meeting['id']}/host"
    _, _, page = await fetch(client, url, None, **headers)
    assert b"<!doctype html>" in page and len(page) > 10_000
    sizes = await assert_each_coding(client, url, page, **headers)
    # a page is mostly markup and Chinese text: at least three times smaller
    assert sizes["br"] * 3 < len(page) and sizes["br"] <= sizes["gzip"]

    _, _, listed = await fetch(client, "/api/meetings", None, **headers)
    assert json.loads(listed)["meetings"] and len(listed) > MIN_BYTES
    await assert_each_coding(client, "/api/meetings", listed, **headers)


async def test_static_and_vendor_files_are_compressed_once_and_revalidate(client):
    html = await (await client.get("/login")).text()
    imports = json.loads(IMPORT_MAP.search(html).group(1))["imports"]
    # the light hls.js build is mapped beside the full one, for the live page's player
    for module in ("hls.js/hls.min.mjs", "hls.js/hls.light.min.mjs"):
        assert f"/vendor/{module}" in imports
    css = re.search(r'href="(/static/css/app\.css\?v=[0-9a-f]{10})"', html).group(1)
    light = imports["/vendor/hls.js/hls.light.min.mjs"]
    files = {
        css: STATIC / "css" / "app.css",
        imports["/static/lib/api.js"]: STATIC / "lib" / "api.js",
        light: VENDOR / "hls.js/dist/hls.light.min.mjs",
    }
    for url, path in files.items():
        written = path.read_bytes()
        _, plain, _ = await fetch(client, url, None)
        sizes = await assert_each_coding(client, url, plain)
        if url == light:
            # minified already: sent as written; 374 KB that a phone pays once, for live HLS
            assert plain == written and sizes["br"] < 130_000, sizes
        else:
            # our own sources go out minified: no comments, no indentation
            assert plain != written and len(plain) < 0.9 * len(written), url
            assert sizes["br"] * 3 < len(written), (url, sizes)
    # the current version is kept a year and never asked again: no validators to carry
    response, _, _ = await fetch(client, css, "br")
    assert response.headers["Cache-Control"].endswith("immutable")
    assert "ETag" not in response.headers and "Last-Modified" not in response.headers
    # without a version it is asked again each time: a copy that is current gets a 304
    for coding in ("br", "gzip", None):
        plain, _, _ = await fetch(client, "/static/css/app.css", coding)
        assert plain.headers["Cache-Control"] == "no-cache"
        etag = plain.headers["ETag"]
        again, raw, _ = await fetch(
            client, "/static/css/app.css", coding, **{"If-None-Match": etag}
        )
        assert again.status == 304 and raw == b"" and again.headers["ETag"] == etag
    changed, _, _ = await fetch(
        client, "/static/css/app.css", "gzip", **{"If-None-Match": '"0-1-gzip"'}
    )
    assert changed.status == 200


async def test_a_range_of_a_static_file_is_its_bytes_or_the_whole_minified_file(client):
    original = (VENDOR / "socket.io-client/dist/socket.io.esm.min.js").read_bytes()
    url = "/vendor/socket.io-client/socket.io.esm.min.js"
    response, raw, _ = await fetch(client, url, "br", Range="bytes=10-99")
    assert response.status == 206 and "Content-Encoding" not in response.headers
    assert raw == original[10:100]
    # a minified module has no bytes 10-99 of its own to give: the whole of it (as a 200)
    _, whole, _ = await fetch(client, "/static/lib/api.js", None)
    response, raw, body = await fetch(client, "/static/lib/api.js", "br", Range="bytes=10-99")
    assert response.status == 200 and body == whole


async def test_media_and_socket_io_are_left_alone_and_ranges_still_work(
    client, clerk_token, live_meeting
):
    """A recording's video, audio and segments go out as they are, seekable; its playlist is
    text (gzipped); engine.io's polling answers are socket.io's business."""
    meeting_id = live_meeting["id"]
    directory = client.app[SETTINGS].recordings_dir / f"{meeting_id}/1"
    directory.mkdir(parents=True)
    video = bytes(range(256)) * 4000  # 1 MB that would compress well if it were text
    (directory / "meeting.mp4").write_bytes(video)
    (directory / "seg_00000.ts").write_bytes(video[: 188 * 100])
    playlist = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n" + "".join(
        f"#EXTINF:2.000,\nseg_{n:05d}.ts\n" for n in range(300)
    )
    (directory / "index.m3u8").write_text(playlist + "#EXT-X-ENDLIST\n")
    async with client.app[DATABASE].session() as db:
        db.add(
            Recording(
                meeting_id=meeting_id, part=1, status=replays.READY, directory=f"{meeting_id}/1"
            )
        )
        await db.commit()
    headers = auth(clerk_token)
    base = f"/recordings/{meeting_id}/1"

    for name, data in (("meeting.mp4", video), ("seg_00000.ts", video[: 188 * 100])):
        response, raw, _ = await fetch(client, f"{base}/{name}", "gzip, deflate, br", **headers)
        assert response.status == 200 and "Content-Encoding" not in response.headers
        assert raw == data
    response, raw, _ = await fetch(
        client, f"{base}/meeting.mp4", "gzip, deflate, br", Range="bytes=1000-1999", **headers
    )
    assert response.status == 206 and "Content-Encoding" not in response.headers
    assert response.headers["Content-Range"] == f"bytes 1000-1999/{len(video)}"
    assert raw == video[1000:2000]

    response, raw, body = await fetch(client, f"{base}/index.m3u8", "gzip, deflate, br", **headers)
    assert response.status == 200 and response.headers.get("Content-Encoding") == "gzip"
    assert body == (directory / "index.m3u8").read_bytes() and len(raw) * 4 < len(body)
    response, raw, _ = await fetch(client, f"{base}/index.m3u8", None, **headers)
    assert (
        "Content-Encoding" not in response.headers
        and raw == (directory / "index.m3u8").read_bytes()
    )

    polling = "/socket.io/?EIO=4&transport=polling"
    response, raw, _ = await fetch(client, polling, "br")
    assert response.status == 200 and raw.startswith(b"0{")  # engine.io's open packet, as is
    assert "Content-Encoding" not in response.headers


async def test_a_page_seen_before_is_a_304_until_it_changes(client, clerk_token, live_meeting):
    headers = auth(clerk_token)
    url = f"/m/{live_meeting['code']}"
    first, _, page = await fetch(client, url, "br", **headers)
    assert first.status == 200 and first.headers["Cache-Control"] == "private, no-cache"
    etag = first.headers["ETag"]
    assert etag.startswith('W/"')
    again, raw, _ = await fetch(client, url, "gzip", **headers, **{"If-None-Match": etag})
    assert again.status == 304 and raw == b"" and again.headers["ETag"] == etag
    # the meeting ends: the page says so, and the browser's copy is not used
    await client.post(f"/api/meetings/{live_meeting['id']}/end", headers=headers)
    changed, _, fresh = await fetch(client, url, "br", **headers, **{"If-None-Match": etag})
    assert changed.status == 200 and changed.headers["ETag"] != etag and fresh != page
    # the member cards are credentials: never stored, never compressed
    cards, _, _ = await fetch(client, "/members/cards", "br", **headers)
    assert cards.headers["Cache-Control"] == "no-store"
    assert "ETag" not in cards.headers and "Content-Encoding" not in cards.headers


async def test_a_large_file_goes_out_fast_at_once_and_smaller_once_ready(aiohttp_client, tmp_path):
    """The first phone to need hls.js does not wait for brotli's best setting (seconds)."""
    data = (VENDOR / "hls.js/dist/hls.light.min.mjs").read_bytes()
    (tmp_path / "big.js").write_bytes(data)
    cache = FileCache()
    app = web.Application()
    app.router.add_get("/big.js", lambda request: cache.response(request, tmp_path / "big.js"))
    client = await aiohttp_client(app)
    _, quick, body = await fetch(client, "/big.js", "br")
    assert body == data
    await asyncio.gather(*cache._improving)
    _, best, body = await fetch(client, "/big.js", "br")
    assert body == data and len(best) < len(quick)


async def test_with_minify_assets_off_our_files_go_out_as_written(aiohttp_client, settings):
    client = await aiohttp_client(create_app(replace(settings, minify_assets=False)))
    written = (STATIC / "lib" / "api.js").read_bytes()
    for coding in (None, "br", "gzip"):
        _, _, body = await fetch(client, "/static/lib/api.js", coding)
        assert body == written, coding

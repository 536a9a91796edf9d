#!/usr/bin/env python3
"""What a phone downloads for the watch, home and replay pages: first visit and second.

    ip netns add cunhui-test; ip netns exec cunhui-test ip link set lo up
    ip netns exec cunhui-test .venv/bin/python scripts/bench_pages.py [--no-publisher]

Starts the app in this process on 127.0.0.1 (a temporary data folder), with a clerk, a
member of the village, a live meeting (an aiortc publisher on the air unless
``--no-publisher``) and, for the replay page, an ended meeting with a recording. For each
page, a fresh Chromium profile (Debian's, via Playwright; 360×740, zh-CN, as
tests/support/browser.py) signs the member in over the API, opens the page, waits until the
network has been quiet for a while, then opens it again by navigating (not reloading).
Counted per visit (CDP ``Network`` events): every response's ``encodedDataLength`` from
``Network.loadingFinished`` (headers and body as they crossed the wire), plus the payload of
the socket.io websocket's frames received (decompressed: an upper bound). Media (WHEP/WHIP,
HLS playlists and segments, MP4/M4A, ``media`` requests) is summed apart, not in the total.
Last, every text file those visits loaded: its size as it is, gzipped and brotli'd as the
server sends it.

Prints one JSON object on stdout; progress goes to stderr. It runs Chromium with WebRTC:
only in a loopback-only network namespace (as the browser tests).

:func:`visit` and :class:`Transfers` are what tests/test_page_weight_browser.py measures with.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

#: URL paths and endings that are media (counted apart from the page's weight)
MEDIA_PREFIXES = ("/whep/", "/whip/")
MEDIA_SUFFIXES = (".ts", ".m3u8", ".mp4", ".m4a", ".m4s", ".aac")
#: a visit is over once nothing crossed the network for this long (seconds) ...
QUIET = 2.0
#: ... or after this long in any case
CEILING = 45.0


def is_media(url: str, resource_type: str = "") -> bool:
    path = urlsplit(url).path
    return (
        resource_type == "Media" or path.startswith(MEDIA_PREFIXES) or path.endswith(MEDIA_SUFFIXES)
    )


class Transfers:
    """What one page receives over the network, from Chromium's own accounting (CDP)."""

    def __init__(self) -> None:
        self.requests: dict[str, dict] = {}  # requestId -> {url, type, status, bytes, cached}
        self.websocket_bytes = 0
        self.last_activity = time.monotonic()

    @classmethod
    async def attach(cls, context, page) -> Transfers:
        transfers = cls()
        cdp = await context.new_cdp_session(page)
        cdp.on("Network.requestWillBeSent", transfers._sent)
        cdp.on("Network.responseReceived", transfers._response)
        cdp.on("Network.requestServedFromCache", transfers._from_cache)
        cdp.on("Network.loadingFinished", transfers._finished)
        cdp.on("Network.webSocketFrameReceived", transfers._frame)
        cdp.on("Network.webSocketHandshakeResponseReceived", transfers._handshake)
        await cdp.send("Network.enable")
        return transfers

    def reset(self) -> None:
        self.requests.clear()
        self.websocket_bytes = 0
        self.last_activity = time.monotonic()

    def _entry(self, request_id: str) -> dict:
        self.last_activity = time.monotonic()
        return self.requests.setdefault(
            request_id, {"url": "", "type": "", "status": None, "bytes": 0, "cached": False}
        )

    def _sent(self, event: dict) -> None:
        entry = self._entry(event["requestId"])
        entry["url"] = event["request"]["url"]
        entry["type"] = event.get("type", "")

    def _response(self, event: dict) -> None:
        entry = self._entry(event["requestId"])
        response = event["response"]
        entry["status"] = response.get("status")
        entry["cached"] = entry["cached"] or bool(
            response.get("fromDiskCache") or response.get("fromPrefetchCache")
        )
        entry["encoding"] = {k.lower(): v for k, v in response.get("headers", {}).items()}.get(
            "content-encoding", ""
        )

    def _from_cache(self, event: dict) -> None:
        self._entry(event["requestId"])["cached"] = True

    def _finished(self, event: dict) -> None:
        self._entry(event["requestId"])["bytes"] = int(event.get("encodedDataLength", 0))

    def _frame(self, event: dict) -> None:
        self.last_activity = time.monotonic()
        self.websocket_bytes += len(event["response"].get("payloadData", "").encode())

    def _handshake(self, event: dict) -> None:
        self.last_activity = time.monotonic()
        headers = event["response"].get("headersText") or "".join(
            f"{k}: {v}\r\n" for k, v in event["response"].get("headers", {}).items()
        )
        self.websocket_bytes += len(headers.encode()) + 20

    # ---------------------------------------------------------------- the figures

    def page_bytes(self) -> int:
        """Bytes received for the page: every response but media, and the websocket."""
        return (
            sum(r["bytes"] for r in self.requests.values() if not is_media(r["url"], r["type"]))
            + self.websocket_bytes
        )

    def media_bytes(self) -> int:
        return sum(r["bytes"] for r in self.requests.values() if is_media(r["url"], r["type"]))

    def summary(self) -> dict:
        listed = sorted(self.requests.values(), key=lambda r: -r["bytes"])
        return {
            "bytes": self.page_bytes(),
            "websocket_bytes": self.websocket_bytes,
            "media_bytes": self.media_bytes(),
            "requests": len(listed),
            "from_cache": sum(1 for r in listed if r["cached"] or not r["bytes"]),
            "responses": [
                {
                    "path": urlsplit(r["url"]).path,
                    "status": r["status"],
                    "bytes": r["bytes"],
                    "encoding": r.get("encoding", ""),
                    **({"media": True} if is_media(r["url"], r["type"]) else {}),
                }
                for r in listed
                if r["bytes"]
            ],
        }

    async def wait_quiet(self, quiet: float = QUIET, ceiling: float = CEILING) -> None:
        """Until nothing arrived for ``quiet`` seconds (at most ``ceiling``)."""
        deadline = time.monotonic() + ceiling
        while time.monotonic() < deadline:
            if time.monotonic() - self.last_activity >= quiet:
                return
            await asyncio.sleep(0.2)


async def visit(page, transfers: Transfers, url: str, ready: str | None = None) -> dict:
    """Open ``url`` as a new navigation (from about:blank, so it is no reload), wait for
    ``ready`` (a JS expression) and a quiet network: what crossed the network."""
    await page.goto("about:blank")
    transfers.reset()
    await page.goto(url, wait_until="load")
    if ready:
        await page.wait_for_function(ready, timeout=CEILING * 1000)
    await transfers.wait_quiet()
    return transfers.summary()


# ------------------------------------------------------------------ the bench


def log(message: str) -> None:
    print(f"[bench_pages {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


#: the watch page is ready once its realtime room joined (the viewer count shows)
WATCH_READY = (
    "() => document.body.dataset.state !== 'connecting'"
    " || !!document.querySelector('#viewers-line:not([hidden])')"
)


async def _server(tmp: Path):
    from aiohttp.test_utils import TestServer

    from server.app import create_app
    from server.keys import DATABASE
    from server.services import accounts
    from server.settings import Settings
    from tests.support.api import PASSWORD, server_env

    app = create_app(Settings.from_env(server_env(tmp)))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    async with app[DATABASE].session() as db:
        await accounts.create_user(db, "clerk", PASSWORD)
    return server


async def _scene(client, publisher: bool) -> tuple[dict, dict, str, object]:
    """(live meeting, ended meeting with a recording, the member's invite, the publisher)."""
    from tests.support.peers import Publisher

    token = (await client.clerk_headers())["Authorization"].split()[1]
    agenda = [{"title": "村道修缮"}, {"title": "低保评议"}, {"title": "其他事项"}]
    member = await client.clerk_post("/api/members", {"name": "王五"})
    live = await client.clerk_post("/api/meetings", {"title": "第三季度村民会议", "agenda": agenda})
    await client.clerk_post(f"/api/meetings/{live['id']}/start", {})
    ended = await client.clerk_post(
        "/api/meetings", {"title": "第二季度村民会议", "agenda": agenda}
    )
    await client.clerk_post(f"/api/meetings/{ended['id']}/start", {})
    # the ended meeting is recorded for a few seconds, so the replay page has a recording
    recorder = Publisher(width=320, height=240)
    await recorder.publish(client, ended["id"], token)
    await asyncio.sleep(6)
    await client.clerk_post(f"/api/meetings/{ended['id']}/end", {})
    await recorder.close()
    on_air = None
    if publisher:
        on_air = Publisher(width=640, height=360)
        await on_air.publish(client, live["id"], token)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = await client.get_json(f"/api/meetings/{ended['id']}/recording")
        if status.get("status") in ("ready", "interrupted", "failed"):
            break
        await asyncio.sleep(1)
    else:
        log("the recording was not processed in 120 s: the replay page shows it processing")
    return live, ended, member["invite"], on_air


async def _signed_in_member(playwright, server, invite: str):
    from tests.support.browser import Browser

    browser = Browser(playwright, "--autoplay-policy=no-user-gesture-required")
    context = await browser.__aenter__()
    joined = await context.request.post(str(server.make_url("/api/join")), data={"invite": invite})
    assert joined.ok, await joined.text()
    return browser, context


async def _measure_page(playwright, server, invite: str, path: str, ready: str | None) -> dict:
    browser, context = await _signed_in_member(playwright, server, invite)
    try:
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        transfers = await Transfers.attach(context, page)
        url = str(server.make_url(path))
        try:
            first = await visit(page, transfers, url, ready)
            second = await visit(page, transfers, url, ready)
        finally:
            for error in errors:
                log(f"{path}: {error}")
        return {"path": path, "first_visit": first, "second_visit": second, "errors": errors}
    finally:
        await browser.context.close()
        shutil.rmtree(browser._profile, ignore_errors=True)


async def _file_sizes(server, paths: set[str]) -> list[dict]:
    """Each text file as written, as sent without compression (ours minified), gzipped and
    brotli'd (as the server sends them)."""
    import aiohttp

    from server.http.assets import VENDOR_DIRS
    from server.http.compression import THREAD_BYTES

    web = HERE.parent / "web"
    sizes = []
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        for path in sorted(paths):
            if path.startswith("/static/"):
                written = web / path.lstrip("/")
            else:
                package, _, rest = path.removeprefix("/vendor/").partition("/")
                written = web / "node_modules" / VENDOR_DIRS[package] / rest
            row: dict = {"path": path, "written": written.stat().st_size}
            for coding in ("identity", "gzip", "br"):
                row[coding] = await _size(session, server.make_url(path), coding)
                if coding != "identity" and row["written"] > THREAD_BYTES:
                    # a large file goes out fast first, at the best setting once that is ready
                    row[f"{coding}_first"] = row[coding]
                    deadline = time.monotonic() + 60
                    while row[coding] == row[f"{coding}_first"] and time.monotonic() < deadline:
                        await asyncio.sleep(1)
                        row[coding] = await _size(session, server.make_url(path), coding)
            sizes.append(row)
    return sizes


async def _size(session, url, coding: str) -> int:
    async with session.get(url, headers={"Accept-Encoding": coding}) as response:
        return len(await response.read())


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench_pages.py", description=__doc__.split("\n")[0])
    parser.add_argument("--no-publisher", action="store_true", help="no picture on the air")
    args = parser.parse_args(argv)

    from playwright.async_api import async_playwright

    from tests.support.browser import CHROMIUM, ServerClient, only_loopback_here

    if not Path(CHROMIUM).exists() or not only_loopback_here():
        log("needs Chromium and a loopback-only network namespace (see the docstring)")
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="cunhui-bench-pages-"))
    server = await _server(tmp)
    client = ServerClient(server)
    on_air = None
    try:
        log("a live meeting, and a recorded one for the replay page")
        live, ended, invite, on_air = await _scene(client, not args.no_publisher)
        pages = {
            "watch": (f"/m/{live['code']}", WATCH_READY),
            "home": ("/", None),
            "replay": (f"/meetings/{ended['id']}/replay", None),
        }
        results = {}
        async with async_playwright() as playwright:
            for name, (path, ready) in pages.items():
                log(f"{name}: {path}")
                results[name] = await _measure_page(playwright, server, invite, path, ready)
        texts = {
            row["path"].split("?")[0]
            for result in results.values()
            for row in result["first_visit"]["responses"]
            if row["path"].startswith(("/static/", "/vendor/"))
        }
        texts |= {"/vendor/hls.js/hls.min.mjs", "/vendor/hls.js/hls.light.min.mjs"}
        report = {
            "bench": "pages",
            "publisher": on_air is not None,
            "targets": {"watch_first_visit_bytes": 60 * 1024, "second_visit_bytes": 10 * 1024},
            "pages": {
                name: {
                    "path": r["path"],
                    "first_visit_bytes": r["first_visit"]["bytes"],
                    "second_visit_bytes": r["second_visit"]["bytes"],
                    "first_visit": r["first_visit"],
                    "second_visit": r["second_visit"],
                }
                for name, r in results.items()
            },
            "files": await _file_sizes(server, texts),
        }
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return 0
    finally:
        if on_air is not None:
            with contextlib.suppress(Exception):
                await on_air.close()
        await server.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))

"""Text responses compressed: brotli where the browser takes it, else gzip (issue 15).

Two paths:

- **Files** under ``/static/`` and ``/vendor/`` (:meth:`FileCache.response`): each file is
  compressed once per version (size and mtime) at the best setting, kept in memory, and
  answered with an ETag of its own per coding (``"<mtime>-<size>-br"``), so a revalidation
  gets a 304. Our own JavaScript and CSS (``/static/``) is minified first (comments and
  spaces out, local names kept; tdewolff's minifiers, a real parser), the file as written
  if it cannot be; vendor files come minified already. A ``Range`` request for a file that
  is not minified gets it as it is (``FileResponse``).
- **Bodies handlers build** (HTML pages, JSON): :func:`compression_middleware` compresses a
  ``web.Response``'s body on its way out, at a fast setting. A page gets a weak ETag of its
  body and ``Cache-Control: private, no-cache`` (unless it has its own): a second visit to an
  unchanged page is a 304. A ``FileResponse`` of text (an HLS playlist) is gzipped as it
  streams, by aiohttp itself.

Left alone: media (video, audio, images other than SVG, anything not in :data:`TEXT_TYPES`),
SDP answers, bodies under :data:`MIN_BYTES`, anything already encoded, partial responses,
``/socket.io/`` (engine.io polling and websocket), and responses marked ``no-store``: those
carry credentials (the member cards), and a secret compressed beside text an attacker put in
the same page is what BREACH reads. Every response of a text type says ``Vary:
Accept-Encoding``, compressed or not, so no shared cache hands one client's coding to another.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import logging
import mimetypes
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import NamedTuple

import brotli
import minify
from aiohttp import hdrs, web
from aiohttp.helpers import ETag

logger = logging.getLogger(__name__)

#: content types worth compressing (all text); anything else goes out as it is
TEXT_TYPES = frozenset(
    {
        "text/html",
        "text/css",
        "text/javascript",
        "text/plain",
        "text/markdown",
        "text/calendar",
        "text/csv",
        "text/vtt",
        "application/javascript",
        "application/json",
        "application/manifest+json",
        "application/vnd.apple.mpegurl",
        "application/x-mpegurl",
        "image/svg+xml",
    }
)
#: file name endings of text that ``mimetypes`` does not know
TEXT_SUFFIXES = {".map": "application/json", ".mjs": "text/javascript"}
#: what is minified before it is compressed (files under the minified root only)
MINIFIED_TYPES = frozenset({"text/javascript", "text/css"})
#: below this a compressed body saves less than its headers cost
MIN_BYTES = 256
#: codings we send, in order of preference
CODINGS = ("br", "gzip")
IDENTITY = "identity"
#: paths never touched (engine.io's polling bodies are framed packets; websockets upgrade)
SKIPPED_PREFIXES = ("/socket.io/",)
#: quality for a file compressed once and served many times, and for a body built per request
STATIC_QUALITY = {"br": 11, "gzip": 9}
DYNAMIC_QUALITY = {"br": 5, "gzip": 6}
#: bodies larger than this are compressed in a thread, not on the event loop; a file larger
#: than this is first compressed fast (hls.js: 0.1 s, not 2.5 s, for the first phone that needs
#: it), then again at the best setting in the background
THREAD_BYTES = 128 * 1024
#: larger files (source maps, unminified builds) keep the quick compression: the best
#: setting would take seconds of a core each
IMPROVE_MAX_BYTES = 1024 * 1024
#: the file cache's ceiling (bytes kept); the oldest entries go first past it
CACHE_BYTES = 48 * 1024 * 1024
#: what a page without a Cache-Control of its own gets with its ETag: asked again each time
PAGE_CACHE_CONTROL = "private, no-cache"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: the ``Server`` header: aiohttp's own (``Python/3.11 aiohttp/3.14.5``) costs 20 bytes more on
#: each of the forty responses of a first visit, and tells an attacker the versions
SERVER = "cunhui"

# local names shortened (exported names and properties stay): 10 % less JavaScript
minify.config({"js-keep-var-names": False})


def is_text(content_type: str | None) -> bool:
    return _bare(content_type) in TEXT_TYPES


def _bare(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def file_type(path: Path) -> str:
    """The content type of a file by its name (application/octet-stream if unknown)."""
    known = TEXT_SUFFIXES.get(path.suffix.lower())
    return known or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def _weights(accept_encoding: str) -> dict[str, float]:
    weights: dict[str, float] = {}
    for item in accept_encoding.lower().split(","):
        name, *params = (part.strip() for part in item.split(";"))
        if not name:
            continue
        weight = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        weights[name] = weight
    return weights


def chosen_coding(accept_encoding: str) -> str | None:
    """The coding to send for an ``Accept-Encoding`` header: "br", "gzip" or None (as it is).

    The highest ``q`` wins, brotli on a tie; ``q=0`` refuses a coding, ``*`` stands for
    any coding not named.
    """
    weights = _weights(accept_encoding)
    best, best_weight = None, 0.0
    for coding in CODINGS:
        weight = weights.get(coding, weights.get("*", 0.0))
        if weight > best_weight:
            best, best_weight = coding, weight
    return best


def accepts(accept_encoding: str, coding: str) -> bool:
    """Whether the ``Accept-Encoding`` header allows ``coding`` at all (q > 0)."""
    weights = _weights(accept_encoding)
    return weights.get(coding, weights.get("*", 0.0)) > 0


def compress(data: bytes, coding: str, quality: int) -> bytes:
    if coding == "br":
        return bytes(brotli.compress(data, mode=brotli.MODE_TEXT, quality=quality))
    return gzip.compress(data, compresslevel=quality, mtime=0)


def minified(data: bytes, content_type: str, name: str = "") -> bytes:
    """JavaScript or CSS without comments and spaces; as it is if it does not parse."""
    try:
        return minify.string(content_type, data.decode("utf-8")).encode("utf-8")
    except (UnicodeDecodeError, minify.MinifyError) as exc:
        logger.warning("%s is served as written: it could not be minified (%s)", name, exc)
        return data


def add_vary(response: web.StreamResponse) -> None:
    vary = response.headers.get(hdrs.VARY, "")
    if hdrs.ACCEPT_ENCODING.lower() not in vary.lower():
        response.headers[hdrs.VARY] = (
            f"{vary}, {hdrs.ACCEPT_ENCODING}" if vary else "Accept-Encoding"
        )


# ------------------------------------------------------------------ bodies built per request


def _compressible(request: web.Request, response: web.StreamResponse) -> bool:
    if request.path.startswith(SKIPPED_PREFIXES) or not is_text(response.content_type):
        return False
    if hdrs.CONTENT_ENCODING in response.headers or response.status in (204, 206, 304):
        return False
    return "no-store" not in response.headers.get(hdrs.CACHE_CONTROL, "")


def _unchanged_page(request: web.Request, response: web.Response, body: bytes) -> bool:
    """Give a page a weak ETag of its body; True if the browser's copy has that ETag."""
    if request.method not in (hdrs.METH_GET, hdrs.METH_HEAD) or response.status != 200:
        return False
    if _bare(response.content_type) != "text/html" or hdrs.ETAG in response.headers:
        return False
    response.etag = ETag(value=hashlib.blake2b(body, digest_size=12).hexdigest(), is_weak=True)
    response.headers.setdefault(hdrs.CACHE_CONTROL, PAGE_CACHE_CONTROL)
    tag = response.etag
    return request.if_none_match is not None and any(
        seen.value in (tag.value if tag else "", "*") for seen in request.if_none_match
    )


@web.middleware
async def compression_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Compress the text bodies that handlers build (pages, JSON), brotli or gzip."""
    response = await handler(request)
    if response.prepared:  # a websocket, a stream: sent already
        return response
    response.headers.setdefault(hdrs.SERVER, SERVER)
    if not _compressible(request, response):
        return response
    add_vary(response)
    coding = chosen_coding(request.headers.get(hdrs.ACCEPT_ENCODING, ""))
    if isinstance(response, web.FileResponse):
        # a text file served by a handler (an HLS playlist): gzipped as it streams, whole
        # files only; a conditional request may become a 304, which must stay empty
        conditional = (hdrs.RANGE, hdrs.IF_NONE_MATCH, hdrs.IF_MODIFIED_SINCE, hdrs.IF_RANGE)
        gzip_ok = accepts(request.headers.get(hdrs.ACCEPT_ENCODING, ""), "gzip")
        if gzip_ok and not any(name in request.headers for name in conditional):
            response.enable_compression(web.ContentCoding.gzip)  # aiohttp streams gzip only
        return response
    if not isinstance(response, web.Response) or response.compression:
        return response
    body = response.body
    if not isinstance(body, bytes | bytearray):
        return response
    data = bytes(body)
    if _unchanged_page(request, response, data):
        response.set_status(304)
        response.body = None
        del response.headers[hdrs.CONTENT_TYPE]
        return response
    if coding is None or len(data) < MIN_BYTES:
        return response
    quality = DYNAMIC_QUALITY[coding]
    if len(data) > THREAD_BYTES:
        packed = await asyncio.to_thread(compress, data, coding, quality)
    else:
        packed = compress(data, coding, quality)
    if len(packed) >= len(data):
        return response
    response.body = packed
    response.headers[hdrs.CONTENT_ENCODING] = coding
    return response


# ------------------------------------------------------------------ files, compressed once


class _Packed(NamedTuple):
    mtime_ns: int
    size: int
    body: bytes | None  # None: serve the file as it is (nothing gained)
    coding: str  # the body's Content-Encoding, or IDENTITY


def _pack(
    path: Path, coding: str, minify_as: str | None, quality: dict[str, int] = STATIC_QUALITY
) -> _Packed:
    """(in a thread) The file minified (if ``minify_as`` names its type) and compressed."""
    with path.open("rb") as file:
        stat = os.fstat(file.fileno())
        data = file.read()
    version = (stat.st_mtime_ns, stat.st_size)
    if minify_as:
        data = minified(data, minify_as, path.name)
    if coding != IDENTITY:
        packed = compress(data, coding, quality[coding])
        if len(packed) < len(data):
            return _Packed(*version, packed, coding)
    return _Packed(*version, data if minify_as else None, IDENTITY)


class FileCache:
    """Text files minified and compressed once per version and coding, served from memory.

    ``minify_under``: our own sources (web/static), minified before they are compressed.
    """

    def __init__(self, minify_under: Path | None = None, max_bytes: int = CACHE_BYTES) -> None:
        self._minify_under = minify_under.resolve() if minify_under else None
        self._max_bytes = max_bytes
        self._packed: dict[tuple[Path, str], _Packed] = {}
        self._bytes = 0
        self._pending: dict[tuple[Path, str, int, int], asyncio.Future[_Packed]] = {}
        self._improving: set[asyncio.Future[None]] = set()
        # best-setting passes one at a time: anyone may ask for every vendor file once
        self._best_turn = asyncio.Semaphore(1)

    def _store(self, key: tuple[Path, str], packed: _Packed) -> None:
        old = self._packed.pop(key, None)
        self._bytes -= len(old.body or b"") if old else 0
        while self._packed and self._bytes + len(packed.body or b"") > self._max_bytes:
            oldest = next(iter(self._packed))
            self._bytes -= len(self._packed.pop(oldest).body or b"")
        self._packed[key] = packed
        self._bytes += len(packed.body or b"")

    async def packed(
        self, path: Path, coding: str, stat: os.stat_result, minify_as: str | None = None
    ) -> _Packed:
        """The file at this version, ready to send (once: concurrent askers share the work)."""
        key = (path, coding)
        found = self._packed.get(key)
        if found and (found.mtime_ns, found.size) == (stat.st_mtime_ns, stat.st_size):
            return found
        version = (path, coding, stat.st_mtime_ns, stat.st_size)
        pending = self._pending.get(version)
        if pending is None:
            quick = coding != IDENTITY and stat.st_size > THREAD_BYTES
            quality = DYNAMIC_QUALITY if quick else STATIC_QUALITY
            pending = asyncio.ensure_future(
                asyncio.to_thread(_pack, path, coding, minify_as, quality)
            )
            self._pending[version] = pending
            try:
                packed = await asyncio.shield(pending)
            finally:
                self._pending.pop(version, None)
            self._store(key, packed)
            if quick and stat.st_size <= IMPROVE_MAX_BYTES:
                self._improve(key, path, coding, minify_as)
            return packed
        return await asyncio.shield(pending)

    def _improve(
        self, key: tuple[Path, str], path: Path, coding: str, minify_as: str | None
    ) -> None:
        """Compress a large file again at the best setting, in the background."""

        async def best() -> None:
            try:
                async with self._best_turn:
                    better = await asyncio.to_thread(_pack, path, coding, minify_as)
            except OSError:
                return  # gone or changed: the next request packs it again
            current = self._packed.get(key)
            if current and (current.mtime_ns, current.size) == (better.mtime_ns, better.size):
                self._store(key, better)

        task = asyncio.ensure_future(best())
        self._improving.add(task)
        task.add_done_callback(self._improving.discard)

    def _minify_as(self, path: Path, content_type: str) -> str | None:
        if self._minify_under is None or content_type not in MINIFIED_TYPES:
            return None
        return content_type if path.is_relative_to(self._minify_under) else None

    async def response(self, request: web.Request, path: Path) -> web.StreamResponse:
        """The file for this request: from memory if it is text (minified, compressed if
        the client takes a coding), else (media) aiohttp's ``FileResponse``."""
        content_type = file_type(path)
        text = is_text(content_type)
        minify_as = self._minify_as(path, content_type)
        coding = chosen_coding(request.headers.get(hdrs.ACCEPT_ENCODING, "")) or IDENTITY
        stat = path.stat()
        # a range of a file sent as written is that file's bytes; a minified file is sent
        # whole (a server may ignore Range)
        plain = hdrs.RANGE in request.headers or coding == IDENTITY or stat.st_size < MIN_BYTES
        if text and (minify_as or not plain):
            packed = await self.packed(path, coding, stat, minify_as)
            if packed.body is not None:
                return _packed_response(request, packed, packed.body, content_type)
        response = web.FileResponse(path)
        if text:
            add_vary(response)
        return response


def _packed_response(
    request: web.Request, packed: _Packed, body: bytes, content_type: str
) -> web.StreamResponse:
    kind = "min" if packed.coding == IDENTITY else packed.coding  # minified, as it is
    # weak: a large file's bytes change once its best compression is ready, its content not
    etag = f"{packed.mtime_ns:x}-{packed.size:x}-{kind}"
    mtime = packed.mtime_ns / 1e9
    not_modified = False
    if request.if_none_match is not None:
        not_modified = any(tag.value in (etag, "*") for tag in request.if_none_match)
    elif request.if_modified_since is not None:
        not_modified = mtime <= request.if_modified_since.timestamp()
    response = web.Response(status=304) if not_modified else web.Response(body=body)
    if not not_modified:
        response.content_type = content_type
        if packed.coding != IDENTITY:
            response.headers[hdrs.CONTENT_ENCODING] = packed.coding
    response.etag = ETag(value=etag, is_weak=True)
    response.last_modified = mtime
    add_vary(response)
    return response

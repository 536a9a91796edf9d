"""Static files with a content version, so browsers keep them long and never run stale code.

Templates write ``static_url("css/app.css")``: ``/static/css/app.css?v=<hash of the file>``.
A request whose ``v`` is the file's current hash is cached for a year (``immutable``); any
other (no ``v``, or an old one) must be revalidated. ES modules import each other by plain
relative paths (``../lib/api.js``): the import map every page carries (``import_map()`` in
base.html) sends each such import, and the vendor modules, to the versioned URL, so a
changed module is fetched again after a deploy and an unchanged one is not.
``page_module("pages/watch.js")`` writes a page's ``<script type="module">`` with a
``modulepreload`` link for each module it imports, so a phone fetches them all at once
instead of one level of imports after another.

Versions and imports are cached per file and read again when its size or mtime changes.
Text files go out compressed (brotli or gzip, once per version: ``compression.FileCache``),
our own JavaScript and CSS minified first; media gets the file as it is.
"""

from __future__ import annotations

import hashlib
import json
import logging
import posixpath
import re
from pathlib import Path
from typing import NamedTuple

import aiohttp_jinja2
from aiohttp import web
from markupsafe import Markup, escape

from .compression import FileCache

logger = logging.getLogger(__name__)

STATIC_PREFIX = "/static/"
VENDOR_PREFIX = "/vendor/"

#: front-end packages from web/node_modules (installed by the setup script)
VENDOR_DIRS = {
    "socket.io-client": "socket.io-client/dist",
    "hls.js": "hls.js/dist",
    "qr-scanner": "qr-scanner",
}

#: the vendor ES modules our modules import (the import map sends them to versioned URLs)
VENDOR_MODULES = (
    "socket.io-client/socket.io.esm.min.js",
    "hls.js/hls.min.mjs",
    # the light build (no subtitles, DRM or alternate audio): what the live page plays with
    "hls.js/hls.light.min.mjs",
    # the hall's check-in reads member cards' QR codes; it imports its worker module itself
    "qr-scanner/qr-scanner.min.js",
    "qr-scanner/qr-scanner-worker.min.js",
)

IMMUTABLE = "max-age=31536000, immutable"
REVALIDATE = "no-cache"

#: the specifier of a static ``import … from "…"``, ``export … from "…"`` or ``import "…"``
#: (a dynamic ``import("…")`` loads when needed: hls.js, only where HLS plays; qr-scanner)
STATIC_IMPORT = re.compile(
    r"""^(?:(?:import|export)\b[^;'"]*?\bfrom\s*|import\s*)["']([^"']+)["']""", re.M
)
#: the specifier of a dynamic ``import("…")`` written as a string
DYNAMIC_IMPORT = re.compile(r"""\bimport\(\s*["']([^"']+)["']\s*\)""")
#: the modules a page's HTML loads (as :meth:`Assets.page_module` writes them)
PAGE_MODULE_URL = re.compile(
    r'<(?:script type="module" src|link rel="modulepreload" href)="([^"?]+)'
)
#: hex digits of a file's hash in its URL (40 bits: a new version never meets an old one)
VERSION_DIGITS = 10


class _Entry(NamedTuple):
    mtime_ns: int
    size: int
    version: str
    imports: tuple[str, ...]  # the specifiers of a module's static imports
    dynamic: tuple[str, ...]  # ... and of its dynamic imports written as strings


class Assets:
    """Versioned URLs for the files under URL prefixes (``/static/``, ``/vendor/<package>/``)."""

    def __init__(self, roots: dict[str, Path]) -> None:
        self._roots = {prefix: root.resolve() for prefix, root in roots.items()}
        self._entries: dict[Path, _Entry] = {}

    def file(self, url_path: str) -> Path | None:
        """The file a URL path names, if it lies under one of the roots."""
        for prefix, root in self._roots.items():
            if url_path.startswith(prefix):
                path = (root / url_path[len(prefix) :]).resolve()
                if path.is_relative_to(root) and path.is_file():
                    return path
        return None

    def _entry(self, path: Path) -> _Entry:
        stat = path.stat()
        entry = self._entries.get(path)
        if entry and (entry.mtime_ns, entry.size) == (stat.st_mtime_ns, stat.st_size):
            return entry
        data = path.read_bytes()
        imports: tuple[str, ...] = ()
        dynamic: tuple[str, ...] = ()
        if path.suffix in (".js", ".mjs") and path.is_relative_to(self._roots[STATIC_PREFIX]):
            text = data.decode("utf-8", "replace")
            imports = tuple(STATIC_IMPORT.findall(text))
            dynamic = tuple(DYNAMIC_IMPORT.findall(text))
        version = hashlib.sha256(data).hexdigest()[:VERSION_DIGITS]
        entry = _Entry(stat.st_mtime_ns, stat.st_size, version, imports, dynamic)
        self._entries[path] = entry
        return entry

    def version(self, url_path: str) -> str | None:
        """The current content version of the file at ``url_path``; None if there is none."""
        path = self.file(url_path)
        return self._entry(path).version if path else None

    def versioned(self, url_path: str) -> str:
        """``url_path?v=<version>`` (``url_path`` as it is for a missing file)."""
        version = self.version(url_path)
        return f"{url_path}?v={version}" if version else url_path

    def static_url(self, name: str) -> str:
        """``static_url("pages/watch.js")`` → ``/static/pages/watch.js?v=…`` (for templates)."""
        return self.versioned(STATIC_PREFIX + name.lstrip("/"))

    def import_map(self, modules: str | None = None) -> dict[str, dict[str, str]]:
        """The modules a page may load, each mapped to its versioned URL.

        ``modules``: the page's module tags (:meth:`page_module`'s HTML): the map has those,
        what they import (statically or by a dynamic ``import("…")``), and the vendor
        modules. Without it: every module under /static/ (a module missing from a page's
        map still loads, unversioned and so revalidated each time).
        """
        urls = {VENDOR_PREFIX + module for module in VENDOR_MODULES}
        if modules is None:
            static = self._roots[STATIC_PREFIX]
            urls.update(
                STATIC_PREFIX + p.relative_to(static).as_posix() for p in static.rglob("*.js")
            )
        else:
            todo = PAGE_MODULE_URL.findall(str(modules))
            while todo:
                url = todo.pop()
                path = self.file(url)
                if url in urls or path is None:
                    continue
                urls.add(url)
                entry = self._entry(path)
                todo += [_resolve(url, specifier) for specifier in entry.imports + entry.dynamic]
        return {"imports": {url: self.versioned(url) for url in sorted(urls)}}

    def module_graph(self, name: str) -> list[str]:
        """The URL paths of the module ``name`` and all it imports statically, it first."""
        found: list[str] = []
        todo = [STATIC_PREFIX + name.lstrip("/")]
        while todo:
            url = todo.pop(0)
            path = self.file(url)
            if url in found or path is None:
                continue
            found.append(url)
            todo += [_resolve(url, specifier) for specifier in self._entry(path).imports]
        return found

    def page_module(self, name: str) -> Markup:
        """A page's ``<script type="module">``, after a preload link for each module it imports."""
        graph = self.module_graph(name) or [STATIC_PREFIX + name.lstrip("/")]
        entry, *imported = [self.versioned(url) for url in graph]
        lines = [f'<link rel="modulepreload" href="{escape(url)}">' for url in imported]
        lines.append(f'<script type="module" src="{escape(entry)}"></script>')
        return Markup("\n".join(lines))

    async def cache_control(self, request: web.Request, response: web.StreamResponse) -> None:
        """(``on_response_prepare``) A year for a file's current version, else revalidate."""
        if not request.path.startswith((STATIC_PREFIX, VENDOR_PREFIX)):
            return
        if response.status not in (200, 206, 304):
            return
        wanted = request.query.get("v")
        fresh = wanted is not None and wanted == self.version(request.path)
        response.headers["Cache-Control"] = IMMUTABLE if fresh else REVALIDATE
        if fresh:
            # never asked again: validators would only add ~100 bytes to each of a page's
            # thirty-odd modules (a phone's first visit counts them)
            for name in ("ETag", "Last-Modified", "Accept-Ranges"):
                response.headers.popall(name, None)


def page_json(obj: object, **kwargs: object) -> str:
    """JSON for ``|tojson`` in templates: Chinese as UTF-8 (3 bytes a character, not a
    6-byte ``\\uXXXX``: a fifth less HTML on the watch page, compressed). Jinja still escapes
    ``<>&'`` after it. Text that UTF-8 cannot carry (a lone surrogate) is escaped as before."""
    text = json.dumps(obj, ensure_ascii=False, **kwargs)  # type: ignore[arg-type]
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(obj, **kwargs)  # type: ignore[arg-type]
    return text


def _resolve(url: str, specifier: str) -> str:
    """The URL path an import of ``specifier`` in the module at ``url`` loads."""
    if specifier.startswith("/"):
        return specifier
    return posixpath.normpath(posixpath.join(posixpath.dirname(url), specifier))


def setup(app: web.Application, web_dir: Path, minify: bool = True) -> None:
    """Serve /static/ and /vendor/; give templates ``static_url``, ``import_map``, ``page_module``.

    ``minify``: our own JavaScript and CSS go out minified (False: as written, for debugging).

    Call after ``aiohttp_jinja2.setup``.
    """
    roots = {STATIC_PREFIX: web_dir / "static"}
    node_modules = web_dir / "node_modules"
    for name, sub in VENDOR_DIRS.items():
        if (node_modules / sub).is_dir():
            roots[f"{VENDOR_PREFIX}{name}/"] = node_modules / sub
        else:
            logger.warning("front-end package %s is missing: run scripts/serve", name)
    assets = Assets(roots)
    files = FileCache(minify_under=roots[STATIC_PREFIX] if minify else None)

    async def serve(request: web.Request) -> web.StreamResponse:
        path = assets.file(request.path)
        if path is None:
            raise web.HTTPNotFound()
        return await files.response(request, path)

    for prefix in roots:
        route_name = "static" if prefix == STATIC_PREFIX else None
        app.router.add_get(prefix + "{tail:.+}", serve, name=route_name)
    app.on_response_prepare.append(assets.cache_control)
    env = aiohttp_jinja2.get_env(app)
    env.policies["json.dumps_function"] = page_json
    env.globals.update(
        static_url=assets.static_url, import_map=assets.import_map, page_module=assets.page_module
    )

"""Static files carry a content version: cached for a year, never run stale after a deploy."""

from __future__ import annotations

import json
import re

from server.http.assets import IMMUTABLE, REVALIDATE, STATIC_PREFIX, Assets
from server.settings import REPO_ROOT

STATIC = REPO_ROOT / "web" / "static"
SOCKET_IO = REPO_ROOT / "web" / "node_modules" / "socket.io-client" / "dist"
IMPORT_MAP = re.compile(r'<script type="importmap">(.*?)</script>', re.S)
#: `import … from "…"`, `export … from "…"` and `import("…")` in our modules
SPECIFIER = re.compile(
    r"""^(?:(?:import|export)\b[^;'"]*?\bfrom\s*|import\s*)["']([^"']+)["']|\bimport\(["']([^"']+)["']\)""",
    re.M,
)


async def test_pages_load_versioned_modules_and_map_every_import(client):
    html = await (await client.get("/login")).text()
    imports = json.loads(IMPORT_MAP.search(html).group(1))["imports"]
    modules = {f"{STATIC_PREFIX}{p.relative_to(STATIC).as_posix()}" for p in STATIC.rglob("*.js")}
    assert modules <= imports.keys()
    assert "/vendor/socket.io-client/socket.io.esm.min.js" in imports
    for url, versioned in imports.items():
        assert re.fullmatch(re.escape(url) + r"\?v=[0-9a-f]{16}", versioned), versioned
    scripts = re.findall(r'<script type="module" src="([^"]+)"', html)
    assert scripts and all(imports.get(src.split("?")[0]) == src for src in scripts)
    # what the page's modules import is fetched at once, from the URLs the import map names
    preloads = re.findall(r'<link rel="modulepreload" href="([^"]+)">', html)
    assert "/static/lib/api.js" in {url.split("?")[0] for url in preloads}
    assert all(imports.get(url.split("?")[0]) == url for url in preloads)
    assert re.search(r'href="/static/css/app\.css\?v=[0-9a-f]{16}"', html)
    # the import map comes before any module: only then does it apply to them
    assert html.index('type="importmap"') < html.index('type="module"')


async def test_a_current_version_is_cached_for_a_year_anything_else_is_revalidated(client):
    html = await (await client.get("/login")).text()
    imports = json.loads(IMPORT_MAP.search(html).group(1))["imports"]
    for url in ("/static/lib/api.js", "/vendor/socket.io-client/socket.io.esm.min.js"):
        fresh = await client.get(imports[url])
        assert fresh.status == 200 and fresh.headers["Cache-Control"] == IMMUTABLE
        for stale in (url, f"{url}?v=0123456789abcdef"):
            response = await client.get(stale)
            assert response.status == 200 and response.headers["Cache-Control"] == REVALIDATE
    assert (await client.get("/static/../server/app.py?v=1")).status == 404


def test_a_changed_file_gets_a_new_version(tmp_path):
    (tmp_path / "pages").mkdir()
    module = tmp_path / "pages" / "x.js"
    module.write_text("export const a = 1;\n")
    assets = Assets({STATIC_PREFIX: tmp_path})
    before = assets.static_url("pages/x.js")
    assert before == assets.import_map()["imports"]["/static/pages/x.js"]
    module.write_text("export const a = 2; // longer\n")
    assert assets.static_url("pages/x.js") != before
    assert assets.static_url("pages/missing.js") == "/static/pages/missing.js"


def test_a_page_preloads_what_its_module_imports_directly_or_not():
    assets = Assets({STATIC_PREFIX: STATIC, "/vendor/socket.io-client/": SOCKET_IO})
    graph = assets.module_graph("pages/watch.js")
    assert graph[0] == "/static/pages/watch.js"
    for url in ("/static/components/chat.js", "/static/lib/webrtc-http.js", "/static/lib/dom.js"):
        assert url in graph
    assert "/vendor/socket.io-client/socket.io.esm.min.js" in graph
    assert len(graph) == len(set(graph))
    html = assets.page_module("pages/watch.js")
    assert html.count("modulepreload") == len(graph) - 1 and html.endswith("</script>")


def test_every_module_import_names_a_file_that_exists():
    """A moved module whose importers were not fixed would only fail in the browser."""
    for path in STATIC.rglob("*.js"):
        for static, dynamic in SPECIFIER.findall(path.read_text()):
            specifier = static or dynamic
            if specifier.startswith("/vendor/"):
                continue
            target = (path.parent / specifier).resolve()
            assert target.is_file() and target.is_relative_to(STATIC), (path, specifier)

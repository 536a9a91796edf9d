"""Static files carry a content version: cached for a year, never run stale after a deploy."""

from __future__ import annotations

import json
import re

import yarl

from server.http.assets import (
    IMMUTABLE,
    REVALIDATE,
    STATIC_PREFIX,
    VENDOR_MODULES,
    Assets,
    _resolve,
    page_json,
)
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
    assert "/vendor/socket.io-client/socket.io.esm.min.js" in imports
    for url, versioned in imports.items():
        assert re.fullmatch(re.escape(url) + r"\?v=[0-9a-f]{10}", versioned), versioned
    scripts = re.findall(r'<script type="module" src="([^"]+)"', html)
    assert scripts and all(imports.get(src.split("?")[0]) == src for src in scripts)
    # what the page's modules import is fetched at once, from the URLs the import map names
    preloads = re.findall(r'<link rel="modulepreload" href="([^"]+)">', html)
    assert "/static/lib/api.js" in {url.split("?")[0] for url in preloads}
    assert all(imports.get(url.split("?")[0]) == url for url in preloads)
    assert re.search(r'href="/static/css/app\.css\?v=[0-9a-f]{10}"', html)
    # the import map comes before any module: only then does it apply to them
    assert html.index('type="importmap"') < html.index('type="module"')
    assert html.index('type="importmap"') < html.index('rel="modulepreload"')
    # every import of the page's modules, static or dynamic, is mapped, and nothing else
    loaded = {url.split("?")[0] for url in scripts + preloads}
    for url in loaded:
        for static, dynamic in SPECIFIER.findall(
            (STATIC / url.removeprefix(STATIC_PREFIX)).read_text()
        ):
            specifier = static or dynamic
            target = specifier if specifier.startswith("/") else _resolve(url, specifier)
            assert target in imports, (url, specifier)
    assert "/static/pages/host.js" not in imports and "/static/components/hall.js" not in imports
    assert "/vendor/hls.js/hls.light.min.mjs" in imports  # vendor modules: always


def test_without_the_page_s_modules_the_map_has_every_module():
    assets = Assets({STATIC_PREFIX: STATIC, "/vendor/socket.io-client/": SOCKET_IO})
    imports = assets.import_map()["imports"]
    modules = {f"{STATIC_PREFIX}{p.relative_to(STATIC).as_posix()}" for p in STATIC.rglob("*.js")}
    assert modules <= imports.keys()


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


async def test_no_path_leaves_the_static_and_vendor_folders(client):
    """Encoded dots and slashes reach the handler as written: it must still refuse them."""
    assert (await client.get("/static/favicon.svg")).status == 200  # what is inside is served
    for raw in (
        "/static/%2e%2e/%2e%2e/server/app.py",
        "/static/..%2f..%2fserver%2fapp.py",
        "/static/lib/%2e%2e%2f%2e%2e%2f%2e%2e%2fpyproject.toml",
        "/vendor/hls.js/%2e%2e/%2e%2e/%2e%2e/%2e%2e/pyproject.toml",
        "/vendor/%2e%2e/package.json",
    ):
        response = await client.get(yarl.URL(raw, encoded=True))
        assert response.status == 404, raw
        assert "[project]" not in await response.text()


async def test_a_link_out_of_the_static_folder_is_not_followed(tmp_path):
    (tmp_path / "inside.js").write_text("export const a = 1;\n")
    outside = tmp_path.parent / f"{tmp_path.name}-outside.txt"
    outside.write_text("secret")
    (tmp_path / "out.js").symlink_to(outside)
    try:
        assets = Assets({STATIC_PREFIX: tmp_path})
        assert assets.file("/static/inside.js") is not None
        assert assets.file("/static/out.js") is None
    finally:
        outside.unlink()


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


def test_a_page_preloads_what_its_module_imports_directly_or_not(tmp_path):
    assets = Assets({STATIC_PREFIX: STATIC, "/vendor/socket.io-client/": SOCKET_IO})
    graph = assets.module_graph("pages/watch.js")
    assert graph[0] == "/static/pages/watch.js"
    for url in ("/static/lib/webrtc-http.js", "/static/lib/dom.js"):  # via whep.js, at once
        assert url in graph
    assert len(graph) == len(set(graph))
    html = assets.page_module("pages/watch.js")
    assert html.count("modulepreload") == len(graph) - 1 and html.endswith("</script>")

    # what loads later (a dynamic import) is not preloaded, but the page's import map has it
    for name, text in {
        "pages/p.js": (
            'import { b } from "../lib/b.js";\nexport const p = () => import("../lib/later.js");\n'
        ),
        "lib/b.js": 'export { c as b } from "./c.js";\n',
        "lib/c.js": "export const c = 1;\n",
        "lib/later.js": 'import "./c.js";\nexport const later = 1;\n',
        "lib/unused.js": "export const unused = 1;\n",
    }.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    assets = Assets({STATIC_PREFIX: tmp_path})
    assert assets.module_graph("pages/p.js") == [
        "/static/pages/p.js",
        "/static/lib/b.js",
        "/static/lib/c.js",
    ]
    imports = assets.import_map(assets.page_module("pages/p.js"))["imports"]
    assert set(imports) == {
        "/static/pages/p.js",
        "/static/lib/b.js",
        "/static/lib/c.js",
        "/static/lib/later.js",
        *(f"/vendor/{module}" for module in VENDOR_MODULES),
    }


def test_every_module_import_names_a_file_that_exists():
    """A moved module whose importers were not fixed would only fail in the browser."""
    for path in STATIC.rglob("*.js"):
        for static, dynamic in SPECIFIER.findall(path.read_text()):
            specifier = static or dynamic
            if specifier.startswith("/vendor/"):
                continue
            target = (path.parent / specifier).resolve()
            assert target.is_file() and target.is_relative_to(STATIC), (path, specifier)


async def test_page_json_carries_chinese_as_it_is_and_no_markup(client, clerk_token):
    """``|tojson`` writes Chinese as UTF-8 (half the bytes of ``\\uXXXX``), never ``</script>``."""
    title = "村民会议</script><script>alert(1)</script>"
    created = await client.post(
        "/api/meetings", json={"title": title}, headers={"Authorization": f"Bearer {clerk_token}"}
    )
    meeting = await created.json()
    html = await (
        await client.get(
            f"/m/{meeting['code']}", headers={"Authorization": f"Bearer {clerk_token}"}
        )
    ).text()
    data = re.search(
        r'<script type="application/json" id="meeting-data">(.*?)</script>', html, re.S
    )
    assert data and json.loads(data.group(1))["title"] == title
    assert "村民会议\\u003c/script\\u003e" in data.group(1) and "\\u6751" not in data.group(1)
    assert page_json({"t": "\ud800"}) == '{"t": "\\ud800"}'  # UTF-8 cannot carry it: escaped

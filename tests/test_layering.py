"""The module boundaries docs/architecture.md promises, read from the source's imports.

Every import counts, also those under ``if TYPE_CHECKING:`` and inside functions: a
type-only import is still a dependency a reader has to follow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: no module of server/ or media/ is longer than this (migrations aside)
MAX_LINES = 500
#: web frameworks: only the edges (server/http, server/realtime.py, server/app.py) use them
FRAMEWORKS = ("aiohttp", "socketio", "engineio", "aiohttp_jinja2", "aiohttp_remotes")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources(package: str) -> dict[str, Path]:
    return {
        _module_name(path): path
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts
    }


MODULES = {**_sources("server"), **_sources("media")}


def _imports(name: str, path: Path) -> set[str]:
    """Every module ``name`` imports (absolute dotted names; ``from x import y`` gives x.y too)."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names = {f"{module}.{alias.name}" for alias in node.names}
            found.update(names)
            # ``from . import models`` needs the submodule, not the package's __init__
            if not names <= MODULES.keys():
                found.add(module)
    return found


IMPORTS = {name: _imports(name, path) for name, path in MODULES.items()}


def _importers(prefix: str, banned: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{name} imports {target}"
        for name, targets in IMPORTS.items()
        if name == prefix or name.startswith(prefix + ".")
        for target in targets
        if any(target == b or target.startswith(b + ".") for b in banned)
    )


def test_http_handlers_do_not_reach_into_the_socket_io_module():
    assert _importers("server.http", ("server.realtime",)) == []


@pytest.mark.parametrize("layer", ["server.services", "media"])
def test_domain_and_media_know_no_web_framework(layer):
    assert _importers(layer, FRAMEWORKS) == []


def test_media_knows_nothing_of_the_server():
    assert _importers("media", ("server",)) == []


def test_no_import_cycle_among_server_modules():
    graph = {
        name: {t for t in targets if t in MODULES and t != name and t != "server"}
        for name, targets in IMPORTS.items()
        if name.startswith("server")
    }
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycles.append(path[path.index(target) :] + [target])
            elif target not in state:
                visit(target)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert [" -> ".join(cycle) for cycle in cycles] == []


def test_no_module_is_too_long_to_read():
    long = {
        name: n
        for name, path in MODULES.items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}

"""Every error message a user can see has a zh_CN text; the edges answer in the caller's language.

Error messages are English message ids with ``{name}`` placeholders (server/errors.py).
The collector below reads server/ as source (an AST walk, nothing runs): every call of
a CunhuiError class, of ``Phrase`` and of a member ``Problem`` must give its message as
a string literal, never an f-string, and each literal needs a zh_CN translation with
the same placeholders. A message that is not a literal at all must be listed in
DYNAMIC with the reason its words are translated elsewhere.
"""

from __future__ import annotations

import ast
import string
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from server import errors
from server.i18n import Catalogs, error_locale
from server.services.replays import FAILED, INTERRUPTED, PROCESSING, READY, RECORDING
from server.socket_acks import socket_locale
from tests.support.realtime import Recorder

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "server"
CATALOG = ROOT / "web" / "translations" / "zh_CN" / "LC_MESSAGES" / "messages.po"

#: calls whose first argument is a message id, besides the error classes
MESSAGE_CALLS = {"Phrase": 0, "Problem": 1}
#: keyword arguments that carry a message id (a limiter's refusal, a Phrase at the edge)
MESSAGE_KEYWORDS = {"refusal"}
#: messages that are not literals, and why their words are translated anyway
DYNAMIC = {
    # the first problem of a member's details: Problem(...) literals, checked here too
    ("server/services/members.py", "first.message"),
}
REPLAY_STATUSES = (RECORDING, PROCESSING, READY, INTERRUPTED, FAILED)
#: modules whose owners (other parts of issue 14) were still converting their f-string
#: messages when this check came in: their f-strings are not reported yet. Empty this
#: once they are converted (test_pending_modules_still_need_it fails when one is done).
PENDING: set[str] = set()
#: words filled in through Phrase(...) from data (a meeting's or a recording's status)
STATUS_WORDS = ("scheduled", "live", "ended", "cancelled", *REPLAY_STATUSES)


def error_classes() -> set[str]:
    """The names of CunhuiError and every subclass of it (the ones defined outside too)."""
    found: set[str] = set()
    todo: list[type] = [errors.CunhuiError]
    while todo:
        kind = todo.pop()
        found.add(kind.__name__)
        todo.extend(kind.__subclasses__())
    return found


def _called(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def messages_in(source: str, path: str, classes: set[str]) -> tuple[list, list[str]]:
    """(templates as (path, line, text), problems) of one module's source."""
    templates: list[tuple[str, int, str, bool]] = []
    problems: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = _called(node)
        arguments: list[ast.expr] = []
        if name in classes:
            first = node.args[0] if node.args else None
            keyword = next((k.value for k in node.keywords if k.arg == "message"), None)
            arguments = [a for a in (first, keyword) if a is not None]
        elif name in MESSAGE_CALLS and len(node.args) > MESSAGE_CALLS[name]:
            arguments = [node.args[MESSAGE_CALLS[name]]]
        arguments += [k.value for k in node.keywords if k.arg in MESSAGE_KEYWORDS]
        for argument in arguments:
            where = f"{path}:{node.lineno}"
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                # without params a message is never formatted: its braces are text
                formatted = any(k.arg == "params" for k in node.keywords)
                templates.append((path, node.lineno, argument.value, formatted))
            elif isinstance(argument, ast.JoinedStr):
                problems.append(f"{where}: an f-string message: {ast.unparse(argument)}")
            elif name == "Phrase":
                continue  # a word from data (a status): STATUS_WORDS
            elif (path, ast.unparse(argument)) not in DYNAMIC:
                problems.append(
                    f"{where}: a message that is not a literal: {ast.unparse(argument)}"
                )
    return templates, problems


def server_messages(pending: set[str] = PENDING) -> tuple[list, list[str]]:
    classes = error_classes()
    templates, problems = [], []
    for path in sorted(SERVER.rglob("*.py")):
        name = str(path.relative_to(ROOT))
        found, wrong = messages_in(path.read_text(), name, classes)
        templates += found
        problems += [p for p in wrong if name not in pending or "f-string" not in p]
    return templates, problems


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def translation_problems(templates: list, catalog: dict[str, str]) -> list[str]:
    problems = []
    for path, line, template, formatted in templates:
        text = catalog.get(template)
        if not text:
            problems.append(f"{path}:{line}: no zh_CN text for {template!r}")
        elif formatted and placeholders(text) != placeholders(template):
            problems.append(f"{path}:{line}: placeholders differ: {template!r} -> {text!r}")
    return problems


def zh_catalog() -> dict[str, str]:
    with CATALOG.open("rb") as f:
        return {
            m.id: m.string
            for m in read_po(f, locale="zh_CN")
            if isinstance(m.id, str) and isinstance(m.string, str) and m.string and not m.fuzzy
        }


def test_every_error_message_in_server_has_a_chinese_text():
    templates, problems = server_messages()
    assert len(templates) > 150  # the walk found the raises (a broken walk finds none)
    words = [("server/errors.py", 0, word, False) for word in STATUS_WORDS]
    assert problems + translation_problems(templates + words, zh_catalog()) == []


def test_pending_modules_still_need_it():
    _, problems = server_messages(pending=set())
    still = {problem.split(":")[0] for problem in problems if "f-string" in problem}
    assert PENDING - still == set()  # converted: take it off PENDING


def test_the_check_refuses_an_f_string_and_a_placeholder_mismatch():
    source = (
        "def f(n, m):\n"
        "    raise BadRequest(f'at most {n} characters')\n"
        "    raise Conflict('at most {n} people', params={'n': n})\n"
        "    raise NotFound(m)\n"
    )
    templates, problems = messages_in(source, "x.py", error_classes())
    assert [p.split(": ", 1)[1] for p in problems] == [
        "an f-string message: f'at most {n} characters'",
        "a message that is not a literal: m",
    ]
    assert translation_problems(templates, {"at most {n} people": "最多{count}人"}) == [
        "x.py:3: placeholders differ: 'at most {n} people' -> '最多{count}人'"
    ]
    assert translation_problems(templates, {}) == ["x.py:3: no zh_CN text for 'at most {n} people'"]
    assert translation_problems(templates, {"at most {n} people": "最多{n}人"}) == []


def test_a_caller_without_a_language_gets_english():
    assert error_locale(None, None) == "en"
    assert error_locale(None, "") == "en"
    assert error_locale(None, "zh-CN,zh;q=0.9") == "zh_CN"
    assert error_locale("en", "zh-CN") == "en"
    assert error_locale("zh_CN", None) == "zh_CN"


def test_a_socket_takes_its_language_from_the_page_then_the_handshake():
    zh_headers = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9"}
    assert socket_locale({}) == "en"
    assert socket_locale(zh_headers) == "zh_CN"
    assert socket_locale({"HTTP_COOKIE": "lang=zh_CN; other=1"}) == "zh_CN"
    assert socket_locale({"HTTP_COOKIE": "lang=en"}, None) == "en"
    assert socket_locale(zh_headers, {"lang": "en"}) == "en"  # the page's language wins
    assert socket_locale({}, {"lang": "zh-CN", "token": "x"}) == "zh_CN"
    assert socket_locale({"HTTP_COOKIE": "bad\x00cookie"}, {"lang": 7}) == "en"


def test_gettext_for_a_locale_leaves_the_current_locale_alone():
    catalogs = Catalogs(ROOT / "web" / "translations")
    chinese = catalogs.gettext_for("zh_CN")
    assert chinese("join a meeting first") == "请先加入会议"
    assert catalogs.gettext_for("en")("join a meeting first") == "join a meeting first"
    error = errors.Conflict(
        "the meeting is {status}, not live", params={"status": errors.Phrase("ended")}
    )
    assert error.message == "the meeting is ended, not live"
    assert "ended" not in error.translated(chinese) and "已结束" in error.translated(chinese)


async def test_an_api_error_answers_in_the_callers_language(client):
    url = "/api/meetings/999999"
    chinese = await client.get(url, headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    english = await client.get(url)
    by_cookie = await client.get(url, headers={"Cookie": "lang=zh_CN"})
    assert chinese.status == english.status == by_cookie.status == 404
    zh, en, cookie = [(await r.json())["error"] for r in (chinese, english, by_cookie)]
    assert zh["code"] == en["code"] == "not_found"
    assert en["message"] == "no meeting '999999'"
    assert zh["message"] == cookie["message"] == "没有编号为 999999 的会议"
    # aiohttp's own refusal (no such route) too
    nowhere = await client.get("/api/nowhere", headers={"Accept-Language": "zh-CN"})
    assert (await nowhere.json())["error"]["message"] == "没有这个地址"


@pytest.mark.parametrize(
    ("headers", "message"),
    [({"Accept-Language": "zh-CN,zh;q=0.9"}, "请先加入会议"), ({}, "join a meeting first")],
)
async def test_a_socket_refusal_answers_in_the_language_of_its_handshake(client, headers, message):
    person = Recorder()
    await person.sio.connect(
        str(client.make_url("/")), headers=headers, transports=["websocket"], wait_timeout=5
    )
    try:
        ack = await person.call("chat:send", {"text": "你好"})
    finally:
        await person.close()
    assert ack == {"ok": False, "error": {"code": "bad_request", "message": message}}

"""Hostile input at every route and every socket.io event (issue 12, item 10).

Whatever a client sends — JSON nested 100,000 deep, a 5,000-digit number, NaN,
ids of 2**31 and more, dates at the ends of the calendar, NUL characters, lone
UTF-16 surrogates, a 128 KB CSV cell — the answer is a 4xx with a reason (or an
ack ``{"ok": false, "error": {"code": "bad_request", ...}}``), never a 5xx, never
``internal_error``, never a traceback. The property tests enumerate the app's
routes and the namespace's handlers, so a new route or event is attacked too.
They run on SQLite, and on PostgreSQL when 127.0.0.1:5432 answers (which refuses
NUL in text and ids beyond its INTEGER: the classic 500s).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.app import create_app
from server.keys import DATABASE, REALTIME
from server.realtime import MeetingNamespace
from server.services import accounts
from server.services.ratelimit import SlidingWindow

from .support.api import PASSWORD, auth
from .support.databases import fresh_database
from .support.realtime import Recorder

SERVER = Path(__file__).resolve().parent.parent / "server"

# ------------------------------------------------------------------ what an attacker sends

#: every field name the server reads from a body or payload (found in its source, so a new
#: field is attacked too), and a few it does not know
FIELDS = sorted(
    set(
        re.findall(
            r'(?:payload|body|data|fields|entry|raw|query)\.get\("(\w+)"',
            "\n".join(p.read_text() for p in SERVER.rglob("*.py")),
        )
    )
    | {"id", "limit", "after", "__proto__"}
)
QUERY_KEYS = ["q", "from", "to", "status", "after", "limit", "ids", "next", "invite", "t"]

#: the edges of every range that broke something once
NASTY_TEXT = [
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfffy",
    "\ufeff",
    "",
    " ",
    "0001-01-01",
    "9999-12-31",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "2026-02-30",
    "2147483648",
    "-2147483649",
    "99999999999999999999",
    "1" * 5000,
    "1e400",
    "NaN",
    "-0",
    " 7",
    "+7",
    "7_0",
    "٧",
    "１２",
    "m2147483648",
    "m99999999999",
    "../../etc/passwd",
    "%00",
    "<script>",
    "同意",
    "a" * 5000,
]
NASTY_NUMBERS = [
    0,
    -1,
    1,
    2**31 - 1,
    2**31,
    -(2**31) - 1,
    2**53 + 1,
    2**63,
    2**64,
    10**30,
    1.5,
    -0.0,
    1e308,
    float("inf"),
    float("-inf"),
    float("nan"),
]

texts = st.one_of(st.text(max_size=20), st.sampled_from(NASTY_TEXT))
numbers = st.one_of(
    st.integers(), st.sampled_from(NASTY_NUMBERS), st.floats(allow_nan=True, allow_infinity=True)
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(FIELDS), texts), inner, max_size=5),
    ),
    max_leaves=16,
)
objects = st.dictionaries(st.one_of(st.sampled_from(FIELDS), texts), json_values, max_size=6)
#: a payload every handler would take (REAL: the world's ids), then one field made hostile:
#: so the attack reaches past the first check of each handler
VALID = {
    "meeting_id": "REAL",
    "vote_id": "REAL",
    "item_id": "REAL",
    "member_id": "REAL",
    "participant_id": "REAL",
    "proxy_id": "REAL",
    "for_member_id": "REAL",
    "title": "会",
    "text": "你好",
    "question": "修路吗?",
    "choice": "同意",
    "name": "李四",
    "counts": {"同意": 1},
    "in_hall": 3,
    "present": True,
    "seconds": 60,
    "reason": "天气",
    "status": "adopted",
    "reply": "好",
    "agenda": [{"title": "一"}],
    "since_seq": 0,
}
mutated = st.tuples(st.sampled_from(FIELDS), json_values).map(lambda fv: {**VALID, fv[0]: fv[1]})
payloads = st.one_of(mutated, objects, json_values)


class Raw(bytes):
    """A body as sent; a short repr, so a failing example is readable."""

    def __repr__(self) -> str:
        return f"<{len(self)} bytes: {bytes(self[:60])!r}>"


def deep(n: int) -> bytes:
    return b'{"a":' * n + b"1" + b"}" * n


#: bodies no JSON library should have to survive, but ours must answer
RAW_BODIES = [
    Raw(b)
    for b in (
        b"[" * 100_000 + b"]" * 100_000,
        deep(50_000),
        deep(40),
        b'{"vote_id": ' + b"7" * 5000 + b"}",
        b'{"text": "\\ud800"}',
        b'{"title": "a\\u0000b"}',
        b'{"x": NaN}',
        b'{"x": 1e99999}',
        b"\xff\xfe\x00",
        b"",
        b"null",
        b"[]",
        b'"text"',
        b"{",
        b"name\n" + b"x" * 140_000 + b"\n",
    )
]


def json_bytes(value) -> Raw:
    # ensure_ascii: a lone surrogate goes out as \\ud800, as a hostile client would send it
    return Raw(json.dumps(value, ensure_ascii=True, allow_nan=True).encode())


def with_ids(value, ids: dict):
    """VALID's REAL placeholders filled with the world's ids."""
    if not isinstance(value, dict):
        return value
    real = {
        **ids,
        "participant_id": f"m{ids['member_id']}",
        "proxy_id": ids["member_id"],
        "for_member_id": ids["member_id"],
    }
    return {k: real.get(k, ids["id"]) if v == "REAL" else v for k, v in value.items()}


bodies = st.one_of(payloads, st.sampled_from(RAW_BODIES))


def url_part(text: str) -> str:
    """Percent-encode any text, lone surrogates included (their CESU-8 bytes: invalid UTF-8)."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


# ------------------------------------------------------------------ a world to attack


@contextlib.asynccontextmanager
async def database_url(backend: str, tmp_path: Path):
    if backend == "sqlite":
        yield ""
    else:
        async with fresh_database("cunhui_attack") as url:
            yield url


@pytest.fixture(params=["sqlite", "postgresql"])
async def world(request, aiohttp_client, settings, tmp_path):
    """A live meeting open to guests, a clerk, a member, a closed vote: (client, ids, tokens)."""
    async with database_url(request.param, tmp_path) as url:
        changed = {
            "socket_event_rate": 1000.0,
            "socket_event_burst": 100_000,
            "guest_joins_per_address": 100_000,
        }
        if url:
            changed["database_url"] = url
        client = await aiohttp_client(create_app(replace(settings, **changed)))
        rt = client.app[REALTIME].guard
        for name in ("chat_limits", "guest_chat_limits", "cast_limits"):
            if hasattr(rt, name):  # the attack must reach the handlers, not the chat limit
                setattr(rt, name, SlidingWindow(10**6, 1.0))
        async with client.app[DATABASE].session() as db:
            await accounts.create_user(db, "clerk", PASSWORD)
        login = await client.post("/api/login", json={"username": "clerk", "password": PASSWORD})
        clerk = (await login.json())["token"]
        client.session.cookie_jar.clear()
        made = await (
            await client.post(
                "/api/meetings",
                headers=auth(clerk),
                json={
                    "title": "村民会议",
                    "allow_guests": True,
                    "allow_guest_chat": True,
                    "agenda": [{"title": "修路"}],
                },
            )
        ).json()
        await client.post(f"/api/meetings/{made['id']}/start", headers=auth(clerk))
        added = await (
            await client.post("/api/members", json={"name": "张三"}, headers=auth(clerk))
        ).json()
        member = (await (await client.post("/api/join", json={"invite": added["invite"]})).json())[
            "token"
        ]
        client.session.cookie_jar.clear()
        host = Recorder()
        await host.connect(client, clerk)
        assert (await host.call("join", {"meeting_id": made["id"]}))["ok"]
        vote = await host.call(
            "vote:open", {"question": "修路吗?", "item_id": made["agenda"][0]["id"]}
        )
        await host.call("vote:close", {"vote_id": vote["vote_id"]})
        await host.close()
        ids = {
            "id": made["id"],
            "meeting_id": made["id"],
            "vote_id": vote["vote_id"],
            "member_id": added["id"],
            "item_id": made["agenda"][0]["id"],
            "code": made["code"],
        }
        yield client, ids, {"clerk": clerk, "member": member}


def routes_of(app: web.Application) -> list[tuple[str, str]]:
    """Every (method, path template) the app serves, but static files and socket.io's own."""
    found = []
    for resource in app.router.resources():
        if isinstance(resource, web.StaticResource) or resource.canonical.startswith("/socket.io"):
            continue
        for route in resource:
            if route.method != "HEAD":
                found.append((route.method, resource.canonical))
    return sorted(set(found))


def fill(template: str, choose) -> str:
    return re.sub(r"\{(\w+)(?::[^}]*)?\}", lambda m: choose(m.group(1)), template)


attacks = st.fixed_dictionaries(
    {
        "path": st.one_of(
            st.sampled_from(NASTY_TEXT),
            texts,
            st.integers(min_value=-1, max_value=2**64).map(str),
            st.just("real"),
        ),
        "query": st.dictionaries(st.one_of(st.sampled_from(QUERY_KEYS), texts), texts, max_size=3),
        "body": bodies,
        "who": st.sampled_from([None, "clerk", "member", "junk"]),
    }
)

PROPERTY = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@settings(PROPERTY, max_examples=25)
@given(attack=attacks)
async def test_no_route_answers_hostile_input_with_a_5xx(world, attack):
    client, ids, tokens = world
    headers = {"Content-Type": "application/json"}
    if attack["who"] == "junk":
        headers["Authorization"] = "Bearer not.a.token"
    elif attack["who"]:
        headers.update(auth(tokens[attack["who"]]))
    query = "&".join(f"{url_part(k)}={url_part(v)}" for k, v in attack["query"].items())
    body = attack["body"]
    if not isinstance(body, Raw):
        body = json_bytes(with_ids(body, ids))
    for method, template in routes_of(client.app):

        def choose(name: str) -> str:
            if attack["path"] == "real":
                return url_part(str(ids.get(name, ids["id"])))
            return url_part(attack["path"])

        path = fill(template, choose) + (f"?{query}" if query else "")
        response = await client.request(
            method, path, data=body, headers=headers, allow_redirects=False
        )
        text = await response.text(errors="replace")
        what = f"{method} {path[:200]} body={body!r} -> {response.status} {text[:300]}"
        assert response.status < 500, what
        assert "internal_error" not in text and "Traceback" not in text, what


# ------------------------------------------------------------------ socket.io events


def client_events() -> list[str]:
    """The namespace's client events, as clients name them (``on_vote_cast`` -> ``vote:cast``)."""
    names = [
        n[3:]
        for n in dir(MeetingNamespace)
        if n.startswith("on_") and n not in ("on_connect", "on_disconnect")
    ]
    return sorted(n.replace("_", ":", 1) for n in names)


#: one hostile value, mostly from the lists of known troublemakers
hostile = st.one_of(st.sampled_from(NASTY_TEXT), st.sampled_from(NASTY_NUMBERS), json_values)


@settings(PROPERTY, max_examples=6)
@given(value=hostile, who=st.sampled_from(["clerk", "member", None]))
async def test_no_socket_event_answers_hostile_input_with_internal_error(world, value, who):
    """One hostile value, in every field of an otherwise valid payload, to every event."""
    client, ids, tokens = world
    person = Recorder()
    await person.connect(client, tokens[who] if who else None)
    valid = with_ids(VALID, ids)
    sent = [value] + [{**valid, field: value} for field in VALID]
    try:
        assert (await person.call("join", {"meeting_id": ids["id"]}))["ok"]
        for event in client_events():
            for payload in sent:
                ack = await person.sio.call(event, payload, timeout=5)
                what = f"{event} {str(payload)[:200]} -> {ack}"
                assert isinstance(ack, dict) and "ok" in ack, what
                if not ack["ok"]:
                    assert ack["error"]["code"] != "internal_error", what
    finally:
        await person.close()


# ------------------------------------------------------------------ the examples, by name


async def test_the_reported_inputs_are_400s_with_a_reason(world, caplog):
    client, ids, tokens = world
    clerk = auth(tokens["clerk"])
    cases = [
        ("GET", "/api/meetings?to=9999-12-31", None, {}, 400),
        ("GET", "/api/meetings?from=0001-01-01", None, {}, 400),
        ("GET", "/meetings/past?from=0001-01-01", None, {}, 400),
        ("GET", "/meetings/past?to=9999-12-31", None, {}, 400),
        ("GET", "/api/meetings/2147483648", None, {}, 404),
        ("GET", "/api/meetings/99999999999999999999", None, {}, 404),
        ("GET", f"/api/meetings/{ids['id']}/votes/2147483648/receipts", None, clerk, 404),
        ("PATCH", "/api/members/2147483648", b"{}", clerk, 404),
        ("GET", "/meetings/2147483648/replay", None, {}, 404),
        ("GET", "/m/%00", None, {}, 404),
        ("GET", "/api/meetings?q=%00", None, {}, 400),
        ("GET", "/api/meetings?q=%ED%A0%80", None, {}, 200),  # not UTF-8: decoded as U+FFFD
        ("POST", "/api/meetings", b"[" * 100_000, clerk, 400),
        ("POST", "/api/meetings", b'{"title": ' + b"9" * 5000 + b"}", clerk, 400),
        ("POST", "/api/meetings", b'{"title": "\\ud800"}', clerk, 400),
        ("POST", "/api/meetings", b'{"title": "a\\u0000b"}', clerk, 400),
        (
            "POST",
            "/api/meetings",
            json_bytes({"title": "t", "starts_at": "9999-12-31T23:59:59-14:00"}),
            clerk,
            400,
        ),
        (
            "POST",
            "/api/meetings",
            json_bytes({"title": "t", "starts_at": "0001-01-01T00:00:00+14:00"}),
            clerk,
            400,
        ),
        ("POST", "/api/members", json_bytes({"name": "张三\x00"}), clerk, 400),
        (
            "POST",
            f"/api/meetings/{ids['id']}/proxies",
            json_bytes({"member_id": 2**31, "proxy_id": 1}),
            clerk,
            400,
        ),
        ("POST", "/api/members/import", b'name,phone\n"' + b"x" * 140_000 + b'",1\n', clerk, 400),
        ("POST", "/api/members/import", b"name,birth_year\nA," + b"1" * 5000 + b"\n", clerk, 400),
        ("POST", "/api/members/import", b"name\nA\x00B\n", clerk, 400),
        ("GET", f"/api/meetings/{ids['id']}/timeline?after=99999999999999999999999", None, {}, 400),
    ]
    caplog.set_level(logging.ERROR)
    for method, path, body, headers, status in cases:
        response = await client.request(method, path, data=body, headers=headers)
        text = await response.text()
        assert response.status == status, (method, path, response.status, text[:300])
        if status == 400 and text.startswith("{"):
            error = (await response.json())["error"]
            assert error["code"] in ("bad_request", "import_rejected") and error["message"], text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    # and the record they did not touch still verifies (PostgreSQL: the JSON read back as text)
    verdict = await (await client.get(f"/api/meetings/{ids['id']}/audit", headers=clerk)).json()
    assert verdict["ok"] is True and verdict["events"] >= 4, verdict


async def test_ids_beyond_an_integer_column_in_events_are_refused(world):
    """PostgreSQL's INTEGER ends at 2**31 - 1: an id past it is "no such", not a crash."""
    client, ids, tokens = world
    host = Recorder()
    await host.connect(client, tokens["clerk"])
    try:
        assert (await host.call("join", {"meeting_id": ids["id"]}))["ok"]
        for event, payload in (
            ("join", {"meeting_id": 2**31}),
            ("join", {"meeting_id": "2147483648"}),
            ("floor:grant", {"participant_id": "m2147483648"}),
            ("floor:grant", {"participant_id": "m99999999999999999999"}),
            ("vote:roll", {"vote_id": ids["vote_id"], "member_id": 2**31, "choice": "同意"}),
            ("vote:cast", {"vote_id": 2**31, "choice": "同意"}),
            ("agenda:goto", {"item_id": 2**31}),
        ):
            ack = await host.call(event, payload)
            assert not ack["ok"] and ack["error"]["code"] in ("bad_request", "not_found"), (
                event,
                ack,
            )
    finally:
        await host.close()


async def test_a_crashing_page_shows_no_traceback_and_is_logged(world, monkeypatch, caplog):
    client, _, _ = world
    from server.http import pages

    async def broken(*args, **kwargs):
        raise RuntimeError("a bug in a page")

    monkeypatch.setattr(pages.meetings, "list_meetings", broken)
    caplog.set_level(logging.ERROR)
    for path in ("/", "/api/meetings"):
        response = await client.get(path)
        text = await response.text()
        assert response.status == 500 and "Traceback" not in text and "a bug in a page" not in text
    assert "a bug in a page" in caplog.text  # the log has it


# ------------------------------------------------------------------ raw socket.io packets


async def raw_socket(client, token: str | None = None):
    """A bare engine.io websocket, connected to the namespace (what a hostile script uses)."""
    ws = await client.ws_connect("/socket.io/?EIO=4&transport=websocket")
    assert (await ws.receive_str()).startswith("0{")
    await ws.send_str("40" + (json.dumps({"token": token}) if token else ""))
    assert (await ws.receive_str()).startswith("40")
    return ws


async def ack_of(ws, ack_id: int) -> list:
    """The ack with this id, skipping broadcasts."""
    while True:
        message = await asyncio.wait_for(ws.receive_str(), 5)
        if message == "2":  # engine.io ping
            await ws.send_str("3")
        elif message.startswith(f"43{ack_id}["):
            return json.loads(message[len(f"43{ack_id}") :])


async def test_hostile_socket_packets_get_a_bad_request_ack_and_others_chat_on(world, caplog):
    client, ids, tokens = world
    caplog.set_level(logging.ERROR)
    listener = Recorder()
    await listener.connect(client, tokens["clerk"])
    assert (await listener.call("join", {"meeting_id": ids["id"]}))["ok"]
    ws = await raw_socket(client, tokens["member"])
    await ws.send_str('421["join",' + json.dumps({"meeting_id": ids["id"]}) + "]")
    assert (await ack_of(ws, 1))[0]["ok"]
    packets = {
        2: '422["chat:send",' + "[" * 30_000 + "]" * 30_000 + "]",  # < 64 KB: engine.io's cap
        3: '423["chat:send",{"text":' + "7" * 5000 + "}]",
        4: '424["chat:send",{"text":"\\ud800"}]',
        5: '425["chat:send",{"text":"a\\u0000b"}]',
        6: '426{"not":"a list"}',
        7: '427["chat:send",{"text":"x"},{"extra":1}]',
        8: '428["vote:cast",{"vote_id":2147483648,"choice":"同意"}]',
        9: '429["connect",{"token":"x"}]',
        10: '4210["join",{"meeting_id":NaN}]',
    }
    for ack_id, packet in packets.items():
        await ws.send_str(packet)
        answer = (await ack_of(ws, ack_id))[0]
        assert answer == {
            "ok": False,
            "error": {"code": "bad_request", "message": answer["error"]["message"]},
        }, (packet[:60], answer)
        assert answer["error"]["message"], packet[:60]
    # garbage with no ack id, and broken engine.io frames: nothing to answer, nothing breaks
    for packet in ("42" + "[" * 50_000, "4" + "[" * 50_000, "4[1", "42" + "9" * 5000):
        await ws.send_str(packet)
    # the attacker's own socket still works, and so does everyone else's
    await ws.send_str('4211["chat:send",{"text":"还在"}]')
    assert (await ack_of(ws, 11))[0]["ok"]
    await listener.wait_for("chat:message", lambda d: d["text"] == "还在")
    await ws.close()
    await listener.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text

"""The authorization matrix: every route × every kind of caller → the expected status.

Routes come from the application's router, so a new route without a declared
policy fails here. Expected statuses come from the policy's row, not from a
hand-written list per route.
"""

from __future__ import annotations

import pytest

from .support.api import auth, login_clerk, new_member

CALLERS = ("anonymous", "guest", "member", "other_member", "other_committee", "committee")
OK = "ok"  # the route's own success, or the bad-input error a permitted caller gets

# what each kind of caller gets, per policy, for village A's members-only meeting
POLICIES = {
    # anyone: no role check (login, join, lists filtered by who asks, pages, static files)
    "public": None,
    # the meeting's village (committee, members); guests only where guests are allowed
    "watch": {
        "anonymous": 401,
        "guest": 403,
        "member": OK,
        "other_member": 404,
        "other_committee": 404,
        "committee": OK,
    },
    # the committee of the meeting's (or member's) village
    "run": {
        "anonymous": 401,
        "guest": 403,
        "member": 403,
        "other_member": 403,
        "other_committee": 404,
        "committee": OK,
    },
    # WHIP: the committee of the meeting's village; a member of it only while holding
    # the floor (nobody does here: tests/test_floor_media.py has the holder)
    "publish": {
        "anonymous": 401,
        "guest": 403,
        "member": 403,
        "other_member": 404,
        "other_committee": 404,
        "committee": OK,
    },
    # members of the meeting's village only (suggestions)
    "member": {
        "anonymous": 401,
        "guest": 403,
        "member": OK,
        "other_member": 404,
        "other_committee": 404,
        "committee": 403,
    },
    # any committee, acting on its own village
    "committee": {
        "anonymous": 401,
        "guest": 403,
        "member": 403,
        "other_member": 403,
        "other_committee": OK,
        "committee": OK,
    },
    # a media session's URL is its capability (tested in test_whip_whep_errors.py)
    "capability": None,
}

POLICY = {
    ("POST", "/api/login"): "public",
    ("POST", "/api/logout"): "public",
    ("GET", "/api/me"): "public",
    ("POST", "/api/join"): "public",
    ("GET", "/api/meetings"): "public",
    ("GET", "/healthz"): "public",
    ("GET", "/readyz"): "public",
    ("POST", "/api/meetings"): "committee",
    ("GET", "/api/meetings/{id}"): "watch",
    ("PATCH", "/api/meetings/{id}"): "run",
    ("POST", "/api/meetings/{id}/cancel"): "run",
    ("GET", "/api/meetings/{id}/invite.ics"): "watch",
    ("GET", "/api/meetings/{id}/timeline"): "watch",
    ("GET", "/api/meetings/{id}/audit"): "watch",
    ("GET", "/api/meetings/{id}/minutes.md"): "watch",
    ("GET", "/api/meetings/{id}/minutes.html"): "watch",
    ("GET", "/api/meetings/{id}/suggestions"): "watch",
    ("GET", "/api/meetings/{id}/proxies"): "watch",
    ("POST", "/api/meetings/{id}/proxies"): "run",
    ("POST", "/api/meetings/{id}/suggestions"): "member",
    ("POST", "/api/meetings/{id}/suggestions/{suggestion_id}/answer"): "run",
    ("GET", "/api/meetings/{id}/votes"): "watch",
    ("GET", "/api/meetings/{id}/votes/{vote_id}/receipts"): "watch",
    ("POST", "/api/meetings/{id}/start"): "run",
    ("POST", "/api/meetings/{id}/end"): "run",
    ("GET", "/api/meetings/{id}/media"): "run",
    ("GET", "/api/meetings/{id}/recording"): "watch",
    ("POST", "/api/meetings/{id}/recording/retry"): "run",
    # files by meeting id, part and a fixed name (tests/test_recording_files.py)
    ("GET", "/recordings/{id}/{part}/{name}"): "watch",
    ("POST", "/api/members"): "committee",
    ("GET", "/api/members"): "committee",
    ("POST", "/api/members/import"): "committee",
    ("PATCH", "/api/members/{id}"): "run",
    ("DELETE", "/api/members/{id}"): "run",
    ("POST", "/api/members/{id}/invite"): "run",
    ("POST", "/whip/{meeting_id}"): "publish",
    ("POST", "/whep/{meeting_id}"): "watch",
    ("PATCH", "/whip/{meeting_id}/{session_id}"): "capability",
    ("DELETE", "/whip/{meeting_id}/{session_id}"): "capability",
    ("PATCH", "/whep/{meeting_id}/{session_id}"): "capability",
    ("DELETE", "/whep/{meeting_id}/{session_id}"): "capability",
    ("OPTIONS", "/whip/{tail}"): "public",
    ("OPTIONS", "/whep/{tail}"): "public",
    ("GET", "/i/{invite}"): "public",
    ("GET", "/"): "public",
    ("GET", "/login"): "public",
    ("GET", "/meetings/new"): "public",  # a page: redirects to /login unless committee
    ("GET", "/meetings/{id}/host"): "public",  # a page: login or 404 unless its committee
    ("GET", "/meetings/{id}/edit"): "public",  # a page: login or 404 unless its committee
    ("GET", "/members"): "public",  # a page: login unless committee; its own village only
    ("GET", "/members/cards"): "public",  # likewise (test_members_and_join.py)
    ("GET", "/m/{code}"): "public",  # a page: says itself who may watch
    ("GET", "/m/{code}/qr.svg"): "public",  # the code is public: it is on the notice board
    ("GET", "/api/meeting-codes/{code}"): "public",  # whether it exists, as /m/{code} tells
    ("GET", "/favicon.ico"): "public",
    ("GET", "/meetings/{id}/notice"): "public",  # a page: 404 unless the caller may watch
    ("GET", "/meetings/{id}/audit"): "public",  # a page: 404 unless the caller may watch
    ("GET", "/meetings/{id}/replay"): "public",  # a page: 404 unless the caller may watch
    ("GET", "/meetings/past"): "public",  # a page: lists only what the caller may see
    ("GET", "/lang/{locale}"): "public",
}
UNROUTED_PREFIXES = ("/socket.io/", "/static", "/vendor/")  # socket.io checks per event


def app_routes(app) -> set[tuple[str, str]]:
    found = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or info.get("prefix")
        if route.method == "HEAD" or path.startswith(UNROUTED_PREFIXES):
            continue
        found.add((route.method, path))
    return found


def test_every_route_declares_a_policy(client):
    missing = app_routes(client.app) - set(POLICY)
    assert not missing, f"routes without an authorization policy: {sorted(missing)}"
    stale = set(POLICY) - app_routes(client.app)
    assert not stale, f"policies for routes that no longer exist: {sorted(stale)}"


@pytest.fixture
async def world(client, clerk_token):
    """Village A (ours) with a live members-only meeting and a member; village B likewise."""
    b_token = await login_clerk(client, "b-clerk", village="李家村")

    a_member_id, a_member = await new_member(client, clerk_token, "村民")
    second_member_id, _ = await new_member(client, clerk_token, "村民")
    _, b_member = await new_member(client, b_token, "村民")
    meeting = await (
        await client.post("/api/meetings", json={"title": "会"}, headers=auth(clerk_token))
    ).json()
    await client.post(f"/api/meetings/{meeting['id']}/start", headers=auth(clerk_token))
    suggested = await client.post(
        f"/api/meetings/{meeting['id']}/suggestions",
        json={"text": "路灯坏了"},
        headers=auth(a_member),
    )
    assert suggested.status == 201  # suggestion 1, for the answer route
    open_meeting = await (
        await client.post(
            "/api/meetings", json={"title": "公开", "allow_guests": True}, headers=auth(clerk_token)
        )
    ).json()
    guest = await (
        await client.post("/api/join", json={"meeting_code": open_meeting["code"], "name": "客"})
    ).json()
    client.session.cookie_jar.clear()
    tokens = {
        "anonymous": None,
        "guest": guest["token"],
        "member": a_member,
        "other_member": b_member,
        "other_committee": b_token,
        "committee": clerk_token,
    }
    return {
        "tokens": tokens,
        "meeting": meeting,
        "member_id": a_member_id,
        "second_member_id": second_member_id,
    }


def request_for(method: str, path: str, world) -> tuple[str, dict]:
    """The concrete URL and body for a route, aimed at village A's things."""
    url = (
        path.replace("{meeting_id}", str(world["meeting"]["id"]))
        .replace("{vote_id}", "1")
        .replace("{part}", "1")
        .replace("{name}", "index.m3u8")
        .replace("{id}", str(world["member_id"] if "members" in path else world["meeting"]["id"]))
    )
    if path.startswith(("/whip/", "/whep/")):
        return url, {"data": "v=0\r\n", "headers": {"Content-Type": "application/sdp"}}
    if path == "/api/members":
        return url, {"json": {"name": "新人"}}
    if path == "/api/members/{id}" and method == "PATCH":
        return url, {"json": {"household": "三组"}}
    if path == "/api/members/import":
        return url, {"data": "name\n新人甲\n".encode(), "headers": {"Content-Type": "text/csv"}}
    if path == "/api/meetings":
        return url, {"json": {"title": "新会"}}
    if path == "/api/meetings/{id}":
        return url, {"json": {"place": "村委会会议室"}}
    if path == "/api/meetings/{id}/proxies":
        return url, {
            "json": {"member_id": world["member_id"], "proxy_id": world["second_member_id"]}
        }
    if path == "/api/meetings/{id}/suggestions":
        return url.replace("{suggestion_id}", "1"), {"json": {"text": "建议修路灯"}}
    if path.endswith("/answer"):
        return url.replace("{suggestion_id}", "1"), {"json": {"status": "adopted", "reply": "好"}}
    if path.endswith("/cancel"):
        return url, {"json": {"reason": "下雨"}}
    return url, {}


@pytest.mark.parametrize("caller", CALLERS)
async def test_authorization_matrix(client, world, caller):
    """Each protected route, called by one kind of caller, answers as its policy says.

    Permitted callers get the route's success or, for media routes given a dummy
    offer, 400 (they got past every role check); refused ones the policy's status.
    """
    token = world["tokens"][caller]
    checked = 0
    # run-policy routes last: ending the meeting or removing the member changes the world
    order = sorted(
        POLICY.items(), key=lambda item: (item[0][1].endswith("/end"), item[0][0] == "DELETE")
    )
    for (method, path), policy in order:
        expected = POLICIES[policy] and POLICIES[policy][caller]
        if expected is None:
            continue
        url, kwargs = request_for(method, path, world)
        headers = {**kwargs.pop("headers", {}), **(auth(token) if token else {})}
        response = await client.request(method, url, headers=headers, **kwargs)
        json_body = response.content_type == "application/json"
        body = await response.json() if json_body else await response.text()
        if expected == OK:
            # past every role check: success, a dummy offer's 400, or the live
            # meeting's 409 (it can no longer be edited or cancelled)
            # (the world holds no vote: a permitted caller asking for receipts gets 404;
            # nobody publishes, so nothing is recorded: the recording and its files 404)
            assert (
                response.status < 300
                or response.status in (400, 409)
                or (response.status == 404 and path.endswith(("/receipts", "{name}", "/recording")))
            ), (method, path, caller, response.status, body)
            if response.status == 400:
                assert path.startswith(("/whip/", "/whep/")), (method, path, caller, body)
        else:
            assert response.status == expected, (method, path, caller, response.status, body)
            assert set(body) == {"error"} and body["error"]["code"]
        checked += 1
    assert checked == sum(1 for policy in POLICY.values() if POLICIES[policy])

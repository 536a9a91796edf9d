"""The member roll and joining: invite links, meeting code + PIN, guests, villages apart."""

from __future__ import annotations

from server.keys import DATABASE
from server.services import accounts

from .conftest import PASSWORD, auth
from .test_api import error_code


async def add_member(client, token, **body) -> dict:
    response = await client.post("/api/members", json={"name": "张三", **body}, headers=auth(token))
    assert response.status == 201, await response.text()
    return await response.json()


async def second_village_clerk(client) -> str:
    async with client.app[DATABASE].session() as db:
        await accounts.create_user(db, "other-clerk", PASSWORD, village="李家村")
    response = await client.post("/api/login", json={"username": "other-clerk", "password": PASSWORD})
    client.session.cookie_jar.clear()
    return (await response.json())["token"]


async def meeting(client, token, **extra) -> dict:
    response = await client.post("/api/meetings", json={"title": "会", **extra}, headers=auth(token))
    assert response.status == 201
    return await response.json()


async def test_member_joins_by_invite_and_watches_their_villages_meeting(client, clerk_token):
    added = await add_member(client, clerk_token, phone="13800000000", household="一组")
    assert set(added) >= {"id", "name", "invite_url", "invite", "pin"}
    assert added["pin"].isdigit() and len(added["pin"]) == 6
    assert added["invite_url"].endswith("/i/" + added["invite"])

    joined = await client.post("/api/join", json={"invite": added["invite"]})
    body = await joined.json()
    assert joined.status == 200
    assert body["participant"] == {"id": f"m{added['id']}", "name": "张三", "role": "member"}
    member_token = body["token"]

    members_only = await meeting(client, clerk_token)
    seen = await client.get(f"/api/meetings/{members_only['id']}", headers=auth(member_token))
    assert seen.status == 200
    listed = await (await client.get("/api/meetings", headers=auth(member_token))).json()
    assert [m["id"] for m in listed["meetings"]] == [members_only["id"]]
    # a member does not run meetings
    start = await client.post(f"/api/meetings/{members_only['id']}/start", headers=auth(member_token))
    assert start.status == 403 and await error_code(start) == "forbidden"
    roll = await client.get("/api/members", headers=auth(member_token))
    assert roll.status == 403


async def test_meeting_code_and_pin_then_lockout_after_wrong_guesses(client, clerk_token):
    added = await add_member(client, clerk_token)
    m = await meeting(client, clerk_token)
    ok = await client.post("/api/join", json={"meeting_code": m["code"], "pin": added["pin"]})
    assert ok.status == 200 and (await ok.json())["participant"]["role"] == "member"

    wrong_pin = "000000" if added["pin"] != "000000" else "111111"
    for _ in range(5):
        wrong = await client.post("/api/join", json={"meeting_code": m["code"], "pin": wrong_pin})
        assert wrong.status == 401 and await error_code(wrong) == "unauthorized"
    locked = await client.post("/api/join", json={"meeting_code": m["code"], "pin": added["pin"]})
    assert locked.status == 429 and await error_code(locked) == "rate_limited"


async def test_reissued_or_removed_invites_stop_working(client, clerk_token):
    added = await add_member(client, clerk_token)
    old_token = (await (await client.post("/api/join", json={"invite": added["invite"]})).json())["token"]

    renewed = await client.post(f"/api/members/{added['id']}/invite", headers=auth(clerk_token))
    fresh = await renewed.json()
    assert fresh["invite"] != added["invite"]
    for stale in (
        await client.post("/api/join", json={"invite": added["invite"]}),
        await client.get("/api/meetings", headers=auth(old_token)),
    ):
        assert stale.status == 401
    assert (await client.post("/api/join", json={"invite": fresh["invite"]})).status == 200

    removed = await client.delete(f"/api/members/{added['id']}", headers=auth(clerk_token))
    assert removed.status == 200
    assert (await client.post("/api/join", json={"invite": fresh["invite"]})).status == 401
    roll = await (await client.get("/api/members", headers=auth(clerk_token))).json()
    assert roll["members"] == []


async def test_guests_join_only_meetings_that_allow_them(client, clerk_token):
    open_meeting = await meeting(client, clerk_token, allow_guests=True)
    closed = await meeting(client, clerk_token)
    guest = await client.post("/api/join", json={"meeting_code": open_meeting["code"], "name": "王五"})
    body = await guest.json()
    assert guest.status == 200 and body["participant"]["role"] == "guest"
    assert body["participant"]["name"] == "王五"
    guest_token = body["token"]
    assert (await client.get(f"/api/meetings/{open_meeting['id']}", headers=auth(guest_token))).status == 200
    assert (await client.get(f"/api/meetings/{closed['id']}", headers=auth(guest_token))).status == 403
    # like anyone with a link, a guest may open another meeting that admits guests
    other_open = await meeting(client, clerk_token, allow_guests=True)
    assert (await client.get(f"/api/meetings/{other_open['id']}", headers=auth(guest_token))).status == 200

    refused = await client.post("/api/join", json={"meeting_code": closed["code"], "name": "王五"})
    assert refused.status == 403 and await error_code(refused) == "forbidden"
    unknown = await client.post("/api/join", json={"meeting_code": "999999999", "name": "王五"})
    assert unknown.status == 404
    nameless = await client.post("/api/join", json={"meeting_code": open_meeting["code"], "name": " "})
    assert nameless.status == 400


async def test_villages_do_not_see_each_others_meetings_or_members(client, clerk_token):
    ours = await meeting(client, clerk_token)
    member = await add_member(client, clerk_token)
    theirs_token = await second_village_clerk(client)

    for method, path in (
        ("GET", f"/api/meetings/{ours['id']}"),
        ("POST", f"/api/meetings/{ours['id']}/start"),
        ("GET", f"/api/meetings/{ours['id']}/media"),
        ("DELETE", f"/api/members/{member['id']}"),
        ("POST", f"/api/members/{member['id']}/invite"),
    ):
        response = await client.request(method, path, headers=auth(theirs_token))
        assert response.status == 404, (method, path, response.status)
    listed = await (await client.get("/api/meetings", headers=auth(theirs_token))).json()
    assert listed["meetings"] == []
    # their own meeting is theirs alone, and our member's PIN means nothing there
    theirs = await meeting(client, theirs_token)
    pin = await client.post("/api/join", json={"meeting_code": theirs["code"], "pin": member["pin"]})
    assert pin.status == 401


async def test_member_invite_link_signs_the_phone_in(client, clerk_token):
    added = await add_member(client, clerk_token)
    response = await client.get(f"/i/{added['invite']}", allow_redirects=False)
    assert response.status == 302 and response.headers["Location"] == "/"
    assert "cunhui_session" in response.cookies
    bad = await client.get("/i/not-an-invite", allow_redirects=False)
    assert bad.status == 302 and "invalid" in bad.headers["Location"]


async def test_bad_member_bodies(client, clerk_token):
    for body in ({}, {"name": ""}, {"name": "x" * 65}, {"name": "a", "phone": 5}):
        response = await client.post("/api/members", json=body, headers=auth(clerk_token))
        assert response.status == 400, body
    assert (await client.post("/api/members", json={"name": "a"})).status == 401
    assert (await client.post("/api/join", json={})).status == 400
    assert (await client.post("/api/join", json={"invite": 5})).status == 400
    assert (await client.delete("/api/members/abc", headers=auth(clerk_token))).status == 404


async def test_member_token_opens_media_and_the_live_room(client, clerk_token):
    from .peers import Viewer
    from .test_realtime import Recorder

    added = await add_member(client, clerk_token)
    token = (await (await client.post("/api/join", json={"invite": added["invite"]})).json())["token"]
    m = await meeting(client, clerk_token)
    await client.post(f"/api/meetings/{m['id']}/start", headers=auth(clerk_token))
    viewer, room = Viewer(decode=False), Recorder()
    try:
        await viewer.watch(client, m["id"], token)  # asserts 201
        await room.connect(client, token)
        ack = await room.call("join", {"meeting_id": m["id"]})
        assert ack["ok"] and ack["you"] == {"id": f"m{added['id']}", "name": "张三", "role": "member"}
    finally:
        await room.close()
        await viewer.close()


async def test_a_revoked_invite_link_says_so(client, clerk_token):
    added = await add_member(client, clerk_token)
    await client.delete(f"/api/members/{added['id']}", headers=auth(clerk_token))
    response = await client.get(f"/i/{added['invite']}", headers={"Accept-Language": "zh-CN"})
    page = await response.text()
    assert response.status == 200 and str(response.url).endswith("/?invite=invalid")
    assert "这个邀请链接已经失效" in page

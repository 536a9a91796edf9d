"""The member roll and joining: invite links, meeting code + PIN, guests, villages apart."""

from __future__ import annotations

import json

from .support.api import auth, create_meeting, error_code, second_village_clerk


async def add_member(client, token, **body) -> dict:
    response = await client.post("/api/members", json={"name": "张三", **body}, headers=auth(token))
    assert response.status == 201, await response.text()
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

    members_only = await create_meeting(client, clerk_token)
    seen = await client.get(f"/api/meetings/{members_only['id']}", headers=auth(member_token))
    assert seen.status == 200
    listed = await (await client.get("/api/meetings", headers=auth(member_token))).json()
    assert [m["id"] for m in listed["meetings"]] == [members_only["id"]]
    # a member does not run meetings
    start = await client.post(
        f"/api/meetings/{members_only['id']}/start", headers=auth(member_token)
    )
    assert start.status == 403 and await error_code(start) == "forbidden"
    roll = await client.get("/api/members", headers=auth(member_token))
    assert roll.status == 403


async def test_meeting_code_and_pin_then_lockout_after_wrong_guesses(client, clerk_token):
    added = await add_member(client, clerk_token)
    m = await create_meeting(client, clerk_token)
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
    old_token = (await (await client.post("/api/join", json={"invite": added["invite"]})).json())[
        "token"
    ]

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


async def test_editing_a_member_keeps_their_invite(client, clerk_token):
    added = await add_member(client, clerk_token, phone="13800000001")
    other = await add_member(client, clerk_token, phone="13800000002")
    edited = await client.patch(
        f"/api/members/{added['id']}",
        headers=auth(clerk_token),
        json={
            "name": "张三丰",
            "household": "二组 5 号",
            "birth_year": 1980,
            "representative": True,
        },
    )
    assert edited.status == 200, await edited.text()
    roll = (await (await client.get("/api/members", headers=auth(clerk_token))).json())["members"]
    assert roll[0] == {
        "id": added["id"],
        "name": "张三丰",
        "phone": "13800000001",
        "household": "二组 5 号",
        "birth_year": 1980,
        "representative": True,
    }
    assert (await client.post("/api/join", json={"invite": added["invite"]})).status == 200

    taken = await client.patch(
        f"/api/members/{other['id']}", headers=auth(clerk_token), json={"phone": "13800000001"}
    )
    assert taken.status == 409 and await error_code(taken) == "phone_taken"
    duplicate = await client.post(
        "/api/members", headers=auth(clerk_token), json={"name": "李四", "phone": "13800000001"}
    )
    assert duplicate.status == 409
    for body in (
        {"name": ""},
        {"birth_year": 1800},
        {"birth_year": "1980"},
        {"representative": "是"},
        {"phone": "call me"},
    ):
        bad = await client.patch(
            f"/api/members/{other['id']}", headers=auth(clerk_token), json=body
        )
        assert bad.status == 400, body
    roll = (await (await client.get("/api/members", headers=auth(clerk_token))).json())["members"]
    assert roll[1]["phone"] == "13800000002" and roll[1]["name"] == "张三"


async def test_guests_join_only_meetings_that_allow_them(client, clerk_token):
    open_meeting = await create_meeting(client, clerk_token, allow_guests=True)
    closed = await create_meeting(client, clerk_token)
    guest = await client.post(
        "/api/join", json={"meeting_code": open_meeting["code"], "name": "王五"}
    )
    body = await guest.json()
    assert guest.status == 200 and body["participant"]["role"] == "guest"
    assert body["participant"]["name"] == "王五"
    guest_token = body["token"]
    assert (
        await client.get(f"/api/meetings/{open_meeting['id']}", headers=auth(guest_token))
    ).status == 200
    assert (
        await client.get(f"/api/meetings/{closed['id']}", headers=auth(guest_token))
    ).status == 403
    # like anyone with a link, a guest may open another meeting that admits guests
    other_open = await create_meeting(client, clerk_token, allow_guests=True)
    assert (
        await client.get(f"/api/meetings/{other_open['id']}", headers=auth(guest_token))
    ).status == 200

    refused = await client.post("/api/join", json={"meeting_code": closed["code"], "name": "王五"})
    assert refused.status == 403 and await error_code(refused) == "forbidden"
    unknown = await client.post("/api/join", json={"meeting_code": "999999999", "name": "王五"})
    assert unknown.status == 404
    nameless = await client.post(
        "/api/join", json={"meeting_code": open_meeting["code"], "name": " "}
    )
    assert nameless.status == 400


async def test_villages_do_not_see_each_others_meetings_or_members(client, clerk_token):
    ours = await create_meeting(client, clerk_token)
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
    theirs = await create_meeting(client, theirs_token)
    pin = await client.post(
        "/api/join", json={"meeting_code": theirs["code"], "pin": member["pin"]}
    )
    assert pin.status == 401


async def test_roll_pages_are_the_committees_own_village_only(client, clerk_token):
    ours = await add_member(client, clerk_token, name="本村张三")
    theirs_token = await second_village_clerk(client)
    await add_member(client, theirs_token, name="李家村李四")
    member_token = (await (await client.post("/api/join", json={"invite": ours["invite"]})).json())[
        "token"
    ]
    client.session.cookie_jar.clear()

    for path in ("/members", "/members/cards", f"/members/cards?ids={ours['id']}"):
        for token in (None, member_token):
            response = await client.get(
                path, headers=auth(token) if token else {}, allow_redirects=False
            )
            assert response.status == 302 and response.headers["Location"].startswith("/login")
        page = await client.get(path, headers=auth(clerk_token))
        text = await page.text()
        if path == "/members":  # the roll is the page's JSON, read by members.js
            text = json.loads(text.split('id="roll-data">')[1].split("</script>")[0])
            text = " ".join(m["name"] for m in text)
        assert page.status == 200 and "本村张三" in text and "李家村李四" not in text
        if "cards" in path:
            assert page.headers["Cache-Control"] == "no-store"
            assert ours["pin"] in text and "<svg" in text
    # another village's clerk asking for our member's card gets none
    theirs = await (
        await client.get(f"/members/cards?ids={ours['id']}", headers=auth(theirs_token))
    ).text()
    assert "本村张三" not in theirs and ours["pin"] not in theirs
    edit = await client.get("/meetings/1/edit", headers=auth(theirs_token))
    assert edit.status == 404


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
    from .support.peers import Viewer
    from .support.realtime import Recorder

    added = await add_member(client, clerk_token)
    token = (await (await client.post("/api/join", json={"invite": added["invite"]})).json())[
        "token"
    ]
    m = await create_meeting(client, clerk_token)
    await client.post(f"/api/meetings/{m['id']}/start", headers=auth(clerk_token))
    viewer, room = Viewer(decode=False), Recorder()
    try:
        await viewer.watch(client, m["id"], token)  # asserts 201
        await room.connect(client, token)
        ack = await room.call("join", {"meeting_id": m["id"]})
        assert ack["ok"] and ack["you"] == {
            "id": f"m{added['id']}",
            "name": "张三",
            "role": "member",
        }
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


GBK_ROLL = (
    "姓名,手机,户,出生年份,代表\n"
    "王大山,13800000001,一组3号,1968,是\n"
    "李秀英,13800000002,一组3号,1972,否\n"
    "赵小明,,二组1号,2008,\n"
).encode("gbk")


async def test_csv_import_of_a_gbk_file_from_excel(client, clerk_token):
    response = await client.post(
        "/api/members/import",
        data=GBK_ROLL,
        headers={**auth(clerk_token), "Content-Type": "text/csv"},
    )
    body = await response.json()
    assert response.status == 201, body
    assert [a["name"] for a in body["added"]] == ["王大山", "李秀英", "赵小明"]
    assert len({a["pin"] for a in body["added"]}) == 3
    roll = (await (await client.get("/api/members", headers=auth(clerk_token))).json())["members"]
    wang = next(m for m in roll if m["name"] == "王大山")
    assert wang["birth_year"] == 1968 and wang["representative"] is True
    assert next(m for m in roll if m["name"] == "李秀英")["representative"] is False
    # each imported member can join with their invite
    joined = await client.post("/api/join", json={"invite": body["added"][2]["invite"]})
    assert joined.status == 200


async def test_csv_with_bad_rows_imports_nothing_and_reports_each_row(client, clerk_token):
    await add_member(client, clerk_token, name="老会计", phone="13900000000")
    bad = (
        "name,phone,household,birth_year,representative\n"
        "张三,13900000000,,1970,no\n"  # phone already on the roll
        ",13900000001,,1971,no\n"  # no name
        "李四,13900000002,,19x0,maybe\n"  # bad year, bad flag
        "王五,13900000003,,1980,yes\n"  # fine, but the file is refused as a whole
        "赵六,13900000003,,1981,no\n"  # same phone as line 5
    ).encode()
    response = await client.post(
        "/api/members/import", data=bad, headers={**auth(clerk_token), "Content-Type": "text/csv"}
    )
    body = await response.json()
    assert response.status == 400 and body["error"]["code"] == "import_rejected"
    report = {row["line"]: row["problems"] for row in body["error"]["rows"]}
    assert sorted(report) == [2, 3, 4, 6]
    assert "already on the roll" in report[2][0]
    assert report[3] == ["no name"]
    assert len(report[4]) == 2
    assert "line 5" in report[6][0]
    codes = {row["line"]: [c["code"] for c in row["codes"]] for row in body["error"]["rows"]}
    assert codes == {
        2: ["phone_on_roll"],
        3: ["no_name"],
        4: ["bad_birth_year", "bad_representative"],
        6: ["phone_repeated"],
    }
    roll = (await (await client.get("/api/members", headers=auth(clerk_token))).json())["members"]
    assert [m["name"] for m in roll] == ["老会计"]  # nothing half-imported


async def test_csv_import_refusals(client, clerk_token):
    headers = {**auth(clerk_token), "Content-Type": "text/csv"}
    for data, status in (
        (b"", 400),
        ("电话\n138\n".encode(), 400),  # no name column
        (b"name\n", 400),  # header only
        (b"\xff\xfe\x00garbage\x81", 400),  # neither UTF-8 nor GBK
        (b"name\n" + b"x" * (1024 * 1024 + 10), 413),
    ):
        response = await client.post("/api/members/import", data=data, headers=headers)
        assert response.status == status, (data[:20], response.status)
    member = await add_member(client, clerk_token)
    token = (await (await client.post("/api/join", json={"invite": member["invite"]})).json())[
        "token"
    ]
    response = await client.post(
        "/api/members/import", data=GBK_ROLL, headers={**auth(token), "Content-Type": "text/csv"}
    )
    assert response.status == 403


def test_member_sessions_outlive_committee_sessions(monkeypatch):
    """A member stays signed in for months; a committee login expires after the usual age."""
    from itsdangerous.timed import TimestampSigner

    from server.errors import Unauthorized
    from server.services import identity
    from server.services.tokens import TokenService

    tokens = TokenService(
        "k" * 32, max_age=14 * 86400, lifetimes={identity.MEMBER: identity.MEMBER_SESSION_SECONDS}
    )
    now = TimestampSigner.get_timestamp

    def issued_days_ago(days):
        monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: now(self) - days * 86400)
        member = tokens.issue(identity.MEMBER, 1, v=0)
        user = tokens.issue(identity.USER, 1)
        monkeypatch.setattr(TimestampSigner, "get_timestamp", now)
        return member, user

    member, user = issued_days_ago(30)
    assert tokens.verify(member)["k"] == identity.MEMBER
    try:
        tokens.verify(user)
        raise AssertionError("a 30-day-old committee token was accepted")
    except Unauthorized as exc:
        assert "expired" in exc.message
    member, _ = issued_days_ago(181)
    try:
        tokens.verify(member)
        raise AssertionError("a 181-day-old member token was accepted")
    except Unauthorized:
        pass

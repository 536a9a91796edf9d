"""Suggestions: members comment before and during the meeting; the committee answers."""

from __future__ import annotations

from .support.api import auth, create_meeting, error_code, member
from .support.realtime import Room


async def test_a_suggestion_before_the_meeting_is_answered_during_it(client, clerk_token):
    meeting = await create_meeting(client, clerk_token, agenda=[{"title": "村规民约修订"}])
    item_id = meeting["agenda"][0]["id"]
    member_id, token = await member(client, clerk_token, "孙七")
    posted = await client.post(
        f"/api/meetings/{meeting['id']}/suggestions",
        headers=auth(token),
        json={"item_id": item_id, "text": "第三条应写明<b>养狗</b>要拴绳"},
    )
    assert posted.status == 201, await posted.text()
    suggestion = await posted.json()
    assert (
        suggestion["author"] == {"id": member_id, "name": "孙七"} and suggestion["status"] == "open"
    )

    await client.post(f"/api/meetings/{meeting['id']}/start", headers=auth(clerk_token))
    room = Room(client, meeting)
    try:
        person, _ = await room.join(token)
        answered = await client.post(
            f"/api/meetings/{meeting['id']}/suggestions/{suggestion['id']}/answer",
            json={"status": "adopted", "reply": "采纳，写入第三条"},
            headers=auth(clerk_token),
        )
        assert answered.status == 200
        heard = await person.wait_for("suggestion:answered")
        assert (
            heard["status"] == "adopted" and heard["reply"] == "采纳，写入第三条" and "seq" in heard
        )
    finally:
        await room.close()

    listed = (
        await (
            await client.get(f"/api/meetings/{meeting['id']}/suggestions", headers=auth(token))
        ).json()
    )["suggestions"]
    assert listed[0]["text"] == "第三条应写明<b>养狗</b>要拴绳" and listed[0]["status"] == "adopted"
    timeline = (
        await (
            await client.get(f"/api/meetings/{meeting['id']}/timeline", headers=auth(clerk_token))
        ).json()
    )["events"]
    types = [e["type"] for e in timeline]
    assert types.index("suggestion:posted") < types.index("suggestion:answered")


async def test_suggestion_refusals(client, clerk_token):
    meeting = await create_meeting(client, clerk_token, allow_guests=True)
    _, token = await member(client, clerk_token)
    url = f"/api/meetings/{meeting['id']}/suggestions"
    for body, code in (
        ({"text": ""}, "bad_request"),
        ({"text": "长" * 2001}, "too_large"),
        ({"text": 5}, "bad_request"),
        ({"text": "x", "item_id": 999}, "bad_request"),
    ):
        response = await client.post(url, json=body, headers=auth(token))
        assert response.status == 400 and await error_code(response) == code, body
    assert (await client.post(url, json={"text": "x"}, headers=auth(clerk_token))).status == 403
    guest = (
        await (
            await client.post("/api/join", json={"meeting_code": meeting["code"], "name": "客"})
        ).json()
    )["token"]
    assert (await client.post(url, json={"text": "x"}, headers=auth(guest))).status == 403
    ok = await (await client.post(url, json={"text": "好"}, headers=auth(token))).json()
    answer = f"{url}/{ok['id']}/answer"
    assert (
        await client.post(answer, json={"status": "maybe"}, headers=auth(clerk_token))
    ).status == 400
    assert (
        await client.post(answer, json={"status": "adopted"}, headers=auth(token))
    ).status == 403
    await client.post(f"/api/meetings/{meeting['id']}/start", headers=auth(clerk_token))
    await client.post(f"/api/meetings/{meeting['id']}/end", headers=auth(clerk_token))
    late = await client.post(url, json={"text": "晚了"}, headers=auth(token))
    assert late.status == 409

"""Scheduling: meeting kinds and the assembly's ten-day notice, editing, cancelling, .ics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from icalendar import Calendar

from .support.api import auth, error_code
from .support.realtime import Recorder


def days_ahead(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


async def test_villagers_assembly_needs_ten_days_notice_or_an_emergency(client, clerk_token):
    body = {"title": "村民会议", "kind": "villagers_assembly", "place": "村委会大院"}
    short = await client.post(
        "/api/meetings", json={**body, "starts_at": days_ahead(3)}, headers=auth(clerk_token)
    )
    assert short.status == 400 and await error_code(short) == "notice_too_short"
    assert "art. 21" in (await short.json())["error"]["message"]

    timely = await client.post(
        "/api/meetings", json={**body, "starts_at": days_ahead(11)}, headers=auth(clerk_token)
    )
    assert timely.status == 201
    created = await timely.json()
    assert created["kind"] == "villagers_assembly" and created["place"] == "村委会大院"
    assert created["notice_published_at"] is not None

    urgent = await client.post(
        "/api/meetings",
        json={**body, "starts_at": days_ahead(1), "emergency_reason": "防汛抢险"},
        headers=auth(clerk_token),
    )
    assert urgent.status == 201 and (await urgent.json())["emergency_reason"] == "防汛抢险"

    # other kinds have no legal notice period; an unknown kind is refused
    rep = await client.post(
        "/api/meetings",
        json={"title": "代表会", "kind": "representatives_meeting", "starts_at": days_ahead(1)},
        headers=auth(clerk_token),
    )
    assert rep.status == 201
    odd = await client.post(
        "/api/meetings", json={"title": "x", "kind": "party"}, headers=auth(clerk_token)
    )
    assert odd.status == 400


async def test_edit_until_it_starts(client, clerk_token):
    created = await (
        await client.post(
            "/api/meetings",
            json={"title": "旧标题", "agenda": [{"title": "一"}]},
            headers=auth(clerk_token),
        )
    ).json()
    url = f"/api/meetings/{created['id']}"
    edited = await client.patch(
        url,
        json={"title": "新标题", "place": "祠堂", "agenda": [{"title": "甲"}, {"title": "乙"}]},
        headers=auth(clerk_token),
    )
    body = await edited.json()
    assert edited.status == 200
    assert body["title"] == "新标题" and body["place"] == "祠堂"
    assert [a["title"] for a in body["agenda"]] == ["甲", "乙"]
    # shortening an assembly's notice is refused like scheduling it so
    too_soon = await client.patch(
        url,
        json={"kind": "villagers_assembly", "starts_at": days_ahead(2)},
        headers=auth(clerk_token),
    )
    assert too_soon.status == 400 and await error_code(too_soon) == "notice_too_short"

    await client.post(f"{url}/start", headers=auth(clerk_token))
    late = await client.patch(url, json={"title": "太晚"}, headers=auth(clerk_token))
    assert late.status == 409 and await error_code(late) == "conflict"


async def test_cancel_with_a_reason_everyone_sees(client, clerk_token):
    created = await (
        await client.post(
            "/api/meetings", json={"title": "会", "allow_guests": True}, headers=auth(clerk_token)
        )
    ).json()
    url = f"/api/meetings/{created['id']}"
    watcher = Recorder()
    try:
        await watcher.connect(client)
        assert (await watcher.call("join", {"meeting_id": created["id"]}))["ok"]
        nothing = await client.post(
            f"{url}/cancel", json={"reason": " "}, headers=auth(clerk_token)
        )
        assert nothing.status == 400
        cancelled = await client.post(
            f"{url}/cancel", json={"reason": "镇里统一安排，改期"}, headers=auth(clerk_token)
        )
        body = await cancelled.json()
        assert body["status"] == "cancelled" and body["cancel_reason"] == "镇里统一安排，改期"
        event = await watcher.wait_for("meeting:status")
        assert event == {"status": "cancelled", "reason": "镇里统一安排，改期", "seq": 1}
    finally:
        await watcher.close()
    again = await client.post(f"{url}/cancel", json={"reason": "x"}, headers=auth(clerk_token))
    assert again.status == 409
    start = await client.post(f"{url}/start", headers=auth(clerk_token))
    assert start.status == 409


async def test_calendar_invite_parses(client, clerk_token):
    created = await (
        await client.post(
            "/api/meetings",
            json={
                "title": "第四季度村民会议",
                "kind": "villagers_assembly",
                "place": "村委会",
                "starts_at": days_ahead(12),
                "agenda": [{"title": "修村道"}],
                "allow_guests": True,
            },
            headers=auth(clerk_token),
        )
    ).json()
    response = await client.get(f"/api/meetings/{created['id']}/invite.ics")
    assert response.status == 200 and response.content_type == "text/calendar"
    calendar = Calendar.from_ical(await response.read())
    event = next(iter(calendar.walk("VEVENT")))
    assert str(event["summary"]) == "第四季度村民会议"
    assert str(event["location"]) == "村委会"
    assert event.decoded("dtstart").isoformat().startswith(created["starts_at"][:16])
    assert created["code"] in str(event["description"]) and "修村道" in str(event["description"])
    members_only = await (
        await client.post("/api/meetings", json={"title": "t"}, headers=auth(clerk_token))
    ).json()
    assert (await client.get(f"/api/meetings/{members_only['id']}/invite.ics")).status == 401


async def test_notice_page_and_its_qr_code(client, clerk_token):
    created = await (
        await client.post(
            "/api/meetings",
            json={"title": "<i>村道</i>议事会", "place": "祠堂", "agenda": [{"title": "修路"}]},
            headers=auth(clerk_token),
        )
    ).json()
    page = await client.get(
        f"/meetings/{created['id']}/notice",
        headers={**auth(clerk_token), "Accept-Language": "zh-CN"},
    )
    html = await page.text()
    assert page.status == 200
    assert "会议通知" in html and "祠堂" in html and "修路" in html
    assert "&lt;i&gt;村道&lt;/i&gt;议事会" in html  # user text escaped
    assert f"/m/{created['code']}/qr.svg" in html and created["join_url"] in html
    qr = await client.get(f"/m/{created['code']}/qr.svg")
    assert qr.status == 200 and qr.content_type == "image/svg+xml"
    assert (await qr.text()).lstrip().startswith(("<?xml", "<svg"))
    # a members-only meeting's notice is not for strangers
    assert (await client.get(f"/meetings/{created['id']}/notice")).status == 404
    assert (await client.get("/m/000000000/qr.svg")).status == 404

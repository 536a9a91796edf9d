"""Finding past meetings: GET /api/meetings?q=&from=&to=&status=, and the /meetings/past page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.keys import DATABASE
from server.store import Meeting

from .support.api import auth, login_clerk
from .support.realtime import Room


async def _meeting(client, token, title, *, ended_on=None, starts_at=None, **extra) -> dict:
    """A meeting; with ``ended_on`` (a UTC datetime) it was held then and has ended."""
    body = {"title": title, **extra}
    if starts_at:
        body["starts_at"] = starts_at
    response = await client.post("/api/meetings", json=body, headers=auth(token))
    assert response.status == 201, await response.text()
    meeting = await response.json()
    if ended_on is not None:
        for step in ("start", "end"):
            response = await client.post(
                f"/api/meetings/{meeting['id']}/{step}", headers=auth(token)
            )
            assert response.status == 200
        async with client.app[DATABASE].session() as db:
            row = await db.get(Meeting, meeting["id"])
            row.started_at, row.ended_at = ended_on, ended_on + timedelta(hours=1)
            db.add(row)
            await db.commit()
    return meeting


async def _titles(client, token, query: str = "") -> list[str]:
    response = await client.get(f"/api/meetings{query}", headers=auth(token) if token else {})
    assert response.status == 200, await response.text()
    return [m["title"] for m in (await response.json())["meetings"]]


@pytest.fixture
async def village_b(client):
    """Another village's committee, with meetings whose titles match every search below."""
    token = await login_clerk(client, "b-clerk", village="李家村")
    await _meeting(
        client, token, "李家村 修路 Road 会", ended_on=datetime(2026, 3, 10, 2, tzinfo=UTC)
    )
    await _meeting(
        client,
        token,
        "李家村 修路 公开会",
        ended_on=datetime(2026, 3, 10, 3, tzinfo=UTC),
        allow_guests=True,
    )
    return token


@pytest.fixture
async def ours(client, clerk_token):
    """Village A: three ended meetings on known days, one scheduled, one live."""
    await _meeting(
        client, clerk_token, "三月 修路 ROAD 会议", ended_on=datetime(2026, 3, 10, 1, tzinfo=UTC)
    )
    await _meeting(
        client, clerk_token, "四月 低保评议", ended_on=datetime(2026, 4, 2, 1, tzinfo=UTC)
    )
    # 2026-04-30 23:30 UTC is already 1 May in the village (China Standard Time)
    await _meeting(
        client,
        clerk_token,
        "五月 修路 验收",
        ended_on=datetime(2026, 4, 30, 23, 30, tzinfo=UTC),
        allow_guests=True,
    )
    await _meeting(client, clerk_token, "将来的 修路 会", starts_at="2030-06-01T09:00:00+08:00")
    live = await _meeting(client, clerk_token, "正在开的会")
    await client.post(f"/api/meetings/{live['id']}/start", headers=auth(clerk_token))


async def test_without_parameters_the_list_is_unchanged(client, clerk_token, ours, village_b):
    titles = await _titles(client, clerk_token)
    # live first, then scheduled, then the most recently ended; only our village's
    assert titles == [
        "正在开的会",
        "将来的 修路 会",
        "五月 修路 验收",
        "四月 低保评议",
        "三月 修路 ROAD 会议",
    ]
    response = await client.get("/api/meetings", headers=auth(clerk_token))
    meeting = (await response.json())["meetings"][0]
    assert {"id", "code", "title", "status", "agenda", "join_url", "started_at"} <= set(meeting)


async def test_search_by_title_is_a_case_insensitive_substring(
    client, clerk_token, ours, village_b
):
    assert await _titles(client, clerk_token, "?q=修路") == [
        "将来的 修路 会",
        "五月 修路 验收",
        "三月 修路 ROAD 会议",
    ]
    assert await _titles(client, clerk_token, "?q=road") == ["三月 修路 ROAD 会议"]
    assert await _titles(client, clerk_token, "?q=%20低保%20") == ["四月 低保评议"]  # trimmed
    # LIKE's wildcards are plain characters here
    assert await _titles(client, clerk_token, "?q=%25") == []
    assert await _titles(client, clerk_token, "?q=_") == []
    assert await _titles(client, clerk_token, "?q=修路&status=ended") == [
        "五月 修路 验收",
        "三月 修路 ROAD 会议",
    ]


async def test_search_by_date_range_counts_days_in_china_time(client, clerk_token, ours, village_b):
    assert await _titles(client, clerk_token, "?from=2026-03-01&to=2026-03-31") == [
        "三月 修路 ROAD 会议"
    ]
    assert await _titles(client, clerk_token, "?from=2026-04-01&status=ended") == [
        "五月 修路 验收",
        "四月 低保评议",
    ]
    assert await _titles(client, clerk_token, "?to=2026-04-30") == [
        "四月 低保评议",
        "三月 修路 ROAD 会议",
    ]
    # held at 07:30 on 1 May in the village, though still 30 April in UTC
    assert await _titles(client, clerk_token, "?from=2026-05-01&to=2026-05-01") == [
        "五月 修路 验收"
    ]
    # both ends are whole days
    assert await _titles(client, clerk_token, "?from=2026-04-02&to=2026-04-02") == ["四月 低保评议"]
    # a meeting not held yet is found by its scheduled start
    assert await _titles(client, clerk_token, "?from=2030-06-01&to=2030-06-01") == [
        "将来的 修路 会"
    ]
    assert await _titles(
        client, clerk_token, "?q=修路&from=2026-03-01&to=2026-12-31&status=ended"
    ) == ["五月 修路 验收", "三月 修路 ROAD 会议"]
    assert await _titles(client, clerk_token, "?status=live,scheduled") == [
        "正在开的会",
        "将来的 修路 会",
    ]


@pytest.mark.parametrize(
    "query, named",
    [
        ("?from=2026-13-01", "from"),
        ("?to=yesterday", "to"),
        ("?from=2026-3-1", "from"),
        ("?from=20260301", "from"),
        ("?from=2026-04-01&to=2026-03-01", "after"),
        ("?status=finished", "status"),
        ("?q=" + "长" * 201, "q"),
    ],
)
async def test_bad_parameters_are_a_bad_request_with_the_reason(client, clerk_token, query, named):
    response = await client.get(f"/api/meetings{query}", headers=auth(clerk_token))
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "bad_request" and named in error["message"]


async def test_another_villages_meetings_never_appear(client, clerk_token, ours, village_b):
    for query in (
        "",
        "?q=李家村",
        "?q=修路",
        "?q=road",
        "?from=2026-03-10&to=2026-03-10",
        "?status=ended",
        "?q=公开会&status=ended",
    ):
        assert not [t for t in await _titles(client, clerk_token, query) if "李家村" in t], query
        assert not [t for t in await _titles(client, village_b, query) if "李家村" not in t], query
    # anonymous callers see only meetings open to guests, searched the same way
    assert await _titles(client, None, "?q=修路&status=ended") == [
        "五月 修路 验收",
        "李家村 修路 公开会",
    ]


async def test_past_meetings_page_searches_and_links_the_replay(
    client, clerk_token, ours, village_b
):
    client.session.cookie_jar.clear()
    headers = auth(clerk_token)
    page = await client.get("/meetings/past?q=修路&from=2026-03-01&to=2026-12-31", headers=headers)
    assert page.status == 200
    html = await page.text()
    assert "五月 修路 验收" in html and "三月 修路 ROAD 会议" in html
    assert "四月 低保评议" not in html and "将来的" not in html and "李家村" not in html
    assert "/replay" in html and "/minutes.html" in html
    assert "没有录像" in html  # nobody published: no recording

    bad = await client.get("/meetings/past?from=2026-02-30", headers=headers)
    assert bad.status == 400 and 'id="past-error"' in await bad.text()

    home = await (await client.get("/", headers=headers)).text()
    assert 'href="/meetings/past"' in home and "/replay" in home


async def test_replay_page_is_only_for_those_who_may_watch(client, clerk_token, ours, village_b):
    listed = await (await client.get("/api/meetings?q=三月", headers=auth(clerk_token))).json()
    meeting_id = listed["meetings"][0]["id"]
    page = await client.get(f"/meetings/{meeting_id}/replay", headers=auth(clerk_token))
    assert page.status == 200
    html = await page.text()
    assert "三月 修路 ROAD 会议" in html and "/static/pages/replay.js?v=" in html
    assert (
        await client.get(f"/meetings/{meeting_id}/replay", headers=auth(village_b))
    ).status == 404
    assert (await client.get(f"/meetings/{meeting_id}/replay")).status == 404
    assert (await client.get("/meetings/abc/replay", headers=auth(clerk_token))).status == 404


async def test_the_replays_timeline_leaves_out_deleted_chat_lines(
    client, clerk_token, live_meeting
):
    """As the room's snapshot does: a deleted line is never served; its deletion is."""
    room = Room(client, live_meeting)
    host, _ = await room.join(clerk_token)
    kept = await host.call("chat:send", {"text": "留下的"})
    gone = await host.call("chat:send", {"text": "删掉的"})
    assert (await host.call("chat:delete", {"id": gone["id"]}))["ok"]
    await room.close()
    for query in ("", f"?after={kept['seq']}", "?limit=1"):
        page = await (
            await client.get(
                f"/api/meetings/{live_meeting['id']}/timeline{query}", headers=auth(clerk_token)
            )
        ).json()
        chat = [e["text"] for e in page["events"] if e["type"] == "chat:message"]
        assert "删掉的" not in chat, (query, page)
    everything = await (
        await client.get(f"/api/meetings/{live_meeting['id']}/timeline", headers=auth(clerk_token))
    ).json()
    assert [e["text"] for e in everything["events"] if e["type"] == "chat:message"] == ["留下的"]
    deleted = [e for e in everything["events"] if e["type"] == "chat:deleted"]
    assert [e["id"] for e in deleted] == [gone["id"]]

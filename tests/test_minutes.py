"""The minutes (.md and .html) of a real meeting: attendance, agenda, floor, suggestions,
votes with their exact tallies, and the audit digest; who may read them; user text inert."""

from __future__ import annotations

import asyncio
import re

import pytest

from server.i18n import Catalogs
from server.keys import DATABASE
from server.services import accounts, rules
from server.services import minutes as minutes_service
from server.services.minutes_md import md, render
from server.settings import REPO_ROOT

from .support.api import PASSWORD, auth, member, start_meeting

EVIL = "<script>alert(1)</script>[点我](http://evil.example) ![x](http://evil.example/x.png)"


def md_row(*cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


@pytest.fixture
async def held(client, clerk_token, room_of):
    """A meeting held from start to end over real socket.io clients, and what it stored."""
    meeting = await start_meeting(
        client,
        clerk_token,
        title=f"修路会 {EVIL}",
        place="村委会大院",
        agenda=[{"title": "修村道"}, {"title": f"路灯 {EVIL}", "description": "第二项\n说明"}],
    )
    mid = meeting["id"]
    first, second = (item["id"] for item in meeting["agenda"])
    room = room_of(meeting)
    host, _ = await room.join(clerk_token)
    people = {}
    for name in ("张三", "李四", "王五", EVIL[:60]):
        pid, token = await member(client, clerk_token, name)
        people[name] = (pid, token, (await room.join(token))[0])
    await room.join(people["张三"][1])  # a second phone: still one member
    hall_id, _ = await member(client, clerk_token, "赵六")  # in the hall, not online
    hall_member = int(hall_id[1:])
    hall_voters = [hall_member]
    for name in ("钱七", "孙八"):  # the hall's other voters (on the roll, not online)
        hall_voters.append(int((await member(client, clerk_token, name))[0][1:]))

    assert (await host.call("attendance:hall", {"in_hall": 3}))["ok"]
    for hall_voter in hall_voters:  # ticked on the roll: only they vote from the hall
        ticked = {"member_id": hall_voter, "present": True}
        assert (await host.call("attendance:hall", ticked))["ok"]
    assert (await host.call("agenda:goto", {"item_id": first}))["ok"]
    speaker_id, speaker_token, speaker = people["李四"]
    assert (await speaker.call("chat:send", {"text": EVIL}))["ok"]
    assert (await host.call("floor:grant", {"participant_id": speaker_id}))["ok"]
    await asyncio.sleep(1.2)
    assert (await host.call("floor:revoke", {}))["ok"]

    posted = await client.post(
        f"/api/meetings/{mid}/suggestions",
        json={"text": f"请装路灯 {EVIL}", "item_id": first},
        headers=auth(people["张三"][1]),
    )
    assert posted.status == 201
    answered = await client.post(
        f"/api/meetings/{mid}/suggestions/{(await posted.json())['id']}/answer",
        json={"status": "adopted", "reply": "下周装好"},
        headers=auth(clerk_token),
    )
    assert answered.status == 200

    # an open vote: phones, a roll call and the hall's hands
    opened = await host.call(
        "vote:open", {"item_id": first, "question": "同意修村道吗？", "rule": "villagers_assembly"}
    )
    open_vote = opened["vote_id"]
    for name, choice in (("张三", "同意"), ("李四", "同意"), ("王五", "反对"), (EVIL[:60], "弃权")):
        assert (await people[name][2].call("vote:cast", {"vote_id": open_vote, "choice": choice}))[
            "ok"
        ]
    assert (
        await host.call(
            "vote:roll", {"vote_id": open_vote, "member_id": hall_member, "choice": "同意"}
        )
    )["ok"]
    assert (await host.call("vote:hall", {"vote_id": open_vote, "counts": {"同意": 1, "反对": 1}}))[
        "ok"
    ]
    open_result = await host.call("vote:close", {"vote_id": open_vote})
    assert open_result["ok"] and open_result["passed"] is True

    # a secret vote under a two-thirds rule, which fails
    assert (await host.call("agenda:goto", {"item_id": second}))["ok"]
    opened = await host.call(
        "vote:open",
        {
            "item_id": second,
            "question": f"选哪个方案？{EVIL}",
            "options": ["甲方案", "乙方案"],
            "secret": True,
            "rule": "two_thirds",
        },
    )
    secret_vote = opened["vote_id"]
    for name, choice in (("张三", "甲方案"), ("李四", "乙方案"), ("王五", "乙方案")):
        assert (
            await people[name][2].call("vote:cast", {"vote_id": secret_vote, "choice": choice})
        )["ok"]
    secret_result = await host.call("vote:close", {"vote_id": secret_vote})
    assert secret_result["ok"] and secret_result["passed"] is False

    await room.close()
    assert (await client.post(f"/api/meetings/{mid}/end", headers=auth(clerk_token))).status == 200
    events = (
        await (await client.get(f"/api/meetings/{mid}/timeline", headers=auth(clerk_token))).json()
    )["events"]
    audit = await (await client.get(f"/api/meetings/{mid}/audit", headers=auth(clerk_token))).json()
    return {
        "meeting": meeting,
        "people": people,
        "events": events,
        "audit": audit,
        "open": open_result,
        "secret": secret_result,
    }


async def get_md(client, mid, token, **headers) -> str:
    response = await client.get(
        f"/api/meetings/{mid}/minutes.md", headers={**auth(token), **headers}
    )
    assert response.status == 200, await response.text()
    assert response.content_type == "text/markdown" and response.charset == "utf-8"
    return await response.text()


async def get_html(client, mid, token, **headers) -> str:
    response = await client.get(
        f"/api/meetings/{mid}/minutes.html", headers={**auth(token), **headers}
    )
    assert response.status == 200, await response.text()
    assert response.content_type == "text/html"
    return await response.text()


def floor_turn(held, name: str) -> tuple[float, str]:
    """The stored turn of the speaker: its ``t`` and its length (as the minutes show it)."""
    events, speaker_id = held["events"], held["people"][name][0]
    granted = next(
        e for e in events if e["type"] == "floor:changed" and e["participant_id"] == speaker_id
    )
    ended = next(
        e["ended"]
        for e in events
        if e["type"] == "floor:changed"
        and (e.get("ended") or {}).get("participant_id") == speaker_id
    )
    assert ended["reason"] == "revoked" and 1.0 <= ended["seconds"] < 5
    return granted["t"], minutes_service.duration(ended["seconds"])


async def test_the_markdown_minutes_hold_the_meeting_as_stored(client, clerk_token, held):
    mid = held["meeting"]["id"]
    text = await get_md(client, mid, clerk_token)  # no Accept-Language: Chinese

    assert "# 会议纪要" in text and "- 地点: 村委会大院" in text
    assert "会议类型: 其他会议" in text
    # attendance: four members online (one on two phones), the hall, the quorum per vote
    assert "线上参会村民：4 人" in text
    for name in ("张三", "李四", "王五"):
        assert name in text.split("## 出席")[1].split("##")[0]
    assert "会场清点人数: 3" in text and "会场登记到会村民：3 人 (赵六、钱七、孙八)" in text
    # what each hall number means (issue 14, wall 3): people for the record, members for votes
    assert "会场清点人数: 3 （仅记入会议记录，不计入表决）" in text
    assert "孙八) （刷卡签到或在名册上勾选，计入表决）" in text
    assert held["open"]["quorum_met"] is True
    for result, quorum in ((held["open"], "已达到法定人数"), (held["secret"], "不设法定人数")):
        assert f"| {result['eligible']} | {result['present']} | {quorum} |" in text
    # the agenda with the moment each item was taken up
    goto = [e for e in held["events"] if e["type"] == "agenda:current"]
    assert f"1. 修村道 — 开始讨论: t {minutes_service.clock(goto[0]['t'])} · " in text
    # the floor log: who, from when, for how long, on which item, how it ended
    t, length = floor_turn(held, "李四")
    assert re.search(
        rf"\| {re.escape(minutes_service.clock(t))} \| \d\d:\d\d:\d\d \| 李四 \| "
        rf"{length} \| 1\\\. 修村道 \| 主持人收回 \|",
        text,
    ), text
    # the suggestion and its answer
    assert "请装路灯" in text and "已采纳" in text and "下周装好" in text
    # each vote: the exact tally by source, the figures and the result
    open_vote = held["open"]
    assert open_vote["sources"]["remote"] == {"同意": 2, "反对": 1, "弃权": 1}
    assert md_row("选项", "线上（手机）", "委托投票", "会场点名", "会场举手", "合计") in text
    assert md_row("同意", 2, 0, 1, 1, "**4**") in text
    assert md_row("反对", 1, 0, 0, 1, "**2**") in text
    assert md_row("弃权", 1, 0, 0, 0, "**1**") in text
    assert (
        f"- 投票数: {open_vote['cast']} · 有表决权人数: {open_vote['eligible']} · "
        f"到会人数: {open_vote['present']}"
    ) in text
    assert "### 1. 同意修村道吗？" in text and "公开表决" in text
    assert "表决规则: 村民会议 (《中华人民共和国村民委员会组织法》第二十二条)" in text
    assert "法定人数：到会人数 > 有表决权人数的 1/2，或到会村民来自三分之二以上的户" in text
    assert "通过条件：第一个选项的票数 > 到会人数的 1/2" in text
    secret = held["secret"]
    assert md_row("选项", "选票（线上及委托）", "会场举手", "合计") in text
    assert md_row("甲方案", 1, 0, "**1**") in text and md_row("乙方案", 2, 0, "**2**") in text
    assert "表决规则: 投票三分之二以上" in text and "无记名投票" in text
    votes_part = text.split("## 表决")[1]
    assert votes_part.count("表决结果: **通过**") == 1
    assert votes_part.count("表决结果: **未通过**") == 1
    assert secret["cast"] == 3
    # the audit digest, as the audit endpoint computes it
    assert held["audit"]["ok"] and f"`{held['audit']['digest']}`" in text
    assert f"/meetings/{mid}/audit>" in text

    english = await get_md(client, mid, clerk_token, **{"Accept-Language": "en"})
    assert "# Minutes of the meeting" in english and "Members who joined online: 4" in english
    assert "Vote result: **Passed**" in english and "Vote result: **Not passed**" in english


async def test_the_html_minutes_hold_the_same(client, clerk_token, held):
    mid = held["meeting"]["id"]
    page = await get_html(client, mid, clerk_token)
    assert '<html lang="zh-CN">' in page and "/static/css/minutes.css?v=" in page
    assert "线上参会村民：4 人" in page and "会场清点人数: 3" in page and "赵六" in page
    t, length = floor_turn(held, "李四")
    assert re.search(
        rf'<td class="floor-speaker"[^>]*>李四</td><td class="num floor-length"[^>]*>'
        rf"{length}</td>",
        page,
    ), page
    # each cell carries its column's name (data-label) for the phone's card layout
    assert re.search(rf'<td class="num" data-label="t">{minutes_service.clock(t)}</td>', page)
    assert re.search(r'<td class="floor-speaker" data-label="发言人"[^>]*>李四</td>', page)
    assert "下周装好" in page and "已采纳" in page
    for result in (held["open"], held["secret"]):
        section = page.split(f'id="vote-{result["vote_id"]}"')[1].split("</section>")[0]
        totals = re.findall(r'<strong class="tally-total">(\d+)</strong>', section)
        assert [int(n) for n in totals] == list(result["tally"].values())
        assert f"投票数 {result['cast']}" in section
        assert (
            "<strong>通过</strong>" if result["passed"] else "<strong>未通过</strong>"
        ) in section
    assert f'id="minutes-digest">{held["audit"]["digest"]}</p>' in page
    assert "<svg" in page.split('id="minutes-audit"')[1]  # the digest's QR code, inline
    assert f'href="/api/meetings/{mid}/minutes.md"' in page

    english = await get_html(client, mid, clerk_token, **{"Accept-Language": "en"})
    assert "Members who joined online: 4" in english and "Floor log" in english


async def test_user_text_stays_inert(client, clerk_token, held):
    mid = held["meeting"]["id"]
    text = await get_md(client, mid, clerk_token)
    page = await get_html(client, mid, clerk_token)
    for raw in ("<script>alert(1)</script>", "[点我](http://evil.example)", "![x]("):
        assert raw not in text
    assert "<script>alert(1)</script>" not in page
    escaped = md(EVIL)
    assert escaped.startswith(
        r"\<script\>alert\(1\)\<\/script\>\[点我\]\(http\:\/\/evil\.example\)"
    )
    assert f"# 会议纪要: 修路会 {escaped}" in text
    assert text.count(escaped) >= 4  # title, agenda item, suggestion, question (and a name)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;[点我](http://evil.example)" in page
    # no line starts a block the user chose: every user line is escaped on a line of ours
    assert not re.search(r"^\s*(<|\[|!)", text, re.M)


async def test_who_may_read_the_minutes(client, clerk_token):
    meeting = await start_meeting(client, clerk_token, title="只给本村")  # no guests
    mid = meeting["id"]
    member_id, member_token = await member(client, clerk_token, "张三")
    async with client.app[DATABASE].session() as db:
        await accounts.create_user(db, "b-clerk", PASSWORD, village="李家村")
    other = (
        await (
            await client.post("/api/login", json={"username": "b-clerk", "password": PASSWORD})
        ).json()
    )["token"]
    open_meeting = await start_meeting(client, clerk_token, title="公开", allow_guests=True)
    guest = (
        await (
            await client.post(
                "/api/join", json={"meeting_code": open_meeting["code"], "name": "客人"}
            )
        ).json()
    )["token"]
    client.session.cookie_jar.clear()

    for suffix in ("md", "html"):
        url = f"/api/meetings/{mid}/minutes.{suffix}"
        for token, status, code in (
            (None, 401, "unauthorized"),
            (guest, 403, "forbidden"),
            (other, 404, "not_found"),
        ):
            response = await client.get(url, headers=auth(token) if token else {})
            assert response.status == status, (suffix, token, await response.text())
            assert (await response.json())["error"]["code"] == code
        for token in (member_token, clerk_token):
            assert (await client.get(url, headers=auth(token))).status == 200
        assert (
            await client.get(f"/api/meetings/abc/minutes.{suffix}", headers=auth(clerk_token))
        ).status == 404
        assert (
            await client.get(f"/api/meetings/999999/minutes.{suffix}", headers=auth(clerk_token))
        ).status == 404
        # a meeting open to guests: anyone with the link reads its minutes
        assert (
            await client.get(f"/api/meetings/{open_meeting['id']}/minutes.{suffix}")
        ).status == 200


async def test_who_came_and_went_is_the_committees_record(client, clerk_token, room_of):
    """Members get the number who joined online, not their names (as on the timeline)."""
    meeting = await start_meeting(client, clerk_token, title="会")
    room = room_of(meeting)
    _, token = await member(client, clerk_token, "钱七")
    await room.join(token)
    await room.close()
    for reader, shown in ((clerk_token, True), (token, False)):
        text = await get_md(client, meeting["id"], reader)
        attendance = text.split("## 出席")[1].split("\n\n")[1]
        assert "线上参会村民：1 人" in attendance
        assert ("钱七" in attendance) is shown
        assert ("名单见村委会存档" in attendance) is not shown


async def test_a_meeting_not_yet_held_has_minutes_that_say_so(client, clerk_token):
    created = await client.post(
        "/api/meetings", json={"title": "下月会", "agenda": []}, headers=auth(clerk_token)
    )
    mid = (await created.json())["id"]
    text = await get_md(client, mid, clerk_token)
    assert "- 实际开始时间: —" in text and "本次会议没有表决。" in text and "无人发言。" in text
    assert "未开始" in text
    assert "审计摘要" in await get_html(client, mid, clerk_token)
    audit_page = await client.get(f"/meetings/{mid}/audit", headers=auth(clerk_token))
    assert f'href="/api/meetings/{mid}/minutes.html"' in await audit_page.text()


def test_markdown_escaping_covers_every_ascii_punctuation():
    assert md("a*b_c`d") == r"a\*b\_c\`d"
    assert md("1. 列表\n# 标题\n\n    代码") == r"1\. 列表 \# 标题 代码"
    assert md("<img src=x onerror=alert(1)>") == r"\<img src\=x onerror\=alert\(1\)\>"
    assert md("www.evil.example foo@evil.example") == r"www\.evil\.example foo\@evil\.example"
    assert md("&lt;") == r"\&lt\;"


def synthetic_minutes(ok: bool) -> minutes_service.Minutes:
    """Minutes with every part filled in, so that rendering them uses every label."""
    m = minutes_service
    now = m.utcnow()
    taken = m.AgendaEntry(1, 1, "一", "说明", [m.Moment(1.0, now)])
    agenda = [taken, m.AgendaEntry(2, 2, "二", "")]
    stored_rule = {
        "profile": "villagers_assembly",
        "quorum": {"num": 1, "den": 2, "of": "eligible", "strict": True},
        "majority": {"num": 1, "den": 2, "of": "present", "strict": True},
        "households_quorum": True,
    }
    result = {
        "tally": {"同意": 1, "反对": 0},
        "cast": 1,
        "eligible": 2,
        "present": 1,
        "quorum_met": True,
        "passed": True,
        "sources": {s: {"同意": 1, "反对": 0} for s in m.OPEN_SOURCES + m.SECRET_SOURCES},
    }
    votes = [
        m.VoteEntry(
            i,
            i,
            "q",
            ["同意", "反对"],
            secret,
            rules.rule_from_dict(rule),
            taken,
            status,
            m.Moment(2.0, now),
            m.Moment(3.0, now) if status == "closed" else None,
            {**result, "quorum_met": quorum, "passed": passed} if status == "closed" else None,
        )
        for i, (secret, rule, status, quorum, passed) in enumerate(
            (
                (False, stored_rule, "closed", True, True),
                (
                    True,
                    {
                        "profile": "custom",
                        "quorum": None,
                        "majority": {"num": 2, "den": 3, "of": "cast", "strict": False},
                    },
                    "closed",
                    True,
                    False,
                ),
                (
                    False,
                    {
                        "profile": "representatives_meeting",
                        "quorum": None,
                        "majority": {"num": 1, "den": 2, "of": "eligible", "strict": True},
                    },
                    "closed",
                    False,
                    False,
                ),
                (False, stored_rule, "open", True, True),
            ),
            start=1,
        )
    ]
    person = m.Person("m1", "甲")
    return m.Minutes(
        meeting_id=1,
        code="123456789",
        title="t",
        kind="villagers_assembly",
        status="cancelled",
        place="p",
        cancel_reason="r",
        starts_at=now,
        started_at=now,
        ended_at=None,
        agenda=agenda,
        attendance=m.Attendance(
            remote_member_count=2,
            names_shown=ok,
            in_hall=None if ok else 3,
            remote_members=[person] if ok else [],
            hall_members=[person],
            proxies=[(person, m.Person("m2", "乙"))],
        ),
        floor=[
            m.FloorTurn(person, m.Moment(-1.0, now), taken, 3.0, reason)
            for reason in m.FLOOR_REASONS
        ]
        + [m.FloorTurn(person, m.Moment(None, now), None)],
        suggestions=[
            m.SuggestionEntry(1, "甲", "建议", taken, now, status, "答复", now)
            for status in m.SUGGESTION_LABELS
        ]
        + [m.SuggestionEntry(2, "甲", "建议", None, now, "open", "", None)],
        votes=votes,
        audit=m.AuditEntry(ok, 1, "ab", None if ok else 2, "" if ok else "x"),
        generated_at=now,
    )


def test_every_label_of_the_markdown_minutes_has_a_chinese_translation():
    """The Markdown is translated in Python, where tests/test_translations.py does not look."""
    used: set[str] = set()

    def gettext(message, **values):
        used.add(message)
        return message % values

    for ok in (True, False):
        text = render(
            synthetic_minutes(ok), gettext, audit_url="http://127.0.0.1:8080/meetings/1/audit"
        )
        assert "仍在发言" not in text and "Still speaking" in text
    for group in minutes_service.LABELS.values():  # the HTML page uses them all too
        used.update(group.values())
    catalogs = Catalogs(REPO_ROOT / "web" / "translations")
    missing = sorted(m for m in used if not catalogs.has("zh_CN", m))
    assert len(used) > 60 and not missing, missing

"""Long records and small electorates (issue 12, items 3 and 6), through the real server.

- After a flood of hands (40,000 stored events), anonymous requests for the minutes,
  timeline and audit must not freeze the server: another client's socket.io ack and
  ``/healthz`` stay fast while they run; the timeline comes in pages; too many at once
  are told ``503 busy`` with ``Retry-After``, never queued without end.
- A secret vote needs an electorate of at least SECRET_VOTE_MIN_ELECTORATE, and its
  result never shows a source small enough to tell how its few voters chose.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from sqlalchemy import insert, update

from server.http.reports import REPORT_QUEUE, REPORT_SLOTS
from server.keys import DATABASE
from server.services import audit, timeline
from server.store import Event, Meeting, utcnow

from .support.api import PASSWORD, app_with_clerk, auth, member, start_meeting
from .support.realtime import Recorder

FLOOD = 40_000


def hand_storm(i: int) -> tuple[str, dict]:
    """A member's hand:raise/lower storm, as the room stored it before it was rate limited."""
    who = {"id": "m999", "name": "举手的人", "role": "member"}
    raised = i % 2 == 0
    queue = [{"participant_id": "m999", "name": "举手的人", "since": "2026-12-01T01:00:00+00:00"}]
    return "hand:queue", {
        "queue": queue if raised else [],
        "change": "raise" if raised else "lower",
        "who": who,
    }


async def flood_of_hands(client, meeting_id: int, n: int = FLOOD, make=hand_storm) -> None:
    """``n`` events (``make(i)`` -> type, data) stored as the room stores them (seq, audit
    chain), in bulk SQL: quicker than 40,000 socket.io events, and the same record."""
    async with client.app[DATABASE].session() as db:
        meeting = await db.get(Meeting, meeting_id)
        seq, prev, start = meeting.last_seq, meeting.last_hash, utcnow()
        rows = []
        for i in range(n):
            seq += 1
            type_, data = make(i)
            at = start + timedelta(microseconds=50 * i)
            prev = audit.chain_hash(prev, meeting_id, seq, type_, at, data)
            rows.append(
                {
                    "meeting_id": meeting_id,
                    "seq": seq,
                    "type": type_,
                    "at": at,
                    "data": data,
                    "hash": prev,
                }
            )
        for i in range(0, n, 5000):
            await db.execute(insert(Event), rows[i : i + 5000])
        await db.execute(
            update(Meeting).where(Meeting.id == meeting_id).values(last_seq=seq, last_hash=prev)
        )
        await db.commit()


class Probe:
    """Another user, meanwhile: a chat line acked over socket.io, and /healthz, again and again."""

    def __init__(self, client, person: Recorder) -> None:
        self.client, self.person = client, person
        self.worst_ack = self.worst_health = 0.0
        self.rounds = 0
        self._stop = asyncio.Event()

    async def run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            ack = await self.person.call("chat:send", {"text": f"还在 {self.rounds}"})
            assert ack["ok"] or ack["error"]["code"] == "rate_limited", ack
            self.worst_ack = max(self.worst_ack, time.perf_counter() - started)
            started = time.perf_counter()
            assert (await self.client.get("/healthz")).status == 200
            self.worst_health = max(self.worst_health, time.perf_counter() - started)
            self.rounds += 1
            await asyncio.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()


async def test_six_anonymous_reports_of_a_40k_record_do_not_freeze_the_server(
    aiohttp_client, settings
):
    client, clerk = await app_with_clerk(aiohttp_client, settings)
    meeting = await start_meeting(client, clerk, allow_guests=True, allow_guest_chat=True)
    mid = meeting["id"]
    await flood_of_hands(client, mid)
    assert (await client.post(f"/api/meetings/{mid}/end", headers=auth(clerk))).status == 200
    async with client.app[DATABASE].session() as db:
        last_seq = (await db.get(Meeting, mid)).last_seq
    assert last_seq > FLOOD

    # meanwhile, another meeting of the village is live: one of its members chats
    other_meeting = await start_meeting(client, clerk, title="另一个会")
    _, token = await member(client, clerk, "另一个村民")
    other = Recorder()
    await other.connect(client, token)
    try:
        assert (await other.call("join", {"meeting_id": other_meeting["id"]}))["ok"]
        probe = Probe(client, other)
        prober = asyncio.create_task(probe.run())
        await asyncio.sleep(0.3)

        started = time.perf_counter()
        paths = [
            f"/api/meetings/{mid}/minutes.md",
            f"/api/meetings/{mid}/minutes.html",
            f"/api/meetings/{mid}/timeline",
            f"/api/meetings/{mid}/audit",
            f"/api/meetings/{mid}/minutes.md",
            f"/api/meetings/{mid}/minutes.html",
        ]

        async def anonymous(path):
            response = await client.get(path)  # no token, no cookie: a guest of an open meeting
            return response.status, await response.text()

        answers = await asyncio.gather(*(anonymous(p) for p in paths))
        took = time.perf_counter() - started
        await asyncio.sleep(0.2)
        probe.stop()
        await prober
    finally:
        await other.close()

    assert [status for status, _ in answers] == [200] * 6, [a[1][:200] for a in answers]
    # the other user was served all along (the unpaged, on-the-loop version stalled 6-14 s)
    assert probe.rounds >= 3, probe.rounds
    assert probe.worst_ack < 1.0 and probe.worst_health < 1.0, (
        probe.worst_ack,
        probe.worst_health,
        took,
    )

    # correct, and bounded: the timeline is a page; the audit covers the whole chain
    import json

    page = json.loads(answers[2][1])
    assert len(page["events"]) == timeline.MAX_PAGE and page["more"] is True
    assert page["next_after"] == page["events"][-1]["seq"] == timeline.MAX_PAGE
    verdict = json.loads(answers[3][1])
    assert verdict["ok"] is True and verdict["events"] == last_seq
    assert f"`{verdict['digest']}`" in answers[0][1] and verdict["digest"] in answers[1][1]


async def test_the_timeline_pages_through_a_long_record_in_order(aiohttp_client, settings):
    client, clerk = await app_with_clerk(aiohttp_client, settings)
    meeting = await start_meeting(client, clerk, allow_guests=True)
    mid = meeting["id"]
    await flood_of_hands(client, mid, 5_000)
    seqs, after, pages = [], 0, 0
    while True:
        response = await client.get(f"/api/meetings/{mid}/timeline?after={after}&limit=1500")
        assert response.status == 200
        page = await response.json()
        pages += 1
        seqs += [e["seq"] for e in page["events"]]
        assert len(page["events"]) <= 1500
        if not page["more"]:
            break
        after = page["next_after"]
    assert pages == 4 and seqs == sorted(set(seqs)) and len(seqs) == 5_001  # + meeting:status
    # the limit is capped, not an invitation: at most MAX_PAGE at once
    big = await (await client.get(f"/api/meetings/{mid}/timeline?limit=999999")).json()
    assert len(big["events"]) == timeline.MAX_PAGE
    for bad in ("after=-1", "after=x", "limit=1e3", "after=%00"):
        response = await client.get(f"/api/meetings/{mid}/timeline?{bad}")
        assert response.status == 400, bad


async def test_beyond_the_report_queue_the_answer_is_busy_with_retry_after(
    aiohttp_client, settings
):
    client, clerk = await app_with_clerk(aiohttp_client, settings)
    meeting = await start_meeting(client, clerk, allow_guests=True)
    mid = meeting["id"]
    await flood_of_hands(client, mid, 20_000)
    many = REPORT_SLOTS + REPORT_QUEUE + 12

    async def minutes():
        response = await client.get(f"/api/meetings/{mid}/minutes.md")
        return response.status, response.headers.get("Retry-After"), await response.text()

    answers = await asyncio.gather(*(minutes() for _ in range(many)))
    statuses = [status for status, _, _ in answers]
    assert set(statuses) <= {200, 503}, statuses
    busy = [a for a in answers if a[0] == 503]
    assert busy and statuses.count(200) >= REPORT_SLOTS, statuses
    assert all(retry and int(retry) >= 1 and '"busy"' in text for _, retry, text in busy)
    # and once the rush is over, the report is there
    assert (await client.get(f"/api/meetings/{mid}/minutes.md")).status == 200


async def test_the_audit_of_a_live_meeting_holds_while_events_arrive(aiohttp_client, settings):
    """The chain is checked up to the newest entry as read first: a chat line stored
    meanwhile is no "removed event"; one added behind the meeting's back is found."""
    client, clerk = await app_with_clerk(aiohttp_client, settings)
    meeting = await start_meeting(client, clerk)
    mid = meeting["id"]
    await flood_of_hands(client, mid, 10_000)
    host = Recorder()
    await host.connect(client, clerk)
    assert (await host.call("join", {"meeting_id": mid}))["ok"]

    async def chatter():  # stored events (a few may be refused by the chat limit: fine)
        for i in range(15):
            await host.call("chat:send", {"text": f"第{i}句"})
            await asyncio.sleep(0.02)

    audits = [client.get(f"/api/meetings/{mid}/audit", headers=auth(clerk)) for _ in range(3)]
    results = await asyncio.gather(chatter(), *audits)
    for response in results[1:]:
        verdict = await response.json()
        assert response.status == 200 and verdict["ok"] is True, verdict
    await host.close()
    async with client.app[DATABASE].session() as db:
        meeting_row = await db.get(Meeting, mid)
        db.add(
            Event(
                meeting_id=mid,
                seq=meeting_row.last_seq + 1000,
                type="chat:message",
                data={"text": "伪造的"},
                hash="0" * 64,
            )
        )
        await db.commit()
    verdict = await (await client.get(f"/api/meetings/{mid}/audit", headers=auth(clerk))).json()
    assert verdict["ok"] is False and "added" in verdict["reason"], verdict


# ------------------------------------------------------------------ secret votes (item 6)


async def test_a_secret_vote_needs_the_minimum_electorate(aiohttp_client, settings):
    """The issue's attack: mark one member representative, open a secret vote under the
    representatives' rule — eligible 1, and the tally would be that person's choice."""
    client, clerk = await app_with_clerk(aiohttp_client, settings)
    assert settings.secret_vote_min_electorate == 5
    meeting = await start_meeting(client, clerk, kind="representatives_meeting")
    rep_id, rep_token = await member(client, clerk, "唯一的代表")
    for i in range(6):
        await member(client, clerk, f"村民{i}")
    edited = await client.patch(
        f"/api/members/{rep_id[1:]}", json={"representative": True}, headers=auth(clerk)
    )
    assert edited.status == 200
    host = Recorder()
    await host.connect(client, clerk)
    rep = Recorder()
    await rep.connect(client, rep_token)
    try:
        assert (await host.call("join", {"meeting_id": meeting["id"]}))["ok"]
        assert (await rep.call("join", {"meeting_id": meeting["id"]}))["ok"]
        refused = await host.call(
            "vote:open", {"question": "选谁?", "secret": True, "rule": "representatives_meeting"}
        )
        assert refused["ok"] is False and refused["error"]["code"] == "electorate_too_small"
        assert "5" in refused["error"]["message"] and "1" in refused["error"]["message"]
        # nothing was opened, nothing announced; the meeting goes on
        votes = await (
            await client.get(f"/api/meetings/{meeting['id']}/votes", headers=auth(clerk))
        ).json()
        assert votes["votes"] == []
        assert not [e for e, _ in rep.events if e == "vote:opened"]
        # the same vote, open (not secret), or secret with the whole roll of 7: allowed
        public = await host.call(
            "vote:open", {"question": "公开表决?", "rule": "representatives_meeting"}
        )
        assert public["ok"], public
        assert (await host.call("vote:close", {"vote_id": public["vote_id"]}))["ok"]
        opened = await host.call(
            "vote:open", {"question": "选谁?", "secret": True, "rule": "simple_majority"}
        )
        assert opened["ok"], opened
    finally:
        await host.close()
        await rep.close()


async def test_the_minimum_is_a_setting(aiohttp_client, settings):
    client, clerk = await app_with_clerk(aiohttp_client, settings, secret_vote_min_electorate=2)
    meeting = await start_meeting(client, clerk)
    for i in range(2):
        await member(client, clerk, f"村民{i}")
    host = Recorder()
    await host.connect(client, clerk)
    try:
        assert (await host.call("join", {"meeting_id": meeting["id"]}))["ok"]
        assert (await host.call("vote:open", {"question": "选谁?", "secret": True}))["ok"]
    finally:
        await host.close()


async def test_a_secret_result_never_shows_a_small_source_apart(aiohttp_client, settings):
    """Four phones and one hand in the hall: shown apart, the hall's column would be one
    villager's choice (and the phones' split the four who were online). One count only,
    in the ack, the broadcast, the votes API, the timeline, the minutes; no receipts."""
    client, clerk = await app_with_clerk(aiohttp_client, settings)
    meeting = await start_meeting(client, clerk, allow_guests=True)
    mid = meeting["id"]
    host = Recorder()
    await host.connect(client, clerk)
    assert (await host.call("join", {"meeting_id": mid}))["ok"]
    phones = []
    for i in range(4):
        _, token = await member(client, clerk, f"村民{i}")
        phone = Recorder()
        await phone.connect(client, token)
        assert (await phone.call("join", {"meeting_id": mid}))["ok"]
        phones.append(phone)
    in_hall, _ = await member(client, clerk, "会场里的人")  # on the roll: 5 eligible
    guest = Recorder()
    await guest.connect(client)
    assert (await guest.call("join", {"meeting_id": mid}))["ok"]
    try:
        ticked = {"member_id": int(in_hall[1:]), "present": True}  # the hall's voter
        assert (await host.call("attendance:hall", {"in_hall": 1, **ticked}))["ok"]
        vote_id = (
            await host.call(
                "vote:open", {"question": "选谁?", "options": ["甲", "乙"], "secret": True}
            )
        )["vote_id"]
        for phone, choice in zip(phones, ("甲", "甲", "乙", "甲"), strict=True):
            assert (await phone.call("vote:cast", {"vote_id": vote_id, "choice": choice}))["ok"]
        assert (await host.call("vote:hall", {"vote_id": vote_id, "counts": {"乙": 1}}))["ok"]
        closed = await host.call("vote:close", {"vote_id": vote_id})
        assert closed["ok"] and closed["tally"] == {"甲": 3, "乙": 2} and closed["cast"] == 5
        assert closed["sources"] == {} and closed["sources_merged"] is True
        broadcast = await guest.wait_for("vote:closed")
        assert broadcast["sources"] == {} and broadcast["tally"] == closed["tally"]
        listed = await (await client.get(f"/api/meetings/{mid}/votes")).json()
        assert listed["votes"][0]["result"]["sources"] == {}
        events = (await (await client.get(f"/api/meetings/{mid}/timeline")).json())["events"]
        assert [e["sources"] for e in events if e["type"] == "vote:closed"] == [{}]
        receipts = await client.get(f"/api/meetings/{mid}/votes/{vote_id}/receipts")
        assert receipts.status == 409
        text = await (await client.get(f"/api/meetings/{mid}/minutes.md")).text()
        section = text.split("### 1.")[1]
        assert "| 甲 | **3** |" in section and "| 乙 | **2** |" in section, section
        assert "会场举手" not in section and "选票（线上及委托）" not in section
    finally:
        for person in (host, guest, *phones):
            await person.close()


async def test_a_secret_result_shows_sources_big_enough_apart(aiohttp_client, settings):
    """With SECRET_VOTE_MIN_ELECTORATE 2: two phones and two hands are each a group of two."""
    client, clerk = await app_with_clerk(aiohttp_client, settings, secret_vote_min_electorate=2)
    meeting = await start_meeting(client, clerk)
    mid = meeting["id"]
    host = Recorder()
    await host.connect(client, clerk)
    assert (await host.call("join", {"meeting_id": mid}))["ok"]
    phones = []
    for i in range(2):
        _, token = await member(client, clerk, f"村民{i}")
        phones.append(Recorder())
        await phones[-1].connect(client, token)
        assert (await phones[-1].call("join", {"meeting_id": mid}))["ok"]
    try:
        for i in range(2):  # the hall's two voters, on the roll beside the two phones
            in_hall, _ = await member(client, clerk, f"会场村民{i}")
            ticked = {"member_id": int(in_hall[1:]), "present": True}
            assert (await host.call("attendance:hall", ticked))["ok"]
        assert (await host.call("attendance:hall", {"in_hall": 2}))["ok"]
        vote_id = (
            await host.call(
                "vote:open", {"question": "选谁?", "options": ["甲", "乙"], "secret": True}
            )
        )["vote_id"]
        for phone in phones:
            assert (await phone.call("vote:cast", {"vote_id": vote_id, "choice": "甲"}))["ok"]
        assert (await host.call("vote:hall", {"vote_id": vote_id, "counts": {"乙": 2}}))["ok"]
        closed = await host.call("vote:close", {"vote_id": vote_id})
        assert closed["sources"] == {
            "ballots": {"甲": 2, "乙": 0},
            "hall_show_of_hands": {"甲": 0, "乙": 2},
        }
        assert closed["sources_merged"] is False
        receipts = await client.get(
            f"/api/meetings/{mid}/votes/{vote_id}/receipts", headers=auth(clerk)
        )
        assert receipts.status == 200 and len((await receipts.json())["receipts"]) == 2
    finally:
        for person in (host, *phones):
            await person.close()


# ------------------------------------------------------------------ replay pages through (browser)


@pytest.mark.netns
async def test_the_replay_page_reads_a_long_timeline_page_by_page(server, aiohttp_client):
    """4,500 chat lines: three pages of the timeline API; the page shows the last one too."""
    from playwright.async_api import async_playwright

    from server.http.auth import COOKIE

    from .support.browser import Browser

    client = await aiohttp_client(server)
    login = await client.post("/api/login", json={"username": "clerk", "password": PASSWORD})
    token = (await login.json())["token"]
    client.session.cookie_jar.clear()
    meeting = await start_meeting(client, token)
    mid = meeting["id"]
    await flood_of_hands(
        client,
        mid,
        4_500,
        lambda i: (
            "chat:message",
            {"id": i + 1, "author": {"id": "m1", "name": "王五"}, "text": f"第{i}句", "at": "x"},
        ),
    )
    assert (await client.post(f"/api/meetings/{mid}/end", headers=auth(token))).status == 200
    base = str(server.make_url("")).rstrip("/")
    async with async_playwright() as pw:
        async with Browser(pw) as browser:
            await browser.add_cookies([{"name": COOKIE, "value": token, "url": base}])
            page = await browser.new_page()
            asked = []
            # the API's pages only (a script may be called timeline.js)
            page.on("request", lambda r: asked.append(r.url) if "/timeline?" in r.url else None)
            await page.goto(f"{base}/meetings/{mid}/replay")
            await page.wait_for_function(
                "document.querySelectorAll('#timeline-list li[data-type=\"chat:message\"]').length"
                " === 4500",
                timeout=20_000,
            )
            assert "第4499句" in await page.inner_text("#timeline-list")
    assert len(asked) == 3 and asked[0].endswith("/timeline?after=0"), asked

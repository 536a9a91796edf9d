"""The audit chain: every stored event is chained; tampering is found and named."""

from __future__ import annotations

from sqlalchemy import text

from server.keys import DATABASE, SETTINGS

from .support.api import auth, member, start_meeting
from .support.processes import run_cli
from .support.realtime import Room


async def _a_meeting_with_a_record(client, clerk_token) -> dict:
    meeting = await start_meeting(client, clerk_token)
    room = Room(client, meeting)
    try:
        member_id, token = await member(client, clerk_token, "张三")
        person, _ = await room.join(token)
        host, _ = await room.join(clerk_token)
        for i in range(3):
            assert (await person.call("chat:send", {"text": f"第{i}句"}))["ok"]
        assert (await person.call("hand:raise", {}))["ok"]
        assert (await host.call("floor:grant", {"participant_id": member_id}))["ok"]
    finally:
        await room.close()
    await client.post(f"/api/meetings/{meeting['id']}/end", headers=auth(clerk_token))
    return meeting


async def test_the_record_verifies_and_tampering_is_named(client, clerk_token):
    meeting = await _a_meeting_with_a_record(client, clerk_token)
    env = {"DATA_DIR": str(client.app[SETTINGS].data_dir)}
    good = run_cli("verify", str(meeting["id"]), env=env)
    assert good.returncode == 0, good.stderr
    async with client.app[DATABASE].session() as db:
        digest = (
            await db.execute(
                text("SELECT last_hash FROM meetings WHERE id = :id"), {"id": meeting["id"]}
            )
        ).scalar_one()
        count = (
            await db.execute(
                text("SELECT count(*) FROM events WHERE meeting_id = :id"), {"id": meeting["id"]}
            )
        ).scalar_one()
    assert len(digest) == 64 and digest in good.stdout and f"{count} events" in good.stdout

    # someone edits one chat line in the database
    async with client.app[DATABASE].session() as db:
        seq = (
            await db.execute(
                text(
                    "SELECT seq FROM events WHERE meeting_id = :id AND type = 'chat:message' "
                    "ORDER BY seq LIMIT 1 OFFSET 1"
                ),
                {"id": meeting["id"]},
            )
        ).scalar_one()
        await db.execute(
            text("UPDATE events SET data = :data WHERE meeting_id = :id AND seq = :seq"),
            {"data": f'{{"id": {seq}, "text": "改过的话"}}', "id": meeting["id"], "seq": seq},
        )
        await db.commit()
    bad = run_cli("verify", str(meeting["id"]), env=env)
    assert bad.returncode == 1 and f"entry {seq}" in bad.stderr, bad.stderr


async def test_a_removed_entry_is_found(client, clerk_token):
    meeting = await _a_meeting_with_a_record(client, clerk_token)
    async with client.app[DATABASE].session() as db:
        await db.execute(
            text("DELETE FROM events WHERE meeting_id = :id AND seq = 3"), {"id": meeting["id"]}
        )
        await db.commit()
    env = {"DATA_DIR": str(client.app[SETTINGS].data_dir)}
    bad = run_cli("verify", str(meeting["id"]), env=env)
    assert bad.returncode == 1 and "entry 3" in bad.stderr and "missing" in bad.stderr
    # the last entry removed: only the digest can tell
    async with client.app[DATABASE].session() as db:
        last = (
            await db.execute(
                text("SELECT max(seq) FROM events WHERE meeting_id = :id"), {"id": meeting["id"]}
            )
        ).scalar_one()
    assert last > 3


async def test_unknown_meeting_verify_says_so(tmp_path):
    result = run_cli("verify", "999", env={"DATA_DIR": str(tmp_path)})
    assert result.returncode == 2 and "999" in result.stderr


async def test_the_audit_page_and_api_show_the_digest_and_a_tampered_entry(client, clerk_token):
    meeting = await _a_meeting_with_a_record(client, clerk_token)
    audit = await (
        await client.get(f"/api/meetings/{meeting['id']}/audit", headers=auth(clerk_token))
    ).json()
    assert audit["ok"] and len(audit["digest"]) == 64
    page = await (
        await client.get(f"/meetings/{meeting['id']}/audit", headers=auth(clerk_token))
    ).text()
    assert audit["digest"] in page and "<svg" in page and "记录完整" in page
    async with client.app[DATABASE].session() as db:
        await db.execute(
            text("UPDATE events SET type = 'chat:deleted' WHERE meeting_id = :id AND seq = 2"),
            {"id": meeting["id"]},
        )
        await db.commit()
    audit = await (
        await client.get(f"/api/meetings/{meeting['id']}/audit", headers=auth(clerk_token))
    ).json()
    assert audit["ok"] is False and audit["first_bad_seq"] == 2
    page = await (
        await client.get(f"/meetings/{meeting['id']}/audit", headers=auth(clerk_token))
    ).text()
    assert "第 2 条" in page

"""Issue 14, wall 11 over HTTP and socket.io: the small things a villager notices.

A member's invite lands on the meeting that is live now; the viewer numbers leave
out the committee's own devices; times are on the village's clock (a meeting at
23:30 UTC is the next morning in the minutes, the Markdown and the notice); the
pages' look-ups answer 200 where a 404 would be an error in the browser's console.
"""

from __future__ import annotations

from server.keys import MEDIA

from .support.api import add_member, auth, create_meeting, start_meeting
from .support.peers import Publisher, Viewer
from .support.realtime import Recorder


async def _open_invite(client, invite_url: str) -> str:
    """Open the member's personal link as the QR code does: where it redirects to."""
    path = invite_url[invite_url.index("/i/") :]
    response = await client.get(path, allow_redirects=False)
    assert response.status == 302
    client.session.cookie_jar.clear()
    return response.headers["Location"]


async def test_invite_lands_on_the_one_live_meeting(client, clerk_token):
    member = await add_member(client, clerk_token, "王秀英")
    await create_meeting(client, clerk_token, title="下周的会")
    assert await _open_invite(client, member["invite_url"]) == "/"  # nothing live: the list

    live = await start_meeting(client, clerk_token, title="今天的会")
    assert await _open_invite(client, member["invite_url"]) == f"/m/{live['code']}"

    # two at once: the home page lists both rather than guessing
    await start_meeting(client, clerk_token, title="另一个会")
    assert await _open_invite(client, member["invite_url"]) == "/"
    # a bad invite still says so
    assert await _open_invite(client, "http://x/i/forged") == "/?invite=invalid"


async def test_online_count_leaves_out_the_committee(client, clerk_token, room_of):
    meeting = await start_meeting(client, clerk_token)
    member = await add_member(client, clerk_token, "李四")
    joined = await client.post("/api/join", json={"invite": member["invite"]})
    member_token = (await joined.json())["token"]
    client.session.cookie_jar.clear()
    room = room_of(meeting)
    host, _ = await room.join(clerk_token)
    second_host_device, _ = await room.join(clerk_token)
    presence = await host.wait_for("presence", lambda d: d.get("committee") == 1)
    assert presence["online"] == 0 and presence["remote"] == 0  # only the committee here

    await room.join(member_token)
    presence = await host.wait_for("presence", lambda d: d["online"] == 1)
    assert presence["remote"] == 1 and presence["committee"] == 1
    await second_host_device.close()


async def test_viewer_count_leaves_out_the_committees_own_devices(
    client, clerk_token, live_meeting
):
    meeting_id = live_meeting["id"]
    host = Recorder()
    publisher, own_phone, villager = Publisher(), Viewer(decode=False), Viewer(decode=False)
    try:
        await host.connect(client, clerk_token)
        assert (await host.call("join", {"meeting_id": meeting_id}))["ok"]
        await publisher.publish(client, meeting_id, clerk_token)
        await host.wait_for("presence", lambda d: d["publishing"] is True)

        await own_phone.watch(client, meeting_id, clerk_token)  # the clerk's second phone
        assert client.app[MEDIA].stats(str(meeting_id)).viewers == 1  # the media has it
        listed = await (await client.get(f"/api/meetings/{meeting_id}")).json()
        assert listed["viewers"] == 0

        # with both watching, the phones are told 1: the villager, not the clerk's phone
        host.events.clear()
        await villager.watch(client, meeting_id)  # anyone with the link
        assert client.app[MEDIA].stats(str(meeting_id)).viewers == 2
        await host.wait_for("presence", lambda d: d["viewers"] == 1, timeout=20)
        assert all(e["viewers"] <= 1 for n, e in host.events if n == "presence")
        listed = await (await client.get(f"/api/meetings/{meeting_id}")).json()
        assert listed["viewers"] == 1

        await client.delete(own_phone.location, headers=auth(clerk_token))
        await client.delete(villager.location)
        await host.wait_for("presence", lambda d: d["viewers"] == 0)
    finally:
        await host.close()
        await own_phone.close()
        await villager.close()
        await publisher.close()


async def test_times_are_on_the_village_clock(client, clerk_token):
    """23:30 UTC on 30 April is 07:30 on 1 May in the village: the minutes, both ways, and
    the notice say 1 May."""
    meeting = await create_meeting(
        client, clerk_token, title="早会", starts_at="2030-04-30T23:30:00+00:00"
    )
    minutes_url = f"/api/meetings/{meeting['id']}/minutes"
    page = await (await client.get(f"{minutes_url}.html", headers=auth(clerk_token))).text()
    text = await (await client.get(f"{minutes_url}.md", headers=auth(clerk_token))).text()
    for shown in (page, text):
        assert "2030-05-01 07:30" in shown
        assert "2030-04-30 23:30" not in shown
    notice = await (
        await client.get(f"/meetings/{meeting['id']}/notice", headers=auth(clerk_token))
    ).text()
    assert 'datetime="2030-04-30T23:30:00+00:00"' in notice
    assert ">2030-05-01 07:30</time>" in notice and "UTC</time>" not in notice


async def test_lookups_answer_200_before_anything_exists(client, clerk_token):
    meeting = await start_meeting(client, clerk_token)
    url = f"/api/meetings/{meeting['id']}/recording"
    assert (await client.get(url, headers=auth(clerk_token))).status == 404  # as documented
    nothing = await client.get(f"{url}?if_none=empty", headers=auth(clerk_token))
    assert nothing.status == 200
    body = await nothing.json()
    assert body["status"] == "not_started" and body["parts"] == []
    # still only for those who may watch
    assert (await client.get(f"{url}?if_none=empty")).status in (401, 404)

    code = meeting["code"]
    for typed, exists in ((code, True), (f"{code[:3]} {code[3:]}", True), ("000000000", False)):
        response = await client.get(f"/api/meeting-codes/{typed}")
        assert response.status == 200
        assert (await response.json())["exists"] is exists
    assert (await (await client.get("/api/meeting-codes/12")).json())["exists"] is False


async def test_the_favicon_is_served(client):
    icon = await client.get("/static/favicon.svg")
    assert icon.status == 200 and icon.headers["Content-Type"] == "image/svg+xml"
    assert "<svg" in await icon.text()
    old = await client.get("/favicon.ico", allow_redirects=False)
    assert old.status == 301 and old.headers["Location"] == "/static/favicon.svg"
    home = await (await client.get("/")).text()
    assert 'rel="icon"' in home and "favicon.svg" in home


async def test_the_pin_form_is_for_villagers_not_the_committee(client, clerk_token):
    """The watch page offers the card's PIN sign-in to anyone not signed in as a member,
    but not to the committee, who are signed in already."""
    meeting = await (
        await client.post(
            "/api/meetings",
            json={"title": "村民大会", "allow_guests": True, "agenda": []},
            headers=auth(clerk_token),
        )
    ).json()
    anonymous = await (await client.get(f"/m/{meeting['code']}")).text()
    assert 'id="pin-form"' in anonymous
    clerk = await (await client.get(f"/m/{meeting['code']}", headers=auth(clerk_token))).text()
    assert 'id="pin-form"' not in clerk
    assert 'id="player-box"' in clerk  # the page itself is there

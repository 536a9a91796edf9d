"""The server restarts mid-meeting (``kill -9``, then SIGTERM as in a deploy); the meeting goes on.

A real server child process (SQLite; the room without media on PostgreSQL too) runs a
live meeting: 20 members chat with acks, three hands are up, a vote is open with ballots
cast, a WHIP publisher sends and a WHEP viewer plays. The server is killed (then stopped
politely) mid-chat and started again on the same database and recordings folder, as a
supervisor would. After each restart: every socket.io client has rejoined by itself (with
``since_seq``) and has seen every acknowledged chat line; every acknowledged line, hand and
ballot is stored; the vote is still open and takes a new ballot; the publisher published
again by itself (as the host page does when the server says nobody publishes) and a viewer
plays; the recording's previous part is finalised (interrupted after the kill, clean after
SIGTERM) and it goes on in a new part. At the end ``cunhui verify`` passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from pathlib import Path

import aiohttp
import socketio

from media import postprocess

from .support.api import PASSWORD, add_member, auth
from .support.databases import fresh_database
from .support.peers import Publisher, Viewer
from .support.processes import Remote, ServerProcess
from .support.recording import duration

MEMBERS = 20
HANDS = 3
BALLOTS = 8
CHAT_SECONDS = 2.0
#: loose bounds (a busy 2-core machine); the real figures are printed
REJOIN_BOUND = 30.0
EXIT_BOUND = 10.0  # the server gives up waiting on anything after 9.5 s (server/cli.py)


class Member:
    """A socket.io client as the pages use it: reconnects by itself, rejoins with since_seq."""

    def __init__(self, url: str, token: str, meeting_id: int, on_join=None) -> None:
        self.url, self.token, self.meeting_id = url, token, meeting_id
        # socket.io-client's defaults (the web pages): 1 s, doubling, at most 5 s
        self.sio = socketio.AsyncClient(
            reconnection=True, reconnection_delay=1, reconnection_delay_max=5
        )
        self.seq: int | None = None
        self.chat_seen: list[int] = []
        self.joins: list[tuple[float, dict]] = []
        self.restarting: list[dict] = []
        self.on_join = on_join
        self._tasks: set[asyncio.Task] = set()

        @self.sio.on("*")
        async def heard(event, data):
            if isinstance(data, dict) and isinstance(data.get("seq"), int):
                if event == "chat:message":
                    self.chat_seen.append(data["id"])
                self.seq = max(self.seq or 0, data["seq"])

        @self.sio.on("server:restarting")
        async def restarting(data):
            self.restarting.append(data)

        @self.sio.event
        async def connect():
            task = asyncio.ensure_future(self._join())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _join(self) -> None:
        payload: dict = {"meeting_id": self.meeting_id}
        if self.seq is not None:
            payload["since_seq"] = self.seq
        try:
            ack = await self.sio.call("join", payload, timeout=15)
        except (socketio.exceptions.SocketIOError, TimeoutError):
            return  # the next reconnect joins again
        assert ack["ok"], ack
        if self.seq is None:
            self.chat_seen.extend(m["id"] for m in ack["state"]["chat"])
        self.seq = max(self.seq or 0, ack["seq"])
        self.joins.append((time.monotonic(), ack))
        if self.on_join is not None:
            self.on_join(ack)

    async def connect(self) -> None:
        await self.sio.connect(
            self.url, auth={"token": self.token}, transports=["websocket"], wait_timeout=10
        )
        for _ in range(200):
            if self.joins:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the first join got no answer")

    async def call(self, event: str, data: dict) -> dict:
        return await self.sio.call(event, data, timeout=10)

    async def close(self) -> None:
        self.sio.reconnection = False
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.sio.disconnect(), 5)
        for task in list(self._tasks):
            task.cancel()


class Republisher:
    """A WHIP publisher that publishes again when the server no longer has it.

    As the host page does (web/static/pages/host.js ``checkServerHasUs``): the host's
    socket rejoins after the restart, its join says nobody publishes, so it publishes
    anew (retrying while the server is not ready).
    """

    def __init__(self, remote: Remote, meeting_id: int, token: str) -> None:
        self.remote, self.meeting_id, self.token = remote, meeting_id, token
        self.publisher: Publisher | None = None
        self.published: list[float] = []
        self._busy: asyncio.Task | None = None

    def on_join(self, ack: dict) -> None:
        if self.publisher is not None and not ack["state"]["publishing"]:
            if self._busy is None or self._busy.done():
                self._busy = asyncio.ensure_future(self.publish())

    async def publish(self) -> None:
        for _ in range(20):
            await self._drop()
            self.publisher = Publisher(width=320, height=240)
            try:
                await self.publisher.publish(self.remote, self.meeting_id, self.token)
            except (AssertionError, aiohttp.ClientError, OSError):
                await asyncio.sleep(1)
                continue
            self.published.append(time.monotonic())
            return
        raise AssertionError("could not publish again")

    async def _drop(self) -> None:
        if self.publisher is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.publisher.close(), 5)  # aiortc may hang on a dead peer

    async def wait(self) -> None:
        if self._busy is not None:
            await asyncio.wait_for(asyncio.shield(self._busy), 60)

    async def close(self) -> None:
        if self._busy is not None:
            self._busy.cancel()
        await self._drop()


async def _json(http: aiohttp.ClientSession, method: str, url: str, **kwargs) -> dict:
    async with http.request(method, url, **kwargs) as response:
        assert response.status < 300, (response.status, await response.text())
        return await response.json()


async def _chat(member: Member, index: int, acked: dict[int, str], stop: asyncio.Event) -> None:
    """Chat every ~0.7 s until stopped (or the server is gone); keep what was acked."""
    n = 0
    while not stop.is_set():
        n += 1
        text = f"村民{index}第{n}句"
        try:
            ack = await member.call("chat:send", {"text": text})
        except (socketio.exceptions.SocketIOError, TimeoutError):
            return  # the server went away with the line: not acknowledged
        if ack.get("ok"):
            acked[ack["id"]] = text
        await asyncio.sleep(0.5 + (index % 5) * 0.05)


async def _watch(url: str, meeting_id: int, token: str, frames: int = 10) -> Viewer:
    """A WHEP viewer that got ``frames`` video frames (tries again while nobody publishes)."""
    async with aiohttp.ClientSession() as http:
        for _ in range(20):
            viewer = Viewer()
            try:
                await viewer.watch(Remote(http, url), meeting_id, token)
                await viewer.wait_for(video=frames, timeout=20)
                return viewer
            except AssertionError:
                await viewer.close()
                await asyncio.sleep(1)
    raise AssertionError("no viewer got pictures")


async def _recording(http, url: str, meeting_id: int, token: str, done, what: str) -> dict:
    recording: dict = {}
    for _ in range(300):
        async with http.get(
            f"{url}/api/meetings/{meeting_id}/recording", headers=auth(token)
        ) as response:
            if response.status == 200:
                recording = await response.json()
                if done(recording):
                    return recording
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what}: {recording}")


class Meeting:
    """The live meeting the restarts happen in: its clerk, members, publisher and what was acked."""

    def __init__(self, server: ServerProcess, http: aiohttp.ClientSession, media: bool) -> None:
        self.server, self.http, self.media = server, http, media
        self.people: list[Member] = []
        self.members: list[Member] = []
        self.republisher: Republisher | None = None
        self.viewers: list[Viewer] = []
        self.acked: dict[int, str] = {}  # chat line id -> text
        self.receipts: list[str] = []
        self.restarts = 0

    async def api(self, method: str, path: str, **kwargs) -> dict:
        return await _json(self.http, method, self.server.url + path, **kwargs)

    async def open(self) -> None:
        """Clerk, 20 members, publisher and viewer; three hands up; a vote open with ballots."""
        login = await self.api(
            "POST", "/api/login", json={"username": "clerk", "password": PASSWORD}
        )
        self.clerk = clerk = login["token"]
        meeting = await self.api(
            "POST",
            "/api/meetings",
            json={"title": "村民大会", "agenda": [{"title": "修路"}]},
            headers=auth(clerk),
        )
        self.id = meeting["id"]
        await self.api("POST", f"/api/meetings/{self.id}/start", headers=auth(clerk))
        remote = Remote(self.http, self.server.url)
        tokens = []
        for i in range(MEMBERS):
            added = await add_member(remote, clerk, f"村民{i}")
            joined = await self.api("POST", "/api/join", json={"invite": added["invite"]})
            tokens.append(joined["token"])
        self.http.cookie_jar.clear()
        self.host = Member(self.server.url, clerk, self.id)
        if self.media:
            self.republisher = Republisher(remote, self.id, clerk)
            self.host.on_join = self.republisher.on_join
            await self.republisher.publish()
        self.members = [Member(self.server.url, t, self.id) for t in tokens]
        self.people = [self.host, *self.members]
        await asyncio.gather(*(p.connect() for p in self.people))
        if self.media:
            # a viewer plays on through each stop: an open peer must not hold the exit
            self.viewers.append(await _watch(self.server.url, self.id, clerk))
            await self.recording(lambda r: r["parts"][0]["started_at"], "no picture recorded")
        for m in self.members[:HANDS]:
            assert (await m.call("hand:raise", {}))["ok"]
        opened = await self.host.call(
            "vote:open",
            {"item_id": meeting["agenda"][0]["id"], "question": "修路吗?", "secret": False},
        )
        assert opened["ok"], opened
        self.vote_id = opened["vote_id"]
        for m in self.members[:BALLOTS]:
            await self.cast(m, "同意")

    async def cast(self, member: Member, choice: str) -> None:
        cast = await member.call("vote:cast", {"vote_id": self.vote_id, "choice": choice})
        assert cast["ok"], cast
        self.receipts.append(cast["receipt"])

    async def restart(self, how: str) -> None:
        """Chat, then ``kill -9`` or SIGTERM mid-chat; start again; every client rejoins."""
        server, people = self.server, self.people
        stop = asyncio.Event()
        chatting = [
            asyncio.ensure_future(_chat(m, i, self.acked, stop)) for i, m in enumerate(self.members)
        ]
        acked_before = len(self.acked)
        await asyncio.sleep(CHAT_SECONDS)
        assert len(self.acked) - acked_before >= MEMBERS, "the chat did not get going"
        joins_before = [len(p.joins) for p in people]
        signalled = time.monotonic()
        if how == "kill":
            server.kill()
            stop.set()
        else:
            stopping = asyncio.ensure_future(server.terminate())
            stop.set()
            status, seconds = await stopping
            print(f"\nSIGTERM: exit status {status} after {seconds:.2f} s")
            assert status == 0, server.log.read_text()[-3000:]
            assert seconds < EXIT_BOUND, seconds
        down_at = self.down_at = time.monotonic()
        server.launch()  # as a supervisor would, on the same database and folders
        await server.wait_ready()
        ready = self.ready = time.monotonic()
        self.restarts += 1
        deadline = time.monotonic() + REJOIN_BOUND
        while any(len(p.joins) <= n for p, n in zip(people, joins_before, strict=True)):
            assert time.monotonic() < deadline, "not every client rejoined by itself"
            await asyncio.sleep(0.1)
        last = max(p.joins[-1][0] for p in people)
        print(
            f"\n{how}: server down {ready - down_at:.1f} s (ready {ready - signalled:.1f} s "
            f"after the signal); every client rejoined {last - ready:.1f} s after ready, "
            f"{last - signalled:.1f} s after the signal; {len(self.acked)} lines acked"
        )
        await asyncio.gather(*chatting)  # the lines in flight at the stop are over
        if how == "term":
            notices = [p.restarting for p in people]
            assert all(n and n[-1]["reconnect_in_s"] > 0 for n in notices), notices

    async def check(self, how: str) -> None:
        """Everything acked is there, the vote is open, the publisher is back, a new part."""
        for p in self.people:
            missing = set(self.acked) - set(p.chat_seen)
            assert not missing, f"a client never saw lines {sorted(missing)[:5]}"
            assert len(p.chat_seen) == len(set(p.chat_seen)), "a line was delivered twice"
        state = self.host.joins[-1][1]["state"]
        assert state["meeting"]["status"] == "live"
        hands = [h["participant_id"] for h in state["hands"]]
        assert hands == [m.joins[0][1]["you"]["id"] for m in self.members[:HANDS]], hands
        stored: dict[int, str] = {}
        attendance: list[tuple[str, str]] = []
        after = 0
        for _ in range(50):
            page = await self.api(
                "GET",
                f"/api/meetings/{self.id}/timeline?after={after}",
                headers=auth(self.clerk),
            )
            stored.update(
                (e["id"], e["text"]) for e in page["events"] if e["type"] == "chat:message"
            )
            attendance.extend(
                (e["type"], e["participant"]["id"])
                for e in page["events"]
                if e["type"].startswith("attendance:")
            )
            if not page.get("more"):
                break
            after = page["next_after"]
        assert {i: stored.get(i) for i in self.acked} == self.acked
        # a member back after the restart is still the one who joined: no second join, no leave
        joined = Counter(who for kind, who in attendance if kind == "attendance:joined")
        assert set(joined.values()) == {1}, joined
        assert not [a for a in attendance if a[0] == "attendance:left"], attendance
        voted = len(self.receipts)
        for m in self.members[:voted]:
            assert m.joins[-1][1]["state"]["votes"][0]["you_voted"], "a ballot was lost"
        vote = (await self.api("GET", f"/api/meetings/{self.id}/votes", headers=auth(self.clerk)))[
            "votes"
        ][0]
        assert vote["status"] == "open" and vote["cast"] == voted, vote
        await self.cast(self.members[voted], "反对")  # the open vote takes a new ballot
        if not self.media:
            return
        await self.republisher.wait()
        published = self.republisher.published[-1]
        # after the old process was gone (it may beat our own readiness poll by a moment)
        assert published > self.down_at
        print(f"{how}: published again {published - self.ready:.1f} s after ready")
        self.viewers.append(await _watch(self.server.url, self.id, self.clerk))
        n = self.restarts
        recording = await self.recording(
            lambda r: (
                len(r["parts"]) == n + 1
                and r["parts"][n]["status"] == "recording"
                and r["parts"][n - 1]["status"] not in ("recording", "processing")
            ),
            "no new part, or the last one not finalised",
        )
        old = recording["parts"][n - 1]
        assert old["interrupted"] is (how == "kill"), old
        assert old["status"] in ("ready", "interrupted"), old
        assert old["mp4"] and old["duration"] and old["duration"] >= 2, old
        part = self.server.env["RECORDINGS_DIR"] + f"/{self.id}/{old['part']}"
        assert duration(Path(part) / postprocess.MP4) >= 2
        for name in ("index.m3u8", "low.m3u8", "audio.m3u8"):  # the live HLS is ended
            assert (Path(part) / name).read_text().rstrip().endswith("#EXT-X-ENDLIST"), name

    async def close_vote(self) -> None:
        """Closed, its receipts are published: exactly the acked ballots."""
        assert (await self.host.call("vote:close", {"vote_id": self.vote_id}))["ok"]
        listed = await self.api(
            "GET",
            f"/api/meetings/{self.id}/votes/{self.vote_id}/receipts",
            headers=auth(self.clerk),
        )
        assert sorted(r["receipt"] for r in listed["receipts"]) == sorted(self.receipts)

    async def recording(self, done, what: str) -> dict:
        return await _recording(self.http, self.server.url, self.id, self.clerk, done, what)

    async def close(self) -> None:
        for closing in (*self.viewers, self.republisher, *self.people):
            if closing is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(closing.close(), 10)


async def _restarts(tmp_path, hows: list[str], *, media: bool, database_url: str = "") -> None:
    server = ServerProcess(tmp_path)
    if database_url:
        server.env["DATABASE_URL"] = database_url
    created = server.cli("admin", "create-user", "clerk", "--password", PASSWORD)
    assert created.returncode == 0, created.stderr
    try:
        await server.start()
        async with aiohttp.ClientSession() as http:
            meeting = Meeting(server, http, media)
            try:
                await meeting.open()
                for how in hows:
                    await meeting.restart(how)
                    await meeting.check(how)
                await meeting.close_vote()
            finally:
                await meeting.close()
        verified = server.cli("verify", str(meeting.id))
        assert verified.returncode == 0, verified.stderr + verified.stdout
    finally:
        server.stop()


async def test_a_meeting_survives_kill_minus_nine_then_a_deploy(tmp_path):
    """SQLite; with media: the publisher comes back, the recording goes on in new parts."""
    await _restarts(tmp_path, ["kill", "term"], media=True)


async def test_a_meeting_on_postgresql_survives_kill_minus_nine(tmp_path):
    """PostgreSQL: every acked write survives the kill (the room only; media as above)."""
    async with fresh_database("cunhui_restart") as url:
        await _restarts(tmp_path, ["kill"], media=False, database_url=url)

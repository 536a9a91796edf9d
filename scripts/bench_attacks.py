#!/usr/bin/env python3
"""Measure what hostile clients do to a live server: the figures of issue 12, items 1-5.

    .venv/bin/python scripts/bench_attacks.py [--only logins,guesses,hands,flood,revoke,locks,whep]
        [--repo DIR] [--logins 100] [--guesses 300] [--hand-seconds 10] [--flood-seconds 10]
        [--start-requests 20000] [--offers 1100] [--timeout 600]

Starts the real server (``python -m server serve`` of ``--repo``, default this
checkout, so an older checkout made with ``git worktree add`` can be measured
the same way) on 127.0.0.1 with a temporary DATA_DIR and TRUSTED_PROXIES=127.0.0.1
(so each simulated phone can come from its own X-Forwarded-For address), then
runs each attack against it while a prober times ``GET /healthz`` every 20 ms:

- ``logins``: N parallel logins, each from its own address for its own unknown
  account (no lockout applies: every one is hashed, unless shed as 503 busy; run with
  ``HASH_QUEUE=200`` to hash all of them). Figures: the longest /healthz answer during
  them (the event loop's stall), and how the logins were answered.
- ``guesses``: N parallel wrong passwords for the clerk from ONE address: how many
  were really checked (401) and how many refused (429) before any was checked.
- ``hands``: a member sends hand:raise/hand:lower as fast as the socket takes them
  for ``--hand-seconds`` (at most 40,000 events); meanwhile the chair moves the agenda
  twice a second and another member chats once a second. Figures: events stored,
  the chair's ack latency (p50/max, timeouts), chat lines that reached a listener.
- ``flood``: another member's chat latency (chat:send to a listener's chat:message),
  first for 5 lines in a quiet room, then while a member floods ``chat:send`` for
  ``--flood-seconds`` twice: as fast as the socket takes them, then steadily at 40 a
  second (above the 5 a second allowed, below a burst's worth of refusals at once).
  Like a hostile client it reconnects and joins again each time it is cut off.
  Figures: times cut off (SOCKET_FLOOD_DISCONNECT), seconds to the first cut, events
  sent and acked ok, the talker's chat latency p50/max (quiet vs flood), lines lost.
- ``revoke``: a member joins, the committee removes them, the member's socket
  casts a ballot: was it accepted, and is it in the tally?
- ``locks``: N anonymous ``POST /api/meetings/{n}/start`` with new n: the server's
  RSS growth.
- ``whep``: N anonymous WHEP offers (one aiortc offer, posted N times, 50 at a
  time, none ever connecting) to a live meeting: the server's most open
  descriptors, the answers by status, the longest /healthz answer.

Prints one JSON object on stdout; progress on stderr. Everything stays on
127.0.0.1; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from scripts.bench.common import LOOPBACK, free_port, percentile, rss_kb, tail  # noqa: E402

ATTACKS = ("logins", "guesses", "hands", "flood", "revoke", "locks", "whep")


def log(msg: str) -> None:
    print(f"[bench_attacks] {msg}", file=sys.stderr, flush=True)


def fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


class Server:
    """``python -m server serve`` of a checkout, in its own process group."""

    def __init__(self, repo: Path, tmp: Path) -> None:
        self.repo, self.tmp = repo, tmp
        self.password = secrets.token_urlsafe(12)
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "REDIS_URL", "PUBLIC_URL", "ICE_SERVERS")
        }
        self.env.update(
            {
                "PYTHONPATH": str(repo),
                "DATA_DIR": str(tmp / "data"),
                "RECORDINGS_DIR": str(tmp / "rec"),
                "RECORD_MEETINGS": "0",
                "SECRET_KEY": secrets.token_urlsafe(32),
                "ICE_HOST_ADDRESSES": LOOPBACK,
                "ICE_SERVERS": "",
                "TRUSTED_PROXIES": LOOPBACK,
                "LOG_LEVEL": "WARNING",
            }
        )
        self.proc: subprocess.Popen | None = None
        self.base = ""

    def _python(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "server", *args],
            cwd=self.repo,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            **kw,
        )

    async def start(self, http) -> None:
        done = self._python("admin", "create-user", "clerk", f"--password={self.password}")
        if done.returncode != 0:
            raise RuntimeError(f"create-user failed: {done.stdout}{done.stderr}")
        port = free_port()
        self.log = self.tmp / "server.log"
        with open(self.log, "ab") as sink:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "server", "serve", "--host", LOOPBACK, "--port", str(port)],
                cwd=self.repo,
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.base = f"http://{LOOPBACK}:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited:\n{tail(self.log, 40)}")
            try:
                async with http.get(f"{self.base}/healthz") as response:
                    if response.status == 200:
                        return
            except Exception:  # noqa: BLE001 - not listening yet
                pass
            await asyncio.sleep(0.2)
        raise RuntimeError(f"the server did not start:\n{tail(self.log, 40)}")

    def stop(self) -> None:
        if self.proc is None:
            return
        for sig, grace in ((signal.SIGINT, 12.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(grace)
                break
            except subprocess.TimeoutExpired:
                continue
        self.proc = None


class Prober:
    """Times GET /healthz every 20 ms while an attack runs: the server's longest stall."""

    def __init__(self, http, base: str) -> None:
        self.http, self.base = http, base
        self.latencies: list[float] = []
        self.failures = 0
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        while len(self.latencies) + self.failures < 100_000:
            t = time.monotonic()
            try:
                async with self.http.get(f"{self.base}/healthz") as response:
                    await response.read()
                self.latencies.append(time.monotonic() - t)
            except Exception:  # noqa: BLE001 - counted
                self.failures += 1
            await asyncio.sleep(0.02)

    def __enter__(self):
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc) -> None:
        self._task.cancel()

    def figures(self) -> dict:
        return {
            "healthz_max_s": round(max(self.latencies, default=0), 3),
            "healthz_p50_s": round(percentile(self.latencies, 50) or 0, 3),
            "healthz_failed": self.failures,
        }


async def call(http, method: str, url: str, **kw) -> tuple[int, dict | str]:
    async with http.request(method, url, **kw) as response:
        text = await response.text()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text


def addr(i: int) -> dict:
    """A made-up client address on loopback's range, one per simulated phone."""
    return {"X-Forwarded-For": f"127.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255 or 1}"}


class Bench:
    def __init__(self, server: Server, http, args) -> None:
        self.s, self.http, self.args = server, http, args

    def url(self, path: str) -> str:
        return self.s.base + path

    async def clerk_token(self) -> str:
        status, body = await call(
            self.http,
            "POST",
            self.url("/api/login"),
            json={"username": "clerk", "password": self.s.password},
            headers=addr(999_999),
        )
        assert status == 200, body
        return body["token"]

    async def live_meeting(self, token: str, guests: bool = True) -> dict:
        h = {"Authorization": f"Bearer {token}"}
        status, meeting = await call(
            self.http,
            "POST",
            self.url("/api/meetings"),
            headers=h,
            json={
                "title": "攻击测试",
                "allow_guests": guests,
                "agenda": [{"title": "一"}, {"title": "二"}],
            },
        )
        assert status == 201, meeting
        status, _ = await call(
            self.http, "POST", self.url(f"/api/meetings/{meeting['id']}/start"), headers=h
        )
        assert status == 200
        return meeting

    async def joined(self, token: str | None, meeting_id: int):  # -> socketio.AsyncClient
        """A socket.io client (a member's, or anonymous) joined to the meeting."""
        import socketio

        sio = socketio.AsyncClient(reconnection=False)
        await sio.connect(
            self.s.base,
            auth={"token": token} if token else None,
            transports=["websocket"],
            wait_timeout=30,
        )
        ack = await sio.call("join", {"meeting_id": meeting_id}, timeout=60)
        assert ack.get("ok"), ack
        return sio

    async def member(self, token: str, name: str) -> tuple[int, str]:
        h = {"Authorization": f"Bearer {token}"}
        status, added = await call(
            self.http, "POST", self.url("/api/members"), headers=h, json={"name": name}
        )
        assert status == 201, added
        status, joined = await call(
            self.http, "POST", self.url("/api/join"), json={"invite": added["invite"]}
        )
        assert status == 200, joined
        return added["id"], joined["token"]

    async def logins(self) -> dict:
        n = self.args.logins

        async def one(i: int) -> int:
            # credential stuffing: each phone its own address and its own (unknown) account,
            # so no lockout applies and every login is really hashed
            status, _ = await call(
                self.http,
                "POST",
                self.url("/api/login"),
                headers=addr(i + 1),
                json={"username": f"user{i}", "password": "a guess"},
            )
            return status

        with Prober(self.http, self.s.base) as probe:
            t = time.monotonic()
            statuses = await asyncio.gather(*(one(i) for i in range(n)))
            wall = time.monotonic() - t
        return {
            "logins": n,
            "answers": dict(Counter(map(str, statuses))),
            "wall_s": round(wall, 2),
            **probe.figures(),
        }

    async def guesses(self) -> dict:
        n = self.args.guesses
        one_address = addr(4242)

        async def one() -> int:
            status, _ = await call(
                self.http,
                "POST",
                self.url("/api/login"),
                headers=one_address,
                json={"username": "clerk", "password": "wrong-" + secrets.token_hex(4)},
            )
            return status

        with Prober(self.http, self.s.base) as probe:
            statuses = await asyncio.gather(*(one() for _ in range(n)))
        counts = Counter(statuses)
        # the owner, from another address, right after the attack
        status, _ = await call(
            self.http,
            "POST",
            self.url("/api/login"),
            headers=addr(777),
            json={"username": "clerk", "password": self.s.password},
        )
        return {
            "guesses": n,
            "checked_401": counts.get(401, 0),
            "refused_429": counts.get(429, 0),
            "answers": dict(Counter(map(str, statuses))),
            "owner_login_after_from_other_address": status,
            **probe.figures(),
        }

    async def hands(self) -> dict:
        import socketio

        token = await self.clerk_token()
        meeting = await self.live_meeting(token)
        _, flooder = await self.member(token, "捣乱者")
        _, talker = await self.member(token, "村民甲")
        items = [a["id"] for a in meeting["agenda"]]

        async def client(tok: str | None) -> socketio.AsyncClient:
            return await self.joined(tok, meeting["id"])

        chair, bad, good, listener = (
            await client(token),
            await client(flooder),
            await client(talker),
            await client(None),
        )
        heard: list[str] = []
        listener.on("chat:message", lambda data: heard.append(data["text"]))
        start_seq = (await chair.call("join", {"meeting_id": meeting["id"]}, timeout=60))["seq"]
        stop = time.monotonic() + self.args.hand_seconds
        sent = 0

        reconnects = 0

        async def flood() -> None:
            nonlocal sent, bad, reconnects
            while time.monotonic() < stop and sent < 40_000:
                try:
                    await bad.emit("hand:raise" if sent % 2 == 0 else "hand:lower", {})
                except socketio.exceptions.BadNamespaceError:
                    # closed by the server: a hostile client comes straight back
                    reconnects += 1
                    try:
                        bad = await client(flooder)
                    except Exception:  # noqa: BLE001 - a refused join is an answer too
                        await asyncio.sleep(0.1)
                    continue
                sent += 1
                if sent % 50 == 0:
                    await asyncio.sleep(0)

        chair_latency, chair_timeouts, said = [], 0, []

        async def chair_moves() -> None:
            nonlocal chair_timeouts
            i = 0
            while time.monotonic() < stop:
                t = time.monotonic()
                try:
                    ack = await chair.call("agenda:goto", {"item_id": items[i % 2]}, timeout=30)
                    if ack.get("ok"):
                        chair_latency.append(time.monotonic() - t)
                except socketio.exceptions.TimeoutError:
                    chair_timeouts += 1
                i += 1
                await asyncio.sleep(0.5)

        async def chat() -> None:
            i = 0
            while time.monotonic() < stop and i < 100:
                text = f"正常发言 {i}"
                try:
                    ack = await good.call("chat:send", {"text": text}, timeout=30)
                    if ack.get("ok"):
                        said.append(text)
                except socketio.exceptions.TimeoutError:
                    pass
                i += 1
                await asyncio.sleep(2.1)  # inside the chat limit of 5 per 10 s

        await asyncio.gather(flood(), chair_moves(), chat())
        await asyncio.sleep(3)
        end_seq = (await chair.call("join", {"meeting_id": meeting["id"]}, timeout=300))["seq"]
        for sio in (chair, bad, good, listener):
            if sio.connected:
                await sio.disconnect()
        return {
            "seconds": self.args.hand_seconds,
            "hand_events_sent": sent,
            "flooder_reconnects": reconnects,
            "events_stored": end_seq - start_seq,
            "chair_ack_p50_s": round(percentile(chair_latency, 50) or 0, 3),
            "chair_ack_max_s": round(max(chair_latency, default=0), 3),
            "chair_acks": len(chair_latency),
            "chair_timeouts": chair_timeouts,
            "chat_acked": len(said),
            "chat_heard": len(set(said) & set(heard)),
        }

    async def flood(self) -> dict:
        """A member flooding chat:send is cut off; another member's chat latency meanwhile."""
        import socketio

        token = await self.clerk_token()
        meeting = await self.live_meeting(token)
        _, flooder = await self.member(token, "刷屏者")
        _, talker = await self.member(token, "村民甲")

        async def client(tok: str | None) -> socketio.AsyncClient:
            return await self.joined(tok, meeting["id"])

        good, listener = await client(talker), await client(None)
        arrived: dict[str, float] = {}
        listener.on("chat:message", lambda data: arrived.setdefault(data["text"], time.monotonic()))

        async def talk(prefix: str, until: float, limit: int) -> dict:
            """Lines 2.1 s apart (inside the chat limit): delivery latency to the listener."""
            sent: dict[str, float] = {}
            timeouts = 0
            for i in range(limit):
                if time.monotonic() >= until:
                    break
                text = f"{prefix} {i}"
                sent[text] = time.monotonic()
                try:
                    ack = await good.call("chat:send", {"text": text}, timeout=30)
                    if not ack.get("ok"):
                        sent.pop(text)
                except socketio.exceptions.TimeoutError:
                    timeouts += 1
                await asyncio.sleep(2.1)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not set(sent) <= set(arrived):
                await asyncio.sleep(0.05)
            latency = [arrived[t] - at for t, at in sent.items() if t in arrived]
            return {
                "lines": len(sent),
                "lost": len(set(sent) - set(arrived)),
                "ack_timeouts": timeouts,
                "latency_p50_ms": round((percentile(latency, 50) or 0) * 1000, 1),
                "latency_max_ms": round(max(latency, default=0) * 1000, 1),
            }

        async def flooding(every: float, seconds: float) -> dict:
            """The flooder in a process of its own: its emits must not slow this loop."""
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(Path(__file__).resolve()),
                "--flood-worker",
                json.dumps([self.s.base, meeting["id"], flooder, every, seconds]),
                stdout=asyncio.subprocess.PIPE,
            )
            out, _ = await asyncio.wait_for(proc.communicate(), seconds + 120)
            return json.loads(out)

        seconds = self.args.flood_seconds
        out: dict = {"seconds": seconds, "quiet": await talk("安静", time.monotonic() + 12, 5)}
        for name, every in (("fast", 0.0), ("steady_40_per_s", 0.025)):
            until = time.monotonic() + seconds + 2  # the flooder's process starts
            flood_figures, talk_figures = await asyncio.gather(
                flooding(every, seconds), talk(name, until, 100)
            )
            out[name] = {**flood_figures, "other_member_chat": talk_figures}
            await asyncio.sleep(4)  # the flooder's bucket refills
        for sio in (good, listener):
            if sio.connected:
                await sio.disconnect()
        return out

    async def revoke(self) -> dict:
        import socketio

        token = await self.clerk_token()
        meeting = await self.live_meeting(token, guests=False)
        for i in range(5):  # a secret-vote electorate may need a few members
            await self.member(token, f"村民{i}")
        member_id, member_token = await self.member(token, "被移除者")
        socks = []
        for tok in (token, member_token):
            sio = socketio.AsyncClient(reconnection=False)
            await sio.connect(self.s.base, auth={"token": tok}, transports=["websocket"])
            assert (await sio.call("join", {"meeting_id": meeting["id"]}, timeout=60))["ok"]
            socks.append(sio)
        chair, member = socks
        opened = await chair.call(
            "vote:open",
            {
                "item_id": meeting["agenda"][0]["id"],
                "question": "同意吗？",
                "options": ["同意", "反对", "弃权"],
                "secret": False,
            },
            timeout=60,
        )
        assert opened.get("ok"), opened
        status, _ = await call(
            self.http,
            "DELETE",
            self.url(f"/api/members/{member_id}"),
            headers={"Authorization": f"Bearer {token}"},
        )
        await asyncio.sleep(0.5)
        try:
            ack = await member.call(
                "vote:cast", {"vote_id": opened["vote_id"], "choice": "同意"}, timeout=10
            )
        except Exception as exc:  # noqa: BLE001 - a disconnected socket is a refusal
            ack = {"ok": False, "error": {"code": type(exc).__name__}}
        closed = await chair.call("vote:close", {"vote_id": opened["vote_id"]}, timeout=60)
        for sio in socks:
            if sio.connected:
                await sio.disconnect()
        return {"delete_status": status, "ballot_after_removal": ack, "counted": closed.get("cast")}

    async def locks(self) -> dict:
        n = self.args.start_requests
        before = rss_kb(self.s.proc.pid)
        gate = asyncio.Semaphore(50)

        async def one(i: int) -> int:
            async with gate:
                status, _ = await call(
                    self.http, "POST", self.url(f"/api/meetings/{10_000 + i}/start")
                )
                return status

        statuses = await asyncio.gather(*(one(i) for i in range(n)))
        after = rss_kb(self.s.proc.pid)
        return {
            "requests": n,
            "answers": dict(Counter(map(str, statuses))),
            "rss_growth_mb": round((after - before) / 1024, 1),
        }

    async def whep(self) -> dict:
        from aiortc import RTCConfiguration, RTCPeerConnection

        from media.aiortc_hooks import restrict_host_addresses

        restrict_host_addresses([LOOPBACK])
        token = await self.clerk_token()
        meeting = await self.live_meeting(token)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTransceiver("audio", direction="recvonly")
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        offer = pc.localDescription.sdp
        await pc.close()
        pid = self.s.proc.pid
        fds = [fd_count(pid)]
        gate = asyncio.Semaphore(50)
        done = False

        async def watch_fds() -> None:
            while not done:
                fds.append(fd_count(pid))
                await asyncio.sleep(0.1)

        async def one(i: int) -> str:
            async with gate:
                try:
                    status, _ = await call(
                        self.http,
                        "POST",
                        self.url(f"/whep/{meeting['id']}"),
                        data=offer,
                        headers={"Content-Type": "application/sdp", **addr(i % 3 + 1)},
                    )
                    return str(status)
                except Exception as exc:  # noqa: BLE001 - counted
                    return type(exc).__name__

        watcher = asyncio.get_running_loop().create_task(watch_fds())
        with Prober(self.http, self.s.base) as probe:
            t = time.monotonic()
            answers = await asyncio.gather(*(one(i) for i in range(self.args.offers)))
            wall = time.monotonic() - t
        done = True
        await watcher
        return {
            "offers": self.args.offers,
            "answers": dict(Counter(answers)),
            "wall_s": round(wall, 1),
            "fds_before": fds[0],
            "fds_max": max(fds),
            "too_many_open_files_logged": tail(self.s.log, 100_000).count("Too many open files"),
            **probe.figures(),
        }


async def flood_worker(
    base: str, meeting_id: int, token: str, every: float, seconds: float
) -> dict:
    """``bench_attacks.py --flood-worker``: flood chat:send, come back each time cut off."""
    import socketio

    async def client() -> socketio.AsyncClient:
        sio = socketio.AsyncClient(reconnection=False)
        await sio.connect(base, auth={"token": token}, transports=["websocket"], wait_timeout=30)
        ack = await sio.call("join", {"meeting_id": meeting_id}, timeout=60)
        assert ack.get("ok"), ack
        return sio

    bad = await client()
    acks: Counter[str] = Counter()
    started = time.monotonic()
    until = started + seconds
    first_cut, sent, cuts = None, 0, 0

    def count(ack) -> None:
        acks["ok" if ack.get("ok") else ack.get("error", {}).get("code", "?")] += 1

    while time.monotonic() < until and sent < 200_000:
        if not bad.connected:
            cuts += 1
            first_cut = first_cut or round(time.monotonic() - started, 2)
            try:  # a hostile client comes straight back
                bad = await client()
            except Exception:  # noqa: BLE001 - a refused join is an answer too
                await asyncio.sleep(0.1)
            continue
        try:
            await bad.emit("chat:send", {"text": f"刷{sent}"}, callback=count)
        except socketio.exceptions.BadNamespaceError:
            continue
        sent += 1
        if every:
            await asyncio.sleep(every)
        elif sent % 50 == 0:
            await asyncio.sleep(0)
    if bad.connected:
        await bad.disconnect()
    return {
        "events_sent": sent,
        "acks": dict(acks),
        "cut_off": cuts,
        "first_cut_after_s": first_cut,
    }


async def main_async(args) -> dict:
    import aiohttp

    repo = Path(args.repo).resolve()
    out: dict = {
        "repo": str(repo),
        "commit": subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip(),
        "attacks": {},
    }
    wanted = [a for a in args.only.split(",") if a] if args.only else list(ATTACKS)
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        for attack in wanted:
            # a fresh server per attack: one attack's lockouts must not shape the next
            with tempfile.TemporaryDirectory(prefix="cunhui-attack-") as tmp:
                server = Server(repo, Path(tmp))
                try:
                    await server.start(http)
                    log(f"{attack} ...")
                    bench = Bench(server, http, args)
                    out["attacks"][attack] = await asyncio.wait_for(
                        getattr(bench, attack)(), args.timeout
                    )
                except Exception as exc:  # noqa: BLE001 - reported, next attack runs
                    out["attacks"][attack] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
                finally:
                    server.stop()
                log(f"{attack}: {json.dumps(out['attacks'][attack], ensure_ascii=False)}")
    return out


def main() -> int:
    if sys.argv[1:2] == ["--flood-worker"]:
        print(json.dumps(asyncio.run(flood_worker(*json.loads(sys.argv[2])))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help=f"comma-separated, of {','.join(ATTACKS)}")
    parser.add_argument("--repo", default=str(HERE.parent), help="the checkout to run")
    parser.add_argument("--logins", type=int, default=100)
    parser.add_argument("--guesses", type=int, default=300)
    parser.add_argument("--hand-seconds", type=float, default=10.0)
    parser.add_argument("--flood-seconds", type=float, default=10.0)
    parser.add_argument("--start-requests", type=int, default=20_000)
    parser.add_argument("--offers", type=int, default=1_100)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per attack")
    args = parser.parse_args()
    for name in ("logins", "guesses", "start_requests", "offers"):
        if not 1 <= getattr(args, name) <= 50_000:
            parser.error(f"--{name.replace('_', '-')} must be 1 to 50000")
    if not 1 <= args.hand_seconds <= 120 or not 3 <= args.flood_seconds <= 120:
        parser.error("--hand-seconds must be 1 to 120 and --flood-seconds 3 to 120")
    print(json.dumps(asyncio.run(main_async(args)), ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Soak: one live meeting for ``--minutes`` against the real server, then its resource figures.

    .venv/bin/python scripts/soak.py [--minutes 60] [--viewers 20] [--no-record]
        [--keep-logs] [--leak-rejoins]

Starts ``cunhui serve`` on 127.0.0.1 (its own temporary DATA_DIR, recording on
unless ``--no-record``) with a committee account and a live meeting, then runs
the meeting:

- a publisher: the bench's WHIP worker (``scripts/bench/publisher.py``), a real
  H.264 + Opus track encoded by aiortc (640x360, 15 fps);
- ``--viewers`` members (20), each an aiortc WHEP viewer counting the video
  frames it receives (``scripts/bench/viewers.py``'s counting viewer) and a
  socket.io client joined to the meeting with the member's token;
- the clerk's socket.io client (the committee token);
- each member writes a chat line every 10 s (spread over the 10 s);
- a hand raised every 20 s by the next member, and lowered by its owner a minute later;
- a vote every 5 minutes (every minute for runs under 15 minutes): opened by the
  clerk, every member's ballot cast, closed;
- each minute one member leaves (WHEP DELETE and socket.io disconnect) and
  comes back a few seconds later (a new WHEP session and socket.io client).

Measured from /proc and the server's media counters: the server process's RSS,
open file descriptors and UDP sockets at the start, at the baseline (after the
first 5 minutes; after a third of the run for runs under 15 minutes: the
warm-up is over) and at the end, plus once a minute in ``samples``; growth from
the baseline; peer connections alive against expected (the server's count of
viewers, the publisher, each viewer's connection state); frames received per
viewer; chat, hand and ballot acks; socket.io connections dropped; ERROR and
Traceback lines in the server's log.

The verdict (``verdict()``) is true when RSS and descriptors grew less than
``--max-growth`` % (10) from the baseline, the UDP sockets did not grow (a
peer connection leaked per rejoin shows there), the server counts exactly the
viewers there are and the publisher is on the air, every viewer received
frames in the last minute, no ack failed, no client was dropped and the log has
no errors. Prints one JSON object on stdout, progress on stderr. Exit status 0
when the verdict is true, 1 otherwise.

``--leak-rejoins`` makes each leaving member keep its old WHEP session open (no
DELETE, the peer connection kept alive): what a leaked peer connection per
rejoin looks like to the server. The verdict must then be false.

Loopback only; every loop is bounded in count and the whole run by a hard alarm.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
for path in (str(HERE.parent), str(HERE)):  # the repo and scripts/ (bench/)
    if path not in sys.path:
        sys.path.insert(0, path)

#: growth of RSS and file descriptors from the baseline that fails the soak (%)
MAX_GROWTH = 10.0
VIDEO = {"codec": "video/H264", "width": 640, "height": 360, "fps": 15.0, "bitrate": 600_000}


def log(msg: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="soak.py", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="length of the meeting")
    parser.add_argument("--viewers", type=int, default=20, help="members watching (default 20)")
    parser.add_argument(
        "--max-growth", type=float, default=MAX_GROWTH, help="RSS/fd growth that fails, %%"
    )
    parser.add_argument("--no-record", action="store_true", help="RECORD_MEETINGS=0")
    parser.add_argument("--leak-rejoins", action="store_true", help="leave old WHEP sessions open")
    parser.add_argument("--keep-logs", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--without",
        default="",
        help="diagnosis: comma-separated activities left out, of chat,hands,votes,rejoins",
    )
    parser.add_argument(
        "--server-log-level", default="WARNING", help="the server's LOG_LEVEL (default WARNING)"
    )
    parser.add_argument(
        "--database-url",
        default="",
        help="the server's DATABASE_URL (default: a SQLite database of its own), "
        "e.g. postgresql://postgres@127.0.0.1:5432/soak (a database that may be filled)",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="diagnosis: an environment variable for the server (repeatable), "
        "e.g. MALLOC_ARENA_MAX=2",
    )
    parser.add_argument(
        "--trace-memory",
        metavar="DIR",
        help="diagnosis: the server runs tracemalloc and writes a snapshot and its live "
        "objects by type to DIR each minute (scripts/bench/thread_names/sitecustomize.py)",
    )
    args = parser.parse_args(argv)
    args.without = {a for a in args.without.split(",") if a}
    if args.without - {"chat", "hands", "votes", "rejoins"}:
        parser.error("--without takes chat, hands, votes, rejoins")
    if any("=" not in kv for kv in args.server_env):
        parser.error("--server-env takes NAME=VALUE")
    if not 0.5 <= args.minutes <= 24 * 60 or not 2 <= args.viewers <= 200:
        parser.error("--minutes 0.5..1440 and --viewers 2..200")
    return args


# --------------------------------------------------------------------------
# /proc


def _fds_once(pid: int) -> tuple[int, int, set[str]]:
    """(descriptors, files among them, socket inodes) of ``pid`` now."""
    fds = files = 0
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        fds += 1
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
        elif target.startswith("/"):
            files += 1
    return fds, files, inodes


def server_sample(pid: int, reads: int = 5) -> dict:
    """The server process's RSS (kB), open descriptors and UDP sockets, now.

    Descriptors come and go all the time (a recording's next segment, an HTTP
    request): the least of ``reads`` reads 0.2 s apart counts those that stay.
    """
    from bench.common import cpu_seconds, rss_kb

    best = None
    try:
        for i in range(reads):
            once = _fds_once(pid)
            if best is None or once[0] < best[0]:
                best = once
            if i + 1 < reads:
                time.sleep(0.2)
    except FileNotFoundError:
        return {"rss_kb": 0, "fds": 0, "files": 0, "udp_sockets": 0, "threads": 0, "cpu_s": 0.0}
    assert best is not None
    fds, files, inodes = best
    udp = 0
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as f:
                next(f, None)
                udp += sum(1 for line in f if line.split()[9] in inodes)
        except FileNotFoundError:
            pass
    try:
        threads = len(os.listdir(f"/proc/{pid}/task"))
    except FileNotFoundError:
        threads = 0
    return {
        "rss_kb": rss_kb(pid),
        "fds": fds,
        "files": files,
        "udp_sockets": udp,
        "threads": threads,
        "cpu_s": round(cpu_seconds(pid), 1),
    }


def growth(base: float, end: float) -> float | None:
    return None if not base else round((end - base) * 100 / base, 2)


# --------------------------------------------------------------------------
# The verdict (a pure function of the figures: tests/test_soak.py checks it can fail)


def verdict(result: dict, max_growth: float = MAX_GROWTH) -> tuple[bool, list[str]]:
    """True when the meeting ran clean and the server kept its size; else the reasons."""
    why: list[str] = []
    g = result.get("growth_percent", {})
    for name in ("rss", "fds"):
        if g.get(name) is None or g[name] >= max_growth:
            why.append(f"{name} grew {g.get(name)} % from the baseline (limit {max_growth} %)")
    base, end = result["server"]["baseline"], result["server"]["end"]
    if end["udp_sockets"] > base["udp_sockets"]:
        why.append(f"UDP sockets {base['udp_sockets']} at the baseline, {end['udp_sockets']} now")
    pcs = result["peer_connections"]
    if pcs["server_viewers"] != pcs["expected_viewers"]:
        why.append(
            f"the server counts {pcs['server_viewers']} viewers, {pcs['expected_viewers']} are"
        )
    if not pcs["publishing"]:
        why.append("the publisher is not on the air")
    if pcs["viewers_connected"] != pcs["expected_viewers"]:
        why.append(f"{pcs['viewers_connected']} viewers connected of {pcs['expected_viewers']}")
    stalled = [i for i, n in enumerate(result["frames"]["last_minute"]) if n <= 0]
    if stalled:
        why.append(f"viewers {stalled} received no frame in the last minute")
    for name, acks in result["acks"].items():
        if acks["failed"]:
            why.append(f"{acks['failed']} {name} acks failed: {acks['errors'][:3]}")
    if result["socketio"]["dropped"]:
        why.append(f"socket.io clients dropped: {result['socketio']['dropped'][:3]}")
    if result["server_log"]["errors"]:
        why.append(f"{result['server_log']['errors']} errors in the server's log")
    if not result["server"]["alive"]:
        why.append("the server died")
    return not why, why


# --------------------------------------------------------------------------
# The meeting


@dataclass
class Acks:
    ok: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, ack) -> bool:
        if isinstance(ack, dict) and ack.get("ok"):
            self.ok += 1
            return True
        self.failed += 1
        if len(self.errors) < 20:
            self.errors.append(str(ack)[:200])
        return False

    def as_json(self) -> dict:
        return {"ok": self.ok, "failed": self.failed, "errors": self.errors}


@dataclass
class Member:
    index: int
    token: str
    sio: object = None
    viewer: object = None
    frames_before: int = 0  # frames of this member's earlier WHEP sessions
    chat_seen: int = 0
    away: bool = True  # between a leave and the rejoin's join ack
    leaked: list = field(default_factory=list)  # --leak-rejoins: old viewers kept open

    def frames(self) -> int:
        return self.frames_before + (self.viewer.counter.vframes if self.viewer else 0)


class Soak:
    def __init__(self, args, http, target, tmp: Path) -> None:
        self.args, self.http, self.target, self.tmp = args, http, target, tmp
        self.members: list[Member] = []
        self.clerk = None
        self.acks = {name: Acks() for name in ("chat", "hand", "ballot", "vote", "join")}
        self.dropped: list[str] = []
        self.rejoins = 0
        self.votes = 0
        self.leaving = False

    # ---- socket.io

    async def connect(self, member: Member | None, token: str) -> object:
        import socketio

        sio = socketio.AsyncClient(reconnection=False, handle_sigint=False)
        who = "clerk" if member is None else f"member {member.index}"

        @sio.on("disconnect")
        def _gone(reason=None) -> None:
            if not self.leaving and (member is None or not member.away):
                self.dropped.append(f"{who}: {reason}")

        if member is not None:

            @sio.on("chat:message")
            def _chat(data=None) -> None:
                member.chat_seen += 1

        await sio.connect(
            self.target.base, auth={"token": token}, transports=["websocket"], wait_timeout=20
        )
        ack = await sio.call("join", {"meeting_id": int(self.target.meeting)}, timeout=20)
        self.acks["join"].add(ack)
        return sio

    async def call(self, sio, kind: str, event: str, data: dict) -> dict | None:
        try:
            ack = await sio.call(event, data, timeout=20)
        except Exception as exc:  # noqa: BLE001 - a failed ack is a figure
            ack = {"ok": False, "exception": f"{type(exc).__name__}: {exc}"}
        return ack if self.acks[kind].add(ack) else None

    # ---- WHEP

    async def watch(self, member: Member) -> None:
        from bench.viewers import Viewer

        viewer = Viewer(member.index, decode=False, probe=False)
        await viewer.join(self.http, self.target.base, self.target.meeting, VIDEO["codec"])
        member.viewer = viewer

    async def join(self, member: Member) -> None:
        await self.watch(member)
        member.sio = await self.connect(member, member.token)
        member.away = False

    async def leave(self, member: Member) -> None:
        member.away = True
        sio, member.sio = member.sio, None
        if sio is not None:
            await sio.disconnect()
        viewer, member.viewer = member.viewer, None
        if viewer is not None:
            member.frames_before += viewer.counter.vframes
            if self.args.leak_rejoins:
                member.leaked.append(viewer)  # no DELETE, the peer connection stays up
            else:
                await viewer.leave(self.http, self.target.base)

    # ---- the meeting's activities, each a bounded loop on its own schedule

    async def at(self, t0: float, offset: float) -> None:
        await asyncio.sleep(max(0.0, t0 + offset - time.monotonic()))

    async def chat_loop(self, t0: float, seconds: float) -> None:
        n = len(self.members)
        for k in range(int(seconds / 10)):
            for member in self.members:
                await self.at(t0, 10 * k + 10 * member.index / n)
                if member.away or member.sio is None:
                    continue
                asyncio.ensure_future(
                    self.call(member.sio, "chat", "chat:send", {"text": f"{member.index}:{k}"})
                )

    async def hand_loop(self, t0: float, seconds: float) -> None:
        raised: list[Member] = []
        for k in range(int(seconds / 20)):
            await self.at(t0, 5 + 20 * k)
            member = self.members[k % len(self.members)]
            if not member.away and member.sio is not None:
                if await self.call(member.sio, "hand", "hand:raise", {}):
                    raised.append(member)
            if len(raised) > 3:
                old = raised.pop(0)
                if not old.away and old.sio is not None:
                    await self.call(old.sio, "hand", "hand:lower", {})

    async def vote_loop(self, t0: float, seconds: float, every: float) -> None:
        for k in range(int((seconds - 45) // every) + 1):
            await self.at(t0, 45 + every * k)
            if time.monotonic() > t0 + seconds - 15:
                return
            opened = await self.call(
                self.clerk, "vote", "vote:open", {"question": f"第{k + 1}项表决"}
            )
            if not opened:
                continue
            vote_id = opened["vote_id"]
            voters = [m for m in self.members if not m.away and m.sio is not None]
            choices = ("同意", "反对", "弃权")
            await asyncio.gather(
                *(
                    self.call(m.sio, "ballot", "vote:cast", {"vote_id": vote_id, "choice": c})
                    for i, m in enumerate(voters)
                    for c in (choices[i % 3],)
                )
            )
            await self.call(self.clerk, "vote", "vote:close", {"vote_id": vote_id})
            self.votes += 1

    async def rejoin_loop(self, t0: float, seconds: float) -> None:
        for k in range(int((seconds - 30) // 60) + 1):
            await self.at(t0, 30 + 60 * k)
            if time.monotonic() > t0 + seconds - 20:
                return
            member = self.members[(7 * k + 3) % len(self.members)]
            await self.leave(member)
            await asyncio.sleep(3)
            try:
                await self.join(member)
                self.rejoins += 1
            except Exception as exc:  # noqa: BLE001 - the figures say so
                self.acks["join"].add({"ok": False, "exception": repr(exc)[:200]})

    # ---- the run

    async def sample(self, t0: float) -> dict:
        s = await asyncio.to_thread(server_sample, self.target.pid)
        s["t"] = round(time.monotonic() - t0, 1)
        s["frames"] = [m.frames() for m in self.members]
        try:
            media = await self.target.media()
            s["server_viewers"] = media.get("viewers")
            s["publishing"] = media.get("publishing")
        except Exception as exc:  # noqa: BLE001
            s["server_viewers"] = s["publishing"] = None
            s["media_error"] = repr(exc)[:200]
        return s

    async def run(self) -> dict:
        from bench.room_server import Api, member_tokens

        args = self.args
        seconds = args.minutes * 60
        baseline_at = 300.0 if seconds >= 900 else seconds / 3
        vote_every = 300.0 if seconds >= 900 else 60.0
        api = Api(self.http, self.target.base)
        tokens = await member_tokens(api, self.target.token, args.viewers)
        self.members = [Member(i, t) for i, t in enumerate(tokens)]
        self.clerk = await self.connect(None, self.target.token)
        for i in range(0, len(self.members), 5):
            await asyncio.gather(*(self.join(m) for m in self.members[i : i + 5]))
        # first frames everywhere before the clock starts (bounded)
        for _ in range(600):
            if all(m.frames() > 0 for m in self.members):
                break
            await asyncio.sleep(0.1)
        log(f"{len(self.members)} members watching and joined; the meeting runs {seconds:g} s")

        t0 = time.monotonic()
        start = await self.sample(t0)
        samples = [start]
        loops = {
            "chat": self.chat_loop(t0, seconds),
            "hands": self.hand_loop(t0, seconds),
            "votes": self.vote_loop(t0, seconds, vote_every),
            "rejoins": self.rejoin_loop(t0, seconds),
        }
        tasks = []
        for name, loop in loops.items():
            if name in args.without:
                loop.close()
            else:
                tasks.append(asyncio.ensure_future(loop))
        marks = sorted({baseline_at, *range(60, int(seconds) + 1, 60), seconds})
        baseline = None
        for mark in marks:
            await self.at(t0, mark)
            while any(m.away for m in self.members) and time.monotonic() < t0 + mark + 20:
                await asyncio.sleep(0.2)  # not in the middle of a rejoin
            s = await self.sample(t0)
            samples.append(s)
            if mark == baseline_at:
                baseline = s
            log(
                f"t={s['t']:.0f}s rss={s['rss_kb'] / 1024:.1f} MB fds={s['fds']} "
                f"udp={s['udp_sockets']} viewers={s['server_viewers']} "
                f"chat ok/failed={self.acks['chat'].ok}/{self.acks['chat'].failed}"
            )
        end = samples[-1]
        before_end = next((s for s in reversed(samples[:-1]) if s["t"] <= end["t"] - 55), start)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert baseline is not None
        connected = sum(
            1 for m in self.members if m.viewer and m.viewer.pc.connectionState == "connected"
        )
        result = {
            "minutes": args.minutes,
            "viewers": args.viewers,
            "recording": not args.no_record,
            "leak_rejoins": args.leak_rejoins,
            "without": sorted(args.without),
            "server_env": args.server_env,
            "baseline_at_s": baseline_at,
            "server": {
                "start": _brief(start),
                "baseline": _brief(baseline),
                "end": _brief(end),
                "alive": self.target.alive(),
            },
            "growth_percent": {
                "rss": growth(baseline["rss_kb"], end["rss_kb"]),
                "fds": growth(baseline["fds"], end["fds"]),
                "rss_from_start": growth(start["rss_kb"], end["rss_kb"]),
                "fds_from_start": growth(start["fds"], end["fds"]),
            },
            "peer_connections": {
                "expected_viewers": len(self.members),
                "server_viewers": end["server_viewers"],
                "publishing": bool(end["publishing"]),
                "viewers_connected": connected,
                "udp_sockets": end["udp_sockets"],
            },
            "frames": {
                "per_viewer": end["frames"],
                "last_minute": [
                    b - a for a, b in zip(before_end["frames"], end["frames"], strict=True)
                ],
            },
            "acks": {name: a.as_json() for name, a in self.acks.items()},
            "chat_received_per_member": [m.chat_seen for m in self.members],
            "socketio": {"dropped": self.dropped},
            "votes": self.votes,
            "rejoins": self.rejoins,
            "samples": [_brief(s) for s in samples],
        }
        return result

    async def close(self) -> None:
        self.leaving = True
        for member in self.members:
            try:
                await asyncio.wait_for(self.leave(member), 10)
            except Exception:  # noqa: BLE001 - the server sees the sockets close
                pass
            for viewer in member.leaked:
                await viewer.leave(self.http, self.target.base)
        if self.clerk is not None:
            await self.clerk.disconnect()


def _brief(s: dict) -> dict:
    return {
        "t": s["t"],
        "rss_mb": round(s["rss_kb"] / 1024, 1),
        "fds": s["fds"],
        "files": s["files"],
        "udp_sockets": s["udp_sockets"],
        "threads": s["threads"],
        "cpu_s": s["cpu_s"],
        "server_viewers": s["server_viewers"],
    }


def log_problems(path: Path) -> dict:
    from bench.common import tail

    lines = tail(path, 1_000_000).splitlines()
    errors = [ln for ln in lines if " ERROR " in ln or ln.startswith("Traceback")]
    return {"errors": len(errors), "last": [ln[:300] for ln in errors[-10:]]}


async def main_async(args, children) -> dict:
    import aiohttp
    from bench.common import Worker, loopback_only
    from bench.servers import start_cunhui, stop_server
    from bench.viewers import _install_counting_hook

    loopback_only()
    _install_counting_hook()
    if args.database_url:  # start_cunhui drops DATABASE_URL; this one it passes on
        os.environ["BENCH_DATABASE_URL"] = args.database_url
    for kv in args.server_env:  # start_cunhui gives the server this process's environment
        name, _, value = kv.partition("=")
        os.environ[name] = value
    if args.trace_memory:  # read by the server's sitecustomize (start_cunhui passes the env on)
        Path(args.trace_memory).mkdir(parents=True, exist_ok=True)
        os.environ["BENCH_TRACEMALLOC_DIR"] = str(Path(args.trace_memory).resolve())
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    log(f"logs in {tmp}")
    result: dict = {}
    publisher = soak = target = None
    failed = True
    timeout = aiohttp.ClientTimeout(total=30)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http:
            target = await start_cunhui(
                http,
                tmp,
                children,
                record=not args.no_record,
                name="soak",
                log_level=args.server_log_level,
            )
            publisher = await Worker.start("publisher", tmp / "publisher.log", children)
            await publisher.call(
                "publish",
                timeout=90,
                base=target.base,
                meeting=target.meeting,
                token=target.token,
                x264_preset="ultrafast",
                **VIDEO,
            )
            soak = Soak(args, http, target, tmp)
            try:
                result = await soak.run()
                errors_at_end = log_problems(target.log)
            finally:
                await soak.close()
                await publisher.stop(children)
            await asyncio.sleep(1)
            await asyncio.to_thread(stop_server, target, children)
            at_stop = log_problems(target.log)
            result["server_log"] = errors_at_end
            result["server_log"]["errors_at_shutdown"] = at_stop["errors"] - errors_at_end["errors"]
            ok, why = verdict(result, args.max_growth)
            result["verdict"] = ok
            result["why"] = why
            failed = not ok
    except Exception as exc:  # noqa: BLE001 - reported as JSON, logs kept
        result = {"verdict": False, "error": f"{type(exc).__name__}: {exc}", **result}
        if target is not None:
            result["server_log"] = log_problems(target.log)
    finally:
        children.kill_all(grace=3)
        if args.keep_logs or failed:
            result["logs"] = str(tmp)
        else:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return result


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    hard = int(args.minutes * 60 + 300)
    from bench.common import Children

    children = Children()

    def hard_stop(*_) -> None:
        children.kill_all(grace=1)
        print(json.dumps({"verdict": False, "error": f"hard timeout after {hard} s"}))
        sys.stdout.flush()
        os._exit(3)

    def terminated(*_) -> None:  # stopped from outside: the server and workers go too
        children.kill_all(grace=1)
        os._exit(143)

    signal.signal(signal.SIGALRM, hard_stop)
    signal.signal(signal.SIGTERM, terminated)
    signal.alarm(hard)
    result = asyncio.run(main_async(args, children))
    signal.alarm(0)
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0 if result.get("verdict") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

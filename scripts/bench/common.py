"""Shared helpers: /proc accounting, child processes, worker protocol, SDP parsing."""

from __future__ import annotations

import asyncio
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "bench_fanout.py"
LOOPBACK = "127.0.0.1"
#: put on the server's PYTHONPATH: names each Python thread in the kernel (see its docstring)
THREAD_NAMES_DIR = Path(__file__).resolve().parent / "thread_names"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str, who: str = "bench") -> None:
    print(f"[{who} {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def cpu_model() -> str | None:
    """The CPU's model name from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def git(*argv: str) -> str:
    """The output of a git command in the repo ("" if git fails)."""
    try:
        return subprocess.run(
            ["git", "-C", str(REPO), *argv], capture_output=True, text=True, timeout=10
        ).stdout.rstrip("\n")
    except Exception:
        return ""


def changed_files(*paths: str) -> list[str]:
    """Files under ``paths`` that differ from the commit (what was measured, exactly)."""
    return [line[3:] for line in git("status", "--porcelain", "--", *paths).splitlines() if line]


def ensure_repo_on_path() -> None:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


def loopback_only() -> None:
    """Make ICE in this process offer 127.0.0.1 only (call before creating peers)."""
    ensure_repo_on_path()
    from media.aiortc_hooks import restrict_host_addresses

    restrict_host_addresses([LOOPBACK])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# /proc


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # fields after the command name, which may contain spaces and parentheses
    return raw[raw.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads), in seconds; 0 if it is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle (from /proc/stat), every process included."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    guest = sum(fields[8:10]) if len(fields) > 9 else 0  # already counted in user/nice
    return (sum(fields) - idle - guest) / CLK_TCK


def cpu_system_seconds(pid: int) -> float:
    """stime alone: time in the kernel (for a server: mostly sendto)."""
    fields = _stat_fields(pid)
    return 0.0 if fields is None else int(fields[12]) / CLK_TCK


def _per_thread(pids: list[int], name: str, parse) -> dict[tuple[int, int], object]:
    """``parse`` of /proc/PID/task/TID/``name`` for each thread of ``pids``, keyed by (pid, tid)."""
    result = {}
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except FileNotFoundError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/{name}", "rb") as f:
                    raw = f.read().decode("ascii", "replace")
            except FileNotFoundError:
                continue  # the thread ended meanwhile
            result[(pid, int(tid))] = parse(raw)
    return result


def _cpu_of_stat(raw: str) -> float:
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def busiest_thread_seconds(pids: list[int]) -> dict[tuple[int, int], float]:
    """utime + stime of every thread of ``pids``, keyed by (pid, tid)."""
    return _per_thread(pids, "stat", _cpu_of_stat)


def thread_names(pids: list[int]) -> dict[tuple[int, int], str]:
    """The kernel's name (``comm``) of every thread of ``pids``, keyed by (pid, tid)."""
    return _per_thread(pids, "comm", str.strip)


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid``."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is None:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def tree(pid: int) -> list[int]:
    return [pid, *descendants(pid)]


def tree_cpu_seconds(pids: list[int]) -> float:
    return sum(cpu_seconds(p) for p in pids)


def rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def tree_rss_kb(pids: list[int]) -> int:
    return sum(rss_kb(p) for p in pids)


# --------------------------------------------------------------------------
# Child processes: each in its own process group, killed by that group's id.


class Children:
    """Child processes started by this run; ``kill_all()`` ends them (and their children)."""

    def __init__(self) -> None:
        self._pids: list[int] = []

    def started(self, pid: int) -> None:
        self._pids.append(pid)

    def forget(self, pid: int) -> None:
        if pid in self._pids:
            self._pids.remove(pid)

    def kill_all(self, grace: float = 5.0) -> None:
        pids, self._pids = list(self._pids), []
        for pid in pids:
            _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for pid in pids:
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.05)
        for pid in pids:
            _signal_group(pid, signal.SIGKILL)
            _reap(pid)


def _signal_group(pid: int, sig: int) -> None:
    # start_new_session=True made each child the leader of its own group: pgid == pid
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _alive(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def spawn(
    command: list[str], env: dict, log_path: Path, children: Children, preexec_fn=None
) -> subprocess.Popen:
    """Start a server in its own process group (killed with ``children``), output to a log."""
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            command,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=preexec_fn,
        )
    children.started(proc.pid)
    return proc


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), str(REPO / "scripts"), env.get("PYTHONPATH", "")) if p
    )
    env.setdefault("PYTHONUNBUFFERED", "1")
    if extra:
        env.update(extra)
    return env


class Worker:
    """A worker process (``bench_fanout.py --worker ROLE``) spoken to in JSON lines."""

    def __init__(self, role: str, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.role = role
        self.proc = proc
        self.pid = proc.pid
        self.log = log
        self._lock = asyncio.Lock()

    @classmethod
    async def start(
        cls, role: str, log: Path, children: Children, env: dict[str, str] | None = None
    ) -> Worker:
        with open(log, "ab") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(SCRIPT),
                "--worker",
                role,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                start_new_session=True,
                env=child_env(env),
                limit=2**24,
            )
        children.started(proc.pid)
        return cls(role, proc, log)

    async def call(self, cmd: str, timeout: float = 120.0, **args) -> dict:
        async with self._lock:
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.write((json.dumps({"cmd": cmd, **args}) + "\n").encode())
            await self.proc.stdin.drain()
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(
                f"{self.role} worker {self.pid} died; log: {self.log}\n" + tail(self.log)
            )
        reply = json.loads(line)
        if not reply.get("ok"):
            raise RuntimeError(
                f"{self.role} worker {self.pid}: {cmd} failed: "
                f"{reply.get('error')}\n{reply.get('trace', '')}"
            )
        return reply

    async def stop(self, children: Children) -> None:
        try:
            await self.call("quit", timeout=10)
            await asyncio.wait_for(self.proc.wait(), 10)
        except Exception:
            pass
        if self.proc.returncode is None:
            _signal_group(self.pid, signal.SIGKILL)
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                pass
        children.forget(self.pid)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "".join(path.read_text(errors="replace").splitlines(True)[-lines:])
    except FileNotFoundError:
        return ""


Handler = Callable[..., Awaitable[dict]]


class CoalescingSelector(selectors.EpollSelector):
    """An epoll selector that, once woken, waits ``delay`` s before collecting events.

    A viewer process holds a hundred sockets that each get a packet every few
    milliseconds; woken per packet, the process spends most of its CPU on
    wake-ups. Gathering a few milliseconds of datagrams per wake-up (the socket
    buffers hold them) makes the load generator cheaper without touching what
    is measured on the server. Timestamps are then late by at most ``delay``.
    """

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def select(self, timeout=None):
        ready = super().select(timeout)
        if ready and self.delay > 0:
            time.sleep(self.delay)
            ready = super().select(0)
        return ready


def run_worker(
    handlers: dict[str, Handler],
    setup: Callable[[], Awaitable[None]] | None = None,
    cleanup: Callable[[], Awaitable[None]] | None = None,
    coalesce: float = 0.0,
) -> int:
    """Serve ``handlers`` over stdin/stdout JSON lines until ``quit`` or EOF."""
    reply_fd = os.dup(1)
    os.dup2(2, 1)  # stray prints from libraries go to the log, not the protocol

    def reply(obj: dict) -> None:
        data = (json.dumps(obj) + "\n").encode()
        while data:
            data = data[os.write(reply_fd, data) :]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=2**24)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        if setup is not None:
            await setup()
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                msg = json.loads(line)
                cmd = msg.pop("cmd")
                if cmd == "quit":
                    if cleanup is not None:
                        try:
                            await asyncio.wait_for(cleanup(), 10)
                        except Exception:
                            traceback.print_exc()
                    reply({"ok": True})
                    break
                try:
                    result = await handlers[cmd](**msg)
                    reply({"ok": True, **result})
                except Exception as exc:
                    reply({"ok": False, "error": repr(exc), "trace": traceback.format_exc()})
        finally:
            if cleanup is not None:
                try:
                    await asyncio.wait_for(cleanup(), 10)
                except Exception:
                    pass

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))

    def run_main() -> None:
        factory = (
            (lambda: asyncio.SelectorEventLoop(CoalescingSelector(coalesce)))
            if coalesce > 0
            else None
        )
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(main())

    profile_dir = os.environ.get("BENCH_PROFILE_DIR")  # debugging: cProfile each worker
    if profile_dir:
        import cProfile

        profiler = cProfile.Profile()
        profiler.runcall(run_main)
        profiler.dump_stats(os.path.join(profile_dir, f"worker-{os.getpid()}.prof"))
    else:
        run_main()
    return 0


# --------------------------------------------------------------------------
# SDP


def payload_types(sdp: str) -> dict[str, set[int]]:
    """Payload types per media kind in an SDP, RTX excluded: {"video": {...}, "audio": {...}}."""
    result: dict[str, set[int]] = {}
    kind = None
    rtx: set[int] = set()
    for line in sdp.splitlines():
        if line.startswith("m="):
            parts = line[2:].split()
            kind = parts[0]
            result.setdefault(kind, set()).update(int(p) for p in parts[3:] if p.isdigit())
        elif kind and line.startswith("a=rtpmap:"):
            pt, _, encoding = line[len("a=rtpmap:") :].partition(" ")
            if encoding.lower().startswith(("rtx/", "red/", "ulpfec/")):
                rtx.add(int(pt))
    return {k: v - rtx for k, v in result.items()}


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile, ``q`` in [0, 100]."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)

"""Bench only: give each Python thread of the server its name in the kernel too.

Python 3.11 does not set the OS name of a thread (``threading.Thread(name=...)``
stays inside Python), so /proc/PID/task/TID/comm shows every thread as the
process. The benchmark puts this directory on the *server's* PYTHONPATH, so
this ``sitecustomize`` runs at the server's start-up and names each new thread
with ``prctl(PR_SET_NAME)`` (15 characters kept) before it runs: the recorder's
writer thread then shows as ``recorder-<meeting id>`` and its CPU can be read
from /proc/PID/task/TID/stat. Threads started by native code inside a named
thread (x264's worker threads, for instance) inherit its name. One system call
per thread start; nothing else changes.
"""

import ctypes
import threading

try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux/glibc: leave threads as they are
    _prctl = None

if _prctl is not None and not getattr(threading.Thread, "_bench_named", False):
    _PR_SET_NAME = 15
    _bootstrap_inner = threading.Thread._bootstrap_inner

    def _named_bootstrap_inner(self):
        try:
            _prctl(_PR_SET_NAME, self.name.encode("utf-8", "replace")[:15], 0, 0, 0)
        except Exception:
            pass
        _bootstrap_inner(self)

    threading.Thread._bootstrap_inner = _named_bootstrap_inner
    threading.Thread._bench_named = True


def _trace_memory(folder: str, every: float) -> None:
    """Bench only (BENCH_TRACEMALLOC_DIR, scripts/soak.py --trace-memory): every ``every`` s,
    a tracemalloc snapshot and the count of live objects by type, into ``folder``.

    Tracing starts after the first ``every`` s (start-up traced is too slow, and only
    what stays allocated after the warm-up matters)."""
    import collections
    import gc
    import json
    import os
    import time
    import tracemalloc

    frames = int(os.environ.get("BENCH_TRACEMALLOC_FRAMES", "12"))  # 0: no tracemalloc
    trim = os.environ.get("BENCH_MALLOC_TRIM") == "1"

    def run() -> None:
        time.sleep(every)
        if frames:
            tracemalloc.start(frames)
        for n in range(10_000):
            time.sleep(every)
            if frames:
                snapshot = tracemalloc.take_snapshot()
                snapshot.dump(os.path.join(folder, f"snap-{n:03d}.pickle"))
            types = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
            with open(os.path.join(folder, f"types-{n:03d}.json"), "w") as f:
                json.dump(dict(types.most_common(300)), f)
            with open(os.path.join(folder, f"closed-pcs-{n:03d}.txt"), "w") as f:
                f.write(_closed_peer_connections())
            if trim:  # glibc gives back what is free (what RSS keeps is then really used)
                import ctypes

                ctypes.CDLL("libc.so.6").malloc_trim(0)

    threading.Thread(target=run, name="bench-tracemalloc", daemon=True).start()


def _closed_peer_connections() -> str:
    """Closed aiortc peer connections still alive, before and after a full collection,
    and the types of what refers to those that a collection does not free."""
    import gc

    def closed() -> list:
        return [
            o
            for o in gc.get_objects()
            if type(o).__name__ == "RTCPeerConnection"
            and getattr(o, "connectionState", "") == "closed"
        ]

    before = len(closed())
    freed = gc.collect()
    survivors = closed()
    out = [
        f"closed RTCPeerConnection alive: {before} before gc.collect(), "
        f"{len(survivors)} after (it freed {freed} objects); gc counts {gc.get_count()}"
    ]
    for pc in survivors[:3]:
        refs = [r for r in gc.get_referrers(pc) if r is not survivors]
        out.append(f"--- {pc!r}: " + ", ".join(type(r).__qualname__ for r in refs))
        for r in refs:
            if isinstance(r, dict):
                owners = [type(o).__qualname__ for o in gc.get_referrers(r) if o is not refs]
                out.append(f"    dict {list(r)[:8]} held by {owners[:6]}")
    survivors.clear()
    return "\n".join(out) + "\n"


def _maybe_trace_memory() -> None:
    import os

    folder = os.environ.get("BENCH_TRACEMALLOC_DIR")
    if folder:
        _trace_memory(folder, float(os.environ.get("BENCH_TRACEMALLOC_EVERY", "60")))


_maybe_trace_memory()

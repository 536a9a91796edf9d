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

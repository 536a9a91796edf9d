"""The audit chain: each stored event's hash covers the previous hash and the event.

``hash = sha256(prev_hash + canonical_json(event))``, where the canonical JSON
holds the meeting id, seq, type, time and data with sorted keys. Changing,
removing or reordering any stored event changes every hash after it, so the
meeting's digest (the newest hash, printed on the notice board) pins the record.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime

from ..store.models import as_utc

GENESIS = ""


def canonical(meeting_id: int, seq: int, type_: str, at: datetime, data: dict) -> str:
    body = {
        "meeting_id": meeting_id,
        "seq": seq,
        "type": type_,
        "at": as_utc(at).isoformat(timespec="microseconds"),
        "data": data,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(
    prev_hash: str, meeting_id: int, seq: int, type_: str, at: datetime, data: dict
) -> str:
    text = prev_hash + canonical(meeting_id, seq, type_, at, data)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class Verdict:
    """The outcome of recomputing a meeting's chain."""

    ok: bool
    events: int
    digest: str
    #: the first event that does not match, and why
    first_bad_seq: int | None = None
    reason: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def verify(meeting_id: int, events, stored_digest: str) -> Verdict:
    """Recompute the chain over ``events`` (in seq order) and compare with what is stored."""
    check = ChainCheck(meeting_id)
    check.feed((e.seq, e.type, e.at, e.data, e.hash) for e in events)
    return check.verdict(stored_digest)


class ChainCheck:
    """The chain recomputed piece by piece: a long record is read in chunks, and each
    chunk's hashing (CPU only: run it in a thread) is :meth:`feed`.

    Rows are ``(seq, type, at, data, hash)``; ``data`` as stored: a dict, or its JSON text.
    """

    def __init__(self, meeting_id: int) -> None:
        self.meeting_id = meeting_id
        self.prev = GENESIS
        self.expected_seq = 1
        #: the first mismatch found; nothing is checked after it
        self.failed: Verdict | None = None

    def feed(self, rows) -> bool:
        """Check these rows (the next ones in seq order); False once a mismatch is found."""
        if self.failed is not None:
            return False
        prev, expected_seq = self.prev, self.expected_seq
        for seq, type_, at, data, stored_hash in rows:
            if seq != expected_seq:
                self.failed = Verdict(
                    False,
                    expected_seq - 1,
                    prev,
                    expected_seq,
                    f"event {expected_seq} is missing (found {seq} next)",
                )
                break
            if isinstance(data, str):
                data = json.loads(data)
            computed = chain_hash(prev, self.meeting_id, seq, type_, at, data)
            if computed != stored_hash:
                self.failed = Verdict(
                    False,
                    expected_seq - 1,
                    prev,
                    seq,
                    f"event {seq} ({type_}) does not match its hash",
                )
                break
            prev = computed
            expected_seq += 1
        self.prev, self.expected_seq = prev, expected_seq
        return self.failed is None

    def verdict(self, stored_digest: str) -> Verdict:
        if self.failed is not None:
            return self.failed
        if self.prev != stored_digest:
            return Verdict(
                False,
                self.expected_seq - 1,
                self.prev,
                self.expected_seq,
                "the meeting's digest does not match its last event: events were removed",
            )
        return Verdict(True, self.expected_seq - 1, self.prev)

"""The audit chain: each stored event's hash covers the previous hash and the event.

``hash = sha256(prev_hash + canonical_json(event))``, where the canonical JSON
holds the meeting id, seq, type, time and data with sorted keys. Changing,
removing or reordering any stored event changes every hash after it, so the
meeting's digest (the newest hash, printed on the notice board) pins the record.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
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


def chain_hash(prev_hash: str, meeting_id: int, seq: int, type_: str, at: datetime, data: dict) -> str:
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
        return {"ok": self.ok, "events": self.events, "digest": self.digest,
                "first_bad_seq": self.first_bad_seq, "reason": self.reason}


def verify(meeting_id: int, events, stored_digest: str) -> Verdict:
    """Recompute the chain over ``events`` (in seq order) and compare with what is stored."""
    prev = GENESIS
    expected_seq = 1
    for event in events:
        if event.seq != expected_seq:
            return Verdict(False, expected_seq - 1, prev, expected_seq,
                           f"event {expected_seq} is missing (found {event.seq} next)")
        computed = chain_hash(prev, meeting_id, event.seq, event.type, event.at, event.data)
        if computed != event.hash:
            return Verdict(False, expected_seq - 1, prev, event.seq,
                           f"event {event.seq} ({event.type}) does not match its hash")
        prev = computed
        expected_seq += 1
    if prev != stored_digest:
        return Verdict(False, expected_seq - 1, prev, expected_seq,
                       "the meeting's digest does not match its last event: events were removed")
    return Verdict(True, expected_seq - 1, prev)

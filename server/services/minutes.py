"""The minutes of a meeting (会议纪要), gathered from what is stored and never invented.

``gather(db, meeting)`` reads the meeting, its agenda, its timeline (with each
event's ``t``), its votes and their frozen results, its suggestions and proxies,
and recomputes its audit chain; it returns a plain :class:`Minutes` that the
Markdown renderer (:mod:`.minutes_md`) and the HTML page both show. Nothing here
knows HTTP; nothing here formats for a language (the renderers translate).

Times are kept in UTC and shown in Beijing time (``LOCAL_ZONE``, UTC+8, no
daylight saving) by :func:`local_date_time` and :func:`local_time`; ``t`` is the
timeline's offset, shown as H:MM:SS by :func:`clock`, whatever its origin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..store import Meeting, Member, pk
from ..store.models import as_utc, utcnow
from . import audit, meetings, rules, suggestions, timeline, vote_words, votes
from .tokens import member_principal_id

#: Beijing time, the villages' clock (one definition, with the meeting search's dates)
LOCAL_ZONE = meetings.LOCAL_ZONE

# ------------------------------------------------------------------ labels
# English message ids, translated by the renderers (web/translations/*/messages.po).

KIND_LABELS = {
    "villagers_assembly": "Villagers' assembly",
    "representatives_meeting": "Villagers' representatives meeting",
    "general": "Other meeting",
}
STATUS_LABELS = {
    "scheduled": "Not started",
    "live": "Live",
    "ended": "Ended",
    "cancelled": "Cancelled",
}
#: how a floor turn ended (``floor:changed``'s ``ended.reason``)
FLOOR_REASONS = {
    "revoked": "Taken back by the chair",
    "replaced": "Given to the next speaker",
    "time_up": "Speaking time ran out",
    "meeting_ended": "The meeting ended",
}
SUGGESTION_LABELS = {
    "open": "Awaiting an answer",
    "adopted": "Adopted",
    "answered": "Answered",
    "not_adopted": "Not adopted",
}
#: a rule's profile; the two legal ones are shown with their source (LEGAL_SOURCES)
PROFILE_LABELS = {
    "villagers_assembly": "Villagers' assembly",
    "representatives_meeting": "Villagers' representatives meeting",
    "simple_majority": "Simple majority of votes cast",
    "two_thirds": "Two-thirds majority of votes cast",
    "custom": "Custom rule",
}
#: the legal source of each profile (docs/voting-rules.md)
LEGAL_SOURCES = {
    "villagers_assembly": "Organic Law of Village Committees, art. 22",
    "representatives_meeting": "Organic Law of Village Committees, art. 26",
}
#: what a threshold counts against
BASE_LABELS = {"eligible": "those eligible", "present": "those present", "cast": "the votes cast"}
#: a closed vote's quorum: the rule has none, or it was met, or not
QUORUM_LABELS = {"none": "No quorum required", "met": "Quorum met", "not_met": "Quorum not met"}
#: the message ids of a result's explanation (VoteEntry.explained)
WORD_IDS = tuple(vote_words.MESSAGES.values())
SOURCE_LABELS = {
    "remote": "Online (phones)",
    "proxy": "By proxy",
    "hall_roll_call": "Hall roll call",
    "hall_show_of_hands": "Hall show of hands",
    "ballots": "Ballots (online and by proxy)",
}
LABELS = {
    "kind": KIND_LABELS,
    "status": STATUS_LABELS,
    "floor": FLOOR_REASONS,
    "suggestion": SUGGESTION_LABELS,
    "profile": PROFILE_LABELS,
    "legal": LEGAL_SOURCES,
    "base": BASE_LABELS,
    "source": SOURCE_LABELS,
    "quorum": QUORUM_LABELS,
    "words": {m: m for m in WORD_IDS},
}


# ------------------------------------------------------------------ formatting


def clock(seconds: float | None) -> str:
    """An offset or a length as H:MM:SS (``-0:00:05`` before the origin, ``—`` if unknown)."""
    if seconds is None:
        return "—"
    sign = "-" if seconds < 0 else ""
    whole = int(abs(seconds))
    return f"{sign}{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def duration(seconds: float | None) -> str:
    """A length, rounded to the second, as H:MM:SS."""
    return clock(None if seconds is None else round(seconds))


def local_date_time(value: datetime | None) -> str:
    """``2026-12-01 09:00`` in Beijing time, or ``—``."""
    value = as_utc(value)
    return value.astimezone(LOCAL_ZONE).strftime("%Y-%m-%d %H:%M") if value else "—"


def local_time(value: datetime | None) -> str:
    """``09:12:05`` in Beijing time, or ``—``."""
    value = as_utc(value)
    return value.astimezone(LOCAL_ZONE).strftime("%H:%M:%S") if value else "—"


# ------------------------------------------------------------------ what the minutes hold


@dataclass(frozen=True)
class Moment:
    """A point on the timeline: ``t`` (seconds, as the timeline gives it) and the wall time."""

    t: float | None
    at: datetime

    @property
    def clock(self) -> str:
        return clock(self.t)

    @property
    def wall(self) -> str:
        return local_time(self.at)


@dataclass(frozen=True)
class Person:
    id: str
    name: str


@dataclass
class AgendaEntry:
    id: int
    number: int
    title: str
    description: str
    #: each time the chair moved to this item (``agenda:current``)
    taken_up: list[Moment] = field(default_factory=list)


@dataclass
class Attendance:
    #: members of the village who joined remotely, each counted once
    remote_member_count: int = 0
    #: their names, in the order they first came; empty unless ``names_shown``
    remote_members: list[Person] = field(default_factory=list)
    #: False: the caller may not see who came and went (the committee's record)
    names_shown: bool = True
    #: distinct guests who joined with a name (anonymous viewers are not recorded)
    remote_guests: int = 0
    #: the number of people the clerk counted in the hall (None: not counted); for the
    #: record only: the vote rules count the members present there (below), not people
    in_hall: int | None = None
    #: members ticked present in the hall or checked in with their card: the hall's voters
    hall_members: list[Person] = field(default_factory=list)
    #: registered proxies (委托投票): (member, proxy)
    proxies: list[tuple[Person, Person]] = field(default_factory=list)


@dataclass
class FloorTurn:
    speaker: Person
    start: Moment
    #: the agenda item current when the floor was given (None: none)
    item: AgendaEntry | None
    #: speaking time in seconds, as stored when the turn ended (None: still speaking)
    seconds: float | None = None
    #: revoked, replaced, time_up, meeting_ended; None while still speaking
    reason: str | None = None

    @property
    def length(self) -> str:
        return duration(self.seconds)


@dataclass
class SuggestionEntry:
    id: int
    author: str
    text: str
    item: AgendaEntry | None
    created_at: datetime
    #: open, adopted, answered, not_adopted
    status: str
    reply: str
    replied_at: datetime | None


#: the result's sources, in the order they are shown (secret votes merge phones and proxies)
OPEN_SOURCES = ("remote", "proxy", "hall_roll_call", "hall_show_of_hands")
SECRET_SOURCES = ("ballots", "hall_show_of_hands")


@dataclass
class VoteEntry:
    id: int
    number: int
    question: str
    options: list[str]
    secret: bool
    rule: rules.Rule
    item: AgendaEntry | None
    status: str
    opened: Moment | None
    closed: Moment | None
    #: the result frozen at close (votes.close_vote), exactly as stored; None while open
    result: dict | None

    @property
    def quorum(self) -> str | None:
        """``none`` (the rule has no quorum), ``met`` or ``not_met``; None while open."""
        if not self.result:
            return None
        if self.rule.quorum is None:
            return "none"
        return "met" if self.result.get("quorum_met") else "not_met"

    def explained(self, translated: dict[str, str], text: Callable[[str], str] = str) -> list[str]:
        """Why it passed or failed, in words (:mod:`.vote_words`; [] while open).

        ``translated``: each of :data:`WORD_IDS` in the reader's language (the page's
        ``_()`` cannot be called from here); ``text`` escapes an option's name.
        """
        explanation = rules.stored_explanation(self.result) if self.result else None
        if not explanation:
            return []
        # the minutes name the rule and its source just above
        return vote_words.sentences(
            explanation, lambda m: str(translated.get(m, m)), text, rule=False
        )

    @property
    def sources(self) -> list[tuple[str, dict[str, int]]]:
        """The result's tally by source, in a fixed order: (source, {option: n})."""
        if not self.result:
            return []
        stored = self.result.get("sources") or {}
        order = SECRET_SOURCES if self.secret else OPEN_SOURCES
        return [(name, stored[name]) for name in order if name in stored]


@dataclass
class AuditEntry:
    ok: bool
    events: int
    digest: str
    first_bad_seq: int | None
    reason: str


@dataclass
class Minutes:
    meeting_id: int
    code: str
    title: str
    #: villagers_assembly, representatives_meeting or general
    kind: str
    status: str
    place: str
    cancel_reason: str
    starts_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    agenda: list[AgendaEntry]
    attendance: Attendance
    floor: list[FloorTurn]
    suggestions: list[SuggestionEntry]
    votes: list[VoteEntry]
    audit: AuditEntry
    generated_at: datetime


# ------------------------------------------------------------------ gathering


def _moment(event: dict) -> Moment:
    return Moment(event["t"], datetime.fromisoformat(event["at"]))


async def _names(db: AsyncSession, member_ids: list[int]) -> dict[int, str]:
    if not member_ids:
        return {}
    rows = await db.exec(select(Member.id, Member.name).where(col(Member.id).in_(member_ids)))
    # a stored id is never NULL: the test only narrows ``int | None`` to ``int``
    return {member_id: name for member_id, name in rows.all() if member_id is not None}


#: the timeline's events the minutes are made from (a flood of hands or chat is not read)
EVENT_TYPES = ("attendance:joined", "agenda:current", "floor:changed", "vote:opened", "vote:closed")


async def gather(
    db: AsyncSession,
    meeting: Meeting,
    *,
    attendance_names: bool = True,
    verdict: audit.Verdict | None = None,
) -> Minutes:
    """Everything the minutes show, from the database.

    ``attendance_names=False`` leaves out the names of those who joined remotely
    (their number stays): who came and went is the committee's record, as on the
    timeline, where others do not get ``attendance:*`` events. ``verdict``: the
    audit chain's, when the caller has it already (else it is recomputed here).
    """
    view = await meetings.view(db, meeting)
    agenda = [
        AgendaEntry(pk(a), n, a.title, a.description) for n, a in enumerate(view.agenda, start=1)
    ]
    # looked up by ids from event data, votes and suggestions, any of which may be absent
    by_id: dict[int | None, AgendaEntry] = {a.id: a for a in agenda}

    attendance = Attendance(names_shown=attendance_names)
    seen: set[str] = set()
    guests: set[str | None] = set()
    floor: list[FloorTurn] = []
    opened: dict[int | None, Moment] = {}
    closed: dict[int | None, Moment] = {}
    current: AgendaEntry | None = None
    async for chunk in timeline.walk(db, meeting, types=EVENT_TYPES):
        for event in chunk:
            kind = event["type"]
            if kind == "attendance:joined":
                who = event.get("participant") or {}
                if who.get("role") == "member" and who.get("id") not in seen:
                    seen.add(who["id"])
                    attendance.remote_members.append(Person(who["id"], who.get("name", "")))
                elif who.get("role") == "guest":
                    guests.add(who.get("id"))
            elif kind == "agenda:current":
                current = by_id.get(event.get("item_id"))
                if current is not None:
                    current.taken_up.append(_moment(event))
            elif kind == "floor:changed":
                _floor_change(floor, event, current)
            elif kind == "vote:opened":
                opened.setdefault(event.get("vote_id"), _moment(event))
            elif kind == "vote:closed":
                closed.setdefault(event.get("vote_id"), _moment(event))
    ended_at = as_utc(meeting.ended_at)
    for turn in floor:
        if turn.reason is None and ended_at is not None:
            # no stored end (the server stopped before it could record one): the meeting's end
            turn.seconds = round((ended_at - turn.start.at).total_seconds(), 1)
            turn.reason = "meeting_ended"
    attendance.remote_guests = len(guests)
    attendance.remote_member_count = len(attendance.remote_members)
    if not attendance_names:
        attendance.remote_members = []

    state = meeting.room_state or {}
    attendance.in_hall = state.get("in_hall")
    hall_ids = [i for i in state.get("hall_members", []) if isinstance(i, int)]
    names = await _names(db, hall_ids)
    attendance.hall_members = [Person(member_principal_id(i), names.get(i, "")) for i in hall_ids]
    for pair in await votes.proxies_of(db, pk(meeting)):
        attendance.proxies.append(
            (
                Person(member_principal_id(pair["member"]["id"]), pair["member"]["name"]),
                Person(member_principal_id(pair["proxy"]["id"]), pair["proxy"]["name"]),
            )
        )

    found_votes = [
        VoteEntry(
            id=pk(v),
            number=n,
            question=v.question,
            options=list(v.options),
            secret=v.secret,
            rule=rules.rule_from_dict(v.rule),
            item=by_id.get(v.item_id),
            status=v.status,
            opened=opened.get(v.id),
            closed=closed.get(v.id),
            result=dict(v.result) if v.status == "closed" and v.result else None,
        )
        for n, v in enumerate(await votes.meeting_votes(db, pk(meeting)), start=1)
    ]
    found_suggestions = [
        SuggestionEntry(
            id=pk(s),
            author=s.author,
            text=s.text,
            item=by_id.get(s.item_id),
            created_at=as_utc(s.created_at),
            status=s.status,
            reply=s.reply,
            replied_at=as_utc(s.replied_at),
        )
        for s in await suggestions.listed(db, pk(meeting))
    ]
    if verdict is None:
        verdict = await timeline.verify_chain(db, meeting)
    return Minutes(
        meeting_id=pk(meeting),
        code=meeting.code,
        title=meeting.title,
        kind=meeting.kind,
        status=meeting.status,
        place=meeting.place,
        cancel_reason=meeting.cancel_reason,
        starts_at=as_utc(meeting.starts_at),
        started_at=as_utc(meeting.started_at),
        ended_at=as_utc(meeting.ended_at),
        agenda=agenda,
        attendance=attendance,
        floor=floor,
        suggestions=found_suggestions,
        votes=found_votes,
        audit=AuditEntry(
            verdict.ok, verdict.events, verdict.digest, verdict.first_bad_seq, verdict.reason
        ),
        generated_at=utcnow(),
    )


def _floor_change(turns: list[FloorTurn], event: dict, current: AgendaEntry | None) -> None:
    """A ``floor:changed``: it ends the running turn (``ended``) and/or starts a new one."""
    ended = event.get("ended")
    if ended:
        running = next(
            (
                turn
                for turn in reversed(turns)
                if turn.reason is None and turn.speaker.id == ended.get("participant_id")
            ),
            None,
        )
        if running is not None:
            running.seconds = ended.get("seconds")
            running.reason = ended.get("reason") or "revoked"
    if event.get("participant_id"):
        turns.append(
            FloorTurn(
                Person(event["participant_id"], event.get("name") or ""), _moment(event), current
            )
        )

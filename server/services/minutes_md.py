"""The minutes as Markdown: a plain text to download, print or paste into a messaging group.

Every piece of user text (titles, names, places, questions, options, suggestions,
replies) goes through :func:`md`, which backslash-escapes every ASCII punctuation
character (CommonMark: any of them may be escaped) and flattens line breaks, so
no title, name or suggestion can open a link, an image, raw HTML, a heading or a
table cell of its own in whatever renders the file later.

Labels are English message ids passed through ``gettext(message, **values)``,
which behaves as the templates' new-style ``_()``: it translates into the reader's
language, then fills in ``%(name)s`` from ``values`` (so a literal ``%`` is ``%%``).
User text is escaped with :func:`md` before it is filled in.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable

from .minutes import LABELS, WORD_IDS, Minutes, VoteEntry, local_date_time

Gettext = Callable[..., str]


def untranslated(message: str, **values: object) -> str:
    """The English text: ``gettext`` when no catalog is at hand."""
    return message % values


_PUNCTUATION = re.compile("([" + re.escape(string.punctuation) + "])")
_SPACE = re.compile(r"\s+")
#: our own links only (the site's address and a path): nothing that could close ``<…>``
_SAFE_URL = re.compile(r"https?://[A-Za-z0-9.:\[\]-]+(/[A-Za-z0-9/_.-]*)?")


def md(text: object) -> str:
    """User text, inert in Markdown: punctuation escaped, one line, no leading blanks."""
    flat = _SPACE.sub(" ", str(text)).strip()
    return _PUNCTUATION.sub(r"\\\1", flat)


def md_lines(text: object, indent: str) -> str:
    """Multi-line user text inside a list item: each line escaped, hard breaks between."""
    lines = [md(line) for line in str(text).splitlines() if line.strip()]
    return ("  \n" + indent).join(lines) or "—"


def _names(people) -> str:
    return "、".join(md(p.name) for p in people)


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def render(minutes: Minutes, gettext: Gettext = untranslated, *, audit_url: str = "") -> str:
    """The minutes as a Markdown document (UTF-8 text); ``audit_url``: the audit page."""
    _ = gettext

    def label(kind: str, key: str) -> str:
        found = LABELS[kind].get(key)
        return _(found) if found else md(key)

    out: list[str] = []
    add = out.append
    add(f"# {_('Minutes of the meeting')}: {md(minutes.title)}")
    add("")
    add(f"- {_('Kind of meeting')}: {label('kind', minutes.kind)}")
    add(f"- {_('Scheduled start')}: {local_date_time(minutes.starts_at)}")
    add(f"- {_('Actual start')}: {local_date_time(minutes.started_at)}")
    add(f"- {_('Actual end')}: {local_date_time(minutes.ended_at)}")
    add(f"- {_('Place')}: {md(minutes.place) if minutes.place else '—'}")
    add(f"- {_('Meeting code')}: {minutes.code}")
    add(f"- {_('Meeting status')}: {label('status', minutes.status)}")
    if minutes.status == "cancelled":
        add(f"- {_('This meeting has been cancelled')}: {md(minutes.cancel_reason)}")
    add("")
    add(
        _(
            "Times are Beijing time (UTC+8). t is the moment on the meeting's timeline "
            "(hours:minutes:seconds), as the replay shows it."
        )
    )
    add("")

    _attendance(minutes, _, label, add)
    _agenda(minutes, _, add)
    _floor(minutes, _, label, add)
    _suggestions(minutes, _, label, add)
    if _section(add, _("Votes"), minutes.votes, _("No votes.")):
        for vote in minutes.votes:
            _vote(vote, _, label, add)
    _audit(minutes, _, add, audit_url)
    add("---")
    add("")
    add(
        _(
            "Generated at %(time)s from the meeting's stored record.",
            time=local_date_time(minutes.generated_at),
        )
    )
    return "\n".join(out) + "\n"


def _attendance(minutes: Minutes, _, label, add) -> None:
    a = minutes.attendance
    add(f"## {_('Attendance')}")
    add("")
    line = f"- {_('Members who joined online: %(n)s', n=a.remote_member_count)}"
    if a.remote_members:
        line += f" ({_names(a.remote_members)})"
    elif a.remote_member_count and not a.names_shown:
        line += f" ({_('The committee’s copy lists their names.')})"
    add(line)
    add(f"- {_('Guests who joined online: %(n)s', n=a.remote_guests)}")
    # issue 14 (wall 3): the headcount is people, for the record; the members are the voters
    counted = _("Not counted") if a.in_hall is None else a.in_hall
    meaning = _("(for the record only; not counted in votes)")
    add(f"- {_('People counted in the hall')}: {counted} {meaning}")
    line = f"- {_('Members ticked present in the hall: %(n)s', n=len(a.hall_members))}"
    if a.hall_members:
        line += f" ({_names(a.hall_members)})"
    add(f"{line} {_('(checked in with their card or ticked on the roll; counted in votes)')}")
    for member, proxy in a.proxies:
        votes_for = _(
            "%(proxy)s votes for %(member)s", proxy=md(proxy.name), member=md(member.name)
        )
        add(f"- {_('Proxy votes (委托投票)')}: {votes_for}")
    add("")
    closed = [(v, v.result) for v in minutes.votes if v.result]
    if closed:
        add(f"### {_('Quorum by vote')}")
        add("")
        add(_row(_("Question"), _("Eligible to vote"), _("Present at the vote"), _("Quorum")))
        add(_row("---", "---:", "---:", "---"))
        for vote, r in closed:
            add(
                _row(
                    f"{vote.number}\\. {md(vote.question)}",
                    r.get("eligible"),
                    r.get("present"),
                    label("quorum", vote.quorum),
                )
            )
        add("")


def _section(add, title: str, items, empty: str) -> bool:
    """A section's heading; False (after saying ``empty``) when it has nothing to list."""
    add(f"## {title}")
    add("")
    if not items:
        add(empty)
        add("")
        return False
    return True


def _agenda(minutes: Minutes, _, add) -> None:
    if not _section(add, _("Agenda"), minutes.agenda, _("No agenda yet.")):
        return
    for item in minutes.agenda:
        if item.taken_up:
            when = "; ".join(f"t {m.clock} · {m.wall}" for m in item.taken_up)
            add(f"{item.number}. {md(item.title)} — {_('Taken up at')}: {when}")
        else:
            add(f"{item.number}. {md(item.title)} — {_('Not taken up')}")
        if item.description:
            add(f"   {md_lines(item.description, '   ')}")
    add("")


def _floor(minutes: Minutes, _, label, add) -> None:
    if not _section(add, _("Floor log"), minutes.floor, _("No one was given the floor.")):
        return
    add(
        _row(
            "t",
            _("Beijing time"),
            _("Who spoke"),
            _("Speaking time"),
            _("Agenda item"),
            _("How it ended"),
        )
    )
    add(_row("---:", "---", "---", "---:", "---", "---"))
    for turn in minutes.floor:
        item = f"{turn.item.number}\\. {md(turn.item.title)}" if turn.item else "—"
        ended = label("floor", turn.reason) if turn.reason else _("Still speaking")
        add(
            _row(turn.start.clock, turn.start.wall, md(turn.speaker.name), turn.length, item, ended)
        )
    add("")


def _suggestions(minutes: Minutes, _, label, add) -> None:
    if not _section(add, _("Suggestions"), minutes.suggestions, _("No suggestions yet.")):
        return
    for n, s in enumerate(minutes.suggestions, start=1):
        on = f"{s.item.number}\\. {md(s.item.title)}" if s.item else _("The meeting in general")
        add(f"{n}. **{md(s.author)}** ({local_date_time(s.created_at)}; {on}):  ")
        add(f"   {md_lines(s.text, '   ')}")
        answer = f"   - {label('suggestion', s.status)}"
        if s.replied_at:
            answer += f" ({local_date_time(s.replied_at)})"
        if s.reply:
            answer += f": {md_lines(s.reply, '     ')}"
        add(answer)
    add("")


def _vote(vote: VoteEntry, _, label, add) -> None:
    add(f"### {vote.number}. {md(vote.question)}")
    add("")
    if vote.item:
        add(f"- {_('Agenda item')}: {vote.item.number}\\. {md(vote.item.title)}")
    add(f"- {_('Secret ballot') if vote.secret else _('Open ballot')}")
    rule = vote.rule
    source = label("legal", rule.profile) if rule.profile in LABELS["legal"] else ""
    add(f"- {_('Rule')}: {label('profile', rule.profile)}" + (f" ({source})" if source else ""))
    for text in rule_sentences(rule, _):
        add(f"  - {text}")
    if vote.opened:
        add(f"- {_('Vote opened at')}: t {vote.opened.clock} · {vote.opened.wall}")
    if vote.closed:
        add(f"- {_('Vote closed at')}: t {vote.closed.clock} · {vote.closed.wall}")
    add("")
    r = vote.result
    if not r:
        add(_("Still open: no result yet."))
        add("")
        return
    sources = vote.sources
    add(
        _row(
            _("Ballot option"),
            *(label("source", name) for name, _counts in sources),
            _("All sources"),
        )
    )
    add(_row("---", *("---:" for _s in sources), "---:"))
    tally = r.get("tally") or {}
    for option in vote.options:
        add(
            _row(
                md(option),
                *(counts.get(option, 0) for _n, counts in sources),
                f"**{tally.get(option, 0)}**",
            )
        )
    add("")
    add(
        f"- {_('Votes cast')}: {r.get('cast')} · {_('Eligible to vote')}: {r.get('eligible')} · "
        f"{_('Present at the vote')}: {r.get('present')}"
    )
    add(f"- {label('quorum', vote.quorum)}")
    if not r.get("quorum_met"):
        verdict = _("No quorum: the vote is not valid")
    else:
        verdict = _("Passed") if r.get("passed") else _("Not passed")
    add(f"- {_('Vote result')}: **{verdict}**")
    # why, in words: the same sentences as the pages (vote_words); user text escaped
    for text in vote.explained({m: _(m) for m in WORD_IDS}, md):
        add(f"  - {text}")
    add("")


def rule_sentences(rule, _) -> list[str]:
    """The rule's quorum and majority in words (the same message ids as the HTML page)."""
    out = []
    if rule.quorum is None:
        out.append(_("No quorum required"))
    else:
        text = _(
            "Quorum: present %(cmp)s %(frac)s of %(base)s",
            cmp=rule.quorum.compare,
            frac=rule.quorum.fraction,
            base=_(LABELS["base"][rule.quorum.of]),
        )
        if rule.households_quorum:
            text += _(", or members from at least 2/3 of the households")
        out.append(text)
    out.append(
        _(
            "Passes: the first option %(cmp)s %(frac)s of %(base)s",
            cmp=rule.majority.compare,
            frac=rule.majority.fraction,
            base=_(LABELS["base"][rule.majority.of]),
        )
    )
    return out


def _audit(minutes: Minutes, _, add, audit_url: str) -> None:
    audit = minutes.audit
    add(f"## {_('Audit digest')}")
    add("")
    add(f"- {_('Digest')}: `{audit.digest or '-'}`")
    if audit.ok:
        add(
            "- "
            + _(
                "The record is intact: %(n)s entries, each sealed to the one before.",
                n=audit.events,
            )
        )
    else:
        add(
            "- "
            + _("The record has been changed at entry %(seq)s.", seq=audit.first_bad_seq)
            + f" {md(audit.reason)}"
        )
    if _SAFE_URL.fullmatch(audit_url):
        add(f"- {_('Audit record')}: <{audit_url}>")
    add(
        "- "
        + _("The server’s operator checks it with: cunhui verify %(id)s", id=minutes.meeting_id)
    )
    add("")

"""The errors the domain raises on purpose: one tree, each class with its contract code.

The HTTP edge (``server/http/errors.py``) answers ``{"error": {"code", "message"}}``
with the class's ``status``; a socket.io ack is ``{"ok": false, "error": {...}}``
with the same code. A class names its status and code once, in its ``class`` line;
a subclass that gives only a ``code`` keeps its parent's status. The tree::

    CunhuiError                 500  internal_error           a bug: logged
    ├── BadRequest              400  bad_request
    │   ├── TooLong             400  too_large                a chat line or suggestion too long
    │   ├── NoticeTooShort      400  notice_too_short
    │   ├── InvalidOption       400  invalid_option           not an option of the vote
    │   └── ImportRejected      400  import_rejected          + ``rows``
    ├── Unauthorized            401  unauthorized
    ├── Forbidden               403  forbidden
    │   ├── Muted               403  muted                    socket.io only
    │   └── NotEligible         403  not_eligible             not on the vote's roll
    ├── NotFound                404  not_found
    ├── MethodNotAllowed        405  method_not_allowed       aiohttp's router refuses it
    ├── RequestTimeout          408  request_timeout
    ├── Conflict                409  conflict
    │   ├── PhoneTaken          409  phone_taken
    │   ├── ElectorateTooSmall  409  electorate_too_small
    │   ├── VoteClosed          409  vote_closed
    │   ├── AlreadyVoted        409  already_voted
    │   ├── ReceiptsWithheld    409  receipts_withheld
    │   ├── StillProcessing     409  processing               + ``details`` (the steps' progress)
    │   └── ProcessingFailed    409  processing_failed
    ├── TooLarge                413  too_large
    ├── UnsupportedMediaType    415  unsupported_media_type
    ├── Unprocessable           422  unprocessable
    │   └── UnsupportedCodec    422  unsupported_codec
    ├── RateLimited             429  rate_limited             + ``retry_after``
    └── Busy                    503  busy                     + ``retry_after``
        └── Unavailable         503  unavailable              /healthz, /readyz

Messages are English message ids, never f-strings: values go in ``params`` and appear
as ``{name}`` placeholders; ``as_dict(gettext)`` answers them in the caller's language
(server/http/errors.py, server/realtime.py; tests/test_error_translations.py checks that
every message raised in server/ has a zh_CN translation).

The first level holds one class per HTTP status: :func:`for_status` names aiohttp's
own refusals (an unknown route, a wrong method, a body too large) from it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar


class CunhuiError(Exception):
    """A refusal: ``status`` on HTTP, ``code`` on HTTP and socket.io alike."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    #: seconds after which trying again may succeed: the HTTP edge sends ``Retry-After``
    retry_after: int | None = None

    def __init_subclass__(
        cls, *, status: int | None = None, code: str | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        if status is not None:
            # for_status relies on it: only the first level names statuses, one class each
            taken = [k for k in CunhuiError.__subclasses__() if k is not cls and k.status == status]
            if CunhuiError not in cls.__bases__ or taken:
                raise TypeError(
                    f"{cls.__name__}: status {status} belongs to the tree's first level"
                )
            cls.status = status
        if code is not None:
            cls.code = code

    def __init__(
        self,
        message: str,
        *,
        params: dict[str, Any] | None = None,
        retry_after: float | None = None,
        details: dict | None = None,
    ) -> None:
        #: the English message id, with ``{name}`` placeholders filled from ``params``;
        #: the edges translate the id into the caller's language (see ``translated``)
        self.template = message
        self.params = dict(params or {})
        self.message = message.format(**self.params) if self.params else message
        super().__init__(self.message)
        if retry_after is not None:
            self.retry_after = max(1, int(-(-retry_after // 1)))  # whole seconds, rounded up
        #: more fields of the error object (extensions such as ``tries_left``)
        self.details = dict(details or {})

    def translated(self, gettext: Callable[[str], str]) -> str:
        """The message in the language ``gettext`` translates into (English if none).

        A param that is a :class:`Phrase` (a meeting's status, a limiter's refusal) is
        an English message id too, and is translated before it is filled in.
        """
        text = gettext(self.template)
        if not self.params:
            return text
        params = {
            name: gettext(value) if isinstance(value, Phrase) else value
            for name, value in self.params.items()
        }
        return text.format(**params)

    def as_dict(self, gettext: Callable[[str], str] | None = None) -> dict:
        message = self.message if gettext is None else self.translated(gettext)
        data = {**self.details, "code": self.code, "message": message}
        if self.retry_after is not None:
            data.setdefault("retry_after", self.retry_after)
        return data


class Phrase(str):
    """A param value that is itself an English message id (with a zh_CN translation).

    ``Conflict("the meeting is {status}", params={"status": Phrase(meeting.status)})``:
    the edges translate the status word too, so no English is left in the message.
    """

    __slots__ = ()


def for_status(status: int) -> type[CunhuiError] | None:
    """The tree's class for an HTTP status (its first level has one per status), if any."""
    return next((kind for kind in CunhuiError.__subclasses__() if kind.status == status), None)


class BadRequest(CunhuiError, status=400, code="bad_request"):
    """Malformed JSON, missing or invalid fields, a malformed SDP."""


class TooLong(BadRequest, code="too_large"):
    """A chat line or a suggestion longer than its limit (a field, not the body: 400)."""


class NoticeTooShort(BadRequest, code="notice_too_short"):
    """A villagers' assembly called less than ten days ahead without ``emergency_reason``."""


class InvalidOption(BadRequest, code="invalid_option"):
    """A ballot or a hall count naming no option of the vote."""


class ImportRejected(BadRequest, code="import_rejected"):
    """A roll file with problems; ``report`` lists them per row. Nothing was imported."""

    def __init__(
        self, message: str, report: list[dict], *, params: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, params=params, details={"rows": report})
        self.report = report


class Unauthorized(CunhuiError, status=401, code="unauthorized"):
    """No credentials, a bad or expired token, a wrong password or PIN."""


class Forbidden(CunhuiError, status=403, code="forbidden"):
    """The caller's role may not do this."""


class Muted(Forbidden, code="muted"):
    """The committee muted this participant's chat."""


class NotEligible(Forbidden, code="not_eligible"):
    """The member was not on the roll of voters when the vote opened."""


class NotFound(CunhuiError, status=404, code="not_found"):
    """No such row, route or media session (for this caller)."""


class MethodNotAllowed(CunhuiError, status=405, code="method_not_allowed"):
    """A route called with the wrong method (aiohttp's router answers it)."""


class RequestTimeout(CunhuiError, status=408, code="request_timeout"):
    """The client did not send its request in time (a stalled or trickled body)."""


class Conflict(CunhuiError, status=409, code="conflict"):
    """The wrong state: the meeting is not live, has ended, or has not started."""


class PhoneTaken(Conflict, code="phone_taken"):
    """Another member of the village has this phone number."""


class ElectorateTooSmall(Conflict, code="electorate_too_small"):
    """A secret vote with too few eligible voters to keep its ballots secret."""


class VoteClosed(Conflict, code="vote_closed"):
    """The vote (or its meeting) is closed."""


class AlreadyVoted(Conflict, code="already_voted"):
    """This member's ballot is already in."""


class ReceiptsWithheld(Conflict, code="receipts_withheld"):
    """A secret vote's receipts, not published: they would show a small group's split."""


class StillProcessing(Conflict, code="processing"):
    """A recording's file that post-processing has not made yet, with the steps' progress."""

    def __init__(
        self, message: str, progress: dict, *, params: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, params=params, details={"details": progress})
        self.progress = progress


class ProcessingFailed(Conflict, code="processing_failed"):
    """A recording's post-processing failed: the file will not come."""


class TooLarge(CunhuiError, status=413, code="too_large"):
    """A request body or upload too large."""


class UnsupportedMediaType(CunhuiError, status=415, code="unsupported_media_type"):
    """The wrong ``Content-Type`` (WHIP/WHEP)."""


class Unprocessable(CunhuiError, status=422, code="unprocessable"):
    """Well-formed but not supported (a trickle PATCH asking for an ICE restart)."""


class UnsupportedCodec(Unprocessable, code="unsupported_codec"):
    """A WHIP/WHEP offer without the meeting's video codec (media is never re-encoded)."""


class RateLimited(CunhuiError, status=429, code="rate_limited"):
    """Too many attempts or messages from this caller: wait ``retry_after`` seconds."""


class Busy(CunhuiError, status=503, code="busy"):
    """The server is at capacity for this kind of work (e.g. checking passwords): retry soon."""


class Unavailable(Busy, code="unavailable"):
    """The database, the recordings disk or Redis cannot do its work (health checks)."""

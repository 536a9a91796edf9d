"""The errors the domain raises on purpose, with their contract codes.

The HTTP edge turns them into ``{"error": {"code", "message"}}`` with
``status``; socket.io acks use the same code and message.
"""

from __future__ import annotations


class CunhuiError(Exception):
    status = 500
    code = "internal_error"
    #: seconds after which trying again may succeed: the HTTP edge sends ``Retry-After``
    retry_after: int | None = None

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        retry_after: float | None = None,
        details: dict | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if retry_after is not None:
            self.retry_after = max(1, int(-(-retry_after // 1)))  # whole seconds, rounded up
        #: more fields of the error object (extensions such as ``tries_left``)
        self.details = dict(details or {})

    def as_dict(self) -> dict:
        data = {**self.details, "code": self.code, "message": self.message}
        if self.retry_after is not None:
            data.setdefault("retry_after", self.retry_after)
        return data


class BadRequest(CunhuiError):
    status, code = 400, "bad_request"


class Unauthorized(CunhuiError):
    status, code = 401, "unauthorized"


class Forbidden(CunhuiError):
    status, code = 403, "forbidden"


class NotFound(CunhuiError):
    status, code = 404, "not_found"


class Conflict(CunhuiError):
    status, code = 409, "conflict"


class TooLarge(CunhuiError):
    status, code = 413, "too_large"


class UnsupportedMediaType(CunhuiError):
    status, code = 415, "unsupported_media_type"


class Unprocessable(CunhuiError):
    status, code = 422, "unprocessable"


class RateLimited(CunhuiError):
    status, code = 429, "rate_limited"


class Busy(CunhuiError):
    """The server is at capacity for this kind of work (e.g. checking passwords): retry soon."""

    status, code = 503, "busy"


class RequestTimeout(CunhuiError):
    """The client did not send its request in time (a stalled or trickled body)."""

    status, code = 408, "request_timeout"

"""The errors the domain raises on purpose, with their contract codes.

The HTTP edge turns them into ``{"error": {"code", "message"}}`` with
``status``; socket.io acks use the same code and message.
"""

from __future__ import annotations


class CunhuiError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message}


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

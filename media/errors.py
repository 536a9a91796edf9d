"""Errors raised by the media library; the server maps them to HTTP statuses."""


class MediaError(Exception):
    """Base class of every error the media library raises on purpose."""


class InvalidOffer(MediaError):
    """The SDP offer cannot be used (malformed, or lacks what is needed)."""


class CodecMismatch(InvalidOffer):
    """The offer lacks the codec this room forwards (media is never re-encoded)."""


class InvalidTrickle(MediaError):
    """A trickle-ICE SDP fragment is malformed."""


class IceRestartUnsupported(InvalidTrickle):
    """The fragment carries new ICE credentials: aiortc cannot restart ICE."""


class FloorStopped(MediaError):
    """The floor was stopped while this floor speaker's offer was being negotiated."""


class SessionNotFound(MediaError):
    """No such publisher or viewer session (closed, failed or never existed)."""


class TooManyPending(MediaError):
    """Too many sessions are negotiated but not yet connected: try again later.

    ``per_client`` tells whether this client's own limit was reached (else the
    process's); ``retry_after`` is the number of seconds until one of the
    sessions counted against that limit connects or is closed at the latest.
    """

    def __init__(self, message: str, *, per_client: bool, retry_after: float) -> None:
        super().__init__(message)
        self.per_client = per_client
        self.retry_after = retry_after

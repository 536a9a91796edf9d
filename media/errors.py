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

"""Cunhui's media library: WebRTC ingest (WHIP) and delivery (WHEP) per meeting.

The server drives it through :class:`MediaHub`; nothing here knows HTTP, SQL
or socket.io. Rooms are identified by an opaque string (the meeting id).
"""

from .config import MediaConfig, parse_ice_servers
from .errors import (
    CodecMismatch,
    FloorStopped,
    InvalidOffer,
    InvalidTrickle,
    MediaError,
    SessionNotFound,
    TooManyPending,
)
from .hub import MediaHub, RoomEvent
from .recorder import DirectoryLock, RecordingEvent
from .session import PeerSession

__all__ = [
    "CodecMismatch",
    "DirectoryLock",
    "FloorStopped",
    "InvalidOffer",
    "InvalidTrickle",
    "MediaConfig",
    "MediaError",
    "MediaHub",
    "PeerSession",
    "RecordingEvent",
    "RoomEvent",
    "SessionNotFound",
    "TooManyPending",
    "parse_ice_servers",
]

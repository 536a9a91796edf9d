"""Cunhui's media library: WebRTC ingest (WHIP) and delivery (WHEP) per meeting.

The server drives it through :class:`MediaHub`; nothing here knows HTTP, SQL
or socket.io. Rooms are identified by an opaque string (the meeting id).
"""

from .aiortc_hooks import install_aiortc_patches
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
from .files import DirectoryLock
from .hub import MediaHub
from .recorder import RecordingEvent
from .room import RoomEvent
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
    "install_aiortc_patches",
    "parse_ice_servers",
]

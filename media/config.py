"""Media settings, kept separate from the server's Settings so media/ stays standalone."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass

from aiortc import RTCConfiguration, RTCIceServer


@dataclass(frozen=True)
class MediaConfig:
    """How peer connections are set up.

    ``ice_servers`` is passed to every peer connection *as given*: an empty list
    means no STUN/TURN at all (aiortc would otherwise fall back to a public STUN
    server). ``host_addresses``, when non-empty, are the only local addresses
    ICE may offer; ``("127.0.0.1",)`` keeps all media on loopback.
    """

    ice_servers: tuple[RTCIceServer, ...] = ()
    host_addresses: tuple[str, ...] = ()
    #: a viewer that has not connected, or a publisher that has not delivered
    #: media, after this many seconds is closed (and its sockets freed)
    connect_timeout: float = 30.0
    #: sessions negotiated but not yet connected, per client (address) and in all;
    #: beyond, new offers are refused (TooManyPending) before any work is done
    pending_per_client: int = 8
    pending_total: int = 200
    #: video codecs a room may forward, best first. H.264 first: phones encode it
    #: in hardware and HLS and MP4 recordings take it without re-encoding.
    video_codecs: tuple[str, ...] = ("video/h264", "video/vp8")
    #: at most one keyframe request to a publisher per this many seconds: new
    #: viewers wait at most this long for their first picture, and the host's
    #: uplink pays for at most two extra keyframes a second during a join rush
    keyframe_interval: float = 0.5
    #: viewers get the meeting's audio (and the floor's) re-encoded once per room with
    #: Opus in-band FEC (media/opus_fec.py); False forwards the publisher's own frames
    audio_fec: bool = True
    #: a viewer whose offer has ``audio/red`` (Chromium's does) gets each Opus frame
    #: again in the next packet (RFC 2198): one lost packet loses no sound
    audio_red: bool = True

    @property
    def loopback_only(self) -> bool:
        """True when ICE may use loopback addresses only (tests, benchmarks)."""
        return bool(self.host_addresses) and all(
            ipaddress.ip_address(a).is_loopback for a in self.host_addresses
        )

    def rtc_configuration(self) -> RTCConfiguration:
        return RTCConfiguration(iceServers=list(self.ice_servers))


def parse_ice_servers(value: str) -> tuple[RTCIceServer, ...]:
    """Parse ``ICE_SERVERS``: empty, comma-separated URLs, or a JSON list.

    The JSON form mirrors the browser's ``RTCIceServer`` dictionaries, e.g.
    ``[{"urls": "turn:turn.example.org:3478", "username": "u", "credential": "p"}]``.
    """
    value = value.strip()
    if not value:
        return ()
    if value.startswith("["):
        try:
            items = json.loads(value)
            return tuple(
                RTCIceServer(
                    urls=item["urls"],
                    username=item.get("username"),
                    credential=item.get("credential"),
                )
                for item in items
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"ICE_SERVERS is not a valid JSON list of servers: {exc}") from exc
    return tuple(RTCIceServer(urls=url.strip()) for url in value.split(",") if url.strip())

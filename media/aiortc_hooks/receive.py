"""Receiving encoded frames (MEDIA-NOTES: "Receiving encoded frames has no public hook").

aiortc decodes in a thread running the module function ``decoder_worker``;
once :func:`install` has replaced it, the tracks registered with
:func:`receive_encoded` get the jitter buffer's complete encoded frames
instead, and never create a decoder. Every other track is decoded as before.
"""

from __future__ import annotations

import asyncio
import inspect
import weakref
from collections.abc import Callable
from typing import Any

import aiortc.rtcrtpreceiver

from ..encoded import AUDIO_TIME_BASE, VIDEO_TIME_BASE, EncodedFrame, is_keyframe

_encoded_queues: weakref.WeakSet[asyncio.Queue[Any]] = weakref.WeakSet()
_original_decoder_worker = aiortc.rtcrtpreceiver.decoder_worker


def install() -> None:
    """Start aiortc's receivers through our worker (process-wide; idempotent)."""
    if not installed():
        aiortc.rtcrtpreceiver.decoder_worker = _decoder_worker


def installed() -> bool:
    return aiortc.rtcrtpreceiver.decoder_worker is _decoder_worker


def receive_encoded(track: Any) -> None:
    """Make a remote track's ``recv()`` return :class:`EncodedFrame` objects.

    Call it from the peer connection's ``track`` event: the receiver starts its
    worker thread only once the connection is up. Needs
    :func:`media.install_aiortc_patches` first (else the track would be decoded).
    """
    if not installed():
        raise RuntimeError("call media.install_aiortc_patches() before receiving encoded media")
    _encoded_queues.add(track._queue)


def _decoder_worker(loop, input_q, output_q, decode_error) -> None:
    if output_q not in _encoded_queues:
        return _original_decoder_worker(loop, input_q, output_q, decode_error)
    deliver = output_q.put_nowait
    while True:
        task = input_q.get()
        if task is None:
            _call_soon(loop, deliver, None)  # the track ends
            return
        codec, jitter_frame = task
        mime = codec.mimeType.lower()
        kind = mime.split("/")[0]
        data = jitter_frame.data
        frame = EncodedFrame(
            kind=kind,
            codec=mime,
            data=data,
            pts=jitter_frame.timestamp,
            time_base=VIDEO_TIME_BASE if kind == "video" else AUDIO_TIME_BASE,
            keyframe=is_keyframe(mime, data),
        )
        if not _call_soon(loop, deliver, frame):
            return


def _call_soon(
    loop: asyncio.AbstractEventLoop, callback: Callable[[Any], None], arg: object
) -> bool:
    try:
        loop.call_soon_threadsafe(callback, arg)
        return True
    except RuntimeError:  # the loop is closed: nobody is listening any more
        return False


def encoded_hook_attached() -> bool:
    """True when aiortc's receiver still starts its worker through the function we replace."""
    source = inspect.getsource(aiortc.rtcrtpreceiver.RTCRtpReceiver.receive)
    return "target=decoder_worker" in source and "self._track._queue" in source and installed()

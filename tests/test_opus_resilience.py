"""Speech that survives loss: Opus in-band FEC made once per meeting, RED per viewer (issue 15).

The figures on a real shaped link are in tests/test_opus_resilience_shaped.py; here,
on loopback: the re-encoded audio carries FEC while the recording keeps the
publisher's own frames, a viewer that offers RED (as Chromium does) gets it, and the
RED payload is what RFC 2198 says.
"""

from __future__ import annotations

import asyncio
import ctypes
import glob
import os

import av
import numpy as np
import pytest
from aiortc.codecs.opus import OpusEncoder
from aiortc.mediastreams import MediaStreamTrack

from media.aiortc_hooks.forward import red_payload
from media.encoded import AUDIO_TIME_BASE, EncodedFrame
from media.fanout import Fanout, KeyframeRequester
from media.opus_fec import OpusFecReencoder
from media.switchable import SwitchableTrack
from scripts.bench.peers import speech_like
from scripts.bench.viewers import offer_red
from server.keys import MEDIA

from .support.floor import SOUND_ONLY, Counted
from .support.peers import Publisher, until


def publisher_frames(seconds: float = 2.0) -> list[EncodedFrame]:
    """What an aiortc publisher sends for a voice: Opus frames without FEC."""
    signal = speech_like(seconds=seconds)
    encoder, frames = OpusEncoder(), []
    for i in range(signal.shape[1] // 960):
        pcm = av.AudioFrame.from_ndarray(
            signal[:, i * 960 : (i + 1) * 960].copy(), format="s16", layout="mono"
        )
        pcm.sample_rate, pcm.pts, pcm.time_base = 48000, i * 960, AUDIO_TIME_BASE
        payloads, _ = encoder.encode(pcm)
        frames += [
            EncodedFrame("audio", "audio/opus", p, i * 960, AUDIO_TIME_BASE, True) for p in payloads
        ]
    return frames


def libopus():
    """PyAV's own libopus, to ask whether a packet carries FEC (None if not found)."""
    folder = os.path.join(os.path.dirname(av.__file__), os.pardir, "av.libs")
    found = glob.glob(os.path.join(folder, "libopus*.so*"))
    if not found:
        return None
    lib = ctypes.CDLL(found[0])
    return lib if hasattr(lib, "opus_packet_has_lbrr") else None


def test_reencoded_audio_carries_fec_at_the_same_timestamps_and_a_lower_rate():
    frames = publisher_frames()
    reencode = OpusFecReencoder()
    out = [o for f in frames for o in reencode(f)]
    assert [o.pts for o in out] == [f.pts for f in frames]  # viewers' clocks unchanged
    assert sum(len(o.data) for o in out) < sum(len(f.data) for f in frames)  # 32 vs 96 kbit/s
    lib = libopus()
    if lib is None:
        pytest.skip("no libopus with opus_packet_has_lbrr beside PyAV")
    with_fec = sum(lib.opus_packet_has_lbrr(o.data, len(o.data)) > 0 for o in out)
    assert sum(lib.opus_packet_has_lbrr(f.data, len(f.data)) > 0 for f in frames) == 0
    assert with_fec > len(out) * 0.4  # every voiced frame (the signal pauses between syllables)


def test_an_undecodable_frame_is_passed_through_not_dropped():
    reencode = OpusFecReencoder()
    bad = EncodedFrame("audio", "audio/opus", b"\xff" * 3, 0, AUDIO_TIME_BASE, True)
    assert reencode(bad) == [bad]  # the publisher's frame goes on: a gap, not silence
    good = publisher_frames(0.5)
    later = [o for f in good for o in reencode(f)]  # and the frames after it are re-encoded
    assert [o.pts for o in later] == [f.pts for f in good]
    assert [o.data for o in later] != [f.data for f in good]


class Frames(MediaStreamTrack):
    kind = "audio"

    def __init__(self, frames) -> None:
        super().__init__()
        self._frames = list(frames)

    async def recv(self):
        if not self._frames:
            await asyncio.Event().wait()
        await asyncio.sleep(0)
        return self._frames.pop(0)


class Recorded:
    def __init__(self) -> None:
        self.payloads: list[list[bytes]] = []

    def forward(self, payloads, timestamp, keyframe) -> None:
        self.payloads.append(payloads)

    def stop(self) -> None:
        pass


async def test_viewers_get_the_fec_audio_and_the_recording_the_publishers_own():
    frames = publisher_frames(1.0)
    source = SwitchableTrack("audio")
    source.set_source(Frames(frames))

    async def no_keyframes() -> bool:
        return False

    fanout = Fanout(source, KeyframeRequester(no_keyframes), OpusFecReencoder())
    tapped: list[EncodedFrame] = []
    fanout.taps.append(tapped.append)
    viewer = Recorded()
    fanout.viewers.add(viewer)  # type: ignore[arg-type]  # only forward() is called
    try:
        await until(lambda: len(tapped) == len(frames), "every frame", 20)
        assert [t.data for t in tapped] == [f.data for f in frames]
        assert len(viewer.payloads) == len(frames)
        assert viewer.payloads[5][0] != frames[5].data  # re-encoded
    finally:
        await fanout.close()
        source.stop()


def test_red_payload_is_the_previous_frame_then_this_one():
    first = red_payload(111, None, 1000, b"A" * 80)
    assert first == bytes([111]) + b"A" * 80  # nothing to repeat yet: primary only
    second = red_payload(111, (1000, b"A" * 80), 1960, b"B" * 70)
    assert second[0] == 0x80 | 111  # F=1, a redundant block of Opus
    word = int.from_bytes(second[1:4], "big")
    assert (word >> 10, word & 0x3FF) == (960, 80)  # 20 ms earlier, 80 bytes
    assert second[4] == 111  # F=0: the primary block
    assert second[5:] == b"A" * 80 + b"B" * 70
    # too old (> 14 bits of timestamp) to repeat: primary only
    assert red_payload(111, (0, b"A"), 20000, b"B") == bytes([111]) + b"B"


async def test_a_viewer_offering_red_gets_its_sound_in_red(client, clerk_token, live_meeting):
    meeting_id = live_meeting["id"]
    publisher = Publisher(width=160, height=120)
    red, plain = Counted(SOUND_ONLY), Counted(SOUND_ONLY)
    try:
        await publisher.publish(client, meeting_id, clerk_token)
        await plain.watch(client, meeting_id)
        await red.watch(client, meeting_id, munge=offer_red)  # Chromium's offer has RED
        red_pt = {
            int(line.split()[0].split(":")[1])
            for line in red.answer.splitlines()
            if line.startswith("a=rtpmap:") and "red/48000/2" in line
        }
        assert red.answer.count("red/48000/2") == 2, red.answer  # both audio m-lines
        await until(lambda: sum(red.packets.values()) > 50, "packets", 20)
        await until(lambda: plain.frames[0] > 50, "the plain viewer's sound", 20)
        assert set(red.packets) == red_pt  # every audio packet in RED
        assert not red_pt & set(plain.packets)  # the other viewer gets plain Opus
        assert client.app[MEDIA].room_stats(str(meeting_id))["viewers"] == 2
    finally:
        for peer in (red, plain, publisher):
            await peer.close()


def test_speech_like_signal_pauses_and_speaks():
    signal = speech_like(seconds=2.0).reshape(-1).astype(np.float64)
    frames = signal[: len(signal) // 960 * 960].reshape(-1, 960)
    loud = np.sqrt((frames**2).mean(axis=1)) > 1000
    assert 0.3 < loud.mean() < 0.9  # syllables with pauses, as speech has

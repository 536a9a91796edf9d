"""The recording's sound: the main audio and the floor's voice, mixed and encoded once to AAC."""

from __future__ import annotations

from collections.abc import Callable

import av
import numpy as np

from .encoded import AUDIO_TIME_BASE

AUDIO_RATE = 48000
AAC_FRAME = 1024
AAC_BITRATE = 32000  # mono speech: ~15 MB an hour for the audio-only file (~18 as HLS)
#: the mixed sound is encoded this far behind the newest sample of either source
MIX_DELAY = AUDIO_RATE // 4
#: a frame further ahead of the output than this is a clock jump, not a real position
MAX_AHEAD = 5 * AUDIO_RATE

_Samples = np.ndarray[tuple[int], np.dtype[np.float32]]


class AudioMixer:
    """Opus → mono PCM on one timeline (main audio and the floor's voice added), → AAC.

    Each source's frames land at their own position (samples since t = 0), so
    either may be missing for a while (a camera-only host, a reconnecting phone,
    silence suppression): the other still plays, and gaps are silence. Output
    runs :data:`MIX_DELAY` behind the newest sample, so a source's frames that
    arrive a little late are still mixed in.
    """

    def __init__(self, mux: Callable[[av.Packet], None]) -> None:
        self._mux = mux
        self._decoders: dict[str, _OpusDecoder] = {}
        self._mix: _Samples = np.zeros(0, np.float32)  # samples from ``written`` on
        self._newest = 0  # the end of the newest frame placed, in samples
        self.written = 0  # samples handed to the encoder (the output's audio time)
        self._encoder = av.CodecContext.create("aac", "w")
        self._encoder.sample_rate = AUDIO_RATE
        self._encoder.layout = "mono"
        self._encoder.format = "fltp"
        self._encoder.bit_rate = AAC_BITRATE
        self._encoder.time_base = AUDIO_TIME_BASE
        self._encoder.options = {"aac_coder": "fast"}  # speech: ~40 % less CPU, same size
        self._encoder.open()

    def add(self, source: str, data: bytes, position: int) -> int:
        """Mix ``source``'s Opus frame in at ``position``; returns how far it was moved.

        A frame far ahead of the output (a clock jump) is moved to the newest
        sample; the caller re-anchors its source by the returned shift.
        """
        decoder = self._decoders.get(source)
        if decoder is None:
            decoder = self._decoders[source] = _OpusDecoder()
        pcm = decoder.decode(data)
        if pcm.size == 0:
            return 0
        shift = 0
        if position - self.written > MAX_AHEAD:
            shift = max(self._newest, self.written) - position
            position += shift
        offset = position - self.written
        if offset < 0:  # later than the output: keep what is still to come
            pcm, offset = pcm[-offset:], 0
            if pcm.size == 0:
                return shift
        end = offset + pcm.size
        if end > self._mix.size:
            self._mix = np.concatenate([self._mix, np.zeros(end - self._mix.size, np.float32)])
        self._mix[offset:end] += pcm
        self._newest = max(self._newest, self.written + end)
        self._emit(self._newest - MIX_DELAY)
        return shift

    def _emit(self, until: int) -> None:
        while self.written + AAC_FRAME <= until and self._mix.size >= AAC_FRAME:
            self._encode(self._mix[:AAC_FRAME])
            self._mix = self._mix[AAC_FRAME:]

    def _encode(self, samples: _Samples | None) -> None:
        frame = None
        if samples is not None:
            frame = av.AudioFrame.from_ndarray(
                np.clip(samples, -1.0, 1.0).astype(np.float32).reshape(1, -1),
                format="fltp",
                layout="mono",
            )
            frame.sample_rate = AUDIO_RATE
            frame.pts = self.written
            frame.time_base = AUDIO_TIME_BASE
            self.written += samples.size
        for packet in self._encoder.encode(frame):
            self._mux(packet)

    def flush(self) -> None:
        self._emit(self.written + self._mix.size)
        if self._mix.size:
            pad = np.zeros(AAC_FRAME - self._mix.size, np.float32)
            self._encode(np.concatenate([self._mix, pad]))
            self._mix = np.zeros(0, np.float32)
        self._encode(None)


class _OpusDecoder:
    """One source's Opus → mono float PCM at :data:`AUDIO_RATE`."""

    def __init__(self) -> None:
        self._decoder = av.CodecContext.create("opus", "r")
        self._decoder.sample_rate = AUDIO_RATE
        self._decoder.layout = "stereo"
        self._resampler = av.AudioResampler(format="fltp", layout="mono", rate=AUDIO_RATE)

    def decode(self, data: bytes) -> _Samples:
        chunks = []
        try:
            frames = self._decoder.decode(av.Packet(data))
        except av.FFmpegError:
            return np.zeros(0, np.float32)  # a damaged packet: its 20 ms become a gap
        for frame in frames:
            for mono in self._resampler.resample(frame):
                chunks.append(mono.to_ndarray()[0])
        return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)

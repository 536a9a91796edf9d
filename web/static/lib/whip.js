// Publish a MediaStream over WHIP (RFC 9725). Generic: no DOM.
//
//   const publisher = publish("/whip/12", stream, { onState: (state, error) => … });
//   await publisher.replaceVideoTrack(newTrack);   // switch camera, no renegotiation
//   await publisher.stop();                        // DELETE the session
//
// States: "connecting" → "connected"; "reconnecting" while it starts over after a
// drop (a new WHIP POST replaces the previous publisher on the server); "failed"
// for errors that retrying cannot fix (the error carries .status: 401, 403, 409…);
// "closed" after stop().

import { HttpPeerSession } from "./webrtc-http.js";

export const DEFAULT_MAX_VIDEO_BITRATE = 1_200_000;

async function capBitrate(sender, maxBitrate) {
  if (!sender || !maxBitrate || !sender.getParameters || !sender.setParameters) return;
  try {
    const params = sender.getParameters();
    if (!params.encodings || params.encodings.length === 0) params.encodings = [{}];
    if (params.encodings[0].maxBitrate === maxBitrate) return;
    params.encodings[0].maxBitrate = maxBitrate;
    await sender.setParameters(params);
  } catch {
    // not every browser lets us; the default bitrate is acceptable
  }
}

function transceiverOf(pc, kind) {
  if (!pc) return null;
  return (
    pc.getTransceivers().find((t) => t.receiver && t.receiver.track && t.receiver.track.kind === kind) ||
    null
  );
}

/**
 * @param {string} url        the WHIP endpoint, e.g. "/whip/12"
 * @param {MediaStream} stream its first audio and first video track are sent
 * @param {object} options    onState(state, error); headers; maxVideoBitrate (default 1.2 Mbit/s,
 *                            0 for none); iceServers; gatherTimeout; disconnectGrace; backoff
 */
export function publish(url, stream, options = {}) {
  const tracks = {
    audio: stream.getAudioTracks()[0] || null,
    video: stream.getVideoTracks()[0] || null,
  };
  const maxBitrate = options.maxVideoBitrate ?? DEFAULT_MAX_VIDEO_BITRATE;
  const msid = new MediaStream();

  const session = new HttpPeerSession(url, {
    ...options,
    setup(pc) {
      for (const kind of ["audio", "video"]) {
        const track = tracks[kind];
        if (!track) continue;
        const init = { direction: "sendonly", streams: [msid] };
        if (kind === "video" && maxBitrate) init.sendEncodings = [{ maxBitrate }];
        pc.addTransceiver(track, init);
      }
    },
    onConnected(pc) {
      const video = transceiverOf(pc, "video");
      if (video) capBitrate(video.sender, maxBitrate);
      options.onConnected?.(pc);
    },
  });

  async function replaceTrack(kind, track) {
    tracks[kind] = track;
    const transceiver = transceiverOf(session.pc, kind);
    if (transceiver) {
      await transceiver.sender.replaceTrack(track);
      if (kind === "video") capBitrate(transceiver.sender, maxBitrate);
    }
  }

  session.start();

  return {
    get state() {
      return session.state;
    },
    get pc() {
      return session.pc;
    },
    get location() {
      return session.location;
    },
    /** Send another camera's track (front/back) on the live connection, without renegotiating. */
    replaceVideoTrack: (track) => replaceTrack("video", track),
    replaceAudioTrack: (track) => replaceTrack("audio", track),
    /** Start over now with a new connection (e.g. the user pressed "retry"). */
    restart: () => session.restart(),
    /**
     * Start over unless an attempt under way may still connect (see
     * HttpPeerSession.restartUnlessUnderway): {since, patience}; returns whether it did.
     */
    restartUnlessUnderway: (options) => session.restartUnlessUnderway(options),
    /** Stop sending and DELETE the WHIP session. The tracks are left running (the caller owns them). */
    stop: (options) => session.stop(options),
  };
}

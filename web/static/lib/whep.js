// Play a meeting over WHEP. Generic: no DOM.
//
//   const player = play("/whep/12", {
//     onStream: (stream) => { video.srcObject = stream; video.play(); },
//     onState: (state, error) => …,
//   });
//   player.stop();   // DELETE the session (also fine from "pagehide")
//
// Each connection gets one MediaStream holding its audio and video tracks;
// onStream is called again with a new stream after a reconnect.
//
// The floor: with { floor: true } the offer carries a second audio m-line, on
// which the server forwards the voice of whoever holds the floor (no
// renegotiation when the speaker changes); onFloorTrack(track) gets it. With
// { floor: "only" } the main audio and video are offered inactive: the host page
// hears the floor speaker in the hall without pulling its own video back.
// States as in whip.js: "connecting", "connected", "reconnecting", "failed"
// (error.status 401/403: not allowed; 409: the meeting is not live; 404: unknown),
// "closed".

import { HttpPeerSession } from "./webrtc-http.js";

/**
 * @param {string} url     the WHEP endpoint, e.g. "/whep/12"
 * @param {object} options onStream(stream); onState(state, error); kinds (default ["audio", "video"]);
 *                         headers; iceServers; gatherTimeout; disconnectGrace; backoff
 */
export function play(url, options = {}) {
  const kinds = options.kinds || ["audio", "video"];
  const onlyFloor = options.floor === "only";
  let stream = null;

  const session = new HttpPeerSession(url, {
    ...options,
    setup(pc) {
      const mine = new MediaStream();
      let announced = false;
      for (const kind of kinds) {
        pc.addTransceiver(kind, { direction: onlyFloor ? "inactive" : "recvonly" });
      }
      const floor = options.floor ? pc.addTransceiver("audio", { direction: "recvonly" }) : null;
      pc.addEventListener("track", (event) => {
        if (session.pc !== pc) return; // a connection we already left
        if (floor && event.transceiver === floor) {
          options.onFloorTrack?.(event.track);
          return;
        }
        for (const old of mine.getTracks()) {
          if (old.kind === event.track.kind && old !== event.track) mine.removeTrack(old);
        }
        if (!mine.getTracks().includes(event.track)) mine.addTrack(event.track);
        stream = mine;
        if (!announced) {
          // Announce once all tracks of this answer have arrived (they come in one task).
          announced = true;
          setTimeout(() => {
            if (session.pc === pc) options.onStream?.(mine);
          }, 0);
        } else {
          options.onTrack?.(event.track, mine);
        }
      });
    },
  });

  session.start();

  return {
    get state() {
      return session.state;
    },
    get stream() {
      return stream;
    },
    get pc() {
      return session.pc;
    },
    get location() {
      return session.location;
    },
    restart: () => session.restart(),
    stop: (options) => session.stop(options),
  };
}

// Live HLS on the watch page, instead of WebRTC when the browser has none, when WebRTC
// cannot connect, or when the viewer saves data and wants the picture (a few seconds
// behind, but plain HTTP files any cache or CDN can serve).
//
// The recording's live part names its master playlist (`hls`) and, where the node
// makes them, its renditions (`renditions: {audio, low, full}`): "audio" plays the
// AAC-only playlist, "low" the ~360p one (save data), "auto" the master, which
// starts at its lowest rendition and climbs as the link allows. Where a rendition
// is missing the master (or the one playlist there is) plays instead.

import { getJSON } from "../../lib/api.js";
import { playHls } from "../../lib/hls-player.js";
import { t } from "../../lib/i18n.js";

/** The part being recorded now ({hls, renditions}), or null (not recording yet). */
async function livePart(meetingId) {
  try {
    const recording = await getJSON(
      `/api/meetings/${encodeURIComponent(meetingId)}/recording?if_none=empty`,
    );
    const parts = (recording && recording.parts) || [];
    const live = parts.filter((p) => p.status === "recording" && p.hls);
    return live.length ? live[live.length - 1] : null;
  } catch {
    return null;
  }
}

/** The playlist to load for `rendition` ("audio" | "low" | "auto"), and whether to pin. */
export function choosePlaylist(part, rendition) {
  const renditions = (part && part.renditions) || {};
  if (rendition === "audio" && renditions.audio) return { url: renditions.audio, pinLowest: false };
  if (rendition === "low" && renditions.low) return { url: renditions.low, pinLowest: false };
  // the master: hls.js starts at its lowest level; save data stays there
  return { url: part.hls, pinLowest: rendition !== "auto" };
}

/**
 * @param {object} options meetingId; player (the <video>); isLive() the meeting is live;
 *                         canStart() the page may start playing; onConnecting();
 *                         onError(message); onPlaying() once the stream is attached
 */
export function createLiveHls(options) {
  const player = options.player;
  let handle = null;
  let starting = false;
  let retry = null;
  let generation = 0;
  let playing = null; // {rendition, url} while playing

  function stop() {
    clearTimeout(retry);
    generation += 1;
    starting = false;
    const current = handle;
    handle = null;
    playing = null;
    if (current) current.stop();
  }

  /**
   * @param {"audio" | "low" | "auto"} rendition
   * @param {number} [early] how many times the part had no master yet (its first seconds)
   */
  async function start(rendition = "auto", early = 0) {
    if (handle || starting || !options.canStart()) return;
    starting = true;
    const mine = ++generation;
    clearTimeout(retry);
    options.onConnecting();
    const part = await livePart(options.meetingId);
    if (mine !== generation) return;
    if (!part || !options.isLive()) {
      starting = false;
      if (options.isLive()) retry = setTimeout(() => start(rendition), 3000); // no playlist yet
      return;
    }
    if (rendition !== "auto" && early < 3 && !(part.renditions || {})[rendition]) {
      if (!/master\.m3u8(\?|$)/.test(part.hls)) {
        // the part's first seconds: its renditions come with the master, in a moment
        starting = false;
        retry = setTimeout(() => start(rendition, early + 1), 3000);
        return;
      }
    }
    const { url, pinLowest } = choosePlaylist(part, rendition);
    let started;
    try {
      started = await playHls(player, url, {
        pinLowest,
        onFatal() {
          if (handle !== started) return;
          stop();
          options.onError(t("error"));
        },
      });
    } catch {
      if (mine !== generation) return;
      starting = false;
      options.onError(t("no_webrtc"));
      return;
    }
    if (mine !== generation) {
      started.stop(); // stopped (or switched) while hls.js was loading
      return;
    }
    handle = started;
    starting = false;
    playing = { rendition, url };
    options.onPlaying();
  }

  // A live playlist that ends while the meeting goes on (a low rendition whose encoder
  // failed is ended and taken out of the master): start again on what the part offers now.
  player.addEventListener("ended", () => {
    if (!handle || !options.isLive()) return;
    const rendition = playing ? playing.rendition : "auto";
    stop();
    start(rendition);
  });

  return {
    start,
    stop,
    get active() {
      return Boolean(handle) || starting;
    },
    /** {rendition, url} of what plays now, or null */
    get playing() {
      return playing;
    },
    get handle() {
      return handle;
    },
  };
}

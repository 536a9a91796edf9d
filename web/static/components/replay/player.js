// The replay's video: one part of the recording at a time, from its MP4 once
// processed (HLS before, or where the MP4 will not play), seeking on the meeting's
// clock (seconds from part 1's first frame; part N starts `offset` seconds after it).
//
// document.body.dataset.state: "loading" | "none" | "ready" | "expired" | "error";
// document.body.dataset.source: "mp4" | "hls" | "" (what the player is playing).

import { $, el } from "../../lib/dom.js";
import { playHls } from "../../lib/hls-player.js";
import { t } from "../../lib/i18n.js";

/** Statuses whose MP4 is complete. */
export const FINISHED = new Set(["ready", "interrupted"]);

export function setPageState(state) {
  document.body.dataset.state = state;
}

/** The words over the video (a spinner while something is on its way). */
export function showOverlay(title, detail = "", busy = false) {
  $("replay-overlay").hidden = false;
  $("replay-overlay-title").textContent = title;
  const detailLine = $("replay-overlay-detail");
  detailLine.textContent = detail;
  detailLine.hidden = !detail;
  $("replay-spinner").hidden = !busy;
}

/** What to say for a part with nothing to play (or no part at all). */
export function describeNothing(part) {
  const status = part && part.status;
  if (status === "expired") {
    showOverlay(t("expired"));
    setPageState("expired");
  } else if (status === "recording" || status === "processing") {
    showOverlay(t(status === "recording" ? "live_no_recording" : "processing_blocked"), "", true);
    setPageState("loading");
  } else if (status === "failed") {
    showOverlay(t("failed", { reason: part.error || "?" }));
    setPageState("error");
  } else {
    showOverlay(t("no_recording"));
    setPageState("none");
  }
}

function cannotPlay() {
  showOverlay(t("cannot_play"));
  setPageState("error");
}

/** @param {object} options onSync() when the position may have changed; onReady() when a part plays */
export function createReplayPlayer(options) {
  const player = $("replay-player");
  const partsBox = $("replay-parts");
  let parts = []; // playable parts (those with an offset), in order
  let current = null; // the part in the player
  let source = ""; // "mp4" | "hls" | ""
  let hls = null; // hls-player.js's handle, while HLS plays
  const mp4Failed = new Set(); // parts whose MP4 would not play here: use HLS

  /** The playback position on the meeting's clock. */
  function globalNow() {
    if (!current) return 0;
    return (current.offset || 0) + (player.currentTime || 0);
  }

  function partLength(part) {
    const known = Number.isFinite(player.duration) && player.duration > 0;
    return part === current && known ? player.duration : part.duration || 0;
  }

  /** The part holding moment `at` and the position in it. */
  function locate(at) {
    const moment = Math.max(0, at);
    let part = parts[0];
    for (const p of parts) if (p.offset <= moment) part = p;
    const length = partLength(part);
    let local = Math.max(0, moment - part.offset);
    if (length > 0) local = Math.min(local, Math.max(0, length - 0.1));
    return { part, local };
  }

  /** What the part can be played from here: "mp4", "hls" or "" (nothing). */
  function sourceFor(part) {
    if (part.mp4 && FINISHED.has(part.status) && !mp4Failed.has(part.part)) return "mp4";
    if (part.hls) return "hls";
    return "";
  }

  function destroyHls() {
    if (hls) {
      hls.stop();
      hls = null;
    }
  }

  function renderParts() {
    partsBox.replaceChildren();
    partsBox.hidden = parts.length < 2;
    for (const part of parts) {
      const b = el("button", "button small part-button", t("part", { n: part.part }));
      b.type = "button";
      b.setAttribute("aria-pressed", String(part === current));
      b.addEventListener("click", () => {
        if (part !== current) load(part, 0, true);
      });
      partsBox.append(b);
    }
  }

  /** Play `part` over HLS from `at`; false if it could not start (or another was chosen). */
  async function loadHls(part, at, play, start) {
    let handle;
    try {
      handle = await playHls(player, part.hls, { live: false, startPosition: at, onFatal: cannotPlay });
    } catch {
      if (current === part) cannotPlay();
      return false;
    }
    if (current !== part) {
      handle.stop(); // another part was chosen meanwhile
      return false;
    }
    hls = handle;
    const started = () => {
      if (play) player.play().catch(() => {});
      options.onSync();
    };
    player.addEventListener("loadedmetadata", handle.kind === "native" ? start : started, {
      once: true,
    });
    return true;
  }

  async function load(part, at = 0, play = false) {
    const kind = sourceFor(part);
    current = part;
    renderParts();
    destroyHls();
    source = "";
    document.body.dataset.source = "";
    if (!kind) {
      player.removeAttribute("src");
      player.load();
      describeNothing(part);
      return;
    }
    $("replay-overlay").hidden = true;
    const start = () => {
      if (at > 0) player.currentTime = at;
      if (play) player.play().catch(() => {});
      options.onSync();
    };
    if (kind === "mp4") {
      player.addEventListener("loadedmetadata", start, { once: true });
      player.src = part.mp4;
    } else if (!(await loadHls(part, at, play, start))) {
      return;
    }
    source = kind;
    document.body.dataset.source = source;
    setPageState("ready");
    options.onReady();
  }

  /** Seek to a moment of the meeting (switching part if need be), and play if asked. */
  function seekTo(at, play = true) {
    if (!parts.length) return;
    const { part, local } = locate(at);
    if (part !== current || !source) {
      load(part, local, play);
      return;
    }
    player.currentTime = local;
    if (play) player.play().catch(() => {});
    options.onSync();
  }

  /**
   * New parts from the recording: keep the current one, with a better file if there is
   * one now (same moment, same play state). Returns "none" (nothing to play),
   * "first" (nothing in the player yet: the page chooses where to start) or "kept".
   */
  function update(playable) {
    parts = playable;
    if (!parts.length) {
      current = null;
      return "none";
    }
    if (!current) return "first";
    current = parts.find((p) => p.part === current.part) || parts[0];
    renderParts();
    if (sourceFor(current) !== source) {
      // processed meanwhile (or expired)
      load(current, player.currentTime || 0, !player.paused && !player.ended);
    }
    return "kept";
  }

  player.addEventListener("error", () => {
    // An MP4 this browser cannot decode: the HLS files may still play.
    if (source === "mp4" && current && current.hls && !mp4Failed.has(current.part)) {
      mp4Failed.add(current.part);
      load(current, player.currentTime || 0, !player.paused);
      return;
    }
    if (source) cannotPlay();
  });
  for (const name of ["timeupdate", "seeked", "seeking", "loadedmetadata"]) {
    player.addEventListener(name, options.onSync);
  }

  return {
    load,
    locate,
    seekTo,
    update,
    globalNow,
    get current() {
      return current;
    },
    get parts() {
      return parts;
    },
  };
}

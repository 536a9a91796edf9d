// The watch page's words over the video: waiting, connecting, ended, cancelled…,
// the status line below it (one line: what plays and why), the box shown instead of
// the picture in audio only, and the big "tap for sound" button.

import { $ } from "../../lib/dom.js";
import { t } from "../../lib/i18n.js";

/** The status line while playing: what plays, and why (view.mode, view.modeReason). */
export function playingLine(view) {
  if (view.mode === "hls") {
    if (view.rendition === "audio") return t("hls_audio");
    return view.modeReason === "save-data" ? t("save_low") : t("hls_mode");
  }
  if (view.mode === "audio") {
    if (view.modeReason === "save-data") return t("save_audio");
    if (view.modeReason === "weak-link") return view.guessed ? t("slow_audio") : t("weak_audio");
    return t("live_audio");
  }
  return view.publishing ? t("playing") : t("no_video");
}

/** Title, detail and spinner for a state of the page (see pages/watch.js). */
function describe(view) {
  switch (view.state) {
    case "waiting":
      return { title: t("waiting") };
    case "connecting":
      return { title: view.reconnecting ? t("reconnecting") : t("connecting"), busy: true };
    case "playing":
      // sound only: the audio box says so (a picture-less "waiting for video" would mislead)
      return view.publishing || view.audio ? { hidden: true } : { title: t("no_video"), busy: true };
    case "ended":
      return { title: t("ended"), detail: t("ended_detail") };
    case "cancelled":
      return { title: t("cancelled"), detail: view.cancelReason }; // the committee's words, as text
    case "forbidden":
      return { title: t("forbidden") };
    default:
      return { title: t("error"), detail: view.lastError };
  }
}

export function createOverlay() {
  const overlay = $("player-overlay");
  const playButton = $("play-button");
  const statusLine = $("watch-status");

  function showPlayButton(label) {
    $("play-button-label").textContent = label;
    playButton.hidden = false;
  }

  function hidePlayButton() {
    playButton.hidden = true;
  }

  /**
   * @param {object} view state, status, publishing, reconnecting, lastError, cancelReason;
   *   mode ("video" | "audio" | "hls"), modeReason, rendition (HLS), guessed (audio only
   *   on the page's first guess), audio (sound only now), floorName (who holds the floor)
   */
  function render(view) {
    const { title = "", detail = "", busy = false, hidden = false } = describe(view);
    const state = view.state;
    overlay.hidden = hidden;
    overlay.classList.toggle("translucent", state === "playing");
    $("spinner").hidden = !busy;
    $("overlay-title").textContent = title;
    $("waiting-detail").hidden = state !== "waiting";
    const detailLine = $("overlay-detail");
    detailLine.textContent = detail;
    detailLine.hidden = !detail;
    $("retry-button").hidden = state !== "error";
    // The overlay already says it; the line below the video then only speaks to screen readers.
    statusLine.textContent = state === "playing" ? playingLine(view) : title;
    statusLine.classList.toggle("visually-hidden", !hidden);
    statusLine.dataset.state = state;
    statusLine.dataset.reason = view.modeReason || ""; // "weak-link": the banner's colour
    if (state !== "playing") hidePlayButton();
    // sound only: say so in the video box, with who speaks, instead of a black box
    const audioBox = $("audio-box");
    audioBox.hidden = !(state === "playing" && view.audio);
    const speaker = $("audio-speaker");
    speaker.textContent = view.floorName ? t("speaking", { name: view.floorName }) : "";
    speaker.hidden = !view.floorName;
    $("viewers-line").hidden = !(view.status === "live" && state !== "ended");
  }

  return { render, showPlayButton, hidePlayButton, playButton };
}

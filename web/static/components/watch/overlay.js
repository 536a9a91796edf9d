// The watch page's words over the video: waiting, connecting, ended, cancelled…,
// the status line below it, and the big "tap for sound" button.

import { $ } from "../../lib/dom.js";
import { t } from "../../lib/i18n.js";

/** Title, detail and spinner for a state of the page (see pages/watch.js). */
function describe(view) {
  switch (view.state) {
    case "waiting":
      return { title: t("waiting") };
    case "connecting":
      return { title: view.reconnecting ? t("reconnecting") : t("connecting"), busy: true };
    case "playing":
      return view.publishing ? { hidden: true } : { title: t("no_video"), busy: true };
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

  /** @param {object} view state, status, publishing, reconnecting, lastError, cancelReason */
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
    statusLine.textContent = state === "playing" && view.publishing ? t("playing") : title;
    statusLine.classList.toggle("visually-hidden", !hidden);
    statusLine.dataset.state = state;
    if (state !== "playing") hidePlayButton();
    $("viewers-line").hidden = !(view.status === "live" && state !== "ended");
  }

  return { render, showPlayButton, hidePlayButton, playButton };
}

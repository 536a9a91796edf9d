// The watch page's two choices, remembered on the phone (localStorage):
//   "只听声音" (audio only): the meeting's sound and the floor speaker's voice over
//       WebRTC, with no video asked for at all;
//   "省流量" (save data): with audio only, the same; otherwise HLS pinned to the low
//       (~360p) picture.
// Also the page's first guess at the link, before any media: its own load
// (Navigation and Resource Timing), the browser's Save-Data / effective type, and
// whether the last visit ended in audio only because the link was weak.

import { $ } from "../../lib/dom.js";

const AUDIO_KEY = "cunhui.audioOnly";
const SAVE_DATA_KEY = "cunhui.saveData";
/** "weak" while the link last forced audio only on this phone */
const LAST_KEY = "cunhui.lastLink";

/** Below this the page's own files came too slowly for the picture (kbit/s). */
export const SLOW_LOAD_KBPS = 700;
function read(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

function write(key, value) {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch {
    // private mode: not remembered
  }
}

/** Files smaller than this (or cached) arrive too fast to time. */
const MIN_TIMED_BYTES = 6000;

/**
 * How fast the page's own files arrived, in kbit/s, or null when none of them came
 * over the network big enough to time (a cached visit). Each file is timed from
 * its first byte to its last (latency, the server's think time and the modules'
 * waterfall left out), and the fastest counts: files loading side by side share
 * the link, but none arrives faster than the link.
 */
export function pageLoadKbps() {
  const entries = [
    ...performance.getEntriesByType("navigation"),
    ...performance.getEntriesByType("resource"),
  ].filter(
    (e) =>
      e.transferSize >= MIN_TIMED_BYTES &&
      e.responseStart > 0 &&
      e.name.startsWith(location.origin) &&
      e.initiatorType !== "fetch" &&
      e.initiatorType !== "xmlhttprequest",
  );
  let best = null;
  for (const entry of entries) {
    const ms = Math.max(1, entry.responseEnd - entry.responseStart);
    const kbps = Math.round((entry.transferSize * 8) / ms); // bits per ms = kbit/s
    best = best === null ? kbps : Math.max(best, kbps);
  }
  return best;
}

/**
 * The page's guess before any media: "browser-save-data" (the browser asks to save
 * data), "slow" (2G, or the page itself loaded slowly), "last-weak" (the last visit
 * ended in audio only because of the link), or "" (nothing against the picture).
 */
export function linkGuess() {
  // (tests of the statistics alone turn the guess off: localStorage cunhui.linkGuess = "off")
  if (read("cunhui.linkGuess") === "off") return "";
  const connection = navigator.connection;
  if (connection && connection.saveData) return "browser-save-data";
  if (connection && /(^|-)2g$/.test(connection.effectiveType || "")) return "slow";
  const kbps = pageLoadKbps();
  document.body.dataset.loadKbps = kbps === null ? "" : String(kbps);
  if (kbps !== null && kbps < SLOW_LOAD_KBPS) return "slow";
  if (read(LAST_KEY) === "weak") return "last-weak";
  return "";
}

/** Remember (or forget) that the link forced audio only, for the next visit. */
export function rememberWeakLink(weak) {
  write(LAST_KEY, weak ? "weak" : null);
}

/**
 * The two buttons. onChange() after the viewer pressed one.
 * @returns {{audioOnly: boolean, saveData: boolean, show(audioNow: boolean): void}}
 */
export function createModeButtons({ onChange }) {
  const audioButton = $("audio-only");
  const saveButton = $("save-data");
  const choices = {
    audioOnly: read(AUDIO_KEY) === "1",
    saveData: read(SAVE_DATA_KEY) === "1",
    /** @param {boolean} audioNow the page plays sound only now (chosen or not) */
    show(audioNow) {
      audioButton.setAttribute("aria-pressed", String(audioNow));
      saveButton.setAttribute("aria-pressed", String(choices.saveData));
    },
  };

  audioButton.addEventListener("click", () => {
    // the button shows what plays: pressed in audio only, whoever chose it
    choices.audioOnly = audioButton.getAttribute("aria-pressed") !== "true";
    write(AUDIO_KEY, choices.audioOnly ? "1" : "0");
    onChange("audio");
  });
  saveButton.addEventListener("click", () => {
    choices.saveData = !choices.saveData;
    write(SAVE_DATA_KEY, choices.saveData ? "1" : "0");
    onChange("save-data");
  });
  return choices;
}

// Live HLS on the watch page, instead of WebRTC when the browser has none, when WebRTC
// cannot connect, or when the viewer turns on "save data" (a few seconds behind, but
// plain HTTP files any cache or CDN can serve).

import { getJSON } from "../../lib/api.js";
import { $ } from "../../lib/dom.js";
import { playHls } from "../../lib/hls-player.js";
import { t } from "../../lib/i18n.js";

const SAVE_DATA_KEY = "cunhui.saveData";

/** The playlist of the part being recorded now, or null (not recording yet). */
async function livePlaylist(meetingId) {
  try {
    const recording = await getJSON(
      `/api/meetings/${encodeURIComponent(meetingId)}/recording?if_none=empty`,
    );
    const parts = (recording && recording.parts) || [];
    const live = parts.filter((p) => p.status === "recording" && p.hls);
    return live.length ? live[live.length - 1].hls : null;
  } catch {
    return null;
  }
}

/**
 * @param {object} options meetingId; player (the <video>); isLive() the meeting is live;
 *                         canStart() the page may start playing; onConnecting();
 *                         onError(message); onPlaying() once the picture is there;
 *                         onSaveDataChange() the viewer switched "save data"
 */
export function createLiveHls(options) {
  const player = options.player;
  const saveDataButton = $("save-data");
  let handle = null;
  let starting = false;
  let retry = null;
  let saveData = localStorage.getItem(SAVE_DATA_KEY) === "1";

  function showMode() {
    if (saveDataButton) {
      saveDataButton.setAttribute("aria-pressed", String(saveData));
      saveDataButton.classList.toggle("active", saveData);
    }
    const modeLine = $("play-mode");
    if (modeLine) {
      modeLine.textContent = handle ? t("hls_mode") : "";
      modeLine.hidden = !handle;
    }
  }

  function stop() {
    clearTimeout(retry);
    const current = handle;
    handle = null;
    if (current) current.stop();
    showMode();
  }

  async function start() {
    if (handle || starting || !options.canStart()) return;
    starting = true;
    clearTimeout(retry);
    options.onConnecting();
    const url = await livePlaylist(options.meetingId);
    if (!url || !options.isLive()) {
      starting = false;
      if (options.isLive()) retry = setTimeout(start, 3000); // no picture yet
      return;
    }
    try {
      handle = await playHls(player, url, {
        onFatal() {
          stop();
          options.onError(t("error"));
        },
      });
    } catch {
      starting = false;
      options.onError(t("no_webrtc"));
      return;
    }
    starting = false;
    showMode();
    options.onPlaying();
  }

  saveDataButton?.addEventListener("click", () => {
    saveData = !saveData;
    localStorage.setItem(SAVE_DATA_KEY, saveData ? "1" : "0");
    showMode();
    options.onSaveDataChange();
  });
  showMode();

  return {
    start,
    stop,
    get active() {
      return Boolean(handle);
    },
    get saveData() {
      return saveData;
    },
  };
}

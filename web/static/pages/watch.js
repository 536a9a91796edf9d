// Watch a meeting: WHEP playback, one big button when the browser blocks sound,
// waiting for the start over socket.io, reconnecting after network drops; live HLS
// instead of WebRTC where that cannot play (components/watch/live-hls.js).
//
// document.body.dataset.state is one of
// "waiting" | "connecting" | "playing" | "ended" | "cancelled" | "forbidden" | "error".

import { getJSON } from "../lib/api.js";
import { $, pageData } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { play } from "../lib/whep.js";
import { showMeetingBadge } from "../components/badges.js";
import { joinLiveRoom } from "../components/live-room.js";
import { createLiveHls } from "../components/watch/live-hls.js";
import { createOverlay } from "../components/watch/overlay.js";
import { watchForStalls } from "../components/watch/stall-watch.js";

const meeting = pageData("meeting-data");
const meetingId = meeting.id;
const player = $("player");
const floorAudio = $("floor-audio"); // the floor speaker's voice arrives on its own track
const overlay = createOverlay();

let status = meeting.status; // scheduled | live | ended | cancelled
let cancelReason = meeting.cancel_reason || "";
let publishing = Boolean(meeting.publishing);
let viewer = null;
let state = document.body.dataset.state;
let reconnecting = false;
let lastError = "";

const hls = createLiveHls({
  meetingId,
  player,
  isLive: () => status === "live",
  canStart: () => state !== "ended" && state !== "forbidden",
  onConnecting: () => setState("connecting"),
  onError(message) {
    lastError = message;
    setState("error");
  },
  onPlaying: () => tryPlay(),
  onSaveDataChange() {
    if (status !== "live") return;
    stopPlaying();
    setState("waiting");
    startPlaying();
  },
});

// ---------------------------------------------------------------- UI

function setState(next) {
  state = next;
  document.body.dataset.state = next;
  render();
}

function render() {
  overlay.render({ state, status, publishing, reconnecting, lastError, cancelReason });
}

// ---------------------------------------------------------------- playback

async function tryPlay() {
  player.muted = false;
  try {
    await player.play();
    overlay.hidePlayButton();
    return;
  } catch (error) {
    if (error.name !== "NotAllowedError") return; // e.g. AbortError: a newer stream took over
  }
  // Sound may not start by itself: play without sound and offer one big button.
  player.muted = true;
  try {
    await player.play();
    overlay.showPlayButton(t("tap_for_sound"));
  } catch {
    overlay.showPlayButton(t("tap_to_play"));
  }
}

overlay.playButton.addEventListener("click", () => {
  // Inside the tap itself, so the browser allows sound.
  player.muted = false;
  if (floorAudio.srcObject) floorAudio.play().catch(() => {});
  const started = player.play();
  overlay.hidePlayButton();
  started?.catch?.(() => overlay.showPlayButton(t("tap_to_play")));
});

player.addEventListener("pause", () => {
  // Some phones pause the video (a call, the screen locked): offer to go on.
  if (state === "playing" && player.srcObject && document.visibilityState === "visible") {
    overlay.showPlayButton(t("tap_to_play"));
  }
});

player.addEventListener("playing", () => {
  if (hls.active && state === "connecting") setState("playing");
});

function playFloor(track) {
  floorAudio.srcObject = new MediaStream([track]);
  floorAudio.play().catch(() => {
    // no sound allowed yet: the big "tap for sound" button plays it too
  });
}

function onViewerState(viewerState, error) {
  switch (viewerState) {
    case "connecting":
      reconnecting = false;
      setState("connecting");
      break;
    case "connected":
      reconnecting = false;
      setState("playing");
      if (player.srcObject && player.paused) tryPlay();
      break;
    case "reconnecting":
      reconnecting = true;
      if (state !== "ended") setState("connecting");
      break;
    case "failed":
      viewer = null;
      onViewerFailed(error);
      break;
    default:
      break;
  }
}

async function onViewerFailed(error) {
  const httpStatus = error && error.status;
  if (httpStatus === 401 || httpStatus === 403) {
    setState("forbidden");
    return;
  }
  lastError = (error && error.message) || "";
  if (httpStatus === 409 || httpStatus === 404) {
    // Not live: not started yet, or already over.
    await refreshStatus();
    if (status === "ended") showEnded();
    else setState(status === "live" ? "error" : "waiting");
    return;
  }
  if (status === "live" && !hls.active) {
    // WebRTC could not get through (a firewall, an in-app browser): live HLS instead
    hls.start();
    return;
  }
  setState("error");
}

function startPlaying() {
  if (viewer || hls.active || state === "ended" || state === "forbidden") return;
  if (hls.saveData || !("RTCPeerConnection" in window)) {
    hls.start();
    return;
  }
  reconnecting = false;
  setState("connecting");
  viewer = play(`/whep/${encodeURIComponent(meetingId)}`, {
    floor: true,
    onFloorTrack: playFloor,
    onState: onViewerState,
    onStream(stream) {
      player.srcObject = stream;
      tryPlay();
    },
  });
}

/** @param {object} [how] closedByServer: the meeting ended, and the server closed our session */
function stopPlaying(how) {
  const current = viewer;
  viewer = null;
  if (current) current.stop(how);
  hls.stop();
  player.pause();
  player.srcObject = null;
}

// ---------------------------------------------------------------- the meeting's status

function showEnded() {
  status = "ended";
  stopPlaying({ closedByServer: true });
  const replayLink = $("replay-link");
  if (replayLink) replayLink.hidden = false; // the recording is being prepared
  showMeetingBadge($("meeting-badge"), status);
  setState("ended");
}

function showCancelled(reason) {
  status = "cancelled";
  if (typeof reason === "string" && reason) cancelReason = reason;
  stopPlaying({ closedByServer: true });
  setState("cancelled");
}

function applyStatus(next, reason) {
  if (next === "cancelled") {
    if (state !== "cancelled") showCancelled(reason);
  } else if (next === "ended") {
    if (state !== "ended") showEnded();
  } else if (next === "live") {
    const changed = status !== "live";
    status = "live";
    if (changed) showMeetingBadge($("meeting-badge"), status);
    if (state === "waiting" || (state === "error" && !viewer)) startPlaying();
  }
}

async function refreshStatus() {
  try {
    const fresh = await getJSON(`/api/meetings/${encodeURIComponent(meetingId)}`);
    if (fresh && fresh.status) {
      status = fresh.status;
      if (typeof fresh.publishing === "boolean") publishing = fresh.publishing;
    }
  } catch {
    // keep what we know
  }
}

const retryButton = $("retry-button");
retryButton.addEventListener("click", async () => {
  retryButton.disabled = true;
  await refreshStatus();
  retryButton.disabled = false;
  if (status === "ended") showEnded();
  else if (status === "live") startPlaying();
  else setState("waiting");
});

// ---------------------------------------------------------------- realtime

function showViewers(n) {
  if (typeof n !== "number" || !Number.isFinite(n)) return;
  $("viewers-text").textContent = t("viewers", { n });
}

const { room } = joinLiveRoom(meeting, {
  isHost: false,
  onFloorChange(floor, mine) {
    floorAudio.muted = mine; // the speaker does not hear themself
  },
  onJoin(ack) {
    const live = ack.state || {};
    if (typeof live.publishing === "boolean") publishing = live.publishing;
    showViewers(live.viewers);
    const serverStatus = live.meeting && live.meeting.status;
    if (serverStatus) applyStatus(serverStatus);
    render();
  },
  onPresence(presence) {
    showViewers(presence.viewers);
    if (typeof presence.publishing === "boolean" && presence.publishing !== publishing) {
      publishing = presence.publishing;
      if (publishing && viewer && player.srcObject && player.paused) tryPlay();
    }
    render();
  },
  onStatus(event) {
    applyStatus(event.status, event.reason);
  },
});

watchForStalls(
  () => viewer,
  () => state === "playing" && publishing,
);

// If socket.io cannot get through (some in-app browsers, proxies), look now and then.
setInterval(async () => {
  if (state !== "waiting" || document.visibilityState !== "visible") return;
  await refreshStatus();
  applyStatus(status);
}, 30000);

// ---------------------------------------------------------------- page life

window.addEventListener("pagehide", () => {
  room.stop(); // the floor speaker's microphone, if any
  if (viewer) viewer.stop(); // DELETE the WHEP session (keepalive)
  viewer = null;
});
window.addEventListener("pageshow", (event) => {
  if (event.persisted && status === "live" && state !== "ended") {
    setState("waiting");
    startPlaying();
  }
});

render();
if (state === "connecting" || status === "live") startPlaying();

// Watch a meeting: WHEP playback, one big button when the browser blocks sound,
// waiting for the start over socket.io, reconnecting after network drops.
// Live HLS instead of WebRTC when the browser has no WebRTC, when WebRTC cannot
// connect, or when the viewer turns on "save data" (a few seconds behind, but
// plain HTTP files any cache or CDN can serve).
//
// document.body.dataset.state is one of
// "waiting" | "connecting" | "playing" | "ended" | "cancelled" | "forbidden" | "error".

import { getJSON } from "./api.js";
import { playHls } from "./hls-player.js";
import { t } from "./i18n.js";
import { joinMeeting } from "./realtime.js";
import { createRoom } from "./room.js";
import { createSuggestions } from "./suggestions.js";
import { createVotes } from "./votes.js";
import { play } from "./whep.js";

const meeting = JSON.parse(document.getElementById("meeting-data").textContent);
const meetingId = meeting.id;

const $ = (id) => document.getElementById(id);
const player = $("player");
const overlay = $("player-overlay");
const spinner = $("spinner");
const overlayTitle = $("overlay-title");
const waitingDetail = $("waiting-detail");
const overlayDetail = $("overlay-detail");
const retryButton = $("retry-button");
const playButton = $("play-button");
const playLabel = $("play-button-label");
const statusLine = $("watch-status");
const viewersLine = $("viewers-line");
const viewersText = $("viewers-text");
const badgeSlot = $("meeting-badge");

let status = meeting.status; // scheduled | live | ended | cancelled
let cancelReason = meeting.cancel_reason || "";
let publishing = Boolean(meeting.publishing);
let viewer = null;
let state = document.body.dataset.state;
let reconnecting = false;
let lastError = "";
// Live HLS (hls-player.js), when it plays instead of WebRTC
let hlsPlayer = null;
let hlsStarting = false;
let hlsRetry = null;
const SAVE_DATA_KEY = "cunhui.saveData";
let saveData = localStorage.getItem(SAVE_DATA_KEY) === "1";
const saveDataButton = $("save-data");
const modeLine = $("play-mode");

// The floor speaker's voice arrives on its own track; the speaker does not hear themself.
const floorAudio = $("floor-audio");
const room = createRoom({
  meetingId,
  meeting,
  isHost: false,
  onFloorChange(floor, mine) {
    floorAudio.muted = mine;
  },
});

const ballots = createVotes({ meetingId, isHost: false });
const notes = createSuggestions({ meetingId, isHost: false, agenda: meeting.agenda });

function playFloor(track) {
  floorAudio.srcObject = new MediaStream([track]);
  floorAudio.play().catch(() => {
    // no sound allowed yet: the big "tap for sound" button plays it too
  });
}

// ---------------------------------------------------------------- UI

function setState(next) {
  state = next;
  document.body.dataset.state = next;
  render();
}

function render() {
  let title = "";
  let detail = "";
  let busy = false;
  let showOverlay = true;
  switch (state) {
    case "waiting":
      title = t("waiting");
      break;
    case "connecting":
      title = reconnecting ? t("reconnecting") : t("connecting");
      busy = true;
      break;
    case "playing":
      if (!publishing) {
        title = t("no_video");
        busy = true;
      } else {
        showOverlay = false;
      }
      break;
    case "ended":
      title = t("ended");
      detail = t("ended_detail");
      break;
    case "cancelled":
      title = t("cancelled");
      detail = cancelReason; // the committee's own words, shown as text
      break;
    case "forbidden":
      title = t("forbidden");
      break;
    default:
      title = t("error");
      detail = lastError;
  }
  overlay.hidden = !showOverlay;
  overlay.classList.toggle("translucent", state === "playing");
  spinner.hidden = !busy;
  overlayTitle.textContent = title;
  waitingDetail.hidden = state !== "waiting";
  overlayDetail.textContent = detail;
  overlayDetail.hidden = !detail;
  retryButton.hidden = state !== "error";
  // The overlay already says it; the line below the video then only speaks to screen readers.
  statusLine.textContent = state === "playing" && publishing ? t("playing") : title;
  statusLine.classList.toggle("visually-hidden", showOverlay);
  statusLine.dataset.state = state;
  if (state !== "playing") hidePlayButton();
  viewersLine.hidden = !(status === "live" && state !== "ended");
}

function updateBadge() {
  const label = { live: t("badge_live"), ended: t("badge_ended") }[status];
  if (!label) return;
  const badge = document.createElement("span");
  badge.className = `badge badge-${status}`;
  if (status === "live") {
    const dot = document.createElement("span");
    dot.className = "dot";
    dot.setAttribute("aria-hidden", "true");
    badge.append(dot);
  }
  badge.append(label);
  badgeSlot.replaceChildren(badge);
}

function showPlayButton(label) {
  playLabel.textContent = label;
  playButton.hidden = false;
}

function hidePlayButton() {
  playButton.hidden = true;
}

// ---------------------------------------------------------------- playback

async function tryPlay() {
  player.muted = false;
  try {
    await player.play();
    hidePlayButton();
    return;
  } catch (error) {
    if (error.name !== "NotAllowedError") return; // e.g. AbortError: a newer stream took over
  }
  // Sound may not start by itself: play without sound and offer one big button.
  player.muted = true;
  try {
    await player.play();
    showPlayButton(t("tap_for_sound"));
  } catch {
    showPlayButton(t("tap_to_play"));
  }
}

playButton.addEventListener("click", () => {
  // Inside the tap itself, so the browser allows sound.
  player.muted = false;
  if (floorAudio.srcObject) floorAudio.play().catch(() => {});
  const started = player.play();
  hidePlayButton();
  if (started && started.catch) {
    started.catch(() => {
      showPlayButton(t("tap_to_play"));
    });
  }
});

player.addEventListener("pause", () => {
  // Some phones pause the video (a call, the screen locked): offer to go on.
  if (state === "playing" && player.srcObject && document.visibilityState === "visible") {
    showPlayButton(t("tap_to_play"));
  }
});

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
  if (httpStatus === 409 || httpStatus === 404) {
    // Not live: not started yet, or already over.
    await refreshStatus();
    if (status === "ended") showEnded();
    else if (status === "live") {
      lastError = (error && error.message) || "";
      setState("error");
    } else setState("waiting");
    return;
  }
  lastError = (error && error.message) || "";
  if (status === "live" && !hlsPlayer) {
    // WebRTC could not get through (a firewall, an in-app browser): live HLS instead
    startHls();
    return;
  }
  setState("error");
}

function startPlaying() {
  if (viewer || hlsPlayer || state === "ended" || state === "forbidden") return;
  if (saveData || !("RTCPeerConnection" in window)) {
    startHls();
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

function stopPlaying() {
  const current = viewer;
  viewer = null;
  if (current) current.stop();
  stopHls();
  player.pause();
  player.srcObject = null;
}

// ---------------------------------------------------------------- live HLS

/** The playlist of the part being recorded now, or null (not recording yet). */
async function livePlaylist() {
  try {
    const recording = await getJSON(`/api/meetings/${encodeURIComponent(meetingId)}/recording`);
    const parts = (recording && recording.parts) || [];
    const live = parts.filter((p) => p.status === "recording" && p.hls);
    return live.length ? live[live.length - 1].hls : null;
  } catch {
    return null;
  }
}

async function startHls() {
  if (hlsPlayer || hlsStarting || state === "ended" || state === "forbidden") return;
  hlsStarting = true;
  clearTimeout(hlsRetry);
  setState("connecting");
  const url = await livePlaylist();
  if (!url || status !== "live") {
    hlsStarting = false;
    if (status === "live") hlsRetry = setTimeout(startHls, 3000); // no picture yet
    return;
  }
  try {
    hlsPlayer = await playHls(player, url, {
      onFatal() {
        stopHls();
        lastError = t("error");
        setState("error");
      },
    });
  } catch {
    hlsStarting = false;
    lastError = t("no_webrtc");
    setState("error");
    return;
  }
  hlsStarting = false;
  showMode();
  tryPlay();
}

function stopHls() {
  clearTimeout(hlsRetry);
  const current = hlsPlayer;
  hlsPlayer = null;
  if (current) current.stop();
  showMode();
}

player.addEventListener("playing", () => {
  if (hlsPlayer && state === "connecting") setState("playing");
});

function showMode() {
  if (saveDataButton) {
    saveDataButton.setAttribute("aria-pressed", String(saveData));
    saveDataButton.classList.toggle("active", saveData);
  }
  if (modeLine) {
    modeLine.textContent = hlsPlayer ? t("hls_mode") : "";
    modeLine.hidden = !hlsPlayer;
  }
}

if (saveDataButton) {
  saveDataButton.addEventListener("click", () => {
    saveData = !saveData;
    localStorage.setItem(SAVE_DATA_KEY, saveData ? "1" : "0");
    showMode();
    if (status !== "live") return;
    stopPlaying();
    setState("waiting");
    startPlaying();
  });
}
showMode();

function showEnded() {
  status = "ended";
  stopPlaying();
  const replayLink = $("replay-link");
  if (replayLink) replayLink.hidden = false; // the recording is being prepared
  updateBadge();
  setState("ended");
}

function showCancelled(reason) {
  status = "cancelled";
  if (typeof reason === "string" && reason) cancelReason = reason;
  stopPlaying();
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
    if (changed) updateBadge();
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
  viewersText.textContent = t("viewers", { n });
}

const realtime = joinMeeting(meetingId, {
  onJoin(ack) {
    room.onJoin(ack);
    ballots.onJoin(ack);
    notes.onJoin(ack);
    const live = ack.state || {};
    if (typeof live.publishing === "boolean") publishing = live.publishing;
    showViewers(live.viewers);
    const serverStatus = live.meeting && live.meeting.status;
    if (serverStatus) applyStatus(serverStatus);
    render();
  },
  onEvent(name, data) {
    room.onEvent(name, data);
    ballots.onEvent(name, data);
    notes.onEvent(name, data);
  },
  onVoteProgress: ballots.onProgress,
  onRevoked: room.onRevoked,
  onPresence(presence) {
    room.onPresence(presence);
    showViewers(presence.viewers);
    if (typeof presence.publishing === "boolean" && presence.publishing !== publishing) {
      publishing = presence.publishing;
      if (publishing && viewer && player.srcObject && player.paused) tryPlay();
    }
    render();
  },
  onStatus(event) {
    applyStatus(event.status, event.reason);
    room.onStatus(event.status);
  },
});
room.setRealtime(realtime);
ballots.setRealtime(realtime);

// A connection can look fine while nothing arrives (the server restarted, the
// network changed under us): if the host is sending but no media came for about
// 10 s, start over.
const STALL_CHECK_MS = 2500;
const STALL_CHECKS = 4;
let lastBytes = -1;
let stalledChecks = 0;

async function inboundBytes(pc) {
  let bytes = 0;
  const stats = await pc.getStats();
  stats.forEach((report) => {
    if (report.type === "inbound-rtp") bytes += report.bytesReceived || 0;
  });
  return bytes;
}

setInterval(async () => {
  const pc = viewer && viewer.pc;
  if (!pc || state !== "playing" || !publishing || pc.connectionState !== "connected") {
    stalledChecks = 0;
    lastBytes = -1;
    return;
  }
  let bytes;
  try {
    bytes = await inboundBytes(pc);
  } catch {
    return;
  }
  stalledChecks = bytes === lastBytes ? stalledChecks + 1 : 0;
  lastBytes = bytes;
  if (stalledChecks >= STALL_CHECKS && viewer) {
    stalledChecks = 0;
    lastBytes = -1;
    viewer.restart();
  }
}, STALL_CHECK_MS);

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

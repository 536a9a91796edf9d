// The committee's control page: camera preview, start/end, WHIP publishing with
// automatic re-publishing, viewer count over socket.io.
//
// document.body.dataset.state (and #status[data-state]) is one of
// "idle" | "starting" | "live" | "reconnecting" | "ended" | "error".

import { postJSON } from "./api.js";
import { t } from "./i18n.js";
import { joinMeeting } from "./realtime.js";
import { createRoom } from "./room.js";
import { createSuggestions } from "./suggestions.js";
import { createVotes } from "./votes.js";
import { play } from "./whep.js";
import { publish } from "./whip.js";
import { createRecordingStatus } from "./recording-status.js";

const meeting = JSON.parse(document.getElementById("meeting-data").textContent);
const meetingId = meeting.id;

const $ = (id) => document.getElementById(id);
const preview = $("preview");
const placeholder = $("preview-placeholder");
const switchButton = $("switch-camera");
const switchLabel = $("switch-camera-label");
const statusLine = $("status");
const statusDetail = $("status-detail");
const startButton = $("start-button");
const endButton = $("end-button");
const viewerCount = $("viewer-count");
const badgeSlot = $("meeting-badge");

let status = meeting.status; // the meeting on the server: scheduled | live | ended
let state = document.body.dataset.state || "idle";
let facingMode = "environment"; // the hall, not the clerk's face
let stream = null; // our audio + video tracks
let publisher = null;
let busy = false; // start/end in progress
let serverPublishing = Boolean(meeting.publishing); // the server has a publisher (maybe us)
let socketConnected = false;
let takenOver = false; // another device replaced this phone as the publisher
let republishTimer = null;
let wakeLock = null;

// ---------------------------------------------------------------- UI state

function setState(next, message, detail) {
  state = next;
  document.body.dataset.state = next;
  statusLine.dataset.state = next;
  statusLine.textContent = message;
  statusDetail.textContent = detail || "";
  statusDetail.hidden = !detail;
  updateButtons();
}

function idleMessage() {
  return status === "live" ? t("idle_live") : t("idle");
}

function updateButtons() {
  const sending = state === "starting" || state === "live" || state === "reconnecting";
  startButton.textContent = status === "live" ? t("resume") : t("start");
  startButton.disabled = busy || sending || status === "ended" || status === "cancelled";
  startButton.hidden = sending;
  endButton.disabled = busy || status !== "live";
  endButton.hidden = status === "ended";
}

function updateBadge() {
  const badge = document.createElement("span");
  const label = { live: t("badge_live"), ended: t("badge_ended") }[status];
  if (!label) return; // "scheduled" is already rendered by the server
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

function updateSwitchLabel() {
  // The button says where it switches to.
  switchLabel.textContent = facingMode === "user" ? t("back") : t("front");
  preview.classList.toggle("mirrored", facingMode === "user");
}

// ---------------------------------------------------------------- camera

function videoConstraints(mode, exact = false) {
  return {
    facingMode: exact ? { exact: mode } : mode,
    width: { ideal: 1280 },
    height: { ideal: 720 },
    frameRate: { ideal: 30 },
  };
}

const AUDIO_CONSTRAINTS = { echoCancellation: true, noiseSuppression: true };

function cameraErrorMessage(error) {
  if (!window.isSecureContext) return t("insecure");
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return t("no_webrtc");
  switch (error && error.name) {
    case "NotAllowedError":
    case "SecurityError":
    case "PermissionDeniedError":
      return t("camera_denied");
    case "NotFoundError":
    case "DevicesNotFoundError":
    case "OverconstrainedError":
      return t("camera_missing");
    case "NotReadableError":
    case "TrackStartError":
    case "AbortError":
      return t("camera_busy");
    default:
      return t("camera_failed");
  }
}

function showPreview() {
  const video = stream && stream.getVideoTracks()[0];
  preview.srcObject = video ? new MediaStream([video]) : null;
  placeholder.hidden = Boolean(video);
  if (video) preview.play().catch(() => {});
  updateSwitchLabel();
}

async function acquireStream() {
  if (stream) {
    if (stream.getTracks().every((track) => track.readyState === "live")) return stream;
    stopTracks(); // a camera or microphone went away: open both again
  }
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw Object.assign(new Error("getUserMedia is not available"), { name: "NotSupportedError" });
  }
  stream = await navigator.mediaDevices.getUserMedia({
    video: videoConstraints(facingMode),
    audio: AUDIO_CONSTRAINTS,
  });
  watchVideoTrack(stream.getVideoTracks()[0]);
  showPreview();
  refreshCameraCount();
  return stream;
}

function stopTracks() {
  if (stream) for (const track of stream.getTracks()) track.stop();
  stream = null;
  showPreview();
}

async function openCamera(mode) {
  // Try the exact camera first; a phone with one camera falls back to what it has.
  try {
    return await navigator.mediaDevices.getUserMedia({ video: videoConstraints(mode, true) });
  } catch (error) {
    if (error.name !== "OverconstrainedError" && error.name !== "NotFoundError") throw error;
    return navigator.mediaDevices.getUserMedia({ video: videoConstraints(mode) });
  }
}

async function useVideoTrack(track) {
  const old = stream.getVideoTracks()[0];
  if (old && old !== track) {
    stream.removeTrack(old);
    old.stop();
  }
  stream.addTrack(track);
  watchVideoTrack(track);
  showPreview();
  if (publisher) await publisher.replaceVideoTrack(track);
}

async function switchCamera() {
  const next = facingMode === "user" ? "environment" : "user";
  if (!stream) {
    facingMode = next;
    updateSwitchLabel();
    return;
  }
  switchButton.disabled = true;
  // Most phones cannot open two cameras at once: let go of the current one first.
  const old = stream.getVideoTracks()[0];
  if (old) old.stop();
  try {
    const camera = await openCamera(next);
    facingMode = next;
    await useVideoTrack(camera.getVideoTracks()[0]);
  } catch (error) {
    console.warn("switching the camera failed", error);
    try {
      const camera = await openCamera(facingMode);
      await useVideoTrack(camera.getVideoTracks()[0]);
    } catch (again) {
      console.warn("reopening the camera failed", again);
    }
    statusDetail.textContent = `${t("switch_failed")} ${cameraErrorMessage(error)}`;
    statusDetail.hidden = false;
  } finally {
    switchButton.disabled = false;
  }
}

function watchVideoTrack(track) {
  if (!track) return;
  // The camera can be taken away (another app, a phone call): reopen it while live.
  track.addEventListener("ended", async () => {
    if (!stream || !stream.getVideoTracks().includes(track) || !publisher) return;
    try {
      const camera = await openCamera(facingMode);
      await useVideoTrack(camera.getVideoTracks()[0]);
    } catch (error) {
      statusDetail.textContent = cameraErrorMessage(error);
      statusDetail.hidden = false;
    }
  });
}

async function refreshCameraCount() {
  try {
    const devices = await navigator.mediaDevices.enumerateDevices();
    const cameras = devices.filter((d) => d.kind === "videoinput").length;
    switchButton.hidden = cameras === 1;
  } catch {
    // keep the button
  }
}

// ---------------------------------------------------------------- wake lock

async function keepScreenOn() {
  if (!("wakeLock" in navigator) || wakeLock || document.visibilityState !== "visible") return;
  try {
    wakeLock = await navigator.wakeLock.request("screen");
    wakeLock.addEventListener("release", () => {
      wakeLock = null;
    });
  } catch {
    wakeLock = null;
  }
}

function letScreenSleep() {
  if (wakeLock) wakeLock.release().catch(() => {});
  wakeLock = null;
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && publisher) keepScreenOn();
});

// ---------------------------------------------------------------- publishing

function onPublishState(publishState, error) {
  if (!publisher && publishState !== "failed") return;
  switch (publishState) {
    case "connecting":
      setState("starting", t("starting"));
      break;
    case "connected":
      setState("live", t("live"));
      keepScreenOn();
      startFloorListener();
      break;
    case "reconnecting":
      setState("reconnecting", t("reconnecting"));
      break;
    case "failed": {
      publisher = null;
      letScreenSleep();
      if (error && error.code === "not_retried") {
        // Another phone or laptop is sending now: don't fight over the meeting.
        takenOver = true;
        stopTracks();
        setState("idle", t("taken_over"));
      } else if (error && error.status === 401) setState("error", t("login_again"), error.message);
      else if (error && error.status === 409) setState("error", t("publish_failed"), error.message);
      else setState("error", t("publish_failed"), error && error.message);
      break;
    }
    default:
      break;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** After a lost connection: start over, unless another device has taken over the meeting. */
async function shouldRepublish({ gone }) {
  if (!gone) return true; // the server still had us: the network failed
  await sleep(700); // let a "presence" about the closed session arrive
  return !(socketConnected && serverPublishing);
}

function startPublishing() {
  if (publisher) publisher.stop();
  takenOver = false;
  setState("starting", t("starting"));
  publisher = publish(`/whip/${encodeURIComponent(meetingId)}`, stream, {
    onState: onPublishState,
    shouldRetry: shouldRepublish,
  });
}

/**
 * The server says nobody is publishing while we think we are live (it restarted,
 * or it dropped our session before our browser noticed): publish again.
 */
function checkServerHasUs() {
  if (serverPublishing || !publisher || state !== "live") {
    clearTimeout(republishTimer);
    republishTimer = null;
    return;
  }
  if (republishTimer) return;
  republishTimer = setTimeout(() => {
    republishTimer = null;
    if (!serverPublishing && publisher && state === "live") publisher.restart();
  }, 3000);
}

async function start() {
  if (busy || status === "ended") return;
  busy = true;
  setState("starting", t("camera"));
  try {
    try {
      await acquireStream();
    } catch (error) {
      console.warn("getUserMedia failed", error);
      setState("error", cameraErrorMessage(error), error && error.message);
      return;
    }
    if (status !== "live") {
      setState("starting", t("starting"));
      try {
        const answer = await postJSON(`/api/meetings/${encodeURIComponent(meetingId)}/start`, {});
        status = answer.status || "live";
      } catch (error) {
        if (error.status === 401) setState("error", t("login_again"), error.message);
        else setState("error", t("start_failed"), error.message);
        return;
      }
      updateBadge();
    }
    startPublishing();
  } finally {
    busy = false;
    updateButtons();
  }
}

async function stopPublishing() {
  const current = publisher;
  publisher = null;
  letScreenSleep();
  stopFloorListener();
  if (current) await current.stop();
  stopTracks();
}

async function end() {
  if (busy || status !== "live") return;
  if (!window.confirm(t("confirm_end"))) return;
  busy = true;
  const previous = state;
  setState(previous, t("ending"));
  try {
    await stopPublishing();
    try {
      const answer = await postJSON(`/api/meetings/${encodeURIComponent(meetingId)}/end`, {});
      status = answer.status || "ended";
    } catch (error) {
      if (error.status === 401) setState("error", t("login_again"), error.message);
      else setState("error", t("end_failed"), error.message);
      return;
    }
    showEnded();
  } finally {
    busy = false;
    updateButtons();
  }
}

function showEnded() {
  status = "ended";
  updateBadge();
  setState("ended", t("ended"));
}

// ---------------------------------------------------------------- realtime

function showViewers(n) {
  if (typeof n === "number" && Number.isFinite(n)) viewerCount.textContent = String(n);
}

function refreshIdleMessage() {
  if (state !== "idle") return;
  if (takenOver && serverPublishing) setState("idle", t("taken_over"));
  else if (serverPublishing && status === "live") setState("idle", t("idle_other"));
  else setState("idle", idleMessage());
}

// ---------------------------------------------------------------- the floor in the hall

// While live, the host device plays the floor speaker's voice through its speaker,
// so the hall hears them (the browser's echo cancellation keeps it out of our mic).
const floorAudio = $("floor-audio");
const room = createRoom({ meetingId, isHost: true });
const ballots = createVotes({ meetingId, isHost: true });
const notes = createSuggestions({ meetingId, isHost: true, agenda: meeting.agenda });
let floorListener = null;

function startFloorListener() {
  if (floorListener) return;
  floorListener = play(`/whep/${encodeURIComponent(meetingId)}`, {
    floor: "only",
    onFloorTrack(track) {
      floorAudio.srcObject = new MediaStream([track]);
      floorAudio.play().catch(() => {});
    },
  });
}

function stopFloorListener() {
  const listener = floorListener;
  floorListener = null;
  if (listener) listener.stop();
  floorAudio.srcObject = null;
}

const recordingStatus = createRecordingStatus({
  meetingId, root: $("recording-line"), canRetry: true,
});
recordingStatus.load();

const realtime = joinMeeting(meetingId, {
  onConnectionChange(connected) {
    socketConnected = connected;
  },
  onRecording: recordingStatus.update,
  onEvent(name, data) {
    room.onEvent(name, data);
    ballots.onEvent(name, data);
    notes.onEvent(name, data);
  },
  onVoteProgress: ballots.onProgress,
  onRevoked: room.onRevoked,
  onJoin(ack) {
    room.onJoin(ack);
    ballots.onJoin(ack);
    notes.onJoin(ack);
    const live = ack.state || {};
    showViewers(live.viewers);
    serverPublishing = Boolean(live.publishing);
    checkServerHasUs();
    const serverStatus = live.meeting && live.meeting.status;
    if (serverStatus === "ended" && status !== "ended") {
      stopPublishing().then(showEnded);
    } else if (serverStatus === "live" && status !== "live") {
      status = "live";
      updateBadge();
      updateButtons();
    }
    refreshIdleMessage();
  },
  onPresence(presence) {
    room.onPresence(presence);
    showViewers(presence.viewers);
    if (typeof presence.publishing === "boolean") serverPublishing = presence.publishing;
    checkServerHasUs();
    refreshIdleMessage();
  },
  onStatus(event) {
    room.onStatus(event.status);
    if (event.status === "ended" && status !== "ended") {
      stopFloorListener();
      stopPublishing().then(showEnded);
    } else if (event.status === "live" && status !== "live") {
      status = "live";
      updateBadge();
      updateButtons();
      refreshIdleMessage();
    }
    // a meeting that started can no longer be edited or cancelled
    if (event.status !== "scheduled") $("schedule-card")?.remove();
  },
});
room.setRealtime(realtime);
ballots.setRealtime(realtime);

// ---------------------------------------------------------------- share

const copyButton = $("copy-button");
const joinUrl = $("join-url");
const copyStatus = $("copy-status");

copyButton.addEventListener("click", async () => {
  let copied = false;
  try {
    await navigator.clipboard.writeText(joinUrl.value);
    copied = true;
  } catch {
    joinUrl.focus();
    joinUrl.select();
    try {
      copied = document.execCommand("copy");
    } catch {
      copied = false;
    }
  }
  copyStatus.textContent = copied ? t("copied") : t("copy_failed");
});
joinUrl.addEventListener("focus", () => joinUrl.select());

// ---------------------------------------------------------------- wiring

// Cancelling a scheduled meeting, with the reason members are shown.
const cancelButton = document.getElementById("cancel-button");
cancelButton?.addEventListener("click", async () => {
  const reason = document.getElementById("cancel-reason");
  const error = document.getElementById("cancel-error");
  error.hidden = true;
  if (!reason.value.trim()) {
    error.textContent = t("cancel_reason_required");
    error.hidden = false;
    reason.focus();
    return;
  }
  if (!window.confirm(t("confirm_cancel"))) return;
  cancelButton.disabled = true;
  try {
    await postJSON(`/api/meetings/${encodeURIComponent(meetingId)}/cancel`, { reason: reason.value.trim() });
    window.location.reload();
  } catch (exc) {
    error.textContent = `${t("cancel_failed")} ${exc.message}`;
    error.hidden = false;
    cancelButton.disabled = false;
  }
});

startButton.addEventListener("click", start);
endButton.addEventListener("click", end);
switchButton.addEventListener("click", switchCamera);

window.addEventListener("pagehide", (event) => {
  if (event.persisted) return; // kept in the back/forward cache; handled on pageshow
  if (publisher) publisher.stop(); // DELETE with keepalive
  stopFloorListener();
  letScreenSleep();
});
window.addEventListener("pageshow", (event) => {
  if (event.persisted) window.location.reload();
});

// Open the camera right away if the browser already allows it, so the clerk can
// frame the picture before going live.
(async () => {
  updateSwitchLabel();
  if (status === "ended") {
    setState("ended", t("ended"));
    return;
  }
  if (status === "cancelled") return; // the page says so; nothing to start
  setState("idle", idleMessage());
  try {
    const permission = await navigator.permissions.query({ name: "camera" });
    if (permission.state === "granted" && !stream && state === "idle") await acquireStream();
  } catch {
    // no Permissions API for cameras (Safari, WeChat): the camera opens on "Start"
  }
})();

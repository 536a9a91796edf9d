// The committee's control page: camera preview, start/end, WHIP publishing with
// automatic re-publishing, viewer count over socket.io.
//
// document.body.dataset.state (and #status[data-state]) is one of
// "idle" | "starting" | "live" | "reconnecting" | "ended" | "error".

import { postJSON } from "../lib/api.js";
import { $, pageData } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { createWakeLock } from "../lib/wake-lock.js";
import { publish } from "../lib/whip.js";
import { showMeetingBadge } from "../components/badges.js";
import { cameraErrorMessage, createCamera } from "../components/host/camera.js";
import { guardChatDelete } from "../components/host/confirm-delete.js";
import { createFloorListener } from "../components/host/floor-listener.js";
import { createHandAlert } from "../components/host/hand-alert.js";
import { setupCancel, setupShare } from "../components/host/schedule.js";
import { joinLiveRoom } from "../components/live-room.js";
import { createRecordingStatus } from "../components/recording-status.js";

const meeting = pageData("meeting-data");
const meetingId = meeting.id;
const meetingUrl = (action) => `/api/meetings/${encodeURIComponent(meetingId)}/${action}`;

const statusLine = $("status");
const statusDetail = $("status-detail");
const startButton = $("start-button");
const endButton = $("end-button");

let status = meeting.status; // the meeting on the server: scheduled | live | ended
let state = document.body.dataset.state || "idle";
let publisher = null;
let busy = false; // start/end in progress
let serverPublishing = Boolean(meeting.publishing); // the server has a publisher (maybe us)
let socketConnected = false;
let takenOver = false; // another device replaced this phone as the publisher
let republishTimer = null;

function showDetail(text) {
  statusDetail.textContent = text;
  statusDetail.hidden = false;
}

const camera = createCamera({ publisher: () => publisher, onError: showDetail });
const wakeLock = createWakeLock(() => Boolean(publisher));
const floorListener = createFloorListener(meetingId);
const handAlert = createHandAlert();
handAlert.setLive(status === "live");

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

/** The meeting went live (here or on another device). */
function showLive() {
  status = "live";
  handAlert.setLive(true);
  showMeetingBadge($("meeting-badge"), status);
  updateButtons();
}

/** A refused start or end: a lapsed sign-in says so. */
function showRefused(error, message) {
  if (error.status === 401) setState("error", t("login_again"), error.message);
  else setState("error", message, error.message);
}

// ---------------------------------------------------------------- publishing

function onPublishState(publishState, error) {
  if (!publisher && publishState !== "failed") return;
  switch (publishState) {
    case "connecting":
      setState("starting", t("starting"));
      break;
    case "connected":
      setState("live", t("live"));
      wakeLock.keep();
      floorListener.start();
      break;
    case "reconnecting":
      setState("reconnecting", t("reconnecting"));
      break;
    case "failed": {
      publisher = null;
      wakeLock.release();
      if (error && error.code === "not_retried") {
        // Another phone or laptop is sending now: don't fight over the meeting.
        takenOver = true;
        camera.stop();
        setState("idle", t("taken_over"));
      } else if (error && error.status === 401) setState("error", t("login_again"), error.message);
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
  publisher = publish(`/whip/${encodeURIComponent(meetingId)}`, camera.stream, {
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

/** Start the meeting if need be, then send the camera. */
async function start() {
  if (busy || status === "ended") return;
  busy = true;
  setState("starting", t("camera"));
  try {
    try {
      await camera.acquire();
    } catch (error) {
      console.warn("getUserMedia failed", error);
      setState("error", cameraErrorMessage(error), error && error.message);
      return;
    }
    if (status !== "live") {
      setState("starting", t("starting"));
      try {
        status = (await postJSON(meetingUrl("start"), {})).status || "live";
      } catch (error) {
        showRefused(error, t("start_failed"));
        return;
      }
      showMeetingBadge($("meeting-badge"), status);
      handAlert.setLive(status === "live");
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
  wakeLock.release();
  floorListener.stop();
  if (current) await current.stop();
  camera.stop();
}

async function end() {
  if (busy || status !== "live") return;
  if (!window.confirm(t("confirm_end"))) return;
  busy = true;
  setState(state, t("ending"));
  try {
    await stopPublishing();
    try {
      status = (await postJSON(meetingUrl("end"), {})).status || "ended";
    } catch (error) {
      showRefused(error, t("end_failed"));
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
  handAlert.setLive(false);
  showMeetingBadge($("meeting-badge"), status);
  setState("ended", t("ended"));
}

// ---------------------------------------------------------------- realtime

function showViewers(n) {
  if (typeof n === "number" && Number.isFinite(n)) $("viewer-count").textContent = String(n);
}

function refreshIdleMessage() {
  if (state !== "idle") return;
  if (takenOver && serverPublishing) setState("idle", t("taken_over"));
  else if (serverPublishing && status === "live") setState("idle", t("idle_other"));
  else setState("idle", idleMessage());
}

const recordingStatus = createRecordingStatus({
  meetingId,
  root: $("recording-line"),
  canRetry: true,
});
recordingStatus.load();

joinLiveRoom(meeting, {
  isHost: true,
  onConnectionChange(connected) {
    socketConnected = connected;
  },
  onRecording: recordingStatus.update,
  onJoin(ack) {
    const live = ack.state || {};
    showViewers(live.viewers);
    serverPublishing = Boolean(live.publishing);
    checkServerHasUs();
    const serverStatus = live.meeting && live.meeting.status;
    if (serverStatus === "ended" && status !== "ended") {
      stopPublishing().then(showEnded);
    } else if (serverStatus === "live" && status !== "live") {
      showLive();
    }
    refreshIdleMessage();
  },
  onPresence(presence) {
    showViewers(presence.viewers);
    if (typeof presence.publishing === "boolean") serverPublishing = presence.publishing;
    checkServerHasUs();
    refreshIdleMessage();
  },
  onStatus(event) {
    if (event.status === "ended" && status !== "ended") {
      floorListener.stop();
      stopPublishing().then(showEnded);
    } else if (event.status === "live" && status !== "live") {
      showLive();
      refreshIdleMessage();
    }
    // a meeting that started can no longer be edited or cancelled
    if (event.status !== "scheduled") $("schedule-card")?.remove();
  },
});

// ---------------------------------------------------------------- wiring

setupShare();
setupCancel(meetingId);
guardChatDelete();
startButton.addEventListener("click", start);
endButton.addEventListener("click", end);

window.addEventListener("pagehide", (event) => {
  if (event.persisted) return; // kept in the back/forward cache; handled on pageshow
  if (publisher) publisher.stop(); // DELETE with keepalive
  floorListener.stop();
  wakeLock.release();
});
window.addEventListener("pageshow", (event) => {
  if (event.persisted) window.location.reload();
});

// Open the camera right away if the browser already allows it, so the clerk can
// frame the picture before going live.
(async () => {
  camera.updateLabel();
  if (status === "ended") {
    setState("ended", t("ended"));
    return;
  }
  if (status === "cancelled") return; // the page says so; nothing to start
  setState("idle", idleMessage());
  try {
    const permission = await navigator.permissions.query({ name: "camera" });
    if (permission.state === "granted" && !camera.stream && state === "idle") await camera.acquire();
  } catch {
    // no Permissions API for cameras (Safari, WeChat): the camera opens on "Start"
  }
})();

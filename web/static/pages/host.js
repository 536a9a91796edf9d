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
import { createHostAway } from "../components/host-away.js";
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
let republishDue = 0; // when republishTimer fires (Date.now())
let joinedOnce = false; // the room's state has arrived once (serverPublishing is known)
let joinedAt = 0; // when the room was last (re)joined (Date.now())
let connectedAt = 0; // when this phone's publishing last connected (Date.now())

// This device was publishing this meeting (set when connected, cleared when it stops on
// purpose): a reload resumes by itself. Another device's sending is never fought.
const PUBLISHING_KEY = `cunhui:publishing:${meetingId}`;

function rememberPublishing(on) {
  try {
    if (on) localStorage.setItem(PUBLISHING_KEY, String(Date.now()));
    else localStorage.removeItem(PUBLISHING_KEY);
  } catch {
    // private mode: a reload waits for 继续直播
  }
}

function wasPublishing() {
  try {
    return Boolean(localStorage.getItem(PUBLISHING_KEY));
  } catch {
    return false;
  }
}

function showDetail(text) {
  statusDetail.textContent = text;
  statusDetail.hidden = false;
}

const camera = createCamera({ publisher: () => publisher, onError: showDetail });
const wakeLock = createWakeLock(() => Boolean(publisher));
const floorListener = createFloorListener(meetingId);
const handAlert = createHandAlert();
handAlert.setLive(status === "live");
// "主持人网络中断" for the committee's other devices, and the prompt after the grace period
const hostAway = createHostAway({ onEnd: () => end(false), onAway: checkNotAway });

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
      connectedAt = Date.now();
      setState("live", t("live"));
      rememberPublishing(true);
      wakeLock.keep();
      floorListener.start();
      checkServerHasUs();
      break;
    case "reconnecting":
      setState("reconnecting", t("reconnecting"));
      checkServerHasUs(); // lost here too, and the server has nobody: publish again soon
      break;
    case "failed": {
      publisher = null;
      hostAway.setSelf(false);
      wakeLock.release();
      if (error && error.code === "not_retried") {
        // Another phone or laptop is sending now: don't fight over the meeting.
        takenOver = true;
        rememberPublishing(false);
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
    // The whole meeting waits for this phone: after a drop, try again every second or
    // two (each try costs one small POST), so it is back within moments of the network.
    backoff: { base: 500, max: 2000 },
    disconnectGrace: 4000,
    connectTimeout: 8000,
    followNetwork: true, // back from a drop, or a new address: publish again at once
    networkCheck: 1500,
  });
  hostAway.setSelf(true);
}

// The server says nobody is publishing: while our connection is new, a "presence" about
// it may be on its way (the server counts a publisher once its media arrives), so give
// it 3 s; after that, or while our own connection is lost too (the server restarted:
// the browser would notice only ~10 s later), go almost at once.
const REPUBLISH_NEW_CONNECTION_MS = 3000;
const REPUBLISH_SOON_MS = 500;

/** The room, rejoined, says nobody is publishing, and this phone means to (and was not replaced). */
function serverLostUs() {
  return (
    Boolean(publisher) &&
    !takenOver &&
    socketConnected &&
    joinedOnce &&
    !serverPublishing &&
    (state === "live" || state === "reconnecting")
  );
}

/**
 * The server says nobody is publishing while this phone is live or reconnecting (it
 * restarted, or it dropped our session before our browser noticed): publish again. An
 * attempt under way that may still connect (answered since we rejoined, or moments
 * ago) is left to finish; we look again shortly.
 */
function checkServerHasUs() {
  if (!serverLostUs()) {
    clearTimeout(republishTimer);
    republishTimer = null;
    return;
  }
  const sinceConnected = Date.now() - connectedAt;
  const wait =
    state === "reconnecting"
      ? REPUBLISH_SOON_MS
      : Math.max(REPUBLISH_SOON_MS, REPUBLISH_NEW_CONNECTION_MS - sinceConnected);
  const due = Date.now() + wait;
  if (republishTimer && republishDue <= due) return;
  clearTimeout(republishTimer);
  republishDue = due;
  republishTimer = setTimeout(() => {
    republishTimer = null;
    if (!serverLostUs()) return;
    // connected meanwhile: the server may not have counted us yet (see above)
    if (state === "live" && Date.now() - connectedAt < REPUBLISH_NEW_CONNECTION_MS) {
      checkServerHasUs();
      return;
    }
    if (!publisher.restartUnlessUnderway({ since: joinedAt })) checkServerHasUs();
  }, wait);
}

/**
 * The server hears nothing from the host while this phone thinks it is sending (its
 * address changed, and the old connection does not know yet): unless the media comes
 * back in a moment, publish again.
 */
function checkNotAway() {
  const current = publisher;
  if (!current || state !== "live") return;
  const heardAt = Date.now();
  setTimeout(() => {
    if (hostAway.away && publisher === current && state === "live") {
      current.restartUnlessUnderway({ since: heardAt });
    }
  }, 1500);
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
  hostAway.setSelf(false);
  rememberPublishing(false);
  wakeLock.release();
  floorListener.stop();
  if (current) await current.stop();
  camera.stop();
}

/** End the meeting; `ask` false: the clerk already said so (the host-away prompt). */
async function end(ask = true) {
  if (busy || status !== "live") return;
  if (ask !== false && !window.confirm(t("confirm_end"))) return;
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
  rememberPublishing(false);
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

hostAway.attach(joinLiveRoom(meeting, hostAway.wrap({
  isHost: true,
  onConnectionChange(connected) {
    socketConnected = connected;
    if (!connected) checkServerHasUs(); // what we knew of the server may be stale now
  },
  onRecording: recordingStatus.update,
  onJoin(ack) {
    const live = ack.state || {};
    showViewers(live.viewers);
    serverPublishing = Boolean(live.publishing);
    socketConnected = true; // (onConnectionChange follows)
    joinedOnce = true;
    joinedAt = Date.now();
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
})));

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

async function permitted(name) {
  try {
    return (await navigator.permissions.query({ name })).state === "granted";
  } catch {
    return false; // no Permissions API for cameras (Safari, WeChat)
  }
}

/**
 * Reloaded (or reopened) on the device that was publishing this live meeting, with the
 * camera and microphone already allowed: publish again without a click. Never starts a
 * meeting, and never replaces another device that is sending (only one whose
 * connection is lost).
 */
async function resumeAfterReload() {
  if (status !== "live" || !wasPublishing()) return;
  if (!(await permitted("camera")) || !(await permitted("microphone"))) return;
  // wait for the room's state (who is sending), then give a lost session a moment to show
  for (let waited = 0; waited < 8000; waited += 250) {
    if (status !== "live" || publisher || busy || takenOver || state !== "idle") return;
    if (joinedOnce && (!serverPublishing || hostAway.away)) {
      await start();
      return;
    }
    await sleep(250);
  }
}

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
  await resumeAfterReload();
})();

// Watch a meeting: WHEP playback, one big button when the browser blocks sound,
// waiting for the start over socket.io, reconnecting after network drops; live HLS
// instead of WebRTC where that cannot play (components/watch/live-hls.js).
//
// Three ways to play (components/watch/mode-switch.js): "video" (WebRTC, sound and
// picture), "audio" (WebRTC, sound only: the offer has no video m-line) and "hls".
// The page drops to sound only by itself when its own receive statistics say the
// picture cannot keep up (components/watch/link-monitor.js), and offers the picture
// again once the sound has been clean for a while. Switching is a new WHEP session;
// the old one is DELETEd and its peer connection closed.
//
// document.body.dataset.state is one of
// "waiting" | "connecting" | "playing" | "ended" | "cancelled" | "forbidden" | "error";
// dataset.mode "video" | "audio" | "hls", dataset.modeReason "user" | "weak-link" |
// "save-data" | "fallback" (what plays, and why).

import { getJSON } from "../lib/api.js";
import { $, pageData } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { play } from "../lib/whep.js";
import { showMeetingBadge } from "../components/badges.js";
import { createLiveHls } from "../components/watch/live-hls.js";
import { watchLink } from "../components/watch/link-monitor.js";
import { createModeButtons, linkGuess, rememberWeakLink } from "../components/watch/mode-switch.js";
import { createOverlay } from "../components/watch/overlay.js";
import { watchForStalls } from "../components/watch/stall-watch.js";

/** WebRTC not connected this long after its first offer: play HLS instead */
const FALLBACK_MS = 15000;
/** sound clean this long (s) in audio only because of the link: offer the picture */
const OFFER_PICTURE_AFTER = 10;
/** …and try it by itself after this long (s), doubled after each try the link refused */
const RETRY_PICTURE_AFTER = { stats: 60, guess: 8, never: Infinity };
const RETRY_PICTURE_MAX = 600;
/** a picture that stays this long (s) after a try proves the link good again */
const PICTURE_PROVEN_AFTER = 30;

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
let sessionId = 0; // callbacks of a session we left are ignored
let connectTimer = null;
let everConnected = false; // the current WebRTC session connected at least once
let mode = "video"; // what plays: "video" | "audio" | "hls"
let modeReason = "user";
let fallback = false; // WebRTC could not connect: HLS
let floorName = "";
let offerPicture = false;
// audio only because of the link: why ("stats" | "guess" | "never": the browser saves
// data), when to try the picture by itself, and when the last try began
const weak = { active: false, source: "", retryAfter: 0, triedAt: 0 };

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
});

const choices = createModeButtons({
  onChange(which) {
    if (which === "audio") {
      // the viewer decides now: no automatic switch back until the link says so again
      weak.active = false;
      rememberWeakLink(false);
    }
    fallback = false;
    restart();
  },
});

const pictureButton = $("picture-button");
pictureButton.addEventListener("click", () => {
  tryPicture();
});

// ---------------------------------------------------------------- UI

function setState(next) {
  state = next;
  document.body.dataset.state = next;
  render();
}

function render() {
  const audio = mode === "audio" || (mode === "hls" && hls.playing?.rendition === "audio");
  document.body.dataset.mode = mode;
  document.body.dataset.modeReason = modeReason;
  // why sound only, when the link chose it: "stats" (it could not keep up) or "guess"
  document.body.dataset.weakSource = modeReason === "weak-link" ? weak.source : "";
  choices.show(audio);
  pictureButton.hidden = !(offerPicture && mode === "audio" && modeReason === "weak-link");
  overlay.render({
    state,
    status,
    publishing,
    reconnecting,
    lastError,
    cancelReason,
    mode,
    modeReason,
    rendition: hls.playing?.rendition,
    guessed: weak.source !== "stats",
    audio,
    floorName,
  });
}

// ---------------------------------------------------------------- modes

/** What should play now: {mode, reason, rendition} (rendition: HLS only). */
function wanted() {
  const audio = choices.audioOnly || (weak.active && !choices.saveData);
  const reason = choices.saveData
    ? "save-data"
    : weak.active && !choices.audioOnly
      ? "weak-link"
      : "user";
  if (fallback || !("RTCPeerConnection" in window)) {
    return { mode: "hls", reason: "fallback", rendition: audio ? "audio" : "auto" };
  }
  if (choices.saveData && !choices.audioOnly) {
    return { mode: "hls", reason, rendition: "low" };
  }
  return { mode: audio ? "audio" : "video", reason };
}

/** Stop what plays and start what should. */
function restart() {
  if (status !== "live" || state === "ended" || state === "forbidden") {
    render();
    return;
  }
  stopPlaying();
  startPlaying();
}

/** The picture cannot keep up: sound only, with the banner. */
function dropToAudio() {
  if (mode !== "video" || choices.audioOnly || choices.saveData) return;
  const triedRecently =
    weak.triedAt && performance.now() - weak.triedAt < PICTURE_PROVEN_AFTER * 1000;
  weak.retryAfter = triedRecently
    ? Math.min(RETRY_PICTURE_MAX, Math.max(RETRY_PICTURE_AFTER.stats, weak.retryAfter * 2))
    : RETRY_PICTURE_AFTER.stats;
  weak.active = true;
  weak.source = "stats";
  weak.triedAt = 0;
  offerPicture = false;
  rememberWeakLink(true);
  restart();
}

/** Try the picture again (the viewer's tap, or a long clean spell). */
function tryPicture() {
  if (!weak.active) return;
  weak.active = false;
  weak.triedAt = performance.now();
  offerPicture = false;
  restart();
}

const monitor = watchLink({
  pc: () => (viewer && state === "playing" ? viewer.pc : null),
  mode: () => mode,
  expectVideo: () => publishing,
  onWeak: () => dropToAudio(),
  onClean(seconds) {
    if (mode !== "audio" || !weak.active || choices.audioOnly || choices.saveData) return;
    const offer = seconds >= OFFER_PICTURE_AFTER || weak.source !== "stats";
    if (offer !== offerPicture) {
      offerPicture = offer;
      render();
    }
    if (seconds >= weak.retryAfter) tryPicture();
  },
  onSample(figures) {
    // a picture that held up after a try: the link is good again
    if (mode === "video" && weak.triedAt && !figures.weak) {
      if (performance.now() - weak.triedAt > PICTURE_PROVEN_AFTER * 1000) {
        weak.triedAt = 0;
        weak.retryAfter = 0;
        rememberWeakLink(false);
      }
    }
  },
});

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
      clearTimeout(connectTimer);
      everConnected = true;
      reconnecting = false;
      setState("playing");
      if (player.srcObject && player.paused) tryPlay();
      break;
    case "reconnecting":
      reconnecting = true;
      if (state !== "ended") setState("connecting");
      break;
    case "failed":
      clearTimeout(connectTimer);
      viewer = null;
      onViewerFailed(error);
      break;
    default:
      break;
  }
}

/** WebRTC cannot get through (a firewall, an in-app browser, a link too poor): live HLS. */
function fallBackToHls() {
  if (status !== "live" || fallback) return;
  fallback = true;
  stopPlaying();
  startPlaying();
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
    fallBackToHls();
    return;
  }
  setState("error");
}

function startPlaying() {
  if (viewer || hls.active || state === "ended" || state === "forbidden") return;
  const want = wanted();
  mode = want.mode;
  modeReason = want.reason;
  monitor.reset();
  if (want.mode === "hls") {
    hls.start(want.rendition);
    render();
    return;
  }
  reconnecting = false;
  everConnected = false;
  setState("connecting");
  const id = ++sessionId;
  const mine = (callback) =>
    (...args) => {
      if (id === sessionId) callback(...args);
    };
  viewer = play(`/whep/${encodeURIComponent(meetingId)}`, {
    // sound only: no video m-line at all, so the server sends no video packets
    kinds: want.mode === "audio" ? ["audio"] : ["audio", "video"],
    floor: true,
    onFloorTrack: mine(playFloor),
    onState: mine(onViewerState),
    onStream: mine((stream) => {
      player.srcObject = stream;
      tryPlay();
    }),
  });
  // Not connected in time (UDP blocked, a link too poor even to connect): HLS.
  clearTimeout(connectTimer);
  connectTimer = setTimeout(
    mine(() => {
      if (viewer && !everConnected) fallBackToHls();
    }),
    FALLBACK_MS,
  );
}

/** @param {object} [how] closedByServer: the meeting ended, and the server closed our session */
function stopPlaying(how) {
  const current = viewer;
  viewer = null;
  sessionId += 1;
  clearTimeout(connectTimer);
  if (current) current.stop(how); // DELETE, then close its peer connection
  hls.stop();
  player.pause();
  player.srcObject = null;
  floorAudio.srcObject = null;
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
      if (typeof fresh.cancel_reason === "string" && fresh.cancel_reason) {
        cancelReason = fresh.cancel_reason;
      }
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

// The room (chat, votes, hands, the floor) loads beside the media, not before it: on a
// 300 kbit/s link its modules and socket.io are most of the page's bytes, and the
// WHEP offer should not wait for them (first sound within a few seconds).
let room = null;
let serverRun = ""; // the server run (join ack's `server`) our media session belongs to
async function joinRoom() {
  const { joinLiveRoom } = await import("../components/live-room.js");
  const { createHostAway } = await import("../components/host-away.js");
  const hostAway = createHostAway(); // "主持人网络中断，正在重连…" (issue 16)
  room = hostAway.attach(joinLiveRoom(meeting, hostAway.wrap({
    isHost: false,
    onFloorChange(floor, mine) {
      floorAudio.muted = mine; // the speaker does not hear themself
      floorName = (floor && !mine && floor.name) || "";
      render();
    },
    onJoin(ack) {
      const live = ack.state || {};
      // another run of the server (it restarted): our media session died with the old one,
      // so start it again now rather than when the browser notices (issue 16)
      if (serverRun && ack.server && ack.server !== serverRun && viewer) viewer.restart();
      serverRun = ack.server || serverRun;
      if (typeof live.publishing === "boolean") publishing = live.publishing;
      showViewers(live.viewers);
      const serverStatus = live.meeting && live.meeting.status;
      // cancelled before we joined (a phone that connected late): the reason comes with it
      if (serverStatus) applyStatus(serverStatus, live.meeting.cancel_reason);
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
  }))).room;
}

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
  room?.stop(); // the floor speaker's microphone, if any
  if (viewer) viewer.stop(); // DELETE the WHEP session (keepalive)
  viewer = null;
  hls.stop(); // else a page restored from the cache would think HLS still plays
});
window.addEventListener("pageshow", (event) => {
  if (event.persisted && status === "live" && state !== "ended") {
    setState("waiting");
    startPlaying();
  }
});

// Before any media: a link that loaded this page slowly (or that forced sound only
// last time) starts with the sound, which plays within a second or two, and offers
// the picture at once; the picture is tried by itself once the sound runs clean.
{
  const guess = choices.audioOnly || choices.saveData ? "" : linkGuess();
  if (guess) {
    weak.active = true;
    weak.source = guess === "browser-save-data" ? "never" : "guess";
    weak.retryAfter = RETRY_PICTURE_AFTER[weak.source];
  }
}
render();
if (state === "connecting" || status === "live") startPlaying();
joinRoom();

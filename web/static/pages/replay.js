// Replay a recorded meeting: the video (components/replay/player.js), the agenda as
// chapters, the timeline in step with playback, chat search, links to a moment
// (?t=SECONDS) and downloads. All user text is set with textContent, never as HTML.
//
// While the recording is still being recorded or processed the page polls
// GET /api/meetings/{id}/recording every 3 s (no socket.io join: a replay is not
// attendance) and switches to the MP4 as soon as it is ready.

import { ApiError, getJSON } from "../lib/api.js";
import { copyText } from "../lib/clipboard.js";
import { $, pageData } from "../lib/dom.js";
import { parseMoment } from "../lib/format.js";
import { t } from "../lib/i18n.js";
import { createChapters } from "../components/replay/chapters.js";
import { renderDownloads } from "../components/replay/downloads.js";
import { renderNotice } from "../components/replay/notice.js";
import {
  createReplayPlayer,
  describeNothing,
  setPageState,
  showOverlay,
} from "../components/replay/player.js";
import { createTimeline, fetchTimeline } from "../components/replay/timeline.js";

const meeting = pageData("meeting-data");
const POLL_MS = 3000;
const BUSY = new Set(["recording", "processing"]);

let recording = null; // the latest GET …/recording answer (null: nothing recorded)
let pollTimer = null;

const seekTo = (at, play) => player.seekTo(at, play);
const player = createReplayPlayer({
  onSync: sync,
  onReady() {
    $("copy-moment").hidden = false;
  },
});
const timeline = createTimeline({ agenda: meeting.agenda, seekTo, onSearch: sync });
const chapters = createChapters({ agenda: meeting.agenda, seekTo });

/** Follow playback: the timeline's entry and the chapter of this moment. */
function sync() {
  const now = player.globalNow() + 0.05;
  const playing = Boolean(player.current);
  timeline.sync(now, playing);
  chapters.sync(now, playing);
}

// ---------------------------------------------------------------- the recording

/**
 * Apply a recording answer: parts, notice, downloads; switch HLS → MP4 once ready.
 * Returns true when nothing is in the player yet but a part can now be shown (call start()).
 */
function applyRecording(answer) {
  recording = answer;
  const all = (answer && answer.parts) || [];
  const playable = all.filter((p) => p.offset !== null && p.offset !== undefined);
  renderDownloads(meeting, playable);
  const outcome = player.update(playable);
  if (outcome === "none") {
    if (answer) describeNothing(all[0]);
    renderNotice(null);
  } else if (outcome === "kept") {
    renderNotice(player.current);
    chapters.renderThumbnails(recording);
  }
  return outcome === "first"; // the first load decides where to start (?t=)
}

async function fetchRecording() {
  try {
    const answer = await getJSON(`/api/meetings/${meeting.id}/recording?if_none=empty`);
    return answer && answer.parts && answer.parts.length ? answer : null; // not recorded yet
  } catch (exc) {
    if (exc instanceof ApiError && exc.status === 404) return null;
    throw exc;
  }
}

const isRecording = (answer) =>
  Boolean(answer && (answer.parts || []).some((p) => p.status === "recording"));

async function poll() {
  try {
    const wasRecording = isRecording(recording);
    const answer = await fetchRecording();
    if (applyRecording(answer)) await start();
    if (wasRecording && !isRecording(answer)) {
      // the recording stopped: the meeting probably ended, and its last events are in
      const fresh = await getJSON(`/api/meetings/${meeting.id}`);
      meeting.status = fresh.status;
      renderDownloads(meeting, player.parts);
      await loadTimeline();
    }
  } catch {
    // a network blip: try again at the next tick
  }
  schedulePoll();
}

function schedulePoll() {
  clearTimeout(pollTimer);
  const busy = recording
    ? (recording.parts || []).some((p) => BUSY.has(p.status))
    : meeting.status === "live";
  if (busy) pollTimer = setTimeout(poll, POLL_MS);
}

async function loadTimeline() {
  const events = await fetchTimeline(meeting.id);
  chapters.render(events, recording);
  timeline.render(events);
  sync();
}

// ---------------------------------------------------------------- a link to this moment

$("copy-moment").addEventListener("click", async () => {
  const url = new URL(window.location.href);
  url.search = "";
  url.hash = "";
  url.searchParams.set("t", String(Math.floor(player.globalNow())));
  const link = url.toString();
  const status = $("copy-status");
  const fallback = $("copy-fallback");
  fallback.hidden = true;
  if (await copyText(link)) {
    status.textContent = `${t("copied")} ${link}`;
  } else {
    // no clipboard (http:// on a phone, an in-app browser): let the reader copy it
    status.textContent = t("copy_manually");
    fallback.value = link;
    fallback.hidden = false;
    fallback.focus();
    fallback.select();
  }
  status.hidden = false;
});

// ---------------------------------------------------------------- start

async function start() {
  if (!player.parts.length) return;
  const wanted = parseMoment(new URLSearchParams(window.location.search).get("t"));
  if (wanted !== null) {
    const { part, local } = player.locate(wanted);
    await player.load(part, local, false);
  } else {
    await player.load(player.parts[0], 0, false);
  }
  renderNotice(player.current);
  chapters.renderThumbnails(recording);
}

async function main() {
  setPageState("loading");
  showOverlay(t("loading"), "", true);
  let answer;
  try {
    [answer] = await Promise.all([fetchRecording(), loadTimeline()]);
  } catch {
    showOverlay(t("load_failed"));
    setPageState("error");
    return;
  }
  if (applyRecording(answer)) {
    await start();
  } else if (!answer) {
    if (meeting.status === "scheduled") showOverlay(t("not_started"));
    else if (meeting.status === "live") showOverlay(t("live_no_recording"), "", true);
    else showOverlay(t("no_recording"));
    setPageState("none");
  }
  schedulePoll();
}

main();

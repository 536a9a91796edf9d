// Replay a recorded meeting: the video (MP4 once processed, HLS before), the agenda as
// chapters, the timeline (chat, hands, floor, agenda, votes) in step with playback,
// chat search, links to a moment (?t=SECONDS) and downloads.
//
// Every event's `t` on GET /api/meetings/{id}/timeline counts seconds from the first
// frame of part 1 of the recording; part N starts `parts[N].offset` seconds after it.
// All user text is set with textContent (dom.js `el`), never as HTML.
//
// While the recording is still being recorded or processed the page polls
// GET /api/meetings/{id}/recording every 3 s (no socket.io join: a replay is not
// attendance) and switches to the MP4 as soon as it is ready.
//
// document.body.dataset.state: "loading" | "none" | "ready" | "expired" | "error";
// document.body.dataset.source: "mp4" | "hls" | "" (what the player is playing).

import { ApiError, getJSON } from "./api.js";
import { el } from "./dom.js";
import { t } from "./i18n.js";
import { playHls } from "./hls-player.js";

const meeting = JSON.parse(document.getElementById("meeting-data").textContent);
const $ = (id) => document.getElementById(id);
const player = $("replay-player");
const overlay = $("replay-overlay");
const overlayTitle = $("replay-overlay-title");
const overlayDetail = $("replay-overlay-detail");
const spinner = $("replay-spinner");
const partsBox = $("replay-parts");
const copyButton = $("copy-moment");
const copyStatus = $("copy-status");
const copyFallback = $("copy-fallback");
const nowLine = $("replay-now");
const notice = $("replay-notice");
const noticeText = $("replay-notice-text");
const stepsList = $("replay-steps");
const chapterList = $("chapter-list");
const timelineList = $("timeline-list");
const timelineEmpty = $("timeline-empty");
const searchInput = $("chat-search");
const searchCount = $("search-count");
const downloads = $("downloads");
const downloadList = $("download-list");

const POLL_MS = 3000;
const BUSY = new Set(["recording", "processing"]);
const FINISHED = new Set(["ready", "interrupted"]);
const STEPS = ["hls", "mp4", "audio", "thumbnails"];

let recording = null; // the latest GET …/recording answer (null: nothing recorded)
let parts = []; // playable parts (those with an offset), in order
let current = null; // the part in the player
let source = ""; // "mp4" | "hls" | ""
let hls = null; // hls-player.js's handle, while HLS plays
let entries = []; // timeline entries: {t, node, kind, search?}
let chapters = []; // {item, t, node}
let highlighted = null;
let currentChapter = null;
let pollTimer = null;
let userScrolledAt = 0;
let mp4Failed = new Set(); // parts whose MP4 would not play here: use HLS

// ---------------------------------------------------------------- small helpers

/** "1:02:03" or "2:03". */
function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds || 0));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** ?t=90, ?t=90.5, ?t=1:30 or ?t=1:02:03 → seconds (null if absent or unreadable). */
function parseMoment(text) {
  if (!text) return null;
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  const match = /^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d+)?)$/.exec(text);
  if (!match) return null;
  return Number(match[1] || 0) * 3600 + Number(match[2]) * 60 + Number(match[3]);
}

function setState(state) {
  document.body.dataset.state = state;
}

function showOverlay(title, detail = "", busy = false) {
  overlay.hidden = false;
  overlayTitle.textContent = title;
  overlayDetail.textContent = detail;
  overlayDetail.hidden = !detail;
  spinner.hidden = !busy;
}

// ---------------------------------------------------------------- time and parts

/** The playback position on the timeline's clock (seconds from part 1's first frame). */
function globalNow() {
  if (!current) return 0;
  return (current.offset || 0) + (player.currentTime || 0);
}

function partLength(part) {
  if (part === current && Number.isFinite(player.duration) && player.duration > 0) return player.duration;
  return part.duration || 0;
}

/** The part holding moment `at` and the position in it. */
function locate(at) {
  const moment = Math.max(0, at);
  let part = parts[0];
  for (const p of parts) if (p.offset <= moment) part = p;
  const length = partLength(part);
  let local = Math.max(0, moment - part.offset);
  if (length > 0) local = Math.min(local, Math.max(0, length - 0.1));
  return { part, local };
}

/** Seek to a moment of the meeting (switching part if need be), and play if asked. */
function seekTo(at, play = true) {
  if (!parts.length) return;
  const { part, local } = locate(at);
  if (part !== current || !source) {
    load(part, local, play);
    return;
  }
  player.currentTime = local;
  if (play) player.play().catch(() => {});
  sync();
}

// ---------------------------------------------------------------- the player

function destroyHls() {
  if (hls) {
    hls.stop();
    hls = null;
  }
}

/** What the part can be played from here: "mp4", "hls" or "" (nothing). */
function sourceFor(part) {
  if (part.mp4 && FINISHED.has(part.status) && !mp4Failed.has(part.part)) return "mp4";
  if (part.hls) return "hls";
  return "";
}

async function load(part, at = 0, play = false) {
  const kind = sourceFor(part);
  current = part;
  renderParts();
  destroyHls();
  source = "";
  document.body.dataset.source = "";
  if (!kind) {
    player.removeAttribute("src");
    player.load();
    describeNothing(part);
    return;
  }
  overlay.hidden = true;
  const start = () => {
    if (at > 0) player.currentTime = at;
    if (play) player.play().catch(() => {});
    sync();
  };
  if (kind === "mp4") {
    player.addEventListener("loadedmetadata", start, { once: true });
    player.src = part.mp4;
    source = "mp4";
  } else {
    let handle;
    try {
      handle = await playHls(player, part.hls, { live: false, startPosition: at, onFatal: cannotPlay });
    } catch {
      if (current === part) cannotPlay();
      return;
    }
    if (current !== part) {
      handle.stop(); // another part was chosen meanwhile
      return;
    }
    hls = handle;
    player.addEventListener("loadedmetadata", handle.kind === "native" ? start : () => {
      if (play) player.play().catch(() => {});
      sync();
    }, { once: true });
    source = "hls";
  }
  document.body.dataset.source = source;
  setState("ready");
  copyButton.hidden = false;
}

function cannotPlay() {
  showOverlay(t("cannot_play"));
  setState("error");
}

player.addEventListener("error", () => {
  // An MP4 this browser cannot decode: the HLS files may still play.
  if (source === "mp4" && current && current.hls && !mp4Failed.has(current.part)) {
    mp4Failed.add(current.part);
    load(current, player.currentTime || 0, !player.paused);
    return;
  }
  if (source) cannotPlay();
});

function describeNothing(part) {
  if (part && part.status === "expired") {
    showOverlay(t("expired"));
    setState("expired");
  } else if (part && part.status === "recording") {
    showOverlay(t("live_no_recording"), "", true);
    setState("loading");
  } else if (part && part.status === "processing") {
    showOverlay(t("processing_blocked"), "", true);
    setState("loading");
  } else if (part && part.status === "failed") {
    showOverlay(t("failed", { reason: part.error || "?" }));
    setState("error");
  } else {
    showOverlay(t("no_recording"));
    setState("none");
  }
}

// ---------------------------------------------------------------- status, parts, downloads

function renderParts() {
  partsBox.replaceChildren();
  partsBox.hidden = parts.length < 2;
  for (const part of parts) {
    const b = el("button", "button small part-button", t("part", { n: part.part }));
    b.type = "button";
    b.setAttribute("aria-pressed", String(part === current));
    b.addEventListener("click", () => {
      if (part !== current) load(part, 0, true);
    });
    partsBox.append(b);
  }
}

function renderNotice() {
  const part = current;
  stepsList.replaceChildren();
  stepsList.hidden = true;
  if (!part) {
    notice.hidden = true;
    return;
  }
  let text = "";
  if (part.status === "recording") text = t("live_recording");
  else if (part.status === "processing") text = t("processing");
  else if (part.status === "failed") text = `${t("failed", { reason: part.error || "?" })} ${part.hls ? t("failed_detail") : ""}`;
  else if (part.status === "interrupted") text = t("interrupted");
  else if (part.status === "expired") text = t("expired");
  if (part.status === "processing" || part.status === "failed") {
    for (const name of STEPS) {
      const step = (part.steps || {})[name];
      const li = el("li", "replay-step");
      li.dataset.step = name;
      li.append(el("span", "replay-step-name", t(`step_${name}`)));
      if (!step) {
        li.append(el("span", "replay-step-state muted", t("step_waiting")));
      } else if (step.status === "done") {
        li.append(el("span", "replay-step-state done", `✓ ${t("step_done")}`));
      } else if (step.status === "failed") {
        li.append(el("span", "replay-step-state failed", t("step_failed", { reason: step.error || "?" })));
      } else {
        const fraction = Math.max(0, Math.min(1, Number(step.progress) || 0));
        const bar = el("progress", "replay-step-bar");
        bar.max = 1;
        bar.value = fraction;
        li.append(bar, el("span", "replay-step-state", `${Math.round(fraction * 100)}%`));
      }
      stepsList.append(li);
    }
    stepsList.hidden = false;
  }
  noticeText.textContent = text;
  notice.hidden = !text;
  notice.dataset.status = part.status;
}

function downloadLink(href, label, download) {
  const li = el("li");
  const a = el("a", "button secondary download-link", label);
  a.href = href;
  if (download) a.setAttribute("download", download);
  li.append(a);
  return li;
}

function renderDownloads() {
  const items = [];
  const many = parts.length > 1;
  const named = (label, part) => (many ? t("with_part", { label, n: part.part }) : label);
  for (const part of parts) {
    if (part.mp4 && FINISHED.has(part.status)) {
      const li = downloadLink(part.mp4, named(`🎬 ${t("dl_video")}`, part), `meeting-${meeting.id}-${part.part}.mp4`);
      li.dataset.kind = "mp4";
      items.push(li);
    }
    if (part.audio && FINISHED.has(part.status)) {
      const li = downloadLink(part.audio, named(`🎧 ${t("dl_audio")}`, part), `meeting-${meeting.id}-${part.part}.m4a`);
      li.dataset.kind = "audio";
      items.push(li);
    }
  }
  if (meeting.status === "ended") {
    const html = downloadLink(`/api/meetings/${meeting.id}/minutes.html`, `📄 ${t("dl_minutes_html")}`);
    html.dataset.kind = "minutes-html";
    const md = downloadLink(`/api/meetings/${meeting.id}/minutes.md`, `📝 ${t("dl_minutes_md")}`, `minutes-${meeting.id}.md`);
    md.dataset.kind = "minutes-md";
    items.push(html, md);
  }
  downloadList.replaceChildren(...items);
  downloads.hidden = items.length === 0;
}

/**
 * Apply a recording answer: parts, notice, downloads; switch HLS → MP4 once ready.
 * Returns true when nothing is in the player yet but a part can now be shown (call start()).
 */
function applyRecording(answer) {
  recording = answer;
  const all = (answer && answer.parts) || [];
  parts = all.filter((p) => p.offset !== null && p.offset !== undefined);
  renderDownloads();
  if (!parts.length) {
    current = null;
    if (answer) describeNothing(all[0]);
    renderNotice();
    return false;
  }
  if (!current) return true; // the first load decides where to start (?t=)
  current = parts.find((p) => p.part === current.part) || parts[0];
  renderParts();
  renderNotice();
  renderChapterThumbnails();
  if (sourceFor(current) !== source) {
    // processed meanwhile (or expired): same moment, same play state, better file
    load(current, player.currentTime || 0, !player.paused && !player.ended);
  }
  return false;
}

async function fetchRecording() {
  try {
    return await getJSON(`/api/meetings/${meeting.id}/recording`);
  } catch (exc) {
    if (exc instanceof ApiError && exc.status === 404) return null;
    throw exc;
  }
}

function schedulePoll() {
  clearTimeout(pollTimer);
  const busy = recording
    ? (recording.parts || []).some((p) => BUSY.has(p.status))
    : meeting.status === "live";
  if (!busy) return;
  pollTimer = setTimeout(async () => {
    try {
      const wasRecording = Boolean(recording && (recording.parts || []).some((p) => p.status === "recording"));
      const answer = await fetchRecording();
      if (applyRecording(answer)) await start();
      const nowRecording = Boolean(answer && (answer.parts || []).some((p) => p.status === "recording"));
      if (wasRecording && !nowRecording) {
        // the recording stopped: the meeting probably ended, and its last events are in
        const fresh = await getJSON(`/api/meetings/${meeting.id}`);
        meeting.status = fresh.status;
        renderDownloads();
        await loadTimeline();
      }
    } catch {
      // a network blip: try again at the next tick
    }
    schedulePoll();
  }, POLL_MS);
}

// ---------------------------------------------------------------- chapters

function renderChapters(events) {
  if (!chapterList) return;
  const firstTaken = new Map();
  for (const event of events) {
    if (event.type === "agenda:current" && event.item_id != null && event.t != null) {
      if (!firstTaken.has(event.item_id)) firstTaken.set(event.item_id, event.t);
    }
  }
  chapters = [];
  chapterList.replaceChildren();
  meeting.agenda.forEach((item, index) => {
    const at = firstTaken.has(item.id) ? Math.max(0, firstTaken.get(item.id)) : null;
    const li = el("li", "chapter");
    li.dataset.itemId = String(item.id);
    const b = el("button", "chapter-button");
    b.type = "button";
    const thumb = el("span", "chapter-thumb");
    thumb.setAttribute("aria-hidden", "true");
    const text = el("span", "chapter-text");
    text.append(el("span", "chapter-title", `${index + 1}. ${item.title}`));
    text.append(el("span", "chapter-time muted small", at === null ? t("not_taken_up") : clock(at)));
    b.append(thumb, text);
    if (at === null) {
      b.disabled = true;
    } else {
      b.dataset.t = String(at);
      b.addEventListener("click", () => seekTo(at, true));
    }
    li.append(b);
    chapterList.append(li);
    chapters.push({ item, t: at, node: li, thumb });
  });
  renderChapterThumbnails();
}

function renderChapterThumbnails() {
  const found = {};
  for (const part of (recording && recording.parts) || []) {
    for (const [itemId, url] of Object.entries(part.thumbnails || recording.thumbnails || {})) {
      if (!(itemId in found)) found[itemId] = url;
    }
  }
  for (const chapter of chapters) {
    const url = found[String(chapter.item.id)];
    if (url && !chapter.thumb.querySelector("img")) {
      const img = el("img");
      img.src = url;
      img.alt = "";
      img.loading = "lazy";
      chapter.thumb.append(img);
      chapter.thumb.classList.add("has-picture");
    }
  }
}

// ---------------------------------------------------------------- the timeline

function nameOf(person) {
  return (person && person.name) || "?";
}

/** One list entry per event worth showing in a replay; null for the rest. */
function entryFor(event, deleted) {
  const li = el("li", "tl-entry");
  li.dataset.type = event.type;
  li.dataset.seq = String(event.seq);
  let kind = event.type;
  let search = null;
  const body = el("div", "tl-body");
  switch (event.type) {
    case "meeting:status":
      if (event.status === "live") body.append(el("span", "tl-status", t("ev_started")));
      else if (event.status === "ended") body.append(el("span", "tl-status", t("ev_ended")));
      else return null;
      break;
    case "chat:message": {
      if (deleted.has(event.id)) return null;
      const head = el("span", "chat-author", nameOf(event.author));
      const role = event.author && event.author.role;
      body.append(head);
      if (role === "committee" || role === "guest") {
        body.append(el("span", `badge badge-${role}`, t(role)));
      }
      body.append(el("p", "chat-text", event.text));
      search = `${event.text || ""}\n${nameOf(event.author)}`.toLocaleLowerCase();
      kind = "chat";
      break;
    }
    case "hand:queue":
      if (event.action !== "raise") return null;
      body.append(el("span", "tl-hand", t("ev_hand", { name: nameOf(event.participant) })));
      break;
    case "floor:changed": {
      let added = false;
      if (event.ended && event.ended.name) {
        body.append(el("p", "tl-floor-end muted", t("ev_floor_end", {
          name: event.ended.name, time: clock(event.ended.seconds) })));
        added = true;
      }
      if (event.participant_id) {
        body.append(el("p", "tl-floor", t("ev_floor", { name: event.name || "?" })));
        added = true;
      }
      if (!added) return null;
      break;
    }
    case "agenda:current":
      body.append(el("span", "tl-agenda", event.item_id == null
        ? t("ev_agenda_none")
        : t("ev_agenda", { title: event.title || titleOfItem(event.item_id) })));
      break;
    case "vote:opened":
      body.append(el("span", "tl-vote", t("ev_vote_opened", { question: event.question || "" })));
      break;
    case "vote:closed":
      body.append(el("span", "tl-vote", t("ev_vote_closed", { question: event.question || "" })));
      body.append(voteResult(event));
      break;
    default:
      return null;
  }
  const at = event.t;
  const time = el("button", "tl-time", at != null && at < 0 ? t("before_start") : clock(at));
  time.type = "button";
  li.append(time, body);
  li.addEventListener("click", (e) => {
    if (e.target.closest("a")) return;
    seekTo(Math.max(0, at || 0), true);
  });
  return { t: at == null ? -Infinity : at, node: li, kind, search };
}

function titleOfItem(itemId) {
  const item = meeting.agenda.find((i) => i.id === itemId);
  return item ? item.title : "";
}

function voteResult(event) {
  const box = el("div", "tl-vote-result");
  const verdict = !event.quorum_met ? t("vote_no_quorum") : event.passed ? t("vote_passed") : t("vote_not_passed");
  box.append(el("p", `vote-verdict ${event.passed ? "passed" : "failed"}`, verdict));
  const tally = el("ul", "vote-tally");
  for (const [option, count] of Object.entries(event.tally || {})) {
    const li = el("li");
    li.append(el("span", "vote-option-name", option), el("strong", "vote-option-count", String(count)));
    tally.append(li);
  }
  box.append(tally);
  if (event.cast != null && event.eligible != null) {
    box.append(el("p", "muted small", t("vote_counts", { cast: event.cast, eligible: event.eligible })));
  }
  return box;
}

function renderTimeline(events) {
  const deleted = new Set(events.filter((e) => e.type === "chat:deleted").map((e) => e.id));
  entries = [];
  for (const event of events) {
    const entry = entryFor(event, deleted);
    if (entry) entries.push(entry);
  }
  entries.sort((a, b) => a.t - b.t); // stable: same moment keeps the record's order
  timelineList.replaceChildren(...entries.map((e) => e.node));
  timelineEmpty.hidden = entries.length > 0;
  highlighted = null; // its node is gone with the old list
  applySearch();
}

/** One page; a server busy with other reports (503 busy) is asked again after its Retry-After. */
async function fetchPage(url) {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await getJSON(url);
    } catch (exc) {
      if (!(exc instanceof ApiError) || exc.code !== "busy" || attempt >= 5) throw exc;
      const seconds = Number(exc.details.retry_after) || 2;
      await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    }
  }
}

/** The whole timeline: the API answers a page at a time (`more`, `next_after`). */
async function fetchTimeline() {
  const events = [];
  let after = 0;
  for (let page = 0; page < 500; page += 1) { // 500 pages of 2,000: more than any meeting
    const answer = await fetchPage(`/api/meetings/${meeting.id}/timeline?after=${after}`);
    events.push(...(answer.events || []));
    if (!answer.more || answer.next_after == null || answer.next_after <= after) break;
    after = answer.next_after;
  }
  return events;
}

async function loadTimeline() {
  const events = await fetchTimeline();
  renderChapters(events);
  renderTimeline(events);
  sync();
}

// ---------------------------------------------------------------- search

function applySearch() {
  const query = searchInput.value.trim().toLocaleLowerCase();
  let matches = 0;
  for (const entry of entries) {
    if (entry.kind !== "chat") continue;
    const hit = !query || entry.search.includes(query);
    entry.node.hidden = !hit;
    if (hit) matches += 1;
  }
  searchCount.hidden = !query;
  searchCount.textContent = query ? t("search_count", { n: matches }) : "";
  sync();
}

searchInput.addEventListener("input", applySearch);

// ---------------------------------------------------------------- following playback

function sync() {
  const now = globalNow() + 0.05;
  // the newest visible entry at or before now
  let found = null;
  for (const entry of entries) {
    if (entry.t > now) break;
    if (!entry.node.hidden) found = entry;
  }
  if (!current) found = null;
  if (found !== highlighted) {
    if (highlighted) {
      highlighted.node.classList.remove("current");
      highlighted.node.removeAttribute("aria-current");
    }
    highlighted = found;
    if (found) {
      found.node.classList.add("current");
      found.node.setAttribute("aria-current", "true");
      scrollIntoList(found.node);
    }
  }
  let chapter = null;
  for (const c of chapters) if (c.t !== null && c.t <= now && (!chapter || c.t >= chapter.t)) chapter = c;
  if (!current) chapter = null;
  if (chapter !== currentChapter) {
    if (currentChapter) currentChapter.node.classList.remove("current");
    currentChapter = chapter;
    if (chapter) chapter.node.classList.add("current");
    nowLine.hidden = !chapter;
    nowLine.textContent = chapter ? t("now", { title: chapter.item.title }) : "";
  }
}

/** Bring the entry into view inside the list only: the page itself never jumps. */
function scrollIntoList(node) {
  if (Date.now() - userScrolledAt < 5000) return; // the reader is scrolling the list
  const list = timelineList.getBoundingClientRect();
  const item = node.getBoundingClientRect();
  if (item.top < list.top || item.bottom > list.bottom) {
    timelineList.scrollTop += item.top - list.top - list.height / 3;
  }
}

for (const name of ["wheel", "touchmove"]) {
  timelineList.addEventListener(name, () => { userScrolledAt = Date.now(); }, { passive: true });
}
for (const name of ["timeupdate", "seeked", "seeking", "loadedmetadata"]) {
  player.addEventListener(name, sync);
}

// ---------------------------------------------------------------- a link to this moment

copyButton.addEventListener("click", async () => {
  const url = new URL(window.location.href);
  url.search = "";
  url.hash = "";
  url.searchParams.set("t", String(Math.floor(globalNow())));
  const link = url.toString();
  copyFallback.hidden = true;
  try {
    await navigator.clipboard.writeText(link);
    copyStatus.textContent = `${t("copied")} ${link}`;
  } catch {
    // no clipboard (http:// on a phone, an in-app browser): let the reader copy it
    copyStatus.textContent = t("copy_manually");
    copyFallback.value = link;
    copyFallback.hidden = false;
    copyFallback.focus();
    copyFallback.select();
  }
  copyStatus.hidden = false;
});

// ---------------------------------------------------------------- start

async function start() {
  if (!parts.length) return;
  const wanted = parseMoment(new URLSearchParams(window.location.search).get("t"));
  if (wanted !== null) {
    const { part, local } = locate(wanted);
    await load(part, local, false);
  } else {
    await load(parts[0], 0, false);
  }
  renderNotice();
  renderChapterThumbnails();
}

async function main() {
  setState("loading");
  showOverlay(t("loading"), "", true);
  let answer;
  try {
    [answer] = await Promise.all([fetchRecording(), loadTimeline()]);
  } catch {
    showOverlay(t("load_failed"));
    setState("error");
    return;
  }
  if (applyRecording(answer)) {
    await start();
  } else if (!answer) {
    if (meeting.status === "scheduled") showOverlay(t("not_started"));
    else if (meeting.status === "live") showOverlay(t("live_no_recording"), "", true);
    else showOverlay(t("no_recording"));
    setState("none");
  }
  schedulePoll();
}

main();

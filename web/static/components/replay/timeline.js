// The replay's timeline: chat, hands, the floor, the agenda and votes, each entry a
// link to its moment; the entry of the moment playing is marked; chat search.
//
// Every event's `t` on GET /api/meetings/{id}/timeline counts seconds from the first
// frame of part 1 of the recording. The server leaves deleted chat lines out.

import { ApiError, getJSON } from "../../lib/api.js";
import { $, el, userText } from "../../lib/dom.js";
import { clock } from "../../lib/format.js";
import { t } from "../../lib/i18n.js";
import { explanationBlock, verdictAndTally } from "../vote-result.js";
import { openLines } from "../vote-words.js";

function nameOf(person) {
  return (person && person.name) || "?";
}

function voteResult(event) {
  const box = el("div", "tl-vote-result");
  box.append(...verdictAndTally(event), explanationBlock(event));
  if (event.cast != null && event.eligible != null) {
    box.append(el("p", "muted small", t("vote_counts", { cast: event.cast, eligible: event.eligible })));
  }
  return box;
}

function chatBody(body, event) {
  body.append(userText("span", "chat-author", nameOf(event.author)));
  const role = event.author && event.author.role;
  if (role === "committee" || role === "guest") {
    body.append(el("span", `badge badge-${role}`, t(role)));
  }
  body.append(userText("p", "chat-text", event.text));
}

function floorBody(body, event) {
  if (event.ended && event.ended.name) {
    const ended = { name: event.ended.name, time: clock(event.ended.seconds) };
    body.append(el("p", "tl-floor-end muted", t("ev_floor_end", ended)));
  }
  if (event.participant_id) {
    body.append(el("p", "tl-floor", t("ev_floor", { name: event.name || "?" })));
  }
  return body.childElementCount > 0;
}

/**
 * Fill `body` for an event worth showing in a replay; false for the rest.
 * @param {(itemId) => string} titleOf an agenda item's title
 */
function describeEvent(body, event, titleOf) {
  const text = (className, words) => body.append(el("span", className, words));
  switch (event.type) {
    case "meeting:status":
      if (event.status === "live") text("tl-status", t("ev_started"));
      else if (event.status === "ended") text("tl-status", t("ev_ended"));
      else return false;
      return true;
    case "chat:message":
      chatBody(body, event);
      return true;
    case "hand:queue":
      if (event.action !== "raise") return false;
      text("tl-hand", t("ev_hand", { name: nameOf(event.participant) }));
      return true;
    case "floor:changed":
      return floorBody(body, event);
    case "agenda:current": {
      const title = event.title || titleOf(event.item_id);
      text("tl-agenda", event.item_id == null ? t("ev_agenda_none") : t("ev_agenda", { title }));
      return true;
    }
    case "vote:opened":
      text("tl-vote", t("ev_vote_opened", { question: event.question || "" }));
      // who was present and what it took, as the phones showed it when it opened
      if (event.eligible != null) {
        const rule = el("div", "vote-rule-words");
        for (const line of openLines(event)) rule.append(el("p", "vote-rule-line", line));
        body.append(rule);
      }
      return true;
    case "vote:closed":
      text("tl-vote", t("ev_vote_closed", { question: event.question || "" }));
      body.append(voteResult(event));
      return true;
    default:
      return false;
  }
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
export async function fetchTimeline(meetingId) {
  const events = [];
  let after = 0;
  for (let page = 0; page < 500; page += 1) {
    // 500 pages of 2,000: more than any meeting
    const answer = await fetchPage(`/api/meetings/${meetingId}/timeline?after=${after}`);
    events.push(...(answer.events || []));
    if (!answer.more || answer.next_after == null || answer.next_after <= after) break;
    after = answer.next_after;
  }
  return events;
}

/**
 * @param {object} options agenda ([{id, title}]); seekTo(at, play); onSearch() after the
 *                         search changed what is shown
 */
export function createTimeline(options) {
  const list = $("timeline-list");
  const searchInput = $("chat-search");
  let entries = []; // {t, node, kind, search?}
  let highlighted = null;
  let userScrolledAt = 0;

  const titleOf = (itemId) => options.agenda.find((i) => i.id === itemId)?.title ?? "";

  function entryFor(event) {
    const body = el("div", "tl-body");
    if (!describeEvent(body, event, titleOf)) return null;
    const li = el("li", "tl-entry");
    li.dataset.type = event.type;
    li.dataset.seq = String(event.seq);
    const at = event.t;
    const time = el("button", "tl-time", at != null && at < 0 ? t("before_start") : clock(at));
    time.type = "button";
    li.append(time, body);
    li.addEventListener("click", (e) => {
      if (e.target.closest("a")) return;
      options.seekTo(Math.max(0, at || 0), true);
    });
    const chat = event.type === "chat:message";
    return {
      t: at == null ? -Infinity : at,
      node: li,
      kind: chat ? "chat" : event.type,
      search: chat ? `${event.text || ""}\n${nameOf(event.author)}`.toLocaleLowerCase() : null,
    };
  }

  function applySearch() {
    const query = searchInput.value.trim().toLocaleLowerCase();
    let matches = 0;
    for (const entry of entries) {
      if (entry.kind !== "chat") continue;
      const hit = !query || entry.search.includes(query);
      entry.node.hidden = !hit;
      if (hit) matches += 1;
    }
    const count = $("search-count");
    count.hidden = !query;
    count.textContent = query ? t("search_count", { n: matches }) : "";
    options.onSearch();
  }

  function render(events) {
    entries = events.map(entryFor).filter(Boolean);
    entries.sort((a, b) => a.t - b.t); // stable: same moment keeps the record's order
    list.replaceChildren(...entries.map((e) => e.node));
    $("timeline-empty").hidden = entries.length > 0;
    highlighted = null; // its node is gone with the old list
    applySearch();
  }

  /** Bring the entry into view inside the list only: the page itself never jumps. */
  function scrollIntoList(node) {
    if (Date.now() - userScrolledAt < 5000) return; // the reader is scrolling the list
    const box = list.getBoundingClientRect();
    const item = node.getBoundingClientRect();
    if (item.top < box.top || item.bottom > box.bottom) {
      list.scrollTop += item.top - box.top - box.height / 3;
    }
  }

  /** Mark the newest visible entry at or before `now` (none while nothing plays). */
  function sync(now, playing) {
    let found = null;
    for (const entry of entries) {
      if (entry.t > now) break;
      if (!entry.node.hidden) found = entry;
    }
    if (!playing) found = null;
    if (found === highlighted) return;
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

  searchInput.addEventListener("input", applySearch);
  for (const name of ["wheel", "touchmove"]) {
    const scrolled = () => {
      userScrolledAt = Date.now();
    };
    list.addEventListener(name, scrolled, { passive: true });
  }

  return { render, sync };
}

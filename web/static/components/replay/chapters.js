// The agenda as chapters: each item from the moment it was first taken up, with a
// thumbnail once processed; the chapter playing is marked.

import { $, el, userText } from "../../lib/dom.js";
import { clock } from "../../lib/format.js";
import { t } from "../../lib/i18n.js";

/** When each agenda item was first taken up: item id → t. */
function firstTaken(events) {
  const taken = new Map();
  for (const event of events) {
    if (event.type === "agenda:current" && event.item_id != null && event.t != null) {
      if (!taken.has(event.item_id)) taken.set(event.item_id, event.t);
    }
  }
  return taken;
}

/** @param {object} options agenda ([{id, title}]); seekTo(at, play) */
export function createChapters(options) {
  const list = $("chapter-list");
  let chapters = []; // {item, t, node, thumb}
  let current = null;

  function chapter(item, index, at) {
    const li = el("li", "chapter");
    li.dataset.itemId = String(item.id);
    const b = el("button", "chapter-button");
    b.type = "button";
    const thumb = el("span", "chapter-thumb");
    thumb.setAttribute("aria-hidden", "true");
    const text = el("span", "chapter-text");
    text.append(userText("span", "chapter-title", `${index + 1}. ${item.title}`));
    text.append(el("span", "chapter-time muted small", at === null ? t("not_taken_up") : clock(at)));
    b.append(thumb, text);
    if (at === null) {
      b.disabled = true;
    } else {
      b.dataset.t = String(at);
      b.addEventListener("click", () => options.seekTo(at, true));
    }
    li.append(b);
    return { item, t: at, node: li, thumb };
  }

  /** Each chapter's picture (the recording's thumbnails, by agenda item), once there is one. */
  function renderThumbnails(recording) {
    const found = {};
    for (const part of (recording && recording.parts) || []) {
      for (const [itemId, url] of Object.entries(part.thumbnails || recording.thumbnails || {})) {
        if (!(itemId in found)) found[itemId] = url;
      }
    }
    for (const { item, thumb } of chapters) {
      const url = found[String(item.id)];
      if (url && !thumb.querySelector("img")) {
        const img = el("img");
        img.src = url;
        img.alt = "";
        img.loading = "lazy";
        thumb.append(img);
        thumb.classList.add("has-picture");
      }
    }
  }

  function render(events, recording) {
    if (!list) return;
    const taken = firstTaken(events);
    chapters = options.agenda.map((item, index) => {
      const at = taken.has(item.id) ? Math.max(0, taken.get(item.id)) : null;
      return chapter(item, index, at);
    });
    list.replaceChildren(...chapters.map((c) => c.node));
    renderThumbnails(recording);
  }

  /** Mark the chapter playing at `now` (none while nothing plays). */
  function sync(now, playing) {
    let found = null;
    for (const c of chapters) if (c.t !== null && c.t <= now && (!found || c.t >= found.t)) found = c;
    if (!playing) found = null;
    if (found === current) return;
    if (current) current.node.classList.remove("current");
    current = found;
    if (found) found.node.classList.add("current");
    const nowLine = $("replay-now");
    nowLine.hidden = !found;
    nowLine.textContent = found ? t("now", { title: found.item.title }) : "";
  }

  return { render, renderThumbnails, sync };
}

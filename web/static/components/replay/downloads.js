// The replay's downloads: each part's video and audio once processed, the minutes
// once the meeting has ended.

import { $, el } from "../../lib/dom.js";
import { t } from "../../lib/i18n.js";
import { FINISHED } from "./player.js";

function downloadLink(kind, href, label, download) {
  const li = el("li");
  li.dataset.kind = kind;
  const a = el("a", "button secondary download-link", label);
  a.href = href;
  if (download) a.setAttribute("download", download);
  li.append(a);
  return li;
}

/** @param {object} meeting id, status; @param {Array} parts the playable parts */
export function renderDownloads(meeting, parts) {
  const items = [];
  const named = (label, part) => (parts.length > 1 ? t("with_part", { label, n: part.part }) : label);
  for (const part of parts) {
    if (!FINISHED.has(part.status)) continue;
    const file = `meeting-${meeting.id}-${part.part}`;
    if (part.mp4) {
      items.push(downloadLink("mp4", part.mp4, named(`🎬 ${t("dl_video")}`, part), `${file}.mp4`));
    }
    if (part.audio) {
      items.push(downloadLink("audio", part.audio, named(`🎧 ${t("dl_audio")}`, part), `${file}.m4a`));
    }
  }
  if (meeting.status === "ended") {
    const minutes = `/api/meetings/${meeting.id}/minutes`;
    items.push(
      downloadLink("minutes-html", `${minutes}.html`, `📄 ${t("dl_minutes_html")}`),
      downloadLink("minutes-md", `${minutes}.md`, `📝 ${t("dl_minutes_md")}`, `minutes-${meeting.id}.md`),
    );
  }
  $("download-list").replaceChildren(...items);
  $("downloads").hidden = items.length === 0;
}

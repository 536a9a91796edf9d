// The printable notice: print, and copy the share text for messaging groups.

import { copyText } from "../lib/clipboard.js";
import { $ } from "../lib/dom.js";
import { formatDateTime, VILLAGE_TIME_ZONE } from "../lib/format.js";
import { t } from "../lib/i18n.js";

/** Title, start (in the village's time zone), place, link and code, one per line. */
function shareText(data) {
  const line = (label, value) => t("share_line", { label: t(label), value });
  const lines = [t("share_heading", { title: data.title })];
  if (data.startsAt) {
    lines.push(line("start_time", formatDateTime(data.startsAt, VILLAGE_TIME_ZONE)));
  }
  if (data.place) lines.push(line("place", data.place));
  lines.push(line("watch", data.url), line("meeting_code", data.code));
  return lines.join("\n");
}

const share = $("share-text");
share.value = shareText(share.dataset);
$("print-button").addEventListener("click", () => window.print());
$("copy-share").addEventListener("click", () => copyText(share.value, share));

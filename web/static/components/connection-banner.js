// "网络已断开，正在重新连接…": a bar fixed to the top of the screen while the page is
// out of the meeting's room (the link dropped, or the phone went offline), gone once
// it has joined again. While it shows, body.is-offline marks what may be stale (the
// "N 人在线" line, the viewer count) until the room's next presence arrives.

import { el } from "../lib/dom.js";
import { t } from "../lib/i18n.js";

export function createConnectionBanner() {
  const banner = el("div", "connection-banner", t("connection_lost"));
  banner.id = "connection-banner";
  banner.setAttribute("role", "status");
  banner.setAttribute("aria-live", "assertive");
  banner.hidden = true;
  document.body.append(banner);

  return {
    /** @param {boolean} inRoom */
    update(inRoom) {
      banner.hidden = inRoom;
      if (!inRoom) document.body.classList.add("is-offline", "presence-stale");
      else document.body.classList.remove("is-offline");
    },
    /** The room's presence after a rejoin: the counts are true again. */
    presenceArrived() {
      if (!document.body.classList.contains("is-offline")) {
        document.body.classList.remove("presence-stale");
      }
    },
  };
}

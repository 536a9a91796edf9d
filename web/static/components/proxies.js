// 委托投票: the committee registers who votes for a member who cannot attend.

import { getJSON, postJSON } from "../lib/api.js";
import { $, el, showError, userText } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { fetchRoll, memberLabel } from "./roll.js";

/** Wire the host page's proxy form (nothing to do where the page has none). */
export function setupProxies(meetingId) {
  const details = $("proxies");
  const base = `/api/meetings/${encodeURIComponent(meetingId)}/proxies`;

  async function load() {
    const [roll, listed] = await Promise.all([fetchRoll(), getJSON(base)]);
    for (const id of ["proxy-member", "proxy-holder"]) {
      $(id).replaceChildren(
        ...roll.map((m) => {
          const option = userText("option", "", memberLabel(m));
          option.value = String(m.id);
          return option;
        }),
      );
    }
    const line = (p) => el("li", "", t("proxy_line", { proxy: p.proxy.name, member: p.member.name }));
    $("proxy-list").replaceChildren(...listed.proxies.map(line));
  }

  details?.addEventListener("toggle", () => {
    if (details.open) load().catch(() => {});
  });

  $("proxy-form")?.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("proxy-error");
    error.hidden = true;
    try {
      await postJSON(base, {
        member_id: Number($("proxy-member").value),
        proxy_id: Number($("proxy-holder").value),
      });
      await load();
    } catch (exc) {
      showError(error, exc.message);
    }
  });
}

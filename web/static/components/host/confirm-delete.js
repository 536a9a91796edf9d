// Deleting a chat line cannot be undone: the committee's 删除 under a line asks first,
// naming whose line and how it begins. (The button itself is chat.js's; this listens
// before it, on the list, and stops the click when the clerk says no.)

import { $ } from "../../lib/dom.js";
import { t } from "../../lib/i18n.js";

const QUOTED = 30; // characters of the line quoted in the question

export function guardChatDelete() {
  const list = $("chat-list");
  if (!list) return;
  list.addEventListener(
    "click",
    (event) => {
      const button = event.target.closest?.(".chat-delete");
      if (!button) return;
      const line = button.closest(".chat-line");
      const name = line?.querySelector(".chat-author")?.textContent || "";
      let text = (line?.querySelector(".chat-text")?.textContent || "").trim();
      if (text.length > QUOTED) text = `${text.slice(0, QUOTED)}…`;
      if (window.confirm(t("confirm_delete_line", { name, text }))) return;
      event.stopPropagation();
      event.preventDefault();
    },
    true,
  );
}

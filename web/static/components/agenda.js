// The agenda (rendered by the server): the current item marked; the committee's
// "make current" buttons.

import { button } from "../lib/dom.js";
import { t } from "../lib/i18n.js";

/** @param {object} room the room's shared state and calls (room.js) */
export function createAgenda(room) {
  const items = () => document.querySelectorAll("#agenda .agenda-item");
  if (room.isHost) {
    for (const li of items()) {
      li.append(
        button(t("make_current"), "secondary small agenda-goto", () =>
          room.act("agenda:goto", { item_id: Number(li.dataset.itemId) }),
        ),
      );
    }
  }

  /** Mark the item being discussed (null: none). */
  function render(currentId) {
    for (const li of items()) {
      const current = Number(li.dataset.itemId) === currentId;
      li.classList.toggle("current", current);
      if (current) li.setAttribute("aria-current", "step");
      else li.removeAttribute("aria-current");
    }
  }

  return {
    render,
    onEvent(name, data) {
      if (name === "agenda:current") render(data.item_id);
    },
  };
}

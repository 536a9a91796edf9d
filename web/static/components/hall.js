// The hall: who is online, how many sit in the hall (a count, or members ticked on
// the roll, for the quorum and the minutes), and the committee's "who is here" list.

import { $, el } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { roleBadge } from "./badges.js";
import { fetchRoll, memberLabel } from "./roll.js";

/** @param {object} room the room's shared state and calls (room.js) */
export function createHall(room) {
  const hallRoll = $("hall-roll");
  let rollLoaded = false;

  function renderPresence(presence) {
    const line = $("room-presence");
    if (!line || !presence) return;
    let text = t("online", { n: presence.online ?? 0 });
    const inHall = presence.in_hall ?? room.state.in_hall;
    if (typeof inHall === "number") text += ` · ${t("in_hall", { n: inHall })}`;
    line.textContent = text;
  }

  function renderTicks() {
    if (!hallRoll) return;
    const present = new Set(room.state.hall_members || []);
    for (const box of hallRoll.querySelectorAll("input[type=checkbox]")) {
      box.checked = present.has(Number(box.value));
    }
    hallRoll.querySelector("summary").dataset.count = t("hall_ticked", { n: present.size });
  }

  function tickRow(member) {
    const li = el("li");
    const box = el("input");
    box.type = "checkbox";
    box.id = `hall-member-${member.id}`;
    box.value = String(member.id);
    const label = el("label", "", memberLabel(member));
    label.htmlFor = box.id;
    box.addEventListener("change", async () => {
      const ack = await room.call("attendance:hall", { member_id: member.id, present: box.checked });
      if (!ack.ok) {
        box.checked = !box.checked;
        window.alert(room.describe(ack.error));
      }
    });
    li.append(box, " ", label);
    return li;
  }

  hallRoll?.addEventListener("toggle", async () => {
    if (!hallRoll.open || rollLoaded) return;
    rollLoaded = true;
    let roll = [];
    try {
      roll = await fetchRoll();
    } catch {
      rollLoaded = false;
      return;
    }
    $("hall-roll-list").replaceChildren(...roll.map(tickRow));
    renderTicks();
  });

  $("hall-form")?.addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("hall-count");
    const value = input.value.trim() === "" ? null : Number(input.value);
    if (value !== null && (!Number.isInteger(value) || value < 0)) {
      input.setAttribute("aria-invalid", "true");
      return;
    }
    input.removeAttribute("aria-invalid");
    const ack = await room.call("attendance:hall", { in_hall: value });
    $("hall-status").textContent = ack.ok ? t("saved") : room.describe(ack.error);
  });

  function whoRow(participant) {
    const li = el("li", "", participant.name);
    if (participant.role !== "member") li.append(" ", roleBadge(participant.role));
    return li;
  }

  $("who-button")?.addEventListener("click", async () => {
    const ack = await room.call("attendance:list", {});
    const list = $("who-list");
    if (!ack.ok) {
      list.replaceChildren(document.createTextNode(room.describe(ack.error)));
      return;
    }
    const items = ack.participants.map(whoRow);
    if (ack.anonymous) items.push(el("li", "muted", t("anonymous_viewers", { n: ack.anonymous })));
    list.replaceChildren(...items);
  });

  return {
    renderPresence,
    /** After a join: the ticks, and the committee's count field. */
    reset() {
      renderTicks();
      if (room.isHost && typeof room.state.in_hall === "number") {
        $("hall-count").value = String(room.state.in_hall);
      }
    },
    onEvent(name, data) {
      if (name !== "attendance:hall") return;
      room.state.in_hall = data.in_hall;
      room.state.hall_members = data.hall_members || [];
      renderTicks();
    },
  };
}

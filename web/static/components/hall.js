// The hall: who is online, and two numbers kept apart: the members present in the
// hall (ticked on the roll or checked in by scanning their card: they count for votes)
// and the people in the hall (a bare headcount, for the minutes only). The committee's
// "who is here" list.

import { $, el, importSoon, userText } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { roleBadge } from "./badges.js";

/** @param {object} room the room's shared state and calls (room.js) */
export function createHall(room) {
  const hallRoll = $("hall-roll");
  let rollLoaded = false;
  let lastPresence = null;

  function renderPresence(presence) {
    const line = $("room-presence");
    if (presence) lastPresence = presence;
    if (!line || !lastPresence) return;
    let text = t("online", { n: lastPresence.online ?? 0 });
    const members = (room.state.hall_members || []).length;
    if (members) text += ` · ${t("hall_members_present", { n: members })}`;
    const inHall = room.state.in_hall ?? lastPresence.in_hall;
    if (typeof inHall === "number") text += ` · ${t("in_hall", { n: inHall })}`;
    line.textContent = text;
  }

  /** The committee's two numbers, saying which one counts for the vote. */
  function renderNumbers() {
    const numbers = $("hall-numbers");
    if (!numbers) return;
    const members = (room.state.hall_members || []).length;
    const inHall = room.state.in_hall;
    numbers.textContent = t("hall_numbers", {
      members,
      people: typeof inHall === "number" ? inHall : t("hall_not_counted"),
    });
    const warning = $("hall-warning");
    const wrong = typeof inHall === "number" && inHall < members;
    warning.hidden = !wrong;
    warning.textContent = wrong ? t("hall_headcount_low", { people: inHall, members }) : "";
  }

  function renderTicks() {
    if (!hallRoll) return;
    const present = new Set(room.state.hall_members || []);
    for (const box of hallRoll.querySelectorAll("input[type=checkbox]")) {
      box.checked = present.has(Number(box.value));
    }
    hallRoll.querySelector("summary").dataset.count = t("hall_ticked", { n: present.size });
  }

  // The committee's tools load only on its page (a villager's phone never downloads them).
  if (room.isHost) {
    importSoon(() => import("./checkin.js"), ({ createCheckin }) => createCheckin(room));
  }

  /** The committee's show-of-hands count, and the numbers the server checked it against. */
  function renderHandsChecked(data) {
    const line = $("hall-hands-check");
    if (!line || typeof data.hall_voters !== "number") return;
    const hands = Object.values(data.counts || {}).reduce((sum, n) => sum + n, 0);
    line.textContent = t("hall_hands_checked", {
      hands,
      hall_voters: data.hall_voters,
      roll: data.roll_called ?? 0,
    });
    line.hidden = false;
  }

  function tickRow(member, memberLabel) {
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
    let rollModule;
    try {
      rollModule = await import("./roll.js");
      roll = await rollModule.fetchRoll();
    } catch {
      rollLoaded = false;
      return;
    }
    $("hall-roll-list").replaceChildren(...roll.map((m) => tickRow(m, rollModule.memberLabel)));
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
    const li = userText("li", "", participant.name);
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
      renderNumbers();
      renderPresence();
      if (room.isHost && typeof room.state.in_hall === "number") {
        $("hall-count").value = String(room.state.in_hall);
      }
    },
    onEvent(name, data) {
      if (name === "vote:hall") renderHandsChecked(data);
      if (name !== "attendance:hall") return;
      room.state.in_hall = data.in_hall;
      room.state.hall_members = data.hall_members || [];
      renderTicks();
      renderNumbers();
      renderPresence();
    },
  };
}

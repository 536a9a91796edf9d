// The hand queue: members raise and lower their hand; the committee gives the
// floor or lowers a hand.

import { $, button, el, userText } from "../lib/dom.js";
import { timeOf } from "../lib/format.js";
import { t } from "../lib/i18n.js";

/** @param {object} room the room's shared state and calls (room.js) */
export function createHands(room) {
  const list = $("hand-queue");
  const handButton = $("hand-button");
  const handStatus = $("hand-status");

  function grant(participantId) {
    const select = $("floor-seconds");
    const seconds = select && select.value ? Number(select.value) : null;
    const payload = { participant_id: participantId };
    if (seconds) payload.seconds = seconds;
    return room.act("floor:grant", payload);
  }

  function item(hand, index) {
    const li = el("li", "queue-item");
    li.dataset.participantId = hand.participant_id;
    const since = el("span", "muted small", ` ${timeOf(hand.since)}`);
    li.append(`${index + 1}. `, userText("span", "queue-name", hand.name), since);
    if (room.isHost) {
      const tools = el("span", "queue-tools");
      tools.append(
        button(t("give_floor"), "primary small grant", () => grant(hand.participant_id)),
        button(t("lower_hand"), "secondary small lower", () =>
          room.act("hand:lower", { participant_id: hand.participant_id }),
        ),
      );
      li.append(tools);
    }
    return li;
  }

  /** A member's own hand button: raise or lower, and their place in the queue. */
  function renderMine() {
    const you = room.you;
    const place = room.state.hands.findIndex((h) => h.participant_id === you.id);
    const holding = room.state.floor && room.state.floor.participant_id === you.id;
    $("hand-row").hidden = room.status !== "live" || holding;
    handButton.textContent = place >= 0 ? t("lower_my_hand") : t("raise_hand");
    handButton.classList.toggle("raised", place >= 0);
    handButton.setAttribute("aria-pressed", String(place >= 0));
    handStatus.textContent = place >= 0 ? t("queue_place", { n: place + 1 }) : "";
  }

  function render() {
    const items = room.state.hands.map(item);
    list.replaceChildren(...items);
    $("hand-queue-empty").hidden = items.length > 0;
    if (room.you && room.you.role === "member") renderMine();
    // the page's own summary (the host page's hand count at the top) follows the queue;
    // `joined`: the queue is the room's (not the empty one before the join's answer)
    const detail = { hands: room.state.hands, joined: Boolean(room.you) };
    list.dispatchEvent(new CustomEvent("hands:render", { bubbles: true, detail }));
  }

  handButton?.addEventListener("click", async () => {
    const raised = room.state.hands.some((h) => h.participant_id === room.you?.id);
    // offline, a hand would reach the committee late, maybe after the item: say so now
    const notSent = raised ? t("hand_lower_not_sent") : t("hand_not_sent");
    if (!room.connected) {
      handStatus.textContent = notSent;
      return;
    }
    handButton.disabled = true;
    const ack = await room.call(raised ? "hand:lower" : "hand:raise", {});
    handButton.disabled = false;
    if (ack.ok) return;
    handStatus.textContent =
      ack.error?.code === "network_error" ? notSent : room.describe(ack.error);
  });

  return {
    render,
    onEvent(name, data) {
      if (name !== "hand:queue") return;
      room.state.hands = data.queue || [];
      render();
    },
  };
}

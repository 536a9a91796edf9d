// The room's chat: lines with links, the form (and a guest's name form), the
// committee's delete and mute tools. All user text goes in as text, never as HTML.

import { postJSON } from "../lib/api.js";
import { $, button, el, showError, userText } from "../lib/dom.js";
import { timeOf } from "../lib/format.js";
import { t } from "../lib/i18n.js";
import { roleBadge } from "./badges.js";

const URL_PATTERN = /https?:\/\/[^\s<>"'，。！？、；：）】》]+/g;
const MAX_CHAT = 500;

/** Chat text as nodes: plain text, with http(s) links as <a> (never other schemes). */
export function chatTextNodes(text) {
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    if (match.index > last) nodes.push(document.createTextNode(text.slice(last, match.index)));
    let link = null;
    try {
      const url = new URL(match[0]);
      if (url.protocol === "http:" || url.protocol === "https:") link = url;
    } catch {
      link = null;
    }
    if (link) {
      const a = el("a", "", match[0]);
      a.href = link.href;
      a.target = "_blank";
      a.rel = "noopener noreferrer nofollow ugc";
      nodes.push(a);
    } else {
      nodes.push(document.createTextNode(match[0]));
    }
    last = match.index + match[0].length;
  }
  if (last < text.length) nodes.push(document.createTextNode(text.slice(last)));
  return nodes;
}

/** @param {object} room the room's shared state and calls (room.js) */
export function createChat(room) {
  const list = $("chat-list");
  const form = $("chat-form");
  const input = $("chat-input");
  const error = $("chat-error");
  const guestForm = $("guest-form");

  const mayChat = () => {
    const you = room.you;
    const open = room.status === "live" || room.status === "scheduled";
    return Boolean(you && you.role !== "viewer" && !room.state.muted && open);
  };

  function hostTools(message) {
    const tools = el("span", "chat-tools");
    tools.append(
      button(t("delete"), "link-button chat-delete", () =>
        room.act("chat:delete", { id: message.id }),
      ),
      button(t("mute"), "link-button chat-mute", () =>
        room.act("chat:mute", { participant_id: message.author.id, muted: true }),
      ),
    );
    return tools;
  }

  function line(message) {
    const li = el("li", "chat-line");
    li.dataset.id = message.id;
    const head = el("div", "chat-head");
    head.append(userText("span", "chat-author", message.author?.name ?? ""));
    const role = message.author?.role;
    if (role === "guest" || role === "committee") head.append(" ", roleBadge(role));
    head.append(" ", el("time", "chat-time", timeOf(message.at)));
    if (room.isHost && message.author && message.author.id !== room.you?.id) {
      head.append(" ", hostTools(message));
    }
    const body = userText("p", "chat-text");
    body.append(...chatTextNodes(message.text ?? ""));
    li.append(head, body);
    return li;
  }

  function scroll(force) {
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    if (force || nearBottom) list.scrollTop = list.scrollHeight;
  }

  function render() {
    list.replaceChildren(...room.state.chat.map(line));
    scroll(true);
  }

  function renderForm() {
    const you = room.you;
    const can = mayChat();
    form.hidden = !you || you.role === "viewer";
    // a visitor without a name may take one, where guests may chat
    if (guestForm) {
      guestForm.hidden = !(you && you.role === "viewer" && room.meeting?.allow_guest_chat);
    }
    input.disabled = !can;
    form.querySelector("button").disabled = !can;
    input.placeholder = room.state.muted ? t("chat_muted") : t("chat_placeholder");
  }

  guestForm?.addEventListener("submit", async (event) => {
    event.preventDefault();
    const guestError = $("guest-error");
    guestError.hidden = true;
    const name = $("guest-name").value.trim();
    if (!name) return;
    try {
      await postJSON("/api/join", { meeting_code: room.meeting.code, name });
    } catch (exc) {
      showError(guestError, exc.status === 429 ? t("guest_rate_limited") : exc.message);
      return;
    }
    // the session cookie now names us: connect again to join the room as a guest
    room.rt.socket.disconnect();
    room.rt.socket.connect();
  });

  input.addEventListener("input", () => {
    const left = MAX_CHAT - input.value.length;
    $("chat-count").textContent = left < 50 ? String(left) : "";
  });

  // A line typed while the network is down stays in the box and is sent after the
  // rejoin (never before it: the server would refuse it). `pending` holds the newest
  // chat id seen when it was first tried, to tell whether a late ack's line arrived.
  let pending = null;
  let sending = false;

  const newestId = () => room.state.chat.reduce((id, m) => Math.max(id, Number(m.id) || 0), 0);

  function waitForNetwork() {
    if (!pending) pending = { after: newestId() };
    showError(error, t("chat_not_sent_offline"));
  }

  function sent() {
    pending = null;
    input.value = "";
    $("chat-count").textContent = "";
    error.hidden = true;
  }

  async function send() {
    const text = input.value;
    if (!text.trim() || sending) return;
    if (!room.connected) {
      waitForNetwork();
      return;
    }
    error.hidden = true;
    const before = newestId();
    const button = form.querySelector("button");
    sending = true;
    button.disabled = true;
    const ack = await room.call("chat:send", { text });
    sending = false;
    button.disabled = !mayChat();
    if (ack.ok) {
      if (input.value === text) sent();
      else pending = null;
    } else if (ack.error?.code === "network_error" && !room.connected) {
      waitForNetwork();
    } else if (ack.error?.code === "network_error") {
      // no answer in time, though the room is joined: the line may still arrive (then
      // arrived() clears the box), so the reader is told it *may* not have been sent
      if (!pending) pending = { after: before };
      showError(error, t("chat_not_sent"));
    } else {
      showError(error, room.describe(ack.error));
    }
  }

  /** A line of ours that reached the room while we thought it had not: done. */
  function arrived(message) {
    if (!pending || message.author?.id !== room.you?.id) return false;
    if (Number(message.id) <= pending.after || message.text !== input.value) return false;
    sent();
    return true;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    await send();
    input.focus();
  });

  input.addEventListener("input", () => {
    if (pending && !input.value.trim()) {
      pending = null; // emptied by hand: nothing waits any more
      error.hidden = true;
    }
  });

  return {
    render,
    renderForm,
    /** In the room again: send the line that waited, unless it got through after all. */
    rejoined() {
      if (!pending) return;
      if (room.state.chat.some(arrived)) return;
      send();
    },
    /** The committee removed this member or re-issued their invite: say so. */
    revoked() {
      showError(error, t("signin_revoked"));
      input.disabled = true;
    },
    onEvent(name, data) {
      const state = room.state;
      if (name === "chat:message") {
        arrived(data);
        state.chat.push(data);
        if (state.chat.length > 300) state.chat.shift();
        list.append(line(data));
        scroll(data.author?.id === room.you?.id);
      } else if (name === "chat:deleted") {
        state.chat = state.chat.filter((m) => m.id !== data.id);
        list.querySelector(`[data-id="${Number(data.id)}"]`)?.remove();
      } else if (name === "chat:muted" && room.you && data.participant_id === room.you.id) {
        state.muted = data.muted;
        renderForm();
      }
    },
  };
}

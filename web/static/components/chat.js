// The room's chat: lines with links, the form (and a guest's name form), the
// committee's delete and mute tools. All user text goes in as text, never as HTML.

import { postJSON } from "../lib/api.js";
import { $, button, el, showError } from "../lib/dom.js";
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
    head.append(el("span", "chat-author", message.author?.name ?? ""));
    const role = message.author?.role;
    if (role === "guest" || role === "committee") head.append(" ", roleBadge(role));
    head.append(" ", el("time", "chat-time", timeOf(message.at)));
    if (room.isHost && message.author && message.author.id !== room.you?.id) {
      head.append(" ", hostTools(message));
    }
    const body = el("p", "chat-text");
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

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value;
    if (!text.trim()) return;
    error.hidden = true;
    const send = form.querySelector("button");
    send.disabled = true;
    const ack = await room.call("chat:send", { text });
    send.disabled = !mayChat();
    if (ack.ok) {
      input.value = "";
      $("chat-count").textContent = "";
    } else {
      showError(error, room.describe(ack.error));
    }
    input.focus();
  });

  return {
    render,
    renderForm,
    /** The committee removed this member or re-issued their invite: say so. */
    revoked() {
      showError(error, t("signin_revoked"));
      input.disabled = true;
    },
    onEvent(name, data) {
      const state = room.state;
      if (name === "chat:message") {
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

// The live room panel, shared by the watch page and the host page: chat, the hand
// queue, who holds the floor, and (for the floor holder) speaking into the hall.
// All user text goes into the page as text (textContent), never as HTML.

import { getJSON, postJSON } from "./api.js";
import { button } from "./dom.js";
import { t } from "./i18n.js";
import { publish } from "./whip.js";

const $ = (id) => document.getElementById(id);
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
      const a = document.createElement("a");
      a.href = link.href;
      a.textContent = match[0];
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

function timeOf(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
}

function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/**
 * @param {object} options meetingId; isHost; rt (from joinMeeting, set later with setRealtime);
 *                         onFloorChange(floor, mine) for the page's own floor audio
 */
export function createRoom(options) {
  const isHost = Boolean(options.isHost);
  const panel = $("room-panel");
  const chatList = $("chat-list");
  const chatForm = $("chat-form");
  const chatInput = $("chat-input");
  const chatError = $("chat-error");
  const chatCount = $("chat-count");
  const queueList = $("hand-queue");
  const queueEmpty = $("hand-queue-empty");
  const handRow = $("hand-row");
  const handButton = $("hand-button");
  const handStatus = $("hand-status");
  const floorBanner = $("floor-banner");
  const floorText = $("floor-text");
  const floorTimer = $("floor-timer");
  const speaking = $("speaking");
  const speakingTimer = $("speaking-timer");
  const speakingError = $("speaking-error");
  const muteButton = $("speak-mute");
  const presenceLine = $("room-presence");

  let rt = null;
  let you = null;
  let meetingStatus = "scheduled";
  let state = { hands: [], floor: null, chat: [], muted: false, in_hall: null, hall_members: [] };
  let micStream = null;
  let micPublisher = null;
  let micMuted = false;

  const isMember = () => you && you.role === "member";
  const mayChat = () => you && you.role !== "viewer" && !state.muted &&
    (meetingStatus === "live" || meetingStatus === "scheduled");

  async function call(event, data) {
    if (!rt) return { ok: false, error: { code: "network_error", message: "" } };
    return rt.call(event, data);
  }

  function describe(error) {
    const code = error && error.code;
    const known = {
      rate_limited: t("chat_rate_limited"),
      muted: t("chat_muted"),
      too_large: t("chat_too_long"),
      forbidden: t("not_allowed"),
      network_error: t("no_connection"),
    };
    return known[code] || (error && error.message) || t("failed");
  }

  // ------------------------------------------------------------- chat

  function chatLine(message) {
    const li = document.createElement("li");
    li.className = "chat-line";
    li.dataset.id = message.id;
    const head = document.createElement("div");
    head.className = "chat-head";
    const author = document.createElement("span");
    author.className = "chat-author";
    author.textContent = message.author?.name ?? "";
    head.append(author);
    const role = message.author?.role;
    if (role === "guest" || role === "committee") {
      const badge = document.createElement("span");
      badge.className = `badge badge-${role}`;
      badge.textContent = role === "guest" ? t("guest") : t("committee");
      head.append(" ", badge);
    }
    const when = document.createElement("time");
    when.className = "chat-time";
    when.textContent = timeOf(message.at);
    head.append(" ", when);
    if (isHost && message.author && message.author.id !== you?.id) {
      const tools = document.createElement("span");
      tools.className = "chat-tools";
      tools.append(
        button(t("delete"), "link-button chat-delete", async () => {
          const ack = await call("chat:delete", { id: message.id });
          if (!ack.ok) window.alert(describe(ack.error));
        }),
        button(t("mute"), "link-button chat-mute", async () => {
          const ack = await call("chat:mute", { participant_id: message.author.id, muted: true });
          if (!ack.ok) window.alert(describe(ack.error));
        }),
      );
      head.append(" ", tools);
    }
    const body = document.createElement("p");
    body.className = "chat-text";
    body.append(...chatTextNodes(message.text ?? ""));
    li.append(head, body);
    return li;
  }

  function scrollChat(force) {
    const nearBottom = chatList.scrollHeight - chatList.scrollTop - chatList.clientHeight < 80;
    if (force || nearBottom) chatList.scrollTop = chatList.scrollHeight;
  }

  function renderChat() {
    chatList.replaceChildren(...state.chat.map(chatLine));
    scrollChat(true);
  }

  const guestForm = $("guest-form");

  function renderChatForm() {
    const can = mayChat();
    chatForm.hidden = !you || you.role === "viewer";
    // a visitor without a name may take one, where guests may chat
    if (guestForm) guestForm.hidden = !(you && you.role === "viewer" && options.meeting?.allow_guest_chat);
    chatInput.disabled = !can;
    chatForm.querySelector("button").disabled = !can;
    chatInput.placeholder = state.muted ? t("chat_muted") : t("chat_placeholder");
  }

  guestForm?.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = $("guest-name").value.trim();
    const error = $("guest-error");
    error.hidden = true;
    if (!name) return;
    try {
      await postJSON("/api/join", { meeting_code: options.meeting.code, name });
    } catch (exc) {
      error.textContent = exc.status === 429 ? t("guest_rate_limited") : exc.message;
      error.hidden = false;
      return;
    }
    // the session cookie now names us: connect again to join the room as a guest
    rt.socket.disconnect();
    rt.socket.connect();
  });

  chatInput.addEventListener("input", () => {
    const left = MAX_CHAT - chatInput.value.length;
    chatCount.textContent = left < 50 ? String(left) : "";
  });

  chatForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = chatInput.value;
    if (!text.trim()) return;
    chatError.hidden = true;
    const send = chatForm.querySelector("button");
    send.disabled = true;
    const ack = await call("chat:send", { text });
    send.disabled = !mayChat();
    if (ack.ok) {
      chatInput.value = "";
      chatCount.textContent = "";
    } else {
      chatError.textContent = describe(ack.error);
      chatError.hidden = false;
    }
    chatInput.focus();
  });

  // ------------------------------------------------------------- hands

  function renderQueue() {
    const items = state.hands.map((hand, index) => {
      const li = document.createElement("li");
      li.className = "queue-item";
      li.dataset.participantId = hand.participant_id;
      const name = document.createElement("span");
      name.className = "queue-name";
      name.textContent = hand.name;
      const since = document.createElement("span");
      since.className = "muted small";
      since.textContent = ` ${timeOf(hand.since)}`;
      li.append(`${index + 1}. `, name, since);
      if (isHost) {
        const tools = document.createElement("span");
        tools.className = "queue-tools";
        tools.append(
          button(t("give_floor"), "primary small grant", () => grant(hand.participant_id)),
          button(t("lower_hand"), "secondary small lower", async () => {
            const ack = await call("hand:lower", { participant_id: hand.participant_id });
            if (!ack.ok) window.alert(describe(ack.error));
          }),
        );
        li.append(tools);
      }
      return li;
    });
    queueList.replaceChildren(...items);
    queueEmpty.hidden = items.length > 0;
    if (isMember()) {
      const place = state.hands.findIndex((h) => h.participant_id === you.id);
      const holding = state.floor && state.floor.participant_id === you.id;
      handRow.hidden = meetingStatus !== "live" || holding;
      handButton.textContent = place >= 0 ? t("lower_my_hand") : t("raise_hand");
      handButton.classList.toggle("raised", place >= 0);
      handButton.setAttribute("aria-pressed", String(place >= 0));
      handStatus.textContent = place >= 0 ? t("queue_place", { n: place + 1 }) : "";
    }
  }

  handButton?.addEventListener("click", async () => {
    const raised = state.hands.some((h) => h.participant_id === you?.id);
    handButton.disabled = true;
    const ack = await call(raised ? "hand:lower" : "hand:raise", {});
    handButton.disabled = false;
    if (!ack.ok) handStatus.textContent = describe(ack.error);
  });

  async function grant(participantId) {
    const select = $("floor-seconds");
    const seconds = select && select.value ? Number(select.value) : null;
    const payload = { participant_id: participantId };
    if (seconds) payload.seconds = seconds;
    const ack = await call("floor:grant", payload);
    if (!ack.ok) window.alert(describe(ack.error));
  }

  // ------------------------------------------------------------- the floor

  function renderFloor() {
    const floor = state.floor;
    const mine = Boolean(floor && you && floor.participant_id === you.id);
    floorBanner.hidden = !floor || mine;
    if (floor && !mine) floorText.textContent = t("floor_holder", { name: floor.name });
    if (speaking) speaking.hidden = !mine; // (the host page has no speaker state)
    document.body.classList.toggle("is-speaking", mine);
    tick();
    renderQueue();
  }

  function tick() {
    const floor = state.floor;
    if (!floor) return;
    const elapsed = (Date.now() - new Date(floor.since).getTime()) / 1000;
    let text = clock(elapsed);
    if (floor.until) {
      const left = (new Date(floor.until).getTime() - Date.now()) / 1000;
      text = t("time_left", { time: clock(left) });
    }
    floorTimer.textContent = text;
    if (speakingTimer) speakingTimer.textContent = text;
  }
  setInterval(tick, 1000);

  async function startSpeaking() {
    if (micPublisher) return;
    speakingError.hidden = true;
    try {
      micStream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
        video: false,
      });
    } catch (error) {
      speakingError.textContent = error && error.name === "NotAllowedError" ? t("mic_denied") : t("mic_failed");
      speakingError.hidden = false;
      return;
    }
    if (!state.floor || state.floor.participant_id !== you?.id) {
      stopSpeaking(); // the floor ended while the browser asked
      return;
    }
    micMuted = false;
    muteButton.textContent = t("mute_mic");
    micPublisher = publish(`/whip/${encodeURIComponent(options.meetingId)}`, micStream, {
      onState(next, error) {
        if (next === "failed") {
          speakingError.textContent = `${t("mic_send_failed")} ${error?.message ?? ""}`;
          speakingError.hidden = false;
        }
        speaking.dataset.state = next;
      },
    });
  }

  function stopSpeaking() {
    const publisher = micPublisher;
    micPublisher = null;
    if (publisher) publisher.stop();
    if (micStream) for (const track of micStream.getTracks()) track.stop();
    micStream = null;
  }

  muteButton?.addEventListener("click", () => {
    if (!micStream) return;
    micMuted = !micMuted;
    for (const track of micStream.getAudioTracks()) track.enabled = !micMuted;
    muteButton.textContent = micMuted ? t("unmute_mic") : t("mute_mic");
    muteButton.classList.toggle("muted", micMuted);
  });

  $("floor-revoke")?.addEventListener("click", async () => {
    const ack = await call("floor:revoke", {});
    if (!ack.ok) window.alert(describe(ack.error));
  });

  function floorChanged() {
    const mine = Boolean(state.floor && you && state.floor.participant_id === you.id);
    if (mine) startSpeaking();
    else stopSpeaking();
    options.onFloorChange?.(state.floor, mine);
    renderFloor();
  }

  // ------------------------------------------------------------- presence and the hall

  function renderPresence(presence) {
    if (!presenceLine || !presence) return;
    let text = t("online", { n: presence.online ?? 0 });
    const inHall = presence.in_hall ?? state.in_hall;
    if (typeof inHall === "number") text += ` · ${t("in_hall", { n: inHall })}`;
    presenceLine.textContent = text;
  }

  $("hall-form")?.addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("hall-count");
    const value = input.value.trim() === "" ? null : Number(input.value);
    if (value !== null && (!Number.isInteger(value) || value < 0)) {
      input.setAttribute("aria-invalid", "true");
      return;
    }
    input.removeAttribute("aria-invalid");
    const ack = await call("attendance:hall", { in_hall: value });
    $("hall-status").textContent = ack.ok ? t("saved") : describe(ack.error);
  });

  // Ticking members present in the hall, from the roll (for the quorum and the minutes).
  const hallRoll = $("hall-roll");
  let rollLoaded = false;

  function renderHallTicks() {
    if (!hallRoll) return;
    const present = new Set(state.hall_members || []);
    for (const box of hallRoll.querySelectorAll("input[type=checkbox]")) {
      box.checked = present.has(Number(box.value));
    }
    hallRoll.querySelector("summary").dataset.count = t("hall_ticked", { n: present.size });
  }

  hallRoll?.addEventListener("toggle", async () => {
    if (!hallRoll.open || rollLoaded) return;
    rollLoaded = true;
    let roll = [];
    try {
      roll = (await getJSON("/api/members")).members;
    } catch (error) {
      rollLoaded = false;
      return;
    }
    const items = roll.map((m) => {
      const li = document.createElement("li");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.id = `hall-member-${m.id}`;
      box.value = String(m.id);
      const label = document.createElement("label");
      label.htmlFor = box.id;
      label.textContent = m.household ? `${m.name}（${m.household}）` : m.name;
      box.addEventListener("change", async () => {
        const ack = await call("attendance:hall", { member_id: m.id, present: box.checked });
        if (!ack.ok) {
          box.checked = !box.checked;
          window.alert(describe(ack.error));
        }
      });
      li.append(box, " ", label);
      return li;
    });
    $("hall-roll-list").replaceChildren(...items);
    renderHallTicks();
  });

  // 委托投票: the committee registers who votes for a member who cannot attend.
  const proxies = $("proxies");
  const proxyBase = `/api/meetings/${encodeURIComponent(options.meetingId)}/proxies`;

  async function loadProxies() {
    const [roll, listed] = await Promise.all([getJSON("/api/members"), getJSON(proxyBase)]);
    for (const id of ["proxy-member", "proxy-holder"]) {
      $(id).replaceChildren(...roll.members.map((m) => {
        const option = document.createElement("option");
        option.value = String(m.id);
        option.textContent = m.household ? `${m.name}（${m.household}）` : m.name;
        return option;
      }));
    }
    $("proxy-list").replaceChildren(...listed.proxies.map((p) => {
      const li = document.createElement("li");
      li.textContent = t("proxy_line", { proxy: p.proxy.name, member: p.member.name });
      return li;
    }));
  }

  proxies?.addEventListener("toggle", () => {
    if (proxies.open) loadProxies().catch(() => {});
  });

  $("proxy-form")?.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("proxy-error");
    error.hidden = true;
    try {
      await postJSON(proxyBase, {
        member_id: Number($("proxy-member").value),
        proxy_id: Number($("proxy-holder").value),
      });
      await loadProxies();
    } catch (exc) {
      error.textContent = exc.message;
      error.hidden = false;
    }
  });

  $("who-button")?.addEventListener("click", async () => {
    const ack = await call("attendance:list", {});
    const list = $("who-list");
    if (!ack.ok) {
      list.replaceChildren(document.createTextNode(describe(ack.error)));
      return;
    }
    const items = ack.participants.map((p) => {
      const li = document.createElement("li");
      li.textContent = p.name;
      if (p.role !== "member") {
        const badge = document.createElement("span");
        badge.className = `badge badge-${p.role}`;
        badge.textContent = p.role === "guest" ? t("guest") : t("committee");
        li.append(" ", badge);
      }
      return li;
    });
    if (ack.anonymous) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = t("anonymous_viewers", { n: ack.anonymous });
      items.push(li);
    }
    list.replaceChildren(...items);
  });

  // ------------------------------------------------------------- the agenda

  const agendaItems = () => document.querySelectorAll("#agenda .agenda-item");
  if (isHost) {
    for (const li of agendaItems()) {
      const go = button(t("make_current"), "secondary small agenda-goto", async () => {
        const ack = await call("agenda:goto", { item_id: Number(li.dataset.itemId) });
        if (!ack.ok) window.alert(describe(ack.error));
      });
      li.append(go);
    }
  }

  function renderAgenda(currentId) {
    for (const li of agendaItems()) {
      const current = Number(li.dataset.itemId) === currentId;
      li.classList.toggle("current", current);
      if (current) li.setAttribute("aria-current", "step");
      else li.removeAttribute("aria-current");
    }
  }

  // ------------------------------------------------------------- events

  return {
    setRealtime(realtime) {
      rt = realtime;
    },
    onJoin(ack) {
      you = ack.you;
      const s = ack.state || {};
      meetingStatus = s.meeting?.status || meetingStatus;
      state = {
        hands: s.hands || [],
        floor: s.floor || null,
        chat: s.chat || [],
        muted: Boolean(s.muted),
        in_hall: s.in_hall ?? null,
        hall_members: s.hall_members || [],
      };
      renderHallTicks();
      if (isHost && typeof state.in_hall === "number") $("hall-count").value = String(state.in_hall);
      panel.hidden = false;
      renderChat();
      renderChatForm();
      floorChanged();
      renderAgenda(s.current_item ?? null);
    },
    onStatus(status) {
      meetingStatus = status;
      renderChatForm();
      renderQueue();
    },
    onPresence: renderPresence,
    /** The committee removed this member or re-issued their invite: say so, send nothing more. */
    onRevoked() {
      rt = null;
      chatError.textContent = t("signin_revoked");
      chatError.hidden = false;
      chatInput.disabled = true;
    },
    onEvent(name, data) {
      switch (name) {
        case "chat:message":
          state.chat.push(data);
          if (state.chat.length > 300) state.chat.shift();
          chatList.append(chatLine(data));
          scrollChat(data.author?.id === you?.id);
          break;
        case "chat:deleted":
          state.chat = state.chat.filter((m) => m.id !== data.id);
          chatList.querySelector(`[data-id="${Number(data.id)}"]`)?.remove();
          break;
        case "chat:muted":
          if (you && data.participant_id === you.id) {
            state.muted = data.muted;
            renderChatForm();
          }
          break;
        case "hand:queue":
          state.hands = data.queue || [];
          renderQueue();
          break;
        case "floor:changed":
          state.floor = data.participant_id
            ? { participant_id: data.participant_id, name: data.name, since: data.since, until: data.until }
            : null;
          if (Array.isArray(data.queue)) state.hands = data.queue; // the speaker's hand came down
          floorChanged();
          break;
        case "agenda:current":
          renderAgenda(data.item_id);
          break;
        case "attendance:hall":
          state.in_hall = data.in_hall;
          state.hall_members = data.hall_members || [];
          renderHallTicks();
          break;
        default:
          break;
      }
    },
    get you() {
      return you;
    },
    stop: stopSpeaking,
  };
}

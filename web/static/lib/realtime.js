// socket.io for a meeting page: connect (the session cookie authenticates),
// join the meeting's room on every (re)connect, and hand events to the page.
//
// Stored events carry a per-meeting "seq". Each join's ack holds a snapshot of the
// room (queue, floor, the chat's tail) as of its seq; the page redraws from it, and
// events are then handed over once each, in seq order, never twice. (After a
// reconnect the page also sends the last seq it saw, so the server replays what
// was missed; the snapshot already covers those.)

import { io } from "/vendor/socket.io-client/socket.io.esm.min.js";
import { pageLang } from "./i18n.js";

/** Stored events a page may listen to with handlers.onEvent(name, data). */
export const ROOM_EVENTS = [
  "chat:message",
  "chat:deleted",
  "chat:muted",
  "hand:queue",
  "floor:changed",
  "attendance:hall",
  "attendance:joined",
  "attendance:left",
  "agenda:current",
  "vote:opened",
  "vote:hall",
  "vote:closed",
  "suggestion:posted",
  "suggestion:answered",
  "proxy:registered",
];

/**
 * @param {number|string} meetingId
 * @param {object} handlers onJoin(ack) after each successful join (ack: {ok, you, state, seq});
 *                          onJoinError(error); onPresence(p); onStatus(s);
 *                          onConnectionChange(inRoom): false as soon as the link drops (or the
 *                          browser goes offline), true after each successful (re)join;
 *                          onRevoked({reason}) when the committee revoked this member's sign-in;
 *                          onEvent(name, data) for stored room events (after onJoin's snapshot)
 *                          onRecording(r) for the transient recording:status
 * @returns {{socket, call(event, data, timeoutMs?): Promise<object>, lastSeq(): number, joined(): boolean}}
 */
export function joinMeeting(meetingId, handlers = {}) {
  // auth.lang: the server answers refusals in the page's language (its WebSocket
  // handshake need not carry Accept-Language)
  const socket = io({ transports: ["websocket", "polling"], auth: { lang: pageLang() } });
  let lastSeq = null; // the newest seq handed over
  let snapshotSeq = 0; // the seq the last join's state reflects
  let joining = false;
  let joined = false; // in the room now: events may be sent
  let buffered = [];
  let waiting = []; // calls made while not in the room: sent once it is joined again

  function deliver(name, data) {
    if (typeof data.seq === "number") {
      if (data.seq <= snapshotSeq || (lastSeq !== null && data.seq <= lastSeq)) return;
      lastSeq = data.seq;
    }
    if (name === "meeting:status") handlers.onStatus?.(data);
    else handlers.onEvent?.(name, data);
  }

  function receive(name, data) {
    if (!data || typeof data !== "object") return;
    if (joining) buffered.push([name, data]);
    else deliver(name, data);
  }

  /** Out of the room (the link dropped, or the phone says it is offline): say so once. */
  function lost() {
    const was = joined;
    joined = false;
    if (!socket.io.reconnection()) return; // revoked: nothing to reconnect to (onRevoked says why)
    if (was || !navigator.onLine) handlers.onConnectionChange?.(false);
  }

  /** Join (again) with the last seq seen; resolves true once in the room. */
  function join(timeoutMs) {
    joining = true;
    buffered = [];
    const payload = { meeting_id: meetingId };
    if (lastSeq !== null) payload.since_seq = lastSeq;
    return new Promise((resolve) => {
      const answered = (error, ack) => {
        const events = buffered.sort((a, b) => (a[1].seq ?? 0) - (b[1].seq ?? 0));
        joining = false;
        buffered = [];
        if (error) {
          for (const [name, data] of events) deliver(name, data);
          resolve(false);
          return;
        }
        if (ack && ack.ok) {
          snapshotSeq = ack.seq || 0;
          handlers.onJoin?.(ack);
          for (const [name, data] of events) deliver(name, data);
          if (lastSeq === null || lastSeq < snapshotSeq) lastSeq = snapshotSeq;
          joined = true;
          handlers.onConnectionChange?.(true);
          const calls = waiting;
          waiting = [];
          for (const resume of calls) resume(true);
          resolve(true);
        } else {
          const failure = (ack && ack.error) || { code: "unknown", message: "join failed" };
          handlers.onJoinError?.(failure);
          // the server's database is busy or down for a moment (a 503 with retry_after):
          // join again then, by itself, as after a lost connection
          if (["busy", "unavailable"].includes(failure.code) && failure.retry_after > 0) {
            setTimeout(() => {
              if (socket.connected && !joined && !joining) join(0);
            }, failure.retry_after * 1000);
          }
          resolve(false);
        }
      };
      if (timeoutMs) socket.timeout(timeoutMs).emit("join", payload, answered);
      else socket.emit("join", payload, (ack) => answered(null, ack));
    });
  }

  // Re-join on every (re)connect: a new connection is in no room.
  socket.on("connect", () => join(0));
  socket.on("disconnect", (reason) => {
    // the page itself reconnects (e.g. a guest who took a name): no banner for that
    if (reason === "io client disconnect") {
      joined = false;
      return;
    }
    lost();
    // The server closed the connection (its flood or join-time limits, a restart):
    // socket.io does not come back by itself then. Come back after a pause, unless the
    // sign-in was revoked (reconnection is off then, and onRevoked says why).
    if (reason === "io server disconnect" && socket.io.reconnection()) {
      setTimeout(() => {
        if (!socket.connected && socket.io.reconnection()) socket.connect();
      }, 2000 + Math.random() * 3000);
    }
  });
  socket.on("connect_error", (error) => {
    if (!navigator.onLine) lost(); // e.g. the page came from the cache on a phone without network
    // refused for a moment (the server's database busy or down): socket.io does not
    // come back by itself after a refusal, so connect again after its retry_after
    const retryAfter = Number(error && error.data && error.data.retry_after);
    if (retryAfter > 0 && !socket.active) {
      setTimeout(() => {
        if (!socket.connected && socket.io.reconnection()) socket.connect();
      }, retryAfter * 1000);
    }
  });
  // The phone says its network is gone: tell the reader at once (socket.io itself
  // notices a dead link only after its ping timeout).
  window.addEventListener("offline", lost);
  // The network is back, perhaps another one (Wi-Fi to 4G): the old connection may be
  // dead without knowing it. Ask the server; without a quick answer, connect anew.
  window.addEventListener("online", async () => {
    if (!socket.io.reconnection()) return; // revoked
    if (socket.connected && (await join(5000))) return;
    socket.disconnect().connect();
  });
  // this member was taken off the roll or given a new invite: the server closes the
  // socket next; reconnecting would only come back as someone else (or be refused)
  socket.on("session:revoked", (data) => {
    socket.io.reconnection(false);
    handlers.onRevoked?.(data || {});
  });
  socket.on("presence", (presence) => handlers.onPresence?.(presence || {}));
  socket.on("vote:progress", (progress) => handlers.onVoteProgress?.(progress || {}));
  // transient, no seq: how the meeting's recording stands (GET …/recording's object)
  socket.on("recording:status", (recording) => handlers.onRecording?.(recording || {}));
  socket.on("meeting:status", (status) => receive("meeting:status", status || {}));
  for (const name of ROOM_EVENTS) socket.on(name, (data) => receive(name, data));

  /** Resolves true once in the room, false after timeoutMs. */
  function whenJoined(timeoutMs) {
    if (joined) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        waiting = waiting.filter((w) => w !== resume);
        resolve(false);
      }, timeoutMs);
      const resume = (ok) => {
        clearTimeout(timer);
        resolve(ok);
      };
      waiting.push(resume);
    });
  }

  return {
    socket,
    lastSeq: () => lastSeq,
    /** In the room now (events sent now reach it). */
    joined: () => joined,
    /**
     * Send a client event; resolves with its ack ({ok: false, error} on timeout too).
     * Out of the room (offline, reconnecting) it waits for the next join, at most
     * timeoutMs, and is never sent before it: the server would refuse it.
     */
    async call(event, data = {}, timeoutMs = 8000) {
      const offline = { ok: false, error: { code: "network_error", message: "no answer" } };
      if (!(await whenJoined(timeoutMs))) return offline;
      return socket
        .timeout(timeoutMs)
        .emitWithAck(event, data)
        .catch(() => offline);
    },
  };
}

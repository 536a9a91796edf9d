// socket.io for a meeting page: connect (the session cookie authenticates),
// join the meeting's room on every (re)connect, and hand events to the page.
//
// Stored events carry a per-meeting "seq". Each join's ack holds a snapshot of the
// room (queue, floor, the chat's tail) as of its seq; the page redraws from it, and
// events are then handed over once each, in seq order, never twice. (After a
// reconnect the page also sends the last seq it saw, so the server replays what
// was missed; the snapshot already covers those.)

import { io } from "/vendor/socket.io-client/socket.io.esm.min.js";

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
 *                          onJoinError(error); onPresence(p); onStatus(s); onConnectionChange(connected);
 *                          onRevoked({reason}) when the committee revoked this member's sign-in;
 *                          onEvent(name, data) for stored room events (after onJoin's snapshot)
 *                          onRecording(r) for the transient recording:status
 * @returns {{socket, call(event, data, timeoutMs?): Promise<object>, lastSeq(): number}}
 */
export function joinMeeting(meetingId, handlers = {}) {
  const socket = io({ transports: ["websocket", "polling"] });
  let lastSeq = null; // the newest seq handed over
  let snapshotSeq = 0; // the seq the last join's state reflects
  let joining = false;
  let buffered = [];

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

  socket.on("connect", () => {
    handlers.onConnectionChange?.(true);
    // Re-join on every (re)connect: a new connection is in no room.
    joining = true;
    buffered = [];
    const payload = { meeting_id: meetingId };
    if (lastSeq !== null) payload.since_seq = lastSeq;
    socket.emit("join", payload, (ack) => {
      const events = buffered.sort((a, b) => (a[1].seq ?? 0) - (b[1].seq ?? 0));
      joining = false;
      buffered = [];
      if (ack && ack.ok) {
        snapshotSeq = ack.seq || 0;
        handlers.onJoin?.(ack);
        for (const [name, data] of events) deliver(name, data);
        if (lastSeq === null || lastSeq < snapshotSeq) lastSeq = snapshotSeq;
      } else {
        handlers.onJoinError?.((ack && ack.error) || { code: "unknown", message: "join failed" });
      }
    });
  });
  socket.on("disconnect", () => handlers.onConnectionChange?.(false));
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

  return {
    socket,
    lastSeq: () => lastSeq,
    /** Send a client event; resolves with its ack ({ok: false, error} on timeout too). */
    call(event, data = {}, timeoutMs = 8000) {
      return socket
        .timeout(timeoutMs)
        .emitWithAck(event, data)
        .catch(() => ({ ok: false, error: { code: "network_error", message: "no answer" } }));
    },
  };
}

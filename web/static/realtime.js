// socket.io for a meeting page: connect (the session cookie authenticates),
// join the meeting's room on every (re)connect, and hand events to the page.

import { io } from "/vendor/socket.io-client/socket.io.esm.min.js";

/**
 * @param {number|string} meetingId
 * @param {object} handlers onJoin(ack) after each successful join (ack: {ok, you, state, seq});
 *                          onJoinError(error); onPresence(p); onStatus(s); onConnectionChange(connected)
 * @returns the socket (call .disconnect() to leave)
 */
export function joinMeeting(meetingId, handlers = {}) {
  const socket = io({ transports: ["websocket", "polling"] });
  socket.on("connect", () => {
    handlers.onConnectionChange?.(true);
    // Re-join on every (re)connect: a new connection is in no room.
    socket.emit("join", { meeting_id: meetingId }, (ack) => {
      if (ack && ack.ok) handlers.onJoin?.(ack);
      else handlers.onJoinError?.((ack && ack.error) || { code: "unknown", message: "join failed" });
    });
  });
  socket.on("disconnect", () => handlers.onConnectionChange?.(false));
  socket.on("presence", (presence) => handlers.onPresence?.(presence || {}));
  socket.on("meeting:status", (status) => handlers.onStatus?.(status || {}));
  return socket;
}

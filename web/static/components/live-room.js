// What the watch and host pages share: the room panel, votes and suggestions, joined
// to the meeting over socket.io. The page adds its own handlers for the video.

import { joinMeeting } from "../lib/realtime.js";
import { createConnectionBanner } from "./connection-banner.js";
import { createRoom } from "./room.js";
import { createSuggestions } from "./suggestions.js";
import { createVotes } from "./votes.js";

/**
 * @param {object} meeting the page's meeting (id, agenda, …)
 * @param {object} options isHost; onFloorChange(floor, mine); and joinMeeting's handlers
 *                         (onJoin, onPresence, onStatus, … run after the panels')
 * @returns {{room, realtime}}
 */
export function joinLiveRoom(meeting, { isHost, onFloorChange, ...handlers }) {
  const meetingId = meeting.id;
  const room = createRoom({ meetingId, meeting, isHost, onFloorChange });
  const ballots = createVotes({ meetingId, isHost });
  const notes = createSuggestions({ meetingId, isHost, agenda: meeting.agenda });
  const panels = [room, ballots, notes];
  const banner = createConnectionBanner();
  const realtime = joinMeeting(meetingId, {
    ...handlers,
    onJoin(ack) {
      for (const panel of panels) panel.onJoin(ack);
      handlers.onJoin?.(ack);
    },
    onEvent(name, data) {
      for (const panel of panels) panel.onEvent(name, data);
    },
    onVoteProgress: ballots.onProgress,
    onRevoked: room.onRevoked,
    onConnectionChange(inRoom) {
      banner.update(inRoom);
      room.onConnectionChange(inRoom);
      handlers.onConnectionChange?.(inRoom);
    },
    onPresence(presence) {
      banner.presenceArrived();
      room.onPresence(presence);
      handlers.onPresence?.(presence);
    },
    onStatus(event) {
      room.onStatus(event.status);
      handlers.onStatus?.(event);
    },
  });
  room.setRealtime(realtime);
  ballots.setRealtime(realtime);
  return { room, realtime };
}

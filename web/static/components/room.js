// The live room panel, shared by the watch page and the host page: chat, the hand
// queue, who holds the floor, the hall, the agenda. Each part is a component of its
// own; this one holds what they share (who we are, the meeting's status, the room's
// state from the join ack) and hands them the socket.io events.

import { $, importSoon } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { createAgenda } from "./agenda.js";
import { createChat } from "./chat.js";
import { createFloor } from "./floor.js";
import { createHall } from "./hall.js";
import { createHands } from "./hands.js";

const EMPTY_ROOM = { hands: [], floor: null, chat: [], muted: false, in_hall: null, hall_members: [] };

/** An ack error in the reader's words: the server answers in the page's language. */
function describe(error) {
  if (error && error.code === "network_error") return t("no_connection"); // no answer came
  return (error && error.message) || t("failed");
}

/**
 * @param {object} options meetingId; meeting; isHost; onFloorChange(floor, mine) for the
 *                         page's own floor audio. The realtime connection comes later
 *                         (setRealtime), as joinMeeting needs the room's handlers.
 */
export function createRoom(options) {
  const room = {
    isHost: Boolean(options.isHost),
    meetingId: options.meetingId,
    meeting: options.meeting,
    rt: null, // from joinMeeting
    connected: false, // in the meeting's room now (false while the network is down)
    you: null, // the join ack's participant
    status: "scheduled", // the meeting's
    state: { ...EMPTY_ROOM },
    describe,
    call(event, data) {
      if (!room.rt) return Promise.resolve({ ok: false, error: { code: "network_error", message: "" } });
      return room.rt.call(event, data);
    },
    /** A committee action: the reader is told if it was refused. */
    async act(event, data) {
      const ack = await room.call(event, data);
      if (!ack.ok) window.alert(describe(ack.error));
      return ack;
    },
  };
  const chat = createChat(room);
  const hands = createHands(room);
  const floor = createFloor(room, { onChange: options.onFloorChange, afterRender: hands.render });
  const hall = createHall(room);
  const agenda = createAgenda(room);
  const parts = [chat, hands, floor, hall, agenda];
  // committee only: villagers on a weak link do not download it
  if (room.isHost) {
    importSoon(() => import("./proxies.js"), ({ setupProxies }) => setupProxies(room.meetingId));
  }

  return {
    setRealtime(realtime) {
      room.rt = realtime;
    },
    onJoin(ack) {
      room.you = ack.you;
      const s = ack.state || {};
      room.status = s.meeting?.status || room.status;
      room.state = {
        hands: s.hands || [],
        floor: s.floor || null,
        chat: s.chat || [],
        muted: Boolean(s.muted),
        in_hall: s.in_hall ?? null,
        hall_members: s.hall_members || [],
      };
      hall.reset();
      $("room-panel").hidden = false;
      chat.render();
      chat.renderForm();
      floor.changed();
      agenda.render(s.current_item ?? null);
    },
    onStatus(status) {
      room.status = status;
      chat.renderForm();
      hands.render();
    },
    onPresence: hall.renderPresence,
    /** In the room again (after a drop: send what waited), or out of it. */
    onConnectionChange(inRoom) {
      room.connected = inRoom;
      if (inRoom) chat.rejoined();
    },
    /** The committee removed this member or re-issued their invite: send nothing more. */
    onRevoked() {
      room.rt = null;
      chat.revoked();
    },
    onEvent(name, data) {
      for (const part of parts) part.onEvent(name, data);
    },
    get you() {
      return room.you;
    },
    stop: floor.stop,
  };
}

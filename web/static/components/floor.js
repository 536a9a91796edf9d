// The floor: who holds it (a banner with a timer), and for the holder speaking
// into the hall over WHIP with their microphone; the committee can take it back.
// Given the floor, the member's screen changes wherever it is scrolled: the speaking
// state is a sheet fixed to the bottom of the screen (mute button and timer in it),
// with a vibration and two short beeps (lib/alert.js).

import { primeAlerts, signal } from "../lib/alert.js";
import { $ } from "../lib/dom.js";
import { stopwatch } from "../lib/format.js";
import { t } from "../lib/i18n.js";

/**
 * @param {object} room the room's shared state and calls (room.js)
 * @param {object} options onChange(floor, mine) after each change (the page's floor audio);
 *                         afterRender() (the hand queue shows whether we hold the floor)
 */
export function createFloor(room, options = {}) {
  const banner = $("floor-banner");
  const speaking = $("speaking"); // (the host page has no speaker state)
  const speakingError = $("speaking-error");
  const muteButton = $("speak-mute");
  let micStream = null;
  let micPublisher = null;
  let micMuted = false;
  let wasMine = false;
  if (speaking) primeAlerts(); // the sound may then start without a tap of its own

  const mine = () => {
    const floor = room.state.floor;
    return Boolean(floor && room.you && floor.participant_id === room.you.id);
  };

  function tick() {
    const floor = room.state.floor;
    if (!floor) return;
    const elapsed = (Date.now() - new Date(floor.since).getTime()) / 1000;
    let text = stopwatch(elapsed);
    if (floor.until) {
      const left = (new Date(floor.until).getTime() - Date.now()) / 1000;
      text = t("time_left", { time: stopwatch(left) });
    }
    $("floor-timer").textContent = text;
    const speakingTimer = $("speaking-timer");
    if (speakingTimer) speakingTimer.textContent = text;
  }
  setInterval(tick, 1000);

  function render() {
    const floor = room.state.floor;
    const isMine = mine();
    banner.hidden = !floor || isMine;
    if (floor && !isMine) $("floor-text").textContent = t("floor_holder", { name: floor.name });
    if (speaking) speaking.hidden = !isMine;
    document.body.classList.toggle("is-speaking", isMine);
    // the page can still scroll past the sheet to its end
    if (speaking && isMine) {
      document.body.style.setProperty("--speaking-sheet", `${speaking.offsetHeight}px`);
    }
    tick();
    options.afterRender?.();
  }

  function speakingFailed(message) {
    speakingError.textContent = message;
    speakingError.hidden = false;
  }

  async function startSpeaking() {
    if (micPublisher) return;
    speakingError.hidden = true;
    try {
      micStream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
        video: false,
      });
    } catch (error) {
      speakingFailed(error && error.name === "NotAllowedError" ? t("mic_denied") : t("mic_failed"));
      return;
    }
    if (!mine()) {
      stopSpeaking(); // the floor ended while the browser asked
      return;
    }
    micMuted = false;
    muteButton.textContent = t("mute_mic");
    let publish;
    try {
      ({ publish } = await import("../lib/whip.js")); // loaded only once given the floor
    } catch {
      stopSpeaking();
      speakingFailed(t("mic_send_failed"));
      return;
    }
    if (!mine() || !micStream || micPublisher) {
      if (!micPublisher) stopSpeaking();
      return;
    }
    micPublisher = publish(`/whip/${encodeURIComponent(room.meetingId)}`, micStream, {
      onState(next, error) {
        if (next === "failed") speakingFailed(`${t("mic_send_failed")} ${error?.message ?? ""}`);
        speaking.dataset.state = next;
      },
    });
  }

  /** @param {object} [how] closedByServer: the floor ended, and the server closed our session with it */
  function stopSpeaking(how) {
    const publisher = micPublisher;
    micPublisher = null;
    if (publisher) publisher.stop(how);
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

  $("floor-revoke")?.addEventListener("click", () => room.act("floor:revoke", {}));

  /** The floor changed (or the room was joined): speak if it is ours, then redraw. */
  function changed() {
    const isMine = mine();
    if (isMine && !wasMine && speaking) signal({ vibrate: true, sound: true });
    wasMine = isMine;
    if (isMine) startSpeaking();
    else stopSpeaking({ closedByServer: true });
    options.onChange?.(room.state.floor, isMine);
    render();
  }

  return {
    changed,
    stop: stopSpeaking,
    onEvent(name, data) {
      if (name !== "floor:changed") return;
      const { participant_id: id, name: who, since, until } = data;
      room.state.floor = id ? { participant_id: id, name: who, since, until } : null;
      if (Array.isArray(data.queue)) room.state.hands = data.queue; // the speaker's hand came down
      changed();
    },
  };
}

// While live, the host device plays the floor speaker's voice through its speaker,
// so the hall hears them (the browser's echo cancellation keeps it out of our mic).

import { $ } from "../../lib/dom.js";
import { play } from "../../lib/whep.js";

export function createFloorListener(meetingId) {
  const audio = $("floor-audio");
  let listener = null;

  function start() {
    if (listener) return;
    listener = play(`/whep/${encodeURIComponent(meetingId)}`, {
      floor: "only",
      onFloorTrack(track) {
        audio.srcObject = new MediaStream([track]);
        audio.play().catch(() => {});
      },
    });
  }

  function stop() {
    const current = listener;
    listener = null;
    if (current) current.stop();
    audio.srcObject = null;
  }

  return { start, stop };
}

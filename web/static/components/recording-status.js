// The meeting's recording as the host sees it: "recording 00:12:34", processing
// progress, ready (replay link), interrupted, failed with the reason and a retry;
// "Disk full: recording paused" while a full disk holds it up (`paused: "disk_full"`).
//
//   const rec = createRecordingStatus({ meetingId, root: element, canRetry: true });
//   rec.update(recordingObject)   // from GET …/recording or the recording:status event

import { ApiError, getJSON, postJSON } from "../lib/api.js";
import { button, el } from "../lib/dom.js";
import { longClock as clock } from "../lib/format.js";
import { t } from "../lib/i18n.js";

/** The share of post-processing done, 0..100, from the per-step statuses. */
function progressOf(steps) {
  const names = ["hls", "mp4", "audio", "thumbnails"];
  let done = 0;
  for (const name of names) {
    const step = (steps || {})[name] || {};
    if (step.status === "done") done += 1;
    else if (step.status === "running") done += Number(step.progress) || 0;
  }
  return Math.round((100 * done) / names.length);
}

/** The line for a recording held up (`paused` of the recording object), e.g. "disk_full". */
export function pausedText(reason) {
  return reason === "disk_full" ? t("rec_disk_full") : String(reason);
}

export function createRecordingStatus({ meetingId, root, canRetry = false }) {
  let recording = null;
  let receivedAt = 0;
  const base = `/api/meetings/${encodeURIComponent(meetingId)}/recording`;

  function latest() {
    const parts = (recording && recording.parts) || [];
    return parts.length ? parts[parts.length - 1] : recording;
  }

  function render() {
    root.replaceChildren();
    if (recording && recording.paused) {
      // a full recordings disk: what was recorded is kept, a new part starts by itself
      root.hidden = false;
      root.dataset.status = "paused";
      root.append(el("span", "rec-dot idle"), pausedText(recording.paused));
      return;
    }
    const part = latest();
    if (!part) {
      root.hidden = true;
      return;
    }
    root.hidden = false;
    root.dataset.status = part.status;
    const replay = el("a", "rec-replay", t("rec_replay"));
    replay.href = `/meetings/${encodeURIComponent(meetingId)}/replay`;
    switch (part.status) {
      case "recording":
        if (!part.started_at) {
          root.append(el("span", "rec-dot idle"), t("rec_waiting"));
        } else {
          const elapsed = (part.duration || 0) + (Date.now() - receivedAt) / 1000;
          root.append(el("span", "rec-dot"), t("rec_recording", { time: clock(elapsed) }));
        }
        break;
      case "processing":
        root.append(t("rec_processing", { n: progressOf(part.steps) }));
        break;
      case "ready":
        root.append(t("rec_ready", { time: clock(part.duration) }), " · ", replay);
        break;
      case "interrupted":
        root.append(t("rec_interrupted", { time: clock(part.duration) }), " · ", replay);
        break;
      case "failed": {
        root.append(t("rec_failed", { reason: part.error || "" }));
        if (canRetry) {
          const retry = button(t("rec_retry"), "small secondary", async () => {
            retry.disabled = true;
            try {
              await postJSON(`${base}/retry`);
            } catch {
              retry.disabled = false;
            }
          });
          root.append(" ", retry);
        }
        break;
      }
      case "expired":
        root.append(t("rec_expired"));
        break;
      default:
        root.append(String(part.status));
    }
  }

  function update(next) {
    // none (not started) unless the disk is full before the first part
    recording = next && ((next.parts && next.parts.length) || next.paused) ? next : null;
    receivedAt = Date.now();
    render();
  }

  async function load() {
    try {
      // nothing recorded yet is a 200 with no parts (a 404 would be a console error)
      update(await getJSON(`${base}?if_none=empty`));
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) update(null);
    }
  }

  // the duration counts up between updates
  setInterval(() => {
    const part = latest();
    if (part && part.status === "recording" && part.started_at) render();
  }, 1000);

  return { update, load };
}

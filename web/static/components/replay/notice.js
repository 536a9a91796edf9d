// The line above the replay about its recording: still recording, processing (with
// each step's progress), failed, interrupted, expired.

import { $, el } from "../../lib/dom.js";
import { t } from "../../lib/i18n.js";

const STEPS = ["hls", "mp4", "audio", "thumbnails"];

function noticeText(part) {
  switch (part.status) {
    case "recording":
      return t("live_recording");
    case "processing":
      return t("processing");
    case "failed":
      return `${t("failed", { reason: part.error || "?" })} ${part.hls ? t("failed_detail") : ""}`;
    case "interrupted":
      return t("interrupted");
    case "expired":
      return t("expired");
    default:
      return "";
  }
}

function stepState(step) {
  if (!step) return [el("span", "replay-step-state muted", t("step_waiting"))];
  if (step.status === "done") return [el("span", "replay-step-state done", `✓ ${t("step_done")}`)];
  if (step.status === "failed") {
    return [el("span", "replay-step-state failed", t("step_failed", { reason: step.error || "?" }))];
  }
  const fraction = Math.max(0, Math.min(1, Number(step.progress) || 0));
  const bar = el("progress", "replay-step-bar");
  bar.max = 1;
  bar.value = fraction;
  return [bar, el("span", "replay-step-state", `${Math.round(fraction * 100)}%`)];
}

function stepRow(part, name) {
  const li = el("li", "replay-step");
  li.dataset.step = name;
  li.append(el("span", "replay-step-name", t(`step_${name}`)), ...stepState((part.steps || {})[name]));
  return li;
}

/** Say how the part in the player stands (nothing for a ready one, or no part). */
export function renderNotice(part) {
  const notice = $("replay-notice");
  const steps = $("replay-steps");
  steps.replaceChildren();
  steps.hidden = true;
  if (!part) {
    notice.hidden = true;
    return;
  }
  if (part.status === "processing" || part.status === "failed") {
    steps.replaceChildren(...STEPS.map((name) => stepRow(part, name)));
    steps.hidden = false;
  }
  const text = noticeText(part);
  $("replay-notice-text").textContent = text;
  notice.hidden = !text;
  notice.dataset.status = part.status;
}

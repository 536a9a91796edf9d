// The host page's meeting tools around the broadcast: share the join link, cancel a
// scheduled meeting (with the reason members are shown).

import { postJSON } from "../../lib/api.js";
import { copyText } from "../../lib/clipboard.js";
import { $, showError } from "../../lib/dom.js";
import { t } from "../../lib/i18n.js";

/** The join link's copy button (a legacy copy command where the clipboard API is refused). */
export function setupShare() {
  const joinUrl = $("join-url");
  $("copy-button").addEventListener("click", async () => {
    let copied = await copyText(joinUrl.value, joinUrl);
    if (!copied) {
      try {
        copied = document.execCommand("copy");
      } catch {
        copied = false;
      }
    }
    $("copy-status").textContent = copied ? t("copied") : t("copy_failed");
  });
  joinUrl.addEventListener("focus", () => joinUrl.select());
}

/** Cancelling a scheduled meeting (the page has the button only while it may be). */
export function setupCancel(meetingId) {
  const cancelButton = $("cancel-button");
  cancelButton?.addEventListener("click", async () => {
    const reason = $("cancel-reason");
    const error = $("cancel-error");
    error.hidden = true;
    if (!reason.value.trim()) {
      showError(error, t("cancel_reason_required"));
      reason.focus();
      return;
    }
    if (!window.confirm(t("confirm_cancel"))) return;
    cancelButton.disabled = true;
    try {
      const url = `/api/meetings/${encodeURIComponent(meetingId)}/cancel`;
      await postJSON(url, { reason: reason.value.trim() });
      window.location.reload();
    } catch (exc) {
      showError(error, `${t("cancel_failed")} ${exc.message}`);
      cancelButton.disabled = false;
    }
  });
}

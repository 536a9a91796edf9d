// Sign in as a member with the meeting code and the PIN printed on the member card
// (POST /api/join {meeting_code, pin}). The answer sets the session cookie, the same
// one an invite link sets, so the phone stays signed in as the member.

import { getJSON, postJSON } from "../lib/api.js";
import { t } from "../lib/i18n.js";

/** Digits only: people type "123 456 789", "123-456-789" or full-width digits. */
export function digitsOf(text) {
  return text
    .replace(/[０-９]/g, (d) => String.fromCharCode(d.charCodeAt(0) - 0xfee0))
    .replace(/\D/g, "");
}

/** Whether no meeting has this code (a 200 either way: no error in the console). */
async function meetingMissing(code) {
  try {
    const answer = await getJSON(`/api/meeting-codes/${encodeURIComponent(digitsOf(code))}`);
    return answer.exists === false;
  } catch {
    return false;
  }
}

/** The words for a failed PIN join, in the page's language. */
async function failureText(error, code, checkCode) {
  if (error.isNetwork) return t("pin_network");
  const details = error.details || {};
  if (error.status === 429) {
    const seconds = Number(details.retry_after) || 600;
    return t("pin_locked", { minutes: Math.max(1, Math.ceil(seconds / 60)) });
  }
  if (error.status === 401) {
    if (checkCode && (await meetingMissing(code))) return t("code_unknown");
    const left = details.tries_left;
    if (typeof left === "number" && left > 0) return t("pin_wrong", { n: left });
    return t("pin_wrong_last");
  }
  return t("pin_failed");
}

/**
 * Join `code`'s meeting as the member with this PIN. Resolves with the join answer;
 * rejects with an Error whose message is ready to show. `checkCode`: tell an unknown
 * meeting code apart from a wrong PIN (the home page, where the code is typed).
 */
export async function joinWithPin(code, pin, { checkCode = false } = {}) {
  try {
    return await postJSON("/api/join", { meeting_code: code, pin: digitsOf(pin) });
  } catch (error) {
    throw new Error(await failureText(error, code, checkCode));
  }
}

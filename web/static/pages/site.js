// Shared by every page: the logout button and local date formatting.

import { postJSON } from "../lib/api.js";
import { $ } from "../lib/dom.js";
import { formatTimes } from "../lib/format.js";
import { t } from "../lib/i18n.js";

async function logOut(button) {
  button.disabled = true;
  try {
    await postJSON("/api/logout", {});
    window.location.reload();
  } catch {
    button.disabled = false;
    window.alert(t("logout_failed"));
  }
}

/**
 * The committee's logout logs out at once (the password logs in again). A member's
 * asks first: after it the card must be scanned again (or the code and PIN typed).
 */
function setupLogout() {
  const button = $("logout-button");
  if (!button) return;
  const dialog = button.dataset.confirm ? $(button.dataset.confirm) : null;
  if (!dialog) {
    button.addEventListener("click", () => logOut(button));
    return;
  }
  const confirm = $("logout-confirm");
  button.addEventListener("click", () => dialog.showModal());
  $("logout-cancel").addEventListener("click", () => dialog.close());
  confirm.addEventListener("click", () => logOut(confirm));
}

setupLogout();
formatTimes();

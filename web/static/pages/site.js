// Shared by every page: the logout button and local date formatting.

import { postJSON } from "../lib/api.js";
import { $ } from "../lib/dom.js";
import { formatTimes } from "../lib/format.js";
import { t } from "../lib/i18n.js";

function setupLogout() {
  const button = $("logout-button");
  if (!button) return;
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await postJSON("/api/logout", {});
      window.location.reload();
    } catch {
      button.disabled = false;
      window.alert(t("logout_failed"));
    }
  });
}

setupLogout();
formatTimes();

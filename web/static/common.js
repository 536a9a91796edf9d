// Shared by every page: the logout button and local date formatting.

import { postJSON } from "./api.js";
import { t, pageLang } from "./i18n.js";

/** A date and time in the reader's time zone, e.g. "12月1日 周二 09:00". */
export function formatDateTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  try {
    return new Intl.DateTimeFormat(pageLang(), {
      year: date.getFullYear() === new Date().getFullYear() ? undefined : "numeric",
      month: "long",
      day: "numeric",
      weekday: "short",
      hour: "2-digit",
      minute: "2-digit",
      hour12: false,
    }).format(date);
  } catch {
    return date.toLocaleString();
  }
}

export function formatTimes(root = document) {
  for (const node of root.querySelectorAll("time[datetime][data-format='datetime']")) {
    node.textContent = formatDateTime(node.getAttribute("datetime"));
  }
}

function setupLogout() {
  const button = document.getElementById("logout-button");
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

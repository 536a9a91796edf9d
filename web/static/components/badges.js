// Small badges: a person's role, a meeting's status.

import { el } from "../lib/dom.js";
import { t } from "../lib/i18n.js";

/** "访客" / "村委" next to a guest's or the committee's name. */
export function roleBadge(role) {
  return el("span", `badge badge-${role}`, role === "guest" ? t("guest") : t("committee"));
}

/**
 * Put the badge of a live or ended meeting into `slot` ("scheduled" is already
 * rendered by the server, and stays).
 */
export function showMeetingBadge(slot, status) {
  const label = { live: t("badge_live"), ended: t("badge_ended") }[status];
  if (!label) return;
  const badge = el("span", `badge badge-${status}`);
  if (status === "live") {
    const dot = el("span", "dot");
    dot.setAttribute("aria-hidden", "true");
    badge.append(dot);
  }
  badge.append(label);
  slot.replaceChildren(badge);
}

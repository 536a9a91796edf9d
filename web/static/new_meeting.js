// The schedule form: title, kind, time, place, agenda rows, guests.
// New meetings POST /api/meetings; with data-meeting-id the form edits it with PATCH.

import { patchJSON, postJSON } from "./api.js";
import { t } from "./i18n.js";

const form = document.getElementById("meeting-form");
const title = document.getElementById("title");
const startsAt = document.getElementById("starts-at");
const rows = document.getElementById("agenda-rows");
const addButton = document.getElementById("add-agenda-item");
const allowGuests = document.getElementById("allow-guests");
const kind = document.getElementById("kind");
const place = document.getElementById("place");
const emergencyField = document.getElementById("emergency-field");
const emergencyReason = document.getElementById("emergency-reason");

const NOTICE_DAYS = 10; // Organic Law of Village Committees art. 21

// A villagers' assembly announced less than ten days ahead needs a stated emergency.
function updateNoticeWarning() {
  let short = false;
  if (kind.value === "villagers_assembly" && startsAt.value) {
    const starts = new Date(startsAt.value).getTime();
    short = starts - Date.now() < NOTICE_DAYS * 24 * 3600 * 1000;
  }
  emergencyField.hidden = !short;
}
kind.addEventListener("change", updateNoticeWarning);
const createButton = document.getElementById("create-button");
const errorBox = document.getElementById("create-error");
const createLabel = createButton.textContent;
let rowCounter = rows.children.length;

/**
 * "2026-12-01T09:00" from <input type="datetime-local"> → "2026-12-01T09:00:00+08:00",
 * with the browser's offset on that date. Null when empty; throws when invalid.
 */
export function localInputToIso(value) {
  if (!value) return null;
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?/.exec(value);
  if (!match) throw new Error("bad time");
  const [, y, mo, d, h, mi, s = "00"] = match;
  const date = new Date(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (Number.isNaN(date.getTime())) throw new Error("bad time");
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  const pad = (n) => String(Math.floor(Math.abs(n))).padStart(2, "0");
  return `${y}-${mo}-${d}T${h}:${mi}:${s}${sign}${pad(offset / 60)}:${pad(offset % 60)}`;
}

/** "2026-12-01T01:00:00+00:00" → "2026-12-01T09:00" in the browser's zone, for datetime-local. */
export function isoToLocalInput(iso) {
  const date = new Date(iso);
  if (!iso || Number.isNaN(date.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

const editingId = form.dataset.meetingId || null;
if (editingId && form.dataset.startsAt) startsAt.value = isoToLocalInput(form.dataset.startsAt);

function makeRow() {
  rowCounter += 1;
  const li = document.createElement("li");
  li.className = "agenda-row";
  const fields = document.createElement("div");
  fields.className = "agenda-row-fields";

  const titleLabel = document.createElement("label");
  titleLabel.className = "visually-hidden";
  titleLabel.htmlFor = `agenda-title-${rowCounter}`;
  titleLabel.textContent = t("agenda_item_title");
  const titleInput = document.createElement("input");
  titleInput.type = "text";
  titleInput.id = `agenda-title-${rowCounter}`;
  titleInput.className = "agenda-title";
  titleInput.maxLength = 200;
  titleInput.placeholder = t("agenda_item");

  const descLabel = document.createElement("label");
  descLabel.className = "visually-hidden";
  descLabel.htmlFor = `agenda-description-${rowCounter}`;
  descLabel.textContent = t("description");
  const desc = document.createElement("textarea");
  desc.id = `agenda-description-${rowCounter}`;
  desc.className = "agenda-description";
  desc.rows = 2;
  desc.maxLength = 4000;
  desc.placeholder = t("description");

  fields.append(titleLabel, titleInput, descLabel, desc);
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "button danger-outline remove-row";
  remove.textContent = t("remove");
  li.append(fields, remove);
  return li;
}

function updateRemoveButtons() {
  // Keep at least one row; its "remove" button just clears it.
  const only = rows.children.length === 1;
  for (const button of rows.querySelectorAll(".remove-row")) button.hidden = only;
}

addButton.addEventListener("click", () => {
  const row = makeRow();
  rows.append(row);
  updateRemoveButtons();
  row.querySelector(".agenda-title").focus();
});

rows.addEventListener("click", (event) => {
  const button = event.target.closest(".remove-row");
  if (!button) return;
  const row = button.closest(".agenda-row");
  if (rows.children.length > 1) {
    const next = row.nextElementSibling || row.previousElementSibling;
    row.remove();
    next?.querySelector(".agenda-title")?.focus();
  }
  updateRemoveButtons();
});

function showError(message, field) {
  errorBox.textContent = message;
  errorBox.hidden = false;
  if (field) {
    field.setAttribute("aria-invalid", "true");
    field.focus();
  }
}

form.addEventListener("input", (event) => {
  event.target.removeAttribute?.("aria-invalid");
  if (event.target === startsAt) updateNoticeWarning();
});

function collect() {
  const value = title.value.trim();
  if (!value) {
    showError(t("title_required"), title);
    return null;
  }
  let starts = null;
  try {
    starts = localInputToIso(startsAt.value);
  } catch {
    showError(t("bad_time"), startsAt);
    return null;
  }
  const agenda = [];
  for (const row of rows.querySelectorAll(".agenda-row")) {
    const itemTitle = row.querySelector(".agenda-title");
    const description = row.querySelector(".agenda-description").value.trim();
    if (!itemTitle.value.trim()) {
      if (description) {
        showError(t("agenda_title_required"), itemTitle);
        return null;
      }
      continue; // an empty row is ignored
    }
    agenda.push({ title: itemTitle.value.trim(), description });
  }
  const body = {
    title: value,
    agenda,
    allow_guests: allowGuests.checked,
    allow_guest_chat: allowGuests.checked && document.getElementById("allow-guest-chat").checked,
    kind: kind.value,
    place: place.value.trim(),
  };
  if (starts) body.starts_at = starts;
  else if (editingId) body.starts_at = null; // the time was cleared
  if (!emergencyField.hidden && emergencyReason.value.trim()) {
    body.emergency_reason = emergencyReason.value.trim();
  }
  return body;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  errorBox.hidden = true;
  const body = collect();
  if (!body) return;
  createButton.disabled = true;
  createButton.textContent = t("busy");
  try {
    const meeting = editingId
      ? await patchJSON(`/api/meetings/${encodeURIComponent(editingId)}`, body)
      : await postJSON("/api/meetings", body);
    window.location.assign(`/meetings/${encodeURIComponent(meeting.id)}/host`);
    return;
  } catch (error) {
    if (error.isNetwork) showError(t("network"));
    else if (error.code === "notice_too_short") {
      emergencyField.hidden = false;
      showError(t("notice_too_short"), emergencyReason);
    } else if (error.status === 401) showError(`${t("login_again")} (${error.message})`);
    else showError(`${t("failed")} ${error.message}`);
  }
  createButton.disabled = false;
  createButton.textContent = createLabel;
});

updateRemoveButtons();
updateNoticeWarning();

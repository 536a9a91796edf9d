// The schedule form: title, kind, time, place, agenda rows, guests.
// New meetings POST /api/meetings; with data-meeting-id the form edits it with PATCH.

import { patchJSON, postJSON } from "../lib/api.js";
import { $, el, showError as showLine } from "../lib/dom.js";
import { isoToLocalInput, localInputToIso } from "../lib/format.js";
import { t } from "../lib/i18n.js";

const form = $("meeting-form");
const title = $("title");
const startsAt = $("starts-at");
const rows = $("agenda-rows");
const addButton = $("add-agenda-item");
const allowGuests = $("allow-guests");
const kind = $("kind");
const place = $("place");
const emergencyField = $("emergency-field");
const emergencyReason = $("emergency-reason");

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
const createButton = $("create-button");
const createLabel = createButton.textContent;
let rowCounter = rows.children.length;

const editingId = form.dataset.meetingId || null;
if (editingId && form.dataset.startsAt) startsAt.value = isoToLocalInput(form.dataset.startsAt);

/** A visually hidden label and its field, for one agenda row. */
function labelled(field, id, label, placeholder) {
  const hidden = el("label", "visually-hidden", label);
  hidden.htmlFor = id;
  field.id = id;
  field.placeholder = placeholder;
  return [hidden, field];
}

function makeRow() {
  rowCounter += 1;
  const titleInput = el("input", "agenda-title");
  titleInput.type = "text";
  titleInput.maxLength = 200;
  const desc = el("textarea", "agenda-description");
  desc.rows = 2;
  desc.maxLength = 4000;
  const fields = el("div", "agenda-row-fields");
  fields.append(
    ...labelled(titleInput, `agenda-title-${rowCounter}`, t("agenda_item_title"), t("agenda_item")),
    ...labelled(desc, `agenda-description-${rowCounter}`, t("description"), t("description")),
  );
  const remove = el("button", "button danger-outline remove-row", t("remove"));
  remove.type = "button";
  const li = el("li", "agenda-row");
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
  // what was typed in the row is lost: ask first
  const typed = row.querySelector(".agenda-title").value.trim();
  const words = (typed || row.querySelector(".agenda-description").value.trim()).slice(0, 40);
  if (words && !window.confirm(t("confirm_remove_item", { title: words }))) return;
  if (rows.children.length > 1) {
    const next = row.nextElementSibling || row.previousElementSibling;
    row.remove();
    next?.querySelector(".agenda-title")?.focus();
  }
  updateRemoveButtons();
});

function showError(message, field) {
  showLine($("create-error"), message);
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
    allow_guest_chat: allowGuests.checked && $("allow-guest-chat").checked,
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
  $("create-error").hidden = true;
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

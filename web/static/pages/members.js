// The member roll: list, search, add, edit, CSV import, new invite, remove.
// Every member's details are user text: they go into the page with textContent only.

import { deleteJSON, getJSON, patchJSON, postFile, postJSON } from "../lib/api.js";
import { copyText } from "../lib/clipboard.js";
import { $, button, el, pageData, showError, userText } from "../lib/dom.js";
import { t } from "../lib/i18n.js";

const rollBody = $("roll-body");
const rollEmpty = $("roll-empty");
const summary = $("roll-summary");
const search = $("roll-search");
const formCard = $("member-form-card");
const form = $("member-form");
const formTitle = $("member-form-title");
const formError = $("member-error");
const fields = {
  name: $("member-name"),
  phone: $("member-phone"),
  household: $("member-household"),
  birthYear: $("member-birth-year"),
  representative: $("member-representative"),
};
const inviteCard = $("invite-card");
const importFile = $("import-file");
const importResult = $("import-result");

let roll = pageData("roll-data", "[]");
let editing = null; // the member being edited, or null when adding

/** Adults for the quorum: a member whose year of birth is unknown counts as one. */
function isAdult(member) {
  return member.birth_year == null || new Date().getFullYear() - member.birth_year >= 18;
}

function describe(error) {
  if (error.isNetwork) return t("network");
  if (error.status === 401) return t("login_again");
  if (error.code === "phone_taken") return t("phone_taken");
  return `${t("failed")} ${error.message}`;
}

function cell(text) {
  return el("td", "", text ?? "");
}

function render() {
  const query = search.value.trim().toLowerCase();
  const shown = roll.filter((m) =>
    !query || [m.name, m.phone, m.household].some((v) => (v || "").toLowerCase().includes(query)),
  );
  const rows = shown.map((member) => {
    const tr = el("tr");
    tr.dataset.memberId = member.id;
    const name = userText("td", "member-name", member.name ?? "");
    if (member.representative) {
      name.append(" ", el("span", "badge badge-scheduled", t("representative")));
    }
    const actions = el("td", "row-actions");
    const card = el("a", "button secondary small card-link", t("card"));
    card.href = `/members/cards?ids=${encodeURIComponent(member.id)}`;
    card.target = "_blank";
    card.rel = "noopener";
    // the everyday buttons together; 删除 apart at the other end, behind a confirmation
    const everyday = el("span", "row-actions-main");
    everyday.append(
      button(t("edit"), "secondary small edit", () => openForm(member)),
      button(t("reissue"), "secondary small reissue", () => reissue(member)),
      card,
    );
    const danger = el("span", "row-actions-danger");
    danger.append(button(t("remove"), "danger-outline small remove", () => remove(member)));
    actions.append(everyday, danger);
    tr.append(name, cell(member.household), cell(member.phone), cell(member.birth_year), actions);
    return tr;
  });
  rollBody.replaceChildren(...rows);
  rollEmpty.hidden = roll.length > 0;
  const households = new Set(roll.map((m) => m.household).filter(Boolean));
  summary.textContent = t("summary", {
    n: roll.length,
    adults: roll.filter(isAdult).length,
    reps: roll.filter((m) => m.representative).length,
    households: households.size,
  });
}

async function reload() {
  roll = (await getJSON("/api/members")).members;
  render();
}

function openForm(member) {
  editing = member;
  formTitle.textContent = member ? t("edit_title") : t("add_title");
  fields.name.value = member?.name ?? "";
  fields.phone.value = member?.phone ?? "";
  fields.household.value = member?.household ?? "";
  fields.birthYear.value = member?.birth_year ?? "";
  fields.representative.checked = Boolean(member?.representative);
  formError.hidden = true;
  formCard.hidden = false;
  formCard.scrollIntoView({ block: "nearest" });
  fields.name.focus();
}

function showFormError(message, field) {
  showError(formError, message);
  field?.focus();
}

function showInvite(invite) {
  $("invite-name").textContent = invite.name;
  $("invite-url").value = invite.invite_url;
  $("invite-pin").textContent = invite.pin;
  $("invite-card-link").href = `/members/cards?ids=${encodeURIComponent(invite.id)}`;
  inviteCard.hidden = false;
  inviteCard.scrollIntoView({ block: "nearest" });
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = fields.name.value.trim();
  if (!name) return showFormError(t("name_required"), fields.name);
  let birthYear = null;
  if (fields.birthYear.value.trim()) {
    birthYear = Number(fields.birthYear.value);
    if (!Number.isInteger(birthYear)) return showFormError(t("bad_year"), fields.birthYear);
  }
  const body = {
    name,
    phone: fields.phone.value.trim(),
    household: fields.household.value.trim(),
    birth_year: birthYear,
    representative: fields.representative.checked,
  };
  $("member-save").disabled = true;
  try {
    if (editing) {
      await patchJSON(`/api/members/${encodeURIComponent(editing.id)}`, body);
    } else {
      showInvite(await postJSON("/api/members", body));
    }
    formCard.hidden = true;
    await reload();
  } catch (error) {
    showFormError(describe(error));
  } finally {
    $("member-save").disabled = false;
  }
});

async function reissue(member) {
  if (!window.confirm(t("confirm_reissue", { name: member.name }))) return;
  try {
    showInvite(await postJSON(`/api/members/${encodeURIComponent(member.id)}/invite`, {}));
  } catch (error) {
    window.alert(describe(error));
  }
}

async function remove(member) {
  if (!window.confirm(t("confirm_remove", { name: member.name }))) return;
  try {
    await deleteJSON(`/api/members/${encodeURIComponent(member.id)}`);
    await reload();
  } catch (error) {
    window.alert(describe(error));
  }
}

function showImport(title, message, rows = []) {
  $("import-title").textContent = title;
  $("import-message").textContent = message;
  const report = $("import-report");
  report.tBodies[0].replaceChildren(...rows.map((row) => {
    const tr = el("tr");
    const problems = (row.codes || []).map((p) => t(`problem_${p.code}`, { value: p.value }));
    tr.append(cell(row.line), cell(row.name), cell(problems.join("; ")));
    return tr;
  }));
  report.hidden = rows.length === 0;
  importResult.hidden = false;
  importResult.scrollIntoView({ block: "nearest" });
}

importFile.addEventListener("change", async () => {
  const file = importFile.files[0];
  if (!file) return;
  showImport(t("import_busy"), file.name);
  try {
    const answer = await postFile("/api/members/import", file, "text/csv");
    showImport(t("import_done"), t("import_added", { n: answer.added.length }));
    await reload();
  } catch (error) {
    if (error.code === "import_rejected") {
      showImport(t("import_rejected"), t("import_rejected_message"), error.details.rows || []);
    } else {
      showImport(t("import_failed"), error.isNetwork ? t("network") : error.message);
    }
  } finally {
    importFile.value = ""; // choosing the same file again imports it again
  }
});

$("add-button").addEventListener("click", () => openForm(null));
$("member-cancel").addEventListener("click", () => {
  formCard.hidden = true;
});
$("invite-copy").addEventListener("click", async () => {
  if (await copyText($("invite-url").value, $("invite-url"))) {
    $("invite-copy").textContent = t("copied");
  }
});
search.addEventListener("input", render);
render();

// The committee's tools on an open vote: the counts from the hall (show of hands),
// the roll call (点名表决) and closing the vote.

import { button, el, userText } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { fetchRoll } from "./roll.js";

/** @param {object} votes call(event, data); describe(error) */
function hallCounts(vote, votes) {
  const form = el("form", "hall-counts");
  form.append(el("p", "field-label", t("vote_hall_counts")));
  for (const option of vote.options) {
    const label = el("label", "hall-count-row");
    const input = el("input");
    input.type = "number";
    input.min = "0";
    input.inputMode = "numeric";
    input.dataset.option = option;
    label.append(userText("span", "", option), input);
    form.append(label);
  }
  const save = el("button", "button secondary small", t("vote_save_counts"));
  save.type = "submit";
  const said = el("p", "small muted", "");
  form.append(save, said);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const counts = {};
    for (const input of form.querySelectorAll("input")) {
      if (input.value.trim() !== "") counts[input.dataset.option] = Number(input.value);
    }
    const ack = await votes.call("vote:hall", { vote_id: vote.vote_id, counts });
    said.textContent = ack.ok ? t("saved") : votes.describe(ack.error);
  });
  return form;
}

function rollCallRow(vote, votes, member) {
  const li = el("li", "roll-call-row");
  li.append(userText("span", "", member.name));
  const select = el("select", "roll-call-choice");
  select.setAttribute("aria-label", member.name);
  select.append(el("option", "", "—"));
  for (const option of vote.options) {
    const o = userText("option", "", option);
    o.value = option;
    select.append(o);
  }
  const said = el("span", "small muted", "");
  select.addEventListener("change", async () => {
    if (!select.value) return;
    const payload = { vote_id: vote.vote_id, member_id: member.id, choice: select.value };
    const ack = await votes.call("vote:roll", payload);
    if (ack.ok) {
      select.disabled = true;
      said.textContent = "✓";
    } else {
      said.textContent = votes.describe(ack.error);
      select.value = "";
    }
  });
  li.append(select, said);
  return li;
}

/** Roll call (点名表决): the committee records in-hall members' choices one by one. */
function rollCall(vote, votes) {
  const details = el("details", "roll-call");
  details.append(el("summary", "", t("vote_roll_call")));
  const list = el("ul", "roll-call-list");
  details.append(list);
  details.addEventListener("toggle", async () => {
    if (!details.open || list.childElementCount) return;
    let roll = [];
    try {
      roll = await fetchRoll();
    } catch {
      return;
    }
    list.replaceChildren(...roll.map((member) => rollCallRow(vote, votes, member)));
  });
  return details;
}

/** @param {object} votes call(event, data); describe(error) */
export function hostBlock(vote, votes) {
  const box = el("div", "vote-host");
  const close = button(t("vote_close"), "danger block close-vote", async () => {
    if (!window.confirm(t("vote_confirm_close"))) return;
    close.disabled = true;
    const ack = await votes.call("vote:close", { vote_id: vote.vote_id });
    if (!ack.ok) {
      close.disabled = false;
      window.alert(votes.describe(ack.error));
    }
  });
  box.append(hallCounts(vote, votes), rollCall(vote, votes), close);
  return box;
}

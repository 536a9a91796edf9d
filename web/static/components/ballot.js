// A member's ballot: one big button per option, a confirmation, then the receipt.
// A registered proxy (委托投票) gets one more ballot per member they vote for.

import { el, showError, userText } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { recalled, remember } from "../lib/receipts.js";

/**
 * The member's own ballot, or (with forMember) the one they cast as a registered proxy.
 * @param {object} votes call(event, data); describe(error); render() after a vote is cast
 */
export function ballotBlock(vote, votes, forMember = null) {
  const box = el("div", "ballot");
  const key = forMember ? `${vote.vote_id}:${forMember.id}` : vote.vote_id;
  const receipt = forMember ? recalled(key) : vote.receipt || recalled(key);
  const done = forMember ? (forMember.voted || []).includes(vote.vote_id) : vote.you_voted;
  if (forMember) box.append(el("p", "ballot-for", t("vote_for", { name: forMember.name })));
  if (done || receipt) {
    const said = receipt ? t("vote_your_receipt", { receipt }) : t("vote_voted");
    box.append(el("p", "ballot-done", said));
    return box;
  }
  box.append(el("p", "ballot-prompt", t("vote_choose")));
  const error = el("p", "form-error", "");
  error.hidden = true;
  const enable = (on) => {
    for (const b of box.querySelectorAll("button")) b.disabled = !on;
  };

  async function cast(option) {
    if (!window.confirm(t("vote_confirm", { choice: option }))) return;
    enable(false);
    const payload = { vote_id: vote.vote_id, choice: option };
    if (forMember) payload.for_member_id = forMember.id;
    const ack = await votes.call("vote:cast", payload);
    if (ack.ok) {
      remember(key, ack.receipt);
      if (forMember) forMember.voted = [...(forMember.voted || []), vote.vote_id];
      else Object.assign(vote, { you_voted: true, receipt: ack.receipt });
      votes.render();
    } else {
      showError(error, votes.describe(ack.error));
      enable(true);
    }
  }

  for (const option of vote.options) {
    const choice = userText("button", "button big block ballot-option", option);
    choice.type = "button";
    choice.addEventListener("click", () => cast(option));
    box.append(choice);
  }
  box.append(error);
  return box;
}

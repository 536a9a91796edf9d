// A closed vote's result: the verdict, the tally, the figures and where the ballots
// came from; a member checks their receipt against the published list.

import { getJSON } from "../lib/api.js";
import { el, userText } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { recalled } from "../lib/receipts.js";
import { explanationLines } from "./vote-words.js";

/** Why it passed or failed, in words (nothing for a result stored without an explanation). */
export function explanationBlock(result) {
  const lines = explanationLines(result);
  const box = el("div", "vote-explanation");
  box.hidden = lines.length === 0;
  for (const line of lines) box.append(el("p", "vote-explanation-line", line));
  return box;
}

/** The verdict line and the tally (options in `options`' order; by default the tally's). */
export function verdictAndTally(result, options = Object.keys(result.tally || {})) {
  const verdict = !result.quorum_met
    ? t("vote_no_quorum")
    : result.passed
      ? t("vote_passed")
      : t("vote_not_passed");
  const tally = el("ul", "vote-tally");
  for (const option of options) {
    const li = el("li");
    const count = String((result.tally || {})[option] ?? 0);
    li.append(userText("span", "vote-option-name", option), el("strong", "vote-option-count", count));
    tally.append(li);
  }
  return [el("p", `vote-verdict ${result.passed ? "passed" : "failed"}`, verdict), tally];
}

function sourcesLine(r) {
  const sum = (source) => Object.values((r.sources || {})[source] || {}).reduce((a, b) => a + b, 0);
  return el(
    "p",
    "muted small",
    t("vote_sources", {
      // a secret vote reports phones and proxies as one count ("ballots")
      remote: sum("remote") + sum("proxy") + sum("ballots"),
      roll: sum("hall_roll_call"),
      hands: sum("hall_show_of_hands"),
    }),
  );
}

function receiptCheck(vote, receipt, meetingId) {
  const check = el("button", "button secondary small check-receipt", t("vote_check_receipts"));
  const said = el("p", "small receipt-check", "");
  check.type = "button";
  check.addEventListener("click", async () => {
    const meeting = encodeURIComponent(meetingId);
    const url = `/api/meetings/${meeting}/votes/${encodeURIComponent(vote.vote_id)}/receipts`;
    try {
      const listed = await getJSON(url);
      const mine = listed.receipts.find((x) => x.receipt === receipt);
      said.textContent = mine
        ? t("vote_receipt_found", { receipt, choice: mine.choice })
        : t("vote_receipt_missing", { receipt });
    } catch (error) {
      said.textContent = error.message;
    }
  });
  return [check, said];
}

/** @param {object} options meetingId; isHost (the committee has no receipt to check) */
export function resultBlock(vote, { meetingId, isHost }) {
  const r = vote.result;
  const box = el("div", "vote-result");
  box.append(...verdictAndTally(r, vote.options), explanationBlock(r));
  const figures = { cast: r.cast, present: r.present, eligible: r.eligible };
  box.append(el("p", "muted small", t("vote_figures", figures)));
  // a secret vote whose split would show a small group has none (docs/voting-rules.md)
  if (!r.sources_merged) box.append(sourcesLine(r));
  const receipt = vote.receipt || recalled(vote.vote_id);
  if (receipt && !isHost) box.append(...receiptCheck(vote, receipt, meetingId));
  return box;
}

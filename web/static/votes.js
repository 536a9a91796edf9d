// Votes on the watch and host pages: a member's ballot with its receipt, live
// progress, results with their sources; the host opens, counts the hall and closes.
// All user text is set with textContent.

import { getJSON } from "./api.js";
import { el } from "./dom.js";
import { t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const RECEIPTS_KEY = "cunhui.receipts"; // receipts stay on this phone, for checking later

function remember(voteId, receipt) {
  try {
    const saved = JSON.parse(localStorage.getItem(RECEIPTS_KEY) || "{}");
    saved[voteId] = receipt;
    localStorage.setItem(RECEIPTS_KEY, JSON.stringify(saved));
  } catch {
    // private mode: the receipt is still shown on the page
  }
}

function recalled(voteId) {
  try {
    return JSON.parse(localStorage.getItem(RECEIPTS_KEY) || "{}")[voteId] || null;
  } catch {
    return null;
  }
}

/** @param {object} options meetingId; isHost */
export function createVotes(options) {
  const isHost = Boolean(options.isHost);
  const panel = $("votes-panel");
  const list = $("vote-list");
  let rt = null;
  let you = null;
  const votes = new Map(); // vote_id -> vote (as in the join ack), kept current
  let proxiesHeld = []; // members this member votes for (委托投票)

  const call = (event, data) =>
    rt ? rt.call(event, data) : Promise.resolve({ ok: false, error: { code: "network_error" } });

  function describe(error) {
    const code = error && error.code;
    return (
      { already_voted: t("already_voted"), vote_closed: t("vote_is_closed"), not_eligible: t("not_eligible") }[code] ||
      (error && error.message) ||
      t("failed")
    );
  }

  function resultBlock(vote) {
    const r = vote.result;
    const box = el("div", "vote-result");
    const verdict = !r.quorum_met ? t("vote_no_quorum") : r.passed ? t("vote_passed") : t("vote_not_passed");
    box.append(el("p", `vote-verdict ${r.passed ? "passed" : "failed"}`, verdict));
    const table = el("ul", "vote-tally");
    for (const option of vote.options) {
      const li = el("li");
      li.append(el("span", "vote-option-name", option), el("strong", "vote-option-count", String(r.tally[option] ?? 0)));
      table.append(li);
    }
    box.append(table);
    box.append(el("p", "muted small", t("vote_figures", { cast: r.cast, present: r.present, eligible: r.eligible })));
    const sum = (source) => Object.values((r.sources || {})[source] || {}).reduce((a, b) => a + b, 0);
    // a secret vote whose split would show a small group has none (docs/voting-rules.md)
    if (!r.sources_merged) box.append(el("p", "muted small", t("vote_sources", {
      // a secret vote reports phones and proxies as one count ("ballots")
      remote: sum("remote") + sum("proxy") + sum("ballots"),
      roll: sum("hall_roll_call"),
      hands: sum("hall_show_of_hands"),
    })));
    const receipt = vote.receipt || recalled(vote.vote_id);
    if (receipt && !isHost) {
      const check = el("button", "button secondary small check-receipt", t("vote_check_receipts"));
      const said = el("p", "small receipt-check", "");
      check.type = "button";
      check.addEventListener("click", async () => {
        try {
          const listed = await getJSON(
            `/api/meetings/${encodeURIComponent(options.meetingId)}/votes/${encodeURIComponent(vote.vote_id)}/receipts`);
          const mine = listed.receipts.find((x) => x.receipt === receipt);
          said.textContent = mine
            ? t("vote_receipt_found", { receipt, choice: mine.choice })
            : t("vote_receipt_missing", { receipt });
        } catch (error) {
          said.textContent = error.message;
        }
      });
      box.append(check, said);
    }
    return box;
  }

  /** The member's own ballot, or (with forMember) the one they cast as a registered proxy. */
  function ballotBlock(vote, forMember = null) {
    const box = el("div", "ballot");
    const key = forMember ? `${vote.vote_id}:${forMember.id}` : vote.vote_id;
    const receipt = forMember ? recalled(key) : vote.receipt || recalled(key);
    const done = forMember ? (forMember.voted || []).includes(vote.vote_id) : vote.you_voted;
    if (forMember) box.append(el("p", "ballot-for", t("vote_for", { name: forMember.name })));
    if (done || receipt) {
      box.append(el("p", "ballot-done", receipt ? t("vote_your_receipt", { receipt }) : t("vote_voted")));
      return box;
    }
    box.append(el("p", "ballot-prompt", t("vote_choose")));
    const error = el("p", "form-error", "");
    error.hidden = true;
    for (const option of vote.options) {
      const button = el("button", "button big block ballot-option", option);
      button.type = "button";
      button.addEventListener("click", async () => {
        if (!window.confirm(t("vote_confirm", { choice: option }))) return;
        for (const b of box.querySelectorAll("button")) b.disabled = true;
        const payload = { vote_id: vote.vote_id, choice: option };
        if (forMember) payload.for_member_id = forMember.id;
        const ack = await call("vote:cast", payload);
        if (ack.ok) {
          remember(key, ack.receipt);
          if (forMember) forMember.voted = [...(forMember.voted || []), vote.vote_id];
          else Object.assign(vote, { you_voted: true, receipt: ack.receipt });
          render();
        } else {
          error.textContent = describe(ack.error);
          error.hidden = false;
          for (const b of box.querySelectorAll("button")) b.disabled = false;
        }
      });
      box.append(button);
    }
    box.append(error);
    return box;
  }

  function hostBlock(vote) {
    const box = el("div", "vote-host");
    const form = el("form", "hall-counts");
    form.append(el("p", "field-label", t("vote_hall_counts")));
    for (const option of vote.options) {
      const label = el("label", "hall-count-row");
      const input = el("input");
      input.type = "number";
      input.min = "0";
      input.inputMode = "numeric";
      input.dataset.option = option;
      label.append(el("span", "", option), input);
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
      const ack = await call("vote:hall", { vote_id: vote.vote_id, counts });
      said.textContent = ack.ok ? t("saved") : describe(ack.error);
    });
    const close = el("button", "button danger block close-vote", t("vote_close"));
    close.type = "button";
    close.addEventListener("click", async () => {
      if (!window.confirm(t("vote_confirm_close"))) return;
      close.disabled = true;
      const ack = await call("vote:close", { vote_id: vote.vote_id });
      if (!ack.ok) {
        close.disabled = false;
        window.alert(describe(ack.error));
      }
    });
    box.append(form, rollCall(vote), close);
    return box;
  }

  /** Roll call (点名表决): the committee records in-hall members' choices one by one. */
  function rollCall(vote) {
    const details = el("details", "roll-call");
    details.append(el("summary", "", t("vote_roll_call")));
    const listNode = el("ul", "roll-call-list");
    details.append(listNode);
    details.addEventListener("toggle", async () => {
      if (!details.open || listNode.childElementCount) return;
      let roll = [];
      try {
        roll = (await getJSON("/api/members")).members;
      } catch {
        return;
      }
      listNode.replaceChildren(...roll.map((m) => {
        const li = el("li", "roll-call-row");
        li.append(el("span", "", m.name));
        const select = el("select", "roll-call-choice");
        select.setAttribute("aria-label", m.name);
        select.append(el("option", "", "—"));
        for (const option of vote.options) {
          const o = el("option", "", option);
          o.value = option;
          select.append(o);
        }
        const said = el("span", "small muted", "");
        select.addEventListener("change", async () => {
          if (!select.value) return;
          const ack = await call("vote:roll", { vote_id: vote.vote_id, member_id: m.id, choice: select.value });
          if (ack.ok) {
            select.disabled = true;
            said.textContent = "✓";
          } else {
            said.textContent = describe(ack.error);
            select.value = "";
          }
        });
        li.append(select, said);
        return li;
      }));
    });
    return details;
  }

  function voteItem(vote) {
    const li = el("li", `vote-item ${vote.status}`);
    li.dataset.voteId = vote.vote_id;
    const head = el("p", "vote-head");
    head.append(el("span", `badge ${vote.status === "open" ? "badge-live" : "badge-ended"}`,
      vote.status === "open" ? t("vote_open") : t("vote_closed")));
    if (vote.secret) head.append(" ", el("span", "badge badge-scheduled", t("vote_secret")));
    li.append(head, el("p", "vote-question", vote.question));
    if (vote.status === "open") {
      li.append(el("p", "muted vote-progress", t("vote_cast_count", { cast: vote.cast ?? 0, eligible: vote.eligible })));
      if (isHost) li.append(hostBlock(vote));
      else if (you && you.role === "member") {
        li.append(ballotBlock(vote));
        for (const held of proxiesHeld) li.append(ballotBlock(vote, held));
      }
    } else if (vote.result) {
      li.append(resultBlock(vote));
    }
    return li;
  }

  function render() {
    const ordered = [...votes.values()].sort((a, b) => b.vote_id - a.vote_id); // newest first
    list.replaceChildren(...ordered.map(voteItem));
    panel.hidden = !isHost && ordered.length === 0;
  }

  $("vote-form")?.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("vote-error");
    error.hidden = true;
    const item = $("vote-item");
    const payload = {
      question: $("vote-question").value.trim(),
      options: $("vote-options").value.split("\n").map((o) => o.trim()).filter(Boolean),
      secret: $("vote-secret").checked,
    };
    if (item && item.value) payload.item_id = Number(item.value);
    if ($("vote-rule").value) payload.rule = $("vote-rule").value;
    const ack = await call("vote:open", payload);
    if (ack.ok) {
      $("vote-open").open = false;
      $("vote-question").value = "";
    } else {
      error.textContent = describe(ack.error);
      error.hidden = false;
    }
  });

  return {
    setRealtime(realtime) {
      rt = realtime;
    },
    onJoin(ack) {
      you = ack.you;
      votes.clear();
      for (const vote of (ack.state && ack.state.votes) || []) votes.set(vote.vote_id, vote);
      proxiesHeld = (ack.state && ack.state.proxies_held) || [];
      render();
    },
    onProgress(data) {
      const vote = votes.get(data.vote_id);
      if (!vote || vote.status !== "open") return;
      vote.cast = Math.max(vote.cast ?? 0, data.cast);
      const line = list.querySelector(`[data-vote-id="${Number(data.vote_id)}"] .vote-progress`);
      if (line) line.textContent = t("vote_cast_count", { cast: vote.cast, eligible: vote.eligible });
    },
    onEvent(name, data) {
      if (name === "vote:opened") {
        votes.set(data.vote_id, { ...data, status: "open", cast: 0, you_voted: false });
        render();
        if (!isHost) $("votes-panel").scrollIntoView({ behavior: "smooth", block: "start" });
      } else if (name === "proxy:registered") {
        // made someone's proxy mid-meeting: their ballot appears at once
        if (you && data.proxy && `m${data.proxy.id}` === you.id) {
          proxiesHeld.push({ id: data.member.id, name: data.member.name, voted: [] });
          render();
        }
      } else if (name === "vote:closed") {
        const vote = votes.get(data.vote_id) || { vote_id: data.vote_id, options: Object.keys(data.tally) };
        Object.assign(vote, { status: "closed", result: data, question: data.question, cast: data.cast });
        votes.set(data.vote_id, vote);
        render();
      }
    },
  };
}

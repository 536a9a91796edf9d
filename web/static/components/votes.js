// Votes on the watch and host pages: a member's ballot with its receipt, live
// progress, results with their sources; the host opens, counts the hall and closes.
// All user text is set with textContent.

import { $, el, importSoon, showError, userText } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { ballotBlock } from "./ballot.js";
import { resultBlock } from "./vote-result.js";
import { openLines } from "./vote-words.js";

function describe(error) {
  const known = {
    already_voted: t("already_voted"),
    vote_closed: t("vote_is_closed"),
    not_eligible: t("not_eligible"),
  };
  return known[error && error.code] || (error && error.message) || t("failed");
}

function progressText(vote) {
  return t("vote_cast_count", { cast: vote.cast ?? 0, eligible: vote.eligible });
}

/** @param {object} options meetingId; isHost */
export function createVotes(options) {
  const isHost = Boolean(options.isHost);
  const list = $("vote-list");
  let rt = null;
  let you = null;
  const votes = new Map(); // vote_id -> vote (as in the join ack), kept current
  let proxiesHeld = []; // members this member votes for (委托投票)
  // The committee's controls (open, count the hall, close) load only on its page.
  let hostBlock = null;
  if (isHost) {
    importSoon(
      () => import("./vote-host.js"),
      (module) => {
        hostBlock = module.hostBlock;
        render();
      },
    );
  }

  // what the ballot and the committee's tools need
  const panel = {
    describe,
    render,
    call: (event, data) =>
      rt ? rt.call(event, data) : Promise.resolve({ ok: false, error: { code: "network_error" } }),
  };

  function openBlocks(vote) {
    if (isHost) return hostBlock ? [hostBlock(vote, panel)] : [];
    if (!you || you.role !== "member") return [];
    return [ballotBlock(vote, panel), ...proxiesHeld.map((held) => ballotBlock(vote, panel, held))];
  }

  function voteItem(vote) {
    const open = vote.status === "open";
    const li = el("li", `vote-item ${vote.status}`);
    li.dataset.voteId = vote.vote_id;
    const head = el("p", "vote-head");
    const status = open ? t("vote_open") : t("vote_closed");
    head.append(el("span", `badge ${open ? "badge-live" : "badge-ended"}`, status));
    if (vote.secret) head.append(" ", el("span", "badge badge-scheduled", t("vote_secret")));
    li.append(head, userText("p", "vote-question", vote.question));
    if (open) {
      // who is present, who may vote and what it takes, from the moment it opens
      const rule = el("div", "vote-rule-words");
      for (const line of openLines(vote)) rule.append(el("p", "vote-rule-line", line));
      li.append(rule, el("p", "muted vote-progress", progressText(vote)), ...openBlocks(vote));
    } else if (vote.result) {
      li.append(resultBlock(vote, { meetingId: options.meetingId, isHost }));
    }
    return li;
  }

  function render() {
    const ordered = [...votes.values()].sort((a, b) => b.vote_id - a.vote_id); // newest first
    list.replaceChildren(...ordered.map(voteItem));
    $("votes-panel").hidden = !isHost && ordered.length === 0;
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
    const ack = await panel.call("vote:open", payload);
    if (ack.ok) {
      $("vote-open").open = false;
      $("vote-question").value = "";
    } else {
      showError(error, describe(ack.error));
    }
  });

  function closed(data) {
    const vote = votes.get(data.vote_id) || { vote_id: data.vote_id, options: Object.keys(data.tally) };
    Object.assign(vote, { status: "closed", result: data, question: data.question, cast: data.cast });
    votes.set(data.vote_id, vote);
    render();
  }

  return {
    setRealtime(realtime) {
      rt = realtime;
    },
    onJoin(ack) {
      you = ack.you;
      // an open vote's `present` in the join is the count now; after a rejoin, keep the
      // number vote:opened announced (the one the phone has been showing)
      const presentAtOpen = new Map([...votes].map(([id, v]) => [id, v.present]));
      votes.clear();
      for (const vote of (ack.state && ack.state.votes) || []) {
        votes.set(vote.vote_id, { ...vote, present: presentAtOpen.get(vote.vote_id) ?? vote.present });
      }
      proxiesHeld = (ack.state && ack.state.proxies_held) || [];
      render();
    },
    onProgress(data) {
      const vote = votes.get(data.vote_id);
      if (!vote || vote.status !== "open") return;
      vote.cast = Math.max(vote.cast ?? 0, data.cast);
      const line = list.querySelector(`[data-vote-id="${Number(data.vote_id)}"] .vote-progress`);
      if (line) line.textContent = progressText(vote);
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
        closed(data);
      }
    },
  };
}

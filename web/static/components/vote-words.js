// A vote's rule and result in words, in the page's language.
//
// The closed result's sentences come from `result.explanation` (computed by the server
// from the tally's own numbers, server/services/rules.py `explain`) and are put together
// exactly as server/services/vote_words.py does for the minutes, with the same keys and
// message ids: the page renders them in <script id="vote-i18n"> (_room.html `vote_words`).
// The open vote's card says how many are present and eligible and what it takes to pass.

import { t } from "../lib/i18n.js";

let words = null;

function blob() {
  if (words === null) {
    const node = document.getElementById("vote-i18n");
    try {
      words = node ? JSON.parse(node.textContent || "{}") : {};
    } catch {
      words = {};
    }
  }
  return words;
}

/** The sentence for `key` with its {name} placeholders filled in. */
function say(key, vars = {}) {
  const known = blob();
  const value = Object.prototype.hasOwnProperty.call(known, key) ? known[key] : t(key);
  return value.replace(/\{(\w+)\}/g, (match, name) =>
    Object.prototype.hasOwnProperty.call(vars, name) ? String(vars[name]) : match,
  );
}

function gcd(a, b) {
  return b ? gcd(b, a % b) : a;
}

function fraction(num, den) {
  const common = gcd(num, den) || 1;
  const [n, d] = [num / common, den / common];
  if (n === 1 && d === 2) return say("explain_half");
  if (n === 2 && d === 3) return say("explain_two_thirds");
  return say("explain_fraction", { num: n, den: d });
}

/** "more than half of the 6 present": `base` is the base's words. */
function thresholdWith(part, base) {
  return say("explain_threshold", {
    cmp: say(part.strict ? "explain_more_than" : "explain_at_least"),
    frac: fraction(part.num, part.den),
    base,
  });
}

function threshold(part) {
  return thresholdWith(part, say(`explain_base_${part.base}`, { n: part.of }));
}

/** The smallest whole count that meets num/den of `base` (as the server's Threshold.needed). */
function needed(part, base) {
  const product = base * part.num;
  return part.strict ? Math.floor(product / part.den) + 1 : Math.ceil(product / part.den);
}

/** A closed vote's explanation in words, one sentence a line; [] for a result without one. */
export function explanationLines(result) {
  const e = result && result.explanation;
  if (!e || !e.majority) return [];
  const quorum = e.quorum;
  const majority = e.majority;
  const lines = [];
  if (e.outcome === "no_quorum" && quorum) {
    lines.push(
      say("explain_no_quorum", {
        present: quorum.present,
        rule: threshold(quorum),
        needed: quorum.needed,
      }),
    );
    const h = quorum.households;
    if (h) {
      lines.push(
        say("explain_no_quorum_households", { got: h.present, total: h.total, needed: h.needed }),
      );
    }
  } else {
    lines.push(
      say(e.outcome === "passed" ? "explain_passed" : "explain_not_passed", {
        option: majority.option,
        got: majority.got,
        rule: threshold(majority),
        needed: majority.needed,
      }),
    );
    if (!quorum) {
      lines.push(say("explain_no_quorum_needed", { present: e.present ?? "—" }));
    } else if (quorum.present >= quorum.needed || !quorum.households) {
      lines.push(
        say("explain_quorum_met", {
          present: quorum.present,
          rule: threshold(quorum),
          needed: quorum.needed,
        }),
      );
    } else {
      const h = quorum.households;
      lines.push(
        say("explain_quorum_households", { got: h.present, total: h.total, needed: h.needed }),
      );
    }
  }
  lines.push(
    say("explain_rule", { rule: say(`profile_${e.rule}`), source: say(`source_${e.source}`) }),
  );
  return lines;
}

function ruleSource(rule) {
  const source = { villagers_assembly: "law_art_22", representatives_meeting: "law_art_26" };
  return say("explain_rule", {
    rule: say(`profile_${rule.profile}`),
    source: say(`source_${source[rule.profile] || "meeting"}`),
  });
}

/**
 * An open vote's card: "到会 N 人 · 应投 M 人", then what makes it valid and what makes it
 * pass, from the vote's opening payload (`vote:opened`: rule, eligible, present).
 */
export function openLines(vote) {
  const eligible = vote.eligible ?? 0;
  const known = Number.isInteger(vote.present);
  const lines = [
    known
      ? say("vote_open_counts", { present: vote.present, eligible })
      : say("vote_open_eligible", { eligible }),
  ];
  const rule = vote.rule;
  if (!rule || !rule.majority) return lines;
  const counts = { eligible, present: known ? vote.present : null, cast: null };
  if (rule.quorum) {
    const q = rule.quorum;
    const base = say("explain_base_eligible", { n: eligible });
    lines.push(
      say("explain_open_quorum", { rule: thresholdWith(q, base), needed: needed(q, eligible) }),
    );
  } else {
    lines.push(say("explain_no_quorum_open"));
  }
  const m = rule.majority;
  const option = (vote.options || [])[0] || "";
  const base = counts[m.of];
  if (base === null || base === undefined) {
    const words = thresholdWith(m, say(`base_any_${m.of}`));
    lines.push(say("explain_open_majority", { option, rule: words }));
  } else {
    const words = thresholdWith(m, say(`explain_base_${m.of}`, { n: base }));
    lines.push(say("explain_open_majority_needed", { option, rule: words, needed: needed(m, base) }));
  }
  lines.push(ruleSource(rule));
  return lines;
}

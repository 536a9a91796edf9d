// Suggestions (意见建议) on the watch and host pages: members write before and during
// the meeting; the committee adopts, answers or declines with a reply. Text only.

import { getJSON, postJSON } from "../lib/api.js";
import { $, el, showError, userText } from "../lib/dom.js";
import { t } from "../lib/i18n.js";

/** @param {object} options meetingId; isHost; agenda ([{id, title}]) */
export function createSuggestions(options) {
  const panel = $("suggestions-panel");
  const list = $("suggestion-list");
  const form = $("suggestion-form");
  const base = `/api/meetings/${encodeURIComponent(options.meetingId)}/suggestions`;
  const titles = new Map((options.agenda || []).map((item) => [item.id, item.title]));
  const items = new Map();
  let you = null;

  function answerTools(suggestion) {
    const box = el("div", "answer-tools");
    const reply = el("textarea", "answer-reply");
    reply.rows = 2;
    reply.maxLength = 2000;
    reply.placeholder = t("answer_reply");
    reply.value = suggestion.reply || "";
    box.append(reply);
    for (const [status, label] of [["adopted", "answer_adopt"], ["answered", "answer_answer"], ["not_adopted", "answer_decline"]]) {
      const button = el("button", `button small ${status === "not_adopted" ? "danger-outline" : "secondary"} answer-${status}`, t(label));
      button.type = "button";
      button.addEventListener("click", async () => {
        button.disabled = true;
        try {
          await postJSON(`${base}/${encodeURIComponent(suggestion.id)}/answer`, { status, reply: reply.value });
        } catch (error) {
          window.alert(error.message);
        }
        button.disabled = false;
      });
      box.append(button);
    }
    return box;
  }

  function row(suggestion) {
    const li = el("li", `suggestion ${suggestion.status}`);
    li.dataset.id = suggestion.id;
    const head = el("p", "suggestion-head");
    head.append(userText("strong", "", suggestion.author.name), " ",
      el("span", `badge badge-${suggestion.status === "open" ? "scheduled" : "ended"}`, t(`status_${suggestion.status}`)));
    if (suggestion.item_id && titles.has(suggestion.item_id)) {
      head.append(" ", el("span", "muted small", t("on_item", { title: titles.get(suggestion.item_id) })));
    }
    li.append(head, userText("p", "suggestion-text", suggestion.text));
    if (suggestion.reply) li.append(el("p", "suggestion-reply", suggestion.reply));
    if (options.isHost) li.append(answerTools(suggestion));
    return li;
  }

  function render() {
    const ordered = [...items.values()].sort((a, b) => a.id - b.id);
    list.replaceChildren(...ordered.map(row));
    $("suggestion-empty").hidden = ordered.length > 0;
    panel.hidden = false;
  }

  form?.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = $("suggestion-text").value.trim();
    const error = $("suggestion-error");
    error.hidden = true;
    if (!text) return;
    const body = { text };
    const item = $("suggestion-item");
    if (item && item.value) body.item_id = Number(item.value);
    try {
      const posted = await postJSON(base, body);
      items.set(posted.id, posted);
      $("suggestion-text").value = "";
      render();
    } catch (exc) {
      showError(error, exc.message);
    }
  });

  return {
    async onJoin(ack) {
      you = ack.you;
      if (form) form.hidden = !(you && you.role === "member");
      try {
        const listed = await getJSON(base);
        items.clear();
        for (const s of listed.suggestions) items.set(s.id, s);
      } catch {
        // shown again on the next join
      }
      render();
    },
    onEvent(name, data) {
      if (name === "suggestion:posted" || name === "suggestion:answered") {
        items.set(data.id, data);
        render();
      }
    },
  };
}

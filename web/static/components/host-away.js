// "主持人网络中断，正在重连…": a bar at the top of every phone while the host's
// connection is lost (the server's transient host:away … host:back, and the join
// state's host_away for a phone that joins meanwhile). On committee pages (given
// onEnd), after the grace period (host:away_long) a prompt asks whether to end the
// meeting: "结束会议" calls onEnd, "继续等待" hides it (the server asks again later).
// Nothing ends by itself.
//
//   const hostAway = createHostAway({ onEnd });
//   const joined = hostAway.attach(joinLiveRoom(meeting, hostAway.wrap(handlers)));

import { el } from "../lib/dom.js";
import { t } from "../lib/i18n.js";

function askText(graceSeconds) {
  const seconds = Math.round(Number(graceSeconds) || 0);
  if (seconds >= 60 && seconds % 60 === 0) return t("host_away_long", { minutes: seconds / 60 });
  return t("host_away_long_s", { seconds });
}

/**
 * @param {object} options onEnd() for committee pages (the prompt's "end" button; may be
 *                         async); without it no prompt is shown. onAway() each time the
 *                         server says the host is away (the host page checks it is not
 *                         itself, sending into a dead connection)
 */
export function createHostAway({ onEnd, onAway } = {}) {
  const banner = el("div", "host-away-banner", t("host_away"));
  banner.id = "host-away-banner";
  banner.setAttribute("role", "status");
  banner.setAttribute("aria-live", "assertive");
  banner.hidden = true;
  document.body.append(banner);

  let prompt = null;
  let promptText = null;
  let graceSeconds = 120;
  let away = false;
  let self = false; // this device is the publisher: its own status line says so
  if (onEnd) {
    prompt = el("div", "host-away-prompt");
    prompt.id = "host-away-prompt";
    prompt.setAttribute("role", "alertdialog");
    prompt.hidden = true;
    promptText = el("p", "host-away-question", "");
    const endButton = el("button", "button danger", t("host_away_end"));
    endButton.type = "button";
    endButton.id = "host-away-end";
    const waitButton = el("button", "button", t("host_away_wait"));
    waitButton.type = "button";
    waitButton.id = "host-away-wait";
    const buttons = el("div", "host-away-buttons");
    buttons.append(endButton, waitButton);
    prompt.append(promptText, buttons);
    document.body.append(prompt);
    waitButton.addEventListener("click", () => {
      prompt.hidden = true;
    });
    endButton.addEventListener("click", async () => {
      endButton.disabled = true;
      try {
        await onEnd();
      } finally {
        endButton.disabled = false;
        prompt.hidden = true;
      }
    });
  }

  function render() {
    banner.hidden = !away || self;
    document.body.classList.toggle("host-away", away && !self);
  }

  function show(data) {
    away = true;
    if (data && Number.isFinite(Number(data.grace_s))) graceSeconds = Number(data.grace_s);
    render();
    onAway?.();
  }

  function hide() {
    away = false;
    if (prompt) prompt.hidden = true;
    render();
  }

  function ask() {
    if (!prompt || !away) return;
    promptText.textContent = askText(graceSeconds);
    prompt.hidden = false;
  }

  return {
    /** Listen to the room's socket: pass what joinLiveRoom returned; returns it. */
    attach(joined) {
      const socket = joined && joined.realtime && joined.realtime.socket;
      if (socket) {
        socket.on("host:away", (data) => show(data || {}));
        socket.on("host:back", hide);
        socket.on("host:away_long", () => {
          away = true;
          render();
          ask();
        });
      }
      return joined;
    },
    /** joinLiveRoom's handlers, with the join state's host_away and the meeting's end read too. */
    wrap(handlers) {
      return {
        ...handlers,
        onJoin(ack) {
          const state = (ack && ack.state) || {};
          if (state.host_away) {
            show(state.host_away);
            if (state.host_away.asked) ask();
          } else hide();
          handlers.onJoin?.(ack);
        },
        onStatus(event) {
          if (event && event.status !== "live") hide();
          handlers.onStatus?.(event);
        },
      };
    },
    /** This device is the one publishing: no banner here (its status line says it). */
    setSelf(publishing) {
      self = Boolean(publishing);
      render();
    },
    get away() {
      return away;
    },
  };
}

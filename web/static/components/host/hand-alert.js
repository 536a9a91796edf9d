// The host page's hand count, kept at the top of the screen: the queue itself is far
// down a phone's page. A new raised hand vibrates and beeps (lib/alert.js) unless the
// clerk turned that off (remembered on this phone). Tapping the count goes to the queue.

import { primeAlerts, signal } from "../../lib/alert.js";
import { $ } from "../../lib/dom.js";
import { t } from "../../lib/i18n.js";

const STORAGE_KEY = "cunhui.handAlert"; // "off" when the clerk turned the signal off

function readOn() {
  try {
    return window.localStorage.getItem(STORAGE_KEY) !== "off";
  } catch {
    return true; // storage blocked: signal, as by default
  }
}

function storeOn(on) {
  try {
    if (on) window.localStorage.removeItem(STORAGE_KEY);
    else window.localStorage.setItem(STORAGE_KEY, "off");
  } catch {
    // storage blocked: the choice lasts until the page is closed
  }
}

/** @returns {{setLive(live: boolean): void}} */
export function createHandAlert() {
  const bar = $("hand-alert-bar");
  const count = $("hand-alert");
  const countText = $("hand-alert-text");
  const toggle = $("hand-alert-sound");
  let on = readOn();
  let live = false;
  let joined = false;
  let known = null; // participant ids in the queue at the last render (null: none yet)
  let ringTimer = null;

  function showToggle() {
    toggle.textContent = on ? t("hand_alert_on") : t("hand_alert_off");
    toggle.setAttribute("aria-pressed", String(on));
  }

  function showBar() {
    bar.hidden = !(joined && live);
  }

  function ring() {
    count.classList.add("ringing");
    clearTimeout(ringTimer);
    ringTimer = setTimeout(() => count.classList.remove("ringing"), 4000);
  }

  function onHands(hands) {
    const n = hands.length;
    count.dataset.count = String(n);
    count.classList.toggle("has-hands", n > 0);
    countText.textContent = n > 0 ? t("hands_up", { n }) : t("hands_none");
    const ids = new Set(hands.map((hand) => hand.participant_id));
    const fresh = known !== null && [...ids].some((id) => !known.has(id));
    known = ids;
    joined = true;
    showBar();
    if (!fresh) return;
    ring();
    if (on) signal({ vibrate: true, sound: true });
  }

  document.addEventListener("hands:render", (event) => {
    if (event.detail.joined) onHands(event.detail.hands || []);
  });

  count.addEventListener("click", () => {
    const target = document.querySelector('label[for="floor-seconds"]') || $("hand-queue");
    target?.scrollIntoView({ behavior: "smooth", block: "start" });
    const first = document.querySelector("#hand-queue .grant");
    first?.focus({ preventScroll: true });
  });

  toggle.addEventListener("click", () => {
    on = !on;
    storeOn(on);
    showToggle();
    if (on) signal({ vibrate: true, sound: true }); // what it will sound like (and unlocks audio)
  });

  showToggle();
  primeAlerts(); // the clerk's next tap lets a later beep sound without one
  return {
    setLive(next) {
      live = next;
      showBar();
    },
  };
}

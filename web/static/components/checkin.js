// Check-in at the door: the clerk's phone camera reads the members' printed cards.
// A card's QR code holds the member's invite link ({base}/i/{invite}); the server
// checks it (this village, the current card, still on the roll) and ticks that member
// present in the hall: those are the hall's voters. The QR decoder is qr-scanner
// (npm, /vendor/qr-scanner/), loaded only when the clerk presses 扫码签到.

import { primeAlerts, signal } from "../lib/alert.js";
import { $ } from "../lib/dom.js";
import { t } from "../lib/i18n.js";

const SCANNER = "/vendor/qr-scanner/qr-scanner.min.js";
/** The same card held in front of the camera is read many times a second: once is enough. */
const SAME_CARD_MS = 4000;

/** A check-in: one short high beep and a buzz; a refusal: a longer low one. */
const ACCEPTED = { vibrate: [120], sound: [[880, 0.15]] };
const REFUSED = { vibrate: [80, 60, 80], sound: [[220, 0.3]] };

/** The whole frame: a card anywhere in view is read (the default is its middle only). */
function wholeFrame(video) {
  const width = video.videoWidth;
  const height = video.videoHeight;
  const scale = Math.min(1, 640 / Math.max(width, height));
  return {
    x: 0,
    y: 0,
    width,
    height,
    downScaledWidth: Math.round(width * scale),
    downScaledHeight: Math.round(height * scale),
  };
}

/**
 * @param {object} room the room's shared state and calls (room.js)
 * @param {() => void} onCheckedIn called after each check-in the server accepted
 */
export function createCheckin(room, onCheckedIn) {
  const openButton = $("checkin-button");
  const box = $("checkin-box");
  const video = $("checkin-video");
  const result = $("checkin-result");
  const stopButton = $("checkin-stop");
  if (!openButton || !box || !video || !result) return;

  let scanner = null;
  let last = { text: "", at: 0 };
  let busy = false;

  function show(text, state) {
    result.textContent = text;
    result.dataset.state = state;
  }

  async function onCode(text) {
    const now = Date.now();
    if (busy || (text === last.text && now - last.at < SAME_CARD_MS)) return;
    busy = true;
    last = { text, at: now };
    try {
      const ack = await room.call("attendance:checkin", { invite: text });
      if (ack.ok) {
        const key = ack.member.already ? "checkin_already" : "checkin_done";
        show(t(key, { name: ack.member.name }), "ok");
        signal(ACCEPTED);
        onCheckedIn?.();
      } else {
        show(room.describe(ack.error), "error");
        signal(REFUSED);
      }
    } finally {
      last.at = Date.now();
      busy = false;
    }
  }

  // bumped by stop(): a start() still loading the library or the camera gives up, so a
  // 停止 pressed meanwhile never leaves the camera on
  let attempt = 0;

  function stop() {
    attempt += 1;
    scanner?.stop();
    scanner?.destroy();
    scanner = null;
    box.hidden = true;
    openButton.hidden = false;
  }

  async function start() {
    if (scanner) return;
    const mine = ++attempt;
    openButton.hidden = true;
    box.hidden = false;
    show(t("checkin_hold_card"), "waiting");
    try {
      const QrScanner = (await import(SCANNER)).default;
      if (mine !== attempt) return; // stopped while the library loaded
      const opened = new QrScanner(video, (found) => onCode(found.data), {
        preferredCamera: "environment", // the rear camera (getUserMedia facingMode)
        maxScansPerSecond: 8,
        returnDetailedScanResult: true,
        calculateScanRegion: wholeFrame,
      });
      scanner = opened;
      await opened.start();
      if (mine !== attempt) {
        // stopped while the camera opened: stop() ran before the stream existed
        opened.stop();
        opened.destroy();
      }
    } catch {
      if (mine !== attempt) return;
      stop();
      box.hidden = false;
      openButton.hidden = false;
      show(t("checkin_no_camera"), "error");
    }
  }

  primeAlerts(); // the tap on 扫码签到 lets the check-in beeps sound
  openButton.addEventListener("click", start);
  stopButton?.addEventListener("click", stop);
}

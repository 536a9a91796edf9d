// Get a person's attention: a vibration and a short sound (two beeps made with a
// Web Audio oscillator, no sound file). Both are optional extras: a browser without
// them, or one that does not allow sound yet, simply stays silent.
//
//   import { primeAlerts, signal } from "../lib/alert.js";
//   primeAlerts();                        // once: unlock the sound on the next tap
//   signal({ vibrate: true, sound: true }); // { vibrated, sounded }
//   signal({ vibrate: [120], sound: [[880, 0.15]] }); // one short high beep

let context = null;
let primed = false;

function audioContext() {
  if (context) return context;
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return null;
  try {
    context = new Context();
  } catch {
    context = null;
  }
  return context;
}

/**
 * Browsers start sound only after a tap: make the audio context on the first tap or
 * key press, so that a later signal() can sound without one.
 */
export function primeAlerts() {
  if (primed) return; // every part of a page may ask; one set of listeners does
  primed = true;
  const unlock = () => {
    const ctx = audioContext();
    if (ctx && ctx.state === "suspended") ctx.resume().catch(() => {});
  };
  for (const type of ["pointerdown", "keydown", "touchend"]) {
    document.addEventListener(type, unlock, { capture: true, passive: true });
  }
}

/** The default: two short rising beeps, as [frequency (Hz), seconds] notes. */
const TWO_BEEPS = [
  [880, 0.18],
  [1175, 0.18],
];

function beep(ctx, at, frequency, seconds) {
  const oscillator = ctx.createOscillator();
  const gain = ctx.createGain();
  oscillator.type = "sine";
  oscillator.frequency.value = frequency;
  gain.gain.setValueAtTime(0.0001, at);
  gain.gain.exponentialRampToValueAtTime(0.3, at + 0.02);
  gain.gain.exponentialRampToValueAtTime(0.0001, at + seconds);
  oscillator.connect(gain).connect(ctx.destination);
  oscillator.start(at);
  oscillator.stop(at + seconds + 0.02);
}

function sound(notes) {
  const ctx = audioContext();
  if (!ctx) return false;
  try {
    if (ctx.state === "suspended") ctx.resume().catch(() => {});
    let at = ctx.currentTime + 0.01;
    for (const [frequency, seconds] of notes) {
      beep(ctx, at, frequency, seconds);
      at += seconds + 0.07; // a short gap between notes
    }
    return true;
  } catch {
    return false;
  }
}

function vibrate(pattern) {
  if (typeof navigator.vibrate !== "function") return false;
  try {
    return navigator.vibrate(pattern);
  } catch {
    return false;
  }
}

/**
 * Vibrate and/or beep now.
 * @param {{vibrate?: boolean|number[], sound?: boolean|number[][]}} options
 *   vibrate: true (a double buzz) or a navigator.vibrate pattern; sound: true (two short
 *   beeps) or the notes to play, each [frequency in Hz, seconds]
 * @returns {{vibrated: boolean, sounded: boolean}} what the browser accepted
 */
export function signal({ vibrate: buzz = true, sound: beeps = true } = {}) {
  const pattern = Array.isArray(buzz) ? buzz : [200, 100, 200];
  return {
    vibrated: buzz ? vibrate(pattern) : false,
    sounded: beeps ? sound(Array.isArray(beeps) ? beeps : TWO_BEEPS) : false,
  };
}

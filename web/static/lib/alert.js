// Get a person's attention: a vibration and a short sound (two beeps made with a
// Web Audio oscillator, no sound file). Both are optional extras: a browser without
// them, or one that does not allow sound yet, simply stays silent.
//
//   import { primeAlerts, signal } from "../lib/alert.js";
//   primeAlerts();                        // once: unlock the sound on the next tap
//   signal({ vibrate: true, sound: true }); // { vibrated, sounded }

let context = null;

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
  const unlock = () => {
    const ctx = audioContext();
    if (ctx && ctx.state === "suspended") ctx.resume().catch(() => {});
  };
  for (const type of ["pointerdown", "keydown", "touchend"]) {
    document.addEventListener(type, unlock, { capture: true, passive: true });
  }
}

function beep(ctx, at, frequency) {
  const oscillator = ctx.createOscillator();
  const gain = ctx.createGain();
  oscillator.type = "sine";
  oscillator.frequency.value = frequency;
  gain.gain.setValueAtTime(0.0001, at);
  gain.gain.exponentialRampToValueAtTime(0.3, at + 0.02);
  gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.18);
  oscillator.connect(gain).connect(ctx.destination);
  oscillator.start(at);
  oscillator.stop(at + 0.2);
}

function sound() {
  const ctx = audioContext();
  if (!ctx) return false;
  try {
    if (ctx.state === "suspended") ctx.resume().catch(() => {});
    const now = ctx.currentTime + 0.01;
    beep(ctx, now, 880);
    beep(ctx, now + 0.25, 1175);
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
 * @param {{vibrate?: boolean|number[], sound?: boolean}} options
 *   vibrate: true (a double buzz) or a navigator.vibrate pattern; sound: two short beeps
 * @returns {{vibrated: boolean, sounded: boolean}} what the browser accepted
 */
export function signal({ vibrate: buzz = true, sound: beeps = true } = {}) {
  const pattern = Array.isArray(buzz) ? buzz : [200, 100, 200];
  return {
    vibrated: buzz ? vibrate(pattern) : false,
    sounded: beeps ? sound() : false,
  };
}

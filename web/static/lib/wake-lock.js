// Keep the screen on while the host sends (a phone that sleeps stops its camera).

/** @param {() => boolean} wanted whether the lock should be taken again when the page shows */
export function createWakeLock(wanted) {
  let lock = null;

  async function keep() {
    if (!("wakeLock" in navigator) || lock || document.visibilityState !== "visible") return;
    try {
      lock = await navigator.wakeLock.request("screen");
      lock.addEventListener("release", () => {
        lock = null;
      });
    } catch {
      lock = null;
    }
  }

  function release() {
    if (lock) lock.release().catch(() => {});
    lock = null;
  }

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && wanted()) keep();
  });

  return { keep, release };
}

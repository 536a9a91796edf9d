// Vote receipts stay on this phone (localStorage), for checking later.

const RECEIPTS_KEY = "cunhui.receipts";

/** Keep the receipt of a ballot (key: the vote id, or "voteId:memberId" for a proxy's). */
export function remember(key, receipt) {
  try {
    const saved = JSON.parse(localStorage.getItem(RECEIPTS_KEY) || "{}");
    saved[key] = receipt;
    localStorage.setItem(RECEIPTS_KEY, JSON.stringify(saved));
  } catch {
    // private mode: the receipt is still shown on the page
  }
}

/** The receipt kept for `key`, or null. */
export function recalled(key) {
  try {
    return JSON.parse(localStorage.getItem(RECEIPTS_KEY) || "{}")[key] || null;
  } catch {
    return null;
  }
}

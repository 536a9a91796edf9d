// The printable notice: print, and copy the share text for messaging groups.

const printButton = document.getElementById("print-button");
const copyButton = document.getElementById("copy-share");
const shareText = document.getElementById("share-text");

printButton.addEventListener("click", () => window.print());

copyButton.addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText(shareText.value);
  } catch {
    // In-app browsers often refuse the clipboard API: select it for a long-press copy.
    shareText.focus();
    shareText.select();
  }
});

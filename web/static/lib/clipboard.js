// Copying a link or a text for messaging groups.

/**
 * Copy `text`; true if it worked. Else (in-app browsers often refuse the clipboard API)
 * `input`, if given, is focused and selected for a long-press copy, and false returned.
 */
export async function copyText(text, input = null) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    input?.focus();
    input?.select();
    return false;
  }
}

"""English left on a page shown in Chinese: the texts a zh-CN reader would see untranslated.

``untranslated_texts(page)`` looks at what a person sees: every visible text node,
and the placeholder, title and aria-label of visible elements (and the value of
visible buttons). A text is untranslated if it has a Latin word (two letters or more)
and no Chinese character, once these are taken out:

* user content: anything inside an element marked ``translate="no"`` (standard HTML,
  "do not translate this"); pages mark chat lines, names, titles, questions, options,
  suggestions and places with it where they render them;
* proper names and format names a villager reads as they are (``ALLOWED``);
* URLs, paths, e-mail addresses, digests, numbers, dates and times;
* text inside an element whose ``lang`` is not Chinese (the language switch's "English").

"Markdown" is not allowed: a download says what the file is for in words.
"""

from __future__ import annotations

#: names shown as they are in Chinese too
ALLOWED = ("WHIP", "WHEP", "MP4", "HLS", "PIN", "QR", "Cunhui", "PDF")

UNTRANSLATED = """allowed => {
  const CHINESE = /[\\u3400-\\u9fff\\uf900-\\ufaff]/;
  const URLISH = new RegExp(
    [
      "(?:[a-z][a-z0-9+.-]*://|www\\\\.)\\\\S+", // a link
      "\\\\S+@\\\\S+\\\\.\\\\S+", // an e-mail address
      "(?:^|\\\\s)/\\\\S*", // a path
      "\\\\S+\\\\.(?:cn|com|org|net|local)\\\\S*", // a host name
      "\\\\b[0-9a-f]{16,}\\\\b", // a digest (the audit record's)
    ].join("|"),
    "gi",
  );
  const NAMES = new RegExp(`\\\\b(?:${allowed.join("|")})\\\\b`, "g");
  const WORD = /[A-Za-z]{2,}/;

  function untranslated(text) {
    const left = text.replace(URLISH, " ").replace(NAMES, " ");
    return WORD.test(left) && !CHINESE.test(text);
  }
  function visible(element) {
    if (!element || element.closest("[translate='no']")) return false;
    // written in another language on purpose (the language switch's "English")
    if (!/^zh/i.test(element.closest("[lang]")?.lang || "zh")) return false;
    if (element.closest("script, style, noscript, template, head")) return false;
    if (typeof element.checkVisibility === "function") {
      return element.checkVisibility({ checkVisibilityCSS: true, visibilityProperty: true });
    }
    const style = getComputedStyle(element);
    return element.getClientRects().length > 0 && style.visibility !== "hidden";
  }

  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.replace(/\\s+/g, " ").trim();
    if (text && untranslated(text) && visible(node.parentElement)) found.push(text);
  }
  for (const element of document.body.querySelectorAll("[placeholder], [title], [aria-label]")) {
    if (!visible(element)) continue;
    for (const name of ["placeholder", "title", "aria-label"]) {
      const text = (element.getAttribute(name) || "").trim();
      if (text && untranslated(text)) found.push(`${name}=${text}`);
    }
  }
  const buttons = "input[type=button], input[type=submit], input[type=reset]";
  for (const element of document.body.querySelectorAll(buttons)) {
    if (visible(element) && untranslated(element.value || "")) found.push(`value=${element.value}`);
  }
  for (const select of document.body.querySelectorAll("select")) {
    const shown = select.selectedOptions[0];
    if (visible(select) && shown && !shown.closest("[translate='no']")) {
      const text = shown.textContent.trim();
      if (untranslated(text)) found.push(`option=${text}`);
    }
  }
  return found;
}"""


async def untranslated_texts(page) -> list[str]:
    """The visible texts of ``page`` with Latin words and no Chinese, outside user content."""
    return await page.evaluate(UNTRANSLATED, list(ALLOWED))

"""A small Android phone in real Chromium, and the checks every page must pass on it.

``Phone`` is a fresh Chromium profile at 360×740 in zh-CN with a phone's user agent,
touch and the mobile viewport rules (the page's ``<meta name=viewport>`` counts).
``phone_problems(page, errors)`` lists, in words a person can act on, what a user of
that phone would notice on the page as it is now:

- an error in the console or an uncaught script error (collected by ``watch_errors``
  from the page's first load);
- anything wider than the screen (the page scrolls sideways at 360 px);
- a visible button, link, input, select, textarea or summary smaller than 44×44 px
  (a checkbox or radio counts by its label);
- visible text smaller than 16 px (inputs and selects included);
- English left in the zh-CN page (``tests/support/untranslated.py``).

Each problem names the element: tag, id, classes, its text and its size.
``assert_phone_ready`` fails with all of them at once.
"""

from __future__ import annotations

from .browser import Browser
from .untranslated import untranslated_texts

SCREEN = {"width": 360, "height": 740}

#: Chrome on a mid-range Android phone, as many villagers hold
PHONE_USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 12; Redmi Note 11) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36"
)

MIN_TARGET = 44  # px, each side of a control
MIN_TEXT = 16  # px, font size of visible text

#: what the phone's user would notice on the page (one list per kind of problem)
PAGE_FACTS = """([minTarget, minText, english]) => {
  const width = document.documentElement.clientWidth;
  const px = (n) => Math.round(n * 10) / 10;
  const describe = (node, box) => {
    const r = box || node.getBoundingClientRect();
    let name = node.tagName.toLowerCase();
    if (node.id) name += `#${node.id}`;
    const classes = typeof node.className === "string" ? node.className.trim() : "";
    if (classes) name += "." + classes.split(/\\s+/).join(".");
    if (node.type && node.tagName !== "BUTTON") name += `[type=${node.type}]`;
    const value = ["checkbox", "radio"].includes(node.type) ? "" : node.value;
    const text = (node.innerText || value || node.getAttribute("aria-label") || "")
      .replace(/\\s+/g, " ").trim().slice(0, 40);
    const size = `${px(r.width)}×${px(r.height)} px`;
    return `<${name}> "${text}" ${size} at (${px(r.left)}, ${px(r.top + scrollY)})`;
  };
  const shown = (node) => {
    if (!node.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true })) return false;
    const r = node.getBoundingClientRect();
    return r.width > 1 && r.height > 1;
  };

  // sideways: the deepest elements that reach past the screen's edge
  const overflow = [];
  const scrollWidth = document.documentElement.scrollWidth;
  if (scrollWidth > width) {
    const wide = [...document.body.querySelectorAll("*")].filter((node) => {
      if (!shown(node)) return false;
      const r = node.getBoundingClientRect();
      return r.right > width + 0.5 || r.left < -0.5;
    });
    const deepest = wide.filter((node) => !wide.some((o) => o !== node && node.contains(o)));
    overflow.push(`the page is ${scrollWidth} px wide on a ${width} px screen`);
    for (const node of deepest.slice(0, 12)) overflow.push(describe(node));
  }

  // touch targets
  const small = [];
  const controls = document.querySelectorAll(
    "a[href], button, input:not([type=hidden]), select, textarea, summary, [role=button]");
  for (const node of controls) {
    let target = node;
    if (node.type === "checkbox" || node.type === "radio") {
      const labels = [...(node.labels || [])].filter(shown);
      if (labels.length) {
        target = labels.reduce((a, b) => {
          const ra = a.getBoundingClientRect(), rb = b.getBoundingClientRect();
          return ra.width * ra.height >= rb.width * rb.height ? a : b;
        });
      }
    }
    if (!shown(node) && !(target !== node && shown(target))) continue;
    const r = target.getBoundingClientRect();
    if (r.width < minTarget - 0.5 || r.height < minTarget - 0.5) {
      small.push(
        target === node ? describe(node) : `${describe(node)} by its label ${describe(target)}`,
      );
    }
  }

  // text size: visible text nodes, and what inputs show
  const tiny = [];
  const SKIPPED = ["SCRIPT", "STYLE", "NOSCRIPT", "TEMPLATE", "OPTION"];
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const range = document.createRange();
  for (let text = walker.nextNode(); text; text = walker.nextNode()) {
    if (!text.textContent.trim()) continue;
    const parent = text.parentElement;
    if (!parent || seen.has(parent) || SKIPPED.includes(parent.tagName)) continue;
    if (!shown(parent)) continue;
    range.selectNodeContents(text);
    const rects = [...range.getClientRects()].filter((r) => r.width > 1 && r.height > 1);
    if (!rects.length) continue;
    const size = parseFloat(getComputedStyle(parent).fontSize);
    if (size < minText - 0.05) {
      seen.add(parent);
      const words = text.textContent.trim().slice(0, 30);
      tiny.push(`${describe(parent)} text "${words}" at ${px(size)} px`);
    }
  }
  const fields = document.querySelectorAll(
    "input:not([type=hidden]):not([type=checkbox]):not([type=radio]), select, textarea");
  for (const node of fields) {
    if (!shown(node) || seen.has(node)) continue;
    const size = parseFloat(getComputedStyle(node).fontSize);
    if (size < minText - 0.05) tiny.push(`${describe(node)} at ${px(size)} px`);
  }

  // where the English found by untranslated_texts is
  const ATTRIBUTES = ["placeholder", "title", "aria-label", "value", "option"];
  const textNodes = [];
  const all = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let text = all.nextNode(); text; text = all.nextNode()) textNodes.push(text);
  const whereEnglish = english.map((found) => {
    const eq = found.indexOf("=");
    const attribute = eq > 0 ? found.slice(0, eq) : "";
    if (ATTRIBUTES.includes(attribute)) {
      const value = found.slice(eq + 1);
      const node = attribute === "option"
        ? [...document.querySelectorAll("select")].find(
            (s) => s.selectedOptions[0]?.textContent.trim() === value)
        : attribute === "value"
          ? [...document.querySelectorAll("input")].find((i) => i.value === value)
          : [...document.querySelectorAll(`[${attribute}]`)].find(
              (n) => n.getAttribute(attribute).trim() === value && shown(n));
      if (node) return describe(node);
    }
    const text = textNodes.find((t) => t.textContent.replace(/\\s+/g, " ").trim() === found
      && t.parentElement && shown(t.parentElement));
    return text ? describe(text.parentElement) : "";
  });
  return { overflow, small, tiny, whereEnglish };
}"""


def watch_errors(page) -> list[str]:
    """From now on, every console error and uncaught error of ``page``, with its URL."""
    errors: list[str] = []

    def on_console(message) -> None:
        if message.type == "error":
            where = message.location.get("url", "") if message.location else ""
            errors.append(f"console error on {page.url}: {message.text} ({where})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(f"page error on {page.url}: {error}"))
    return errors


async def phone_problems(page, errors: list[str]) -> list[str]:
    """What a phone's user would notice on ``page`` now (empty: nothing)."""
    problems = list(errors)
    english = await untranslated_texts(page)
    facts = await page.evaluate(PAGE_FACTS, [MIN_TARGET, MIN_TEXT, english])
    problems += [f"sideways: {p}" for p in facts["overflow"]]
    problems += [f"smaller than {MIN_TARGET}×{MIN_TARGET} px: {p}" for p in facts["small"]]
    problems += [f"text under {MIN_TEXT} px: {p}" for p in facts["tiny"]]
    problems += [
        f"English in zh-CN: {text!r} {where}".rstrip()
        for text, where in zip(english, facts["whereEnglish"], strict=True)
    ]
    return problems


async def assert_phone_ready(page, errors: list[str], where: str = "") -> None:
    """Fail, naming every element at fault, unless ``page`` is fit for a small phone now."""
    problems = await phone_problems(page, errors)
    label = where or page.url
    assert not problems, f"{label} ({page.url}) on a 360 px phone:\n  " + "\n  ".join(problems)


class Phone(Browser):
    """One Chromium with a fresh profile, as a small Android phone: ``async with Phone(pw)``.

    Extra Chromium flags (e.g. an autoplay policy) follow the playwright object.
    """

    CONTEXT = {
        "viewport": SCREEN,
        "screen": SCREEN,
        "user_agent": PHONE_USER_AGENT,
        "is_mobile": True,
        "has_touch": True,
        "device_scale_factor": 2,
        "locale": "zh-CN",
        "timezone_id": "Asia/Shanghai",
    }

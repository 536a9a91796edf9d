// Tiny DOM helpers. Text always goes in with textContent: user text is never HTML.

/** The element with this id (null if the page has none). */
export const $ = (id) => document.getElementById(id);

/** An element with a class and (optionally) text. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

/** `el` for what people wrote (names, titles, chat, questions): translate="no", so a
 * translator leaves it alone and the pages' untranslated-English check skips it. */
export function userText(tag, className, text) {
  const node = el(tag, className, text);
  node.translate = false;
  return node;
}

/** A <button type="button" class="button …"> that calls onClick. */
export function button(label, className, onClick) {
  const b = el("button", `button ${className}`, label);
  b.type = "button";
  b.addEventListener("click", onClick);
  return b;
}

/** The JSON the server rendered into <script type="application/json" id="…">. */
export function pageData(id, fallback = "{}") {
  return JSON.parse($(id).textContent || fallback);
}

/** Show `message` (as text) in an error line that is hidden until something goes wrong. */
export function showError(node, message) {
  node.textContent = message;
  node.hidden = false;
}

/** Import a module the page needs later, trying again on a weak link (3 tries, 3 s apart). */
export function importSoon(load, then, tries = 3) {
  load()
    .then(then)
    .catch(() => {
      if (tries > 1) setTimeout(() => importSoon(load, then, tries - 1), 3000);
    });
}

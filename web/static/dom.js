// Tiny DOM helpers. Text always goes in with textContent: user text is never HTML.

/** An element with a class and (optionally) text. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

/** A <button type="button" class="button …"> that calls onClick. */
export function button(label, className, onClick) {
  const b = el("button", `button ${className}`, label);
  b.type = "button";
  b.addEventListener("click", onClick);
  return b;
}

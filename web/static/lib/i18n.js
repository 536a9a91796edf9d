// Translated strings for scripts. Each page renders them (already translated by
// the server) as JSON in <script type="application/json" id="i18n">; the base
// layout adds a few shared ones in #common-i18n.
//
//   import { t } from "../lib/i18n.js";
//   t("viewers", { n: 3 })   // "{n} watching" -> "3 watching"

let strings = null;

function readBlob(id) {
  const node = document.getElementById(id);
  if (!node) return {};
  try {
    const value = JSON.parse(node.textContent || "{}");
    return value && typeof value === "object" ? value : {};
  } catch {
    return {};
  }
}

function load() {
  if (strings === null) {
    strings = {
      ...readBlob("common-i18n"),
      ...readBlob("room-i18n"),
      ...readBlob("pin-i18n"),
      ...readBlob("i18n"),
    };
  }
  return strings;
}

/** The translated string for `key` ({name} placeholders filled from `vars`); the key itself if missing. */
export function t(key, vars) {
  const value = Object.prototype.hasOwnProperty.call(load(), key) ? load()[key] : key;
  if (!vars) return value;
  return value.replace(/\{(\w+)\}/g, (match, name) =>
    Object.prototype.hasOwnProperty.call(vars, name) ? String(vars[name]) : match,
  );
}

/** The page's language as a BCP 47 tag ("zh-CN" or "en"). */
export function pageLang() {
  return document.documentElement.lang || "zh-CN";
}

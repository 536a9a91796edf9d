// Printable pages (member cards, minutes, the audit record): the print button.

import { $ } from "../lib/dom.js";

$("print-button")?.addEventListener("click", () => window.print());

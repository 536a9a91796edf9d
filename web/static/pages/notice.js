// The printable notice: print, and copy the share text for messaging groups.

import { copyText } from "../lib/clipboard.js";
import { $ } from "../lib/dom.js";

$("print-button").addEventListener("click", () => window.print());
$("copy-share").addEventListener("click", () => copyText($("share-text").value, $("share-text")));

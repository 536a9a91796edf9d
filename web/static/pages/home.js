// Home page: type a meeting code, go to /m/<code>.

import { $ } from "../lib/dom.js";
import { t } from "../lib/i18n.js";

const form = $("code-form");
const input = $("meeting-code");
const error = $("code-error");

if (form && input) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    // People type "123 456 789", "123-456-789" or full-width digits.
    const code = input.value
      .replace(/[０-９]/g, (d) => String.fromCharCode(d.charCodeAt(0) - 0xfee0))
      .replace(/\D/g, "");
    if (code.length < 4 || code.length > 15) {
      error.textContent = t("code_invalid");
      error.hidden = false;
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    error.hidden = true;
    input.removeAttribute("aria-invalid");
    window.location.assign(`/m/${encodeURIComponent(code)}`);
  });
  input.addEventListener("input", () => {
    error.hidden = true;
    input.removeAttribute("aria-invalid");
  });
}

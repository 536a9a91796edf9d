// Home page: type a meeting code, go to /m/<code>; with the member card's PIN too,
// sign in as the member first (components/pin-join.js).

import { $, showError } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { digitsOf, joinWithPin } from "../components/pin-join.js";

const form = $("code-form");
const input = $("meeting-code");
const pinInput = $("meeting-pin");
const button = $("code-button");
const error = $("code-error");

function fail(message, field) {
  showError(error, message);
  field.setAttribute("aria-invalid", "true");
  field.focus();
}

function clearError() {
  error.hidden = true;
  input.removeAttribute("aria-invalid");
  if (pinInput) pinInput.removeAttribute("aria-invalid");
}

if (form && input) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const code = digitsOf(input.value);
    if (code.length < 4 || code.length > 15) {
      fail(t("code_invalid"), input);
      return;
    }
    clearError();
    const watchUrl = `/m/${encodeURIComponent(code)}`;
    const pin = pinInput ? digitsOf(pinInput.value) : "";
    if (!pin) {
      window.location.assign(watchUrl);
      return;
    }
    button.disabled = true;
    try {
      await joinWithPin(code, pin, { checkCode: true });
      window.location.assign(watchUrl);
    } catch (exc) {
      button.disabled = false;
      fail(exc.message, pinInput);
    }
  });
  input.addEventListener("input", clearError);
  if (pinInput) pinInput.addEventListener("input", clearError);
}

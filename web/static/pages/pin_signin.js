// The watch page's "sign in with your PIN" form: the meeting's code is known, the
// member types the PIN from their card and the page reloads with them signed in.

import { $, pageData, showError } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { digitsOf, joinWithPin } from "../components/pin-join.js";

const form = $("pin-form");
const input = $("pin-input");
const button = $("pin-button");
const error = $("pin-error");
const { code } = pageData("meeting-data");

if (form && input) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!digitsOf(input.value)) {
      showError(error, t("pin_missing"));
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    error.hidden = true;
    button.disabled = true;
    try {
      await joinWithPin(code, input.value);
      window.location.reload();
    } catch (exc) {
      button.disabled = false;
      showError(error, exc.message);
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
  });
  input.addEventListener("input", () => {
    error.hidden = true;
    input.removeAttribute("aria-invalid");
  });
}

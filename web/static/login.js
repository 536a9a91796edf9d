// Login: POST /api/login as JSON; the server sets an HttpOnly session cookie.

import { postJSON } from "./api.js";
import { t } from "./i18n.js";

const form = document.getElementById("login-form");
const username = document.getElementById("username");
const password = document.getElementById("password");
const button = document.getElementById("login-button");
const errorBox = document.getElementById("login-error");
const errorMain = document.getElementById("login-error-main");
const errorDetail = document.getElementById("login-error-detail");
const buttonLabel = button.textContent;

function safeNext() {
  const next = form.dataset.next || "/";
  return next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\") ? next : "/";
}

function showError(main, detail) {
  errorMain.textContent = main;
  errorDetail.textContent = detail || "";
  errorDetail.hidden = !detail;
  errorBox.hidden = false;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const user = username.value.trim();
  if (!user || !password.value) {
    showError(t("missing"));
    (user ? password : username).focus();
    return;
  }
  errorBox.hidden = true;
  button.disabled = true;
  button.textContent = t("busy");
  try {
    await postJSON("/api/login", { username: user, password: password.value });
    window.location.assign(safeNext());
    return;
  } catch (error) {
    if (error.isNetwork) showError(t("network"));
    else if (error.status === 401) showError(t("wrong"), error.message);
    else showError(t("failed"), error.message);
    password.select();
  }
  button.disabled = false;
  button.textContent = buttonLabel;
});

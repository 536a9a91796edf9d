// Login: POST /api/login as JSON; the server sets an HttpOnly session cookie.

import { postJSON } from "../lib/api.js";
import { $ } from "../lib/dom.js";
import { t } from "../lib/i18n.js";

const form = $("login-form");
const username = $("username");
const password = $("password");
const button = $("login-button");
const errorBox = $("login-error");
const errorMain = $("login-error-main");
const errorDetail = $("login-error-detail");
const buttonLabel = button.textContent;

// Only a path on this site: browsers drop tabs and newlines and read a backslash
// as "/", so "/<tab>/evil" or "/<backslash>evil" would leave it (the server checks too).
function safeNext() {
  const next = form.dataset.next || "/";
  return /^\/(?![\/\\])[^\\\s\u0000-\u001f\u007f-\u009f]*$/.test(next) ? next : "/";
}

// "3 minutes" or "40 seconds" from the error's retry_after (seconds)
function waitText(error) {
  const seconds = Number(error.details?.retry_after) || 0;
  if (seconds <= 0) return "";
  return seconds < 60
    ? t("wait_seconds", { n: Math.ceil(seconds) })
    : t("wait_minutes", { n: Math.ceil(seconds / 60) });
}

function showError(main, detail) {
  errorMain.textContent = main;
  errorDetail.textContent = detail || "";
  errorDetail.hidden = !detail;
  errorBox.hidden = false;
}

function triesLeft(error) {
  const left = error.details?.tries_left;
  return typeof left === "number" && left <= 5 ? t("tries_left", { n: left }) : "";
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
    else if (error.status === 401) showError(t("wrong"), triesLeft(error));
    else if (error.status === 429) showError(t("locked"), waitText(error));
    else if (error.status === 503) showError(t("server_busy"), waitText(error));
    else showError(t("failed"), error.message);
    password.select();
  }
  button.disabled = false;
  button.textContent = buttonLabel;
});

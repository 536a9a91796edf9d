// Times and durations as the pages show them.

import { pageLang } from "./i18n.js";

const pad = (n) => String(n).padStart(2, "0");

/** "1:02:03" or "2:03" (a replay's moments). */
export function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds || 0));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

/** "2:03", minutes uncapped (the floor's timer). */
export function stopwatch(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${pad(s % 60)}`;
}

/** "00:12:34" (a recording's length). */
export function longClock(seconds) {
  const s = Math.max(0, Math.floor(seconds || 0));
  return `${pad(Math.floor(s / 3600))}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
}

/** ?t=90, ?t=90.5, ?t=1:30 or ?t=1:02:03 → seconds (null if absent or unreadable). */
export function parseMoment(text) {
  if (!text) return null;
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  const match = /^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d+)?)$/.exec(text);
  if (!match) return null;
  return Number(match[1] || 0) * 3600 + Number(match[2]) * 60 + Number(match[3]);
}

/** "09:05", the local time of day of an ISO date ("" if unreadable). */
export function timeOf(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
}

/** The village's time zone, for texts read elsewhere (a forwarded share text). */
export const VILLAGE_TIME_ZONE = "Asia/Shanghai";

/** A date and time in the reader's time zone (or `timeZone`), e.g. "12月1日 周二 09:00". */
export function formatDateTime(iso, timeZone = undefined) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  try {
    return new Intl.DateTimeFormat(pageLang(), {
      year: date.getFullYear() === new Date().getFullYear() ? undefined : "numeric",
      month: "long",
      day: "numeric",
      weekday: "short",
      hour: "2-digit",
      minute: "2-digit",
      hour12: false,
      timeZone,
    }).format(date);
  } catch {
    return date.toLocaleString();
  }
}

/** Rewrite every <time data-format="datetime"> (server-rendered in UTC) in local time. */
export function formatTimes(root = document) {
  for (const node of root.querySelectorAll("time[datetime][data-format='datetime']")) {
    node.textContent = formatDateTime(node.getAttribute("datetime"));
  }
}

/**
 * "2026-12-01T09:00" from <input type="datetime-local"> → "2026-12-01T09:00:00+08:00",
 * with the browser's offset on that date. Null when empty; throws when invalid.
 */
export function localInputToIso(value) {
  if (!value) return null;
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?/.exec(value);
  if (!match) throw new Error("bad time");
  const [, y, mo, d, h, mi, s = "00"] = match;
  const date = new Date(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (Number.isNaN(date.getTime())) throw new Error("bad time");
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  const pad = (n) => String(Math.floor(Math.abs(n))).padStart(2, "0");
  return `${y}-${mo}-${d}T${h}:${mi}:${s}${sign}${pad(offset / 60)}:${pad(offset % 60)}`;
}

/** "2026-12-01T01:00:00+00:00" → "2026-12-01T09:00" in the browser's zone, for datetime-local. */
export function isoToLocalInput(iso) {
  const date = new Date(iso);
  if (!iso || Number.isNaN(date.getTime())) return "";
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

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

// One rule for every time a page shows: the village's clock (China Standard Time),
// whatever the reader's phone is set to: a migrant worker in another time zone sees
// the meeting at the hour the hall holds it, as the server-rendered minutes and the
// notice do (server/services/minutes.py local_date_time, the same zone).

/** The village's time zone: every date and time the pages show is in it. */
export const VILLAGE_TIME_ZONE = "Asia/Shanghai";

/** "09:05", the time of day of an ISO date in the village ("" if unreadable). */
export function timeOf(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  try {
    return new Intl.DateTimeFormat("en-GB", {
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
      timeZone: VILLAGE_TIME_ZONE,
    }).format(date);
  } catch {
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
  }
}

/** A date and time in the village's time zone (or `timeZone`), e.g. "12月1日 周二 09:00". */
export function formatDateTime(iso, timeZone = VILLAGE_TIME_ZONE) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  try {
    const year = (d) =>
      new Intl.DateTimeFormat("en", { year: "numeric", timeZone }).format(d);
    return new Intl.DateTimeFormat(pageLang(), {
      year: year(date) === year(new Date()) ? undefined : "numeric",
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

/** Rewrite every <time data-format="datetime"> (server-rendered, village time) for the page. */
export function formatTimes(root = document) {
  for (const node of root.querySelectorAll("time[datetime][data-format='datetime']")) {
    node.textContent = formatDateTime(node.getAttribute("datetime"));
  }
}

/** The wall clock of `date` in `timeZone`: {year, month, day, hour, minute, second} as numbers. */
function wallClock(date, timeZone) {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).formatToParts(date);
  const out = {};
  for (const part of parts) if (part.type !== "literal") out[part.type] = Number(part.value);
  return out;
}

/** Minutes east of UTC of `timeZone` at `date` (China: +480, no daylight saving). */
function offsetMinutes(date, timeZone) {
  const w = wallClock(date, timeZone);
  const asUtc = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  return Math.round((asUtc - Math.floor(date.getTime() / 1000) * 1000) / 60000);
}

/**
 * "2026-12-01T09:00" from <input type="datetime-local">, a time on the village's clock →
 * "2026-12-01T09:00:00+08:00". Null when empty; throws when invalid.
 */
export function localInputToIso(value) {
  if (!value) return null;
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?/.exec(value);
  if (!match) throw new Error("bad time");
  const [, y, mo, d, h, mi, s = "00"] = match;
  const wall = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (Number.isNaN(wall)) throw new Error("bad time");
  // the zone's offset at that moment (looked up twice: right across a clock change)
  let offset = offsetMinutes(new Date(wall), VILLAGE_TIME_ZONE);
  offset = offsetMinutes(new Date(wall - offset * 60000), VILLAGE_TIME_ZONE);
  const sign = offset >= 0 ? "+" : "-";
  const two = (n) => String(Math.floor(Math.abs(n))).padStart(2, "0");
  return `${y}-${mo}-${d}T${h}:${mi}:${s}${sign}${two(offset / 60)}:${two(offset % 60)}`;
}

/** "2026-12-01T01:00:00+00:00" → "2026-12-01T09:00", on the village's clock, for datetime-local. */
export function isoToLocalInput(iso) {
  const date = new Date(iso);
  if (!iso || Number.isNaN(date.getTime())) return "";
  const w = wallClock(date, VILLAGE_TIME_ZONE);
  return `${w.year}-${pad(w.month)}-${pad(w.day)}T${pad(w.hour)}:${pad(w.minute)}`;
}

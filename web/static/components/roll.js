// The village's member roll, as the committee's room tools list it.

import { getJSON } from "../lib/api.js";

/** The roll's members ([{id, name, household, …}]); rejects with ApiError. */
export async function fetchRoll() {
  return (await getJSON("/api/members")).members;
}

/** "张三（3组12号）": the name, with the household when there is one. */
export function memberLabel(member) {
  return member.household ? `${member.name}（${member.household}）` : member.name;
}

// The community's accounts by name: pages show people by name and let the office
// choose them from lists of names, never ids. One list per page load (GET /members,
// every page of it), reloaded after a page changes an account.
import { useEffect, useState } from "/static/vendor/htm-preact.module.js";
import { all } from "./api.js";

let loaded = null;
const listeners = new Set();

/** Every account, loaded once; `force` asks again (after a registration or an edit). */
export function loadMembers(force = false) {
  if (!loaded || force) {
    loaded = all("/members").catch((error) => { loaded = null; throw error; });
    loaded.then((members) => listeners.forEach((fn) => fn(members)), () => {});
  }
  return loaded;
}

/** `[members, error]`: undefined while loading; re-renders when the list is reloaded. */
export function useMembers() {
  const [state, setState] = useState({ members: undefined, error: null });
  useEffect(() => {
    const fn = (members) => setState({ members, error: null });
    listeners.add(fn);
    loadMembers().then(fn, (error) => setState({ members: undefined, error }));
    return () => listeners.delete(fn);
  }, []);
  return [state.members, state.error];
}

/** A person's name for an id ("—" for none; a short note if the account is unknown). */
export function nameOf(members, id) {
  if (!id) return "—";
  const found = (members || []).find((m) => m.id === id);
  return found ? found.name : "未知成员 Unknown member";
}

/** "张伟 (幸福花园)": a name, with the compound to tell two of the same name apart. */
export function personLabel(member) {
  return member.compound ? `${member.name} (${member.compound})` : member.name;
}

/** `[id, label]` pairs of the active accounts that pass `keep`, sorted by name. */
export function memberOptions(members, keep = () => true) {
  return (members || []).filter((m) => m.active && keep(m))
    .sort((a, b) => a.name.localeCompare(b.name, "zh-CN"))
    .map((m) => [m.id, personLabel(m)]);
}

/** Who may patrol: a member or an admin (a dashboard screen cannot). */
export const canPatrol = (m) => m.roles.includes("member") || m.roles.includes("admin");
/** Who may take a case: a party member. */
export const isPartyMember = (m) => m.party_member;

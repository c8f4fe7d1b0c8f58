// 文体队伍 Activity groups: the community's dance troupes, gateball teams, calligraphy and music groups.
// Each has a leader (a party member, chosen by name) and helpers; a session held (a rehearsal, a practice,
// a performance, a match) is recorded with how many residents took part (a count, never names), and
// gives the leader and the helpers present their service hours.
import { useRef, useState } from "/static/vendor/htm-preact.module.js";
import { all, api, newKey } from "./api.js";
import { html, Guarded, Field, Select, Check, Problem, Done, useForm, useLoad, messagesOf, communityToday }
  from "./ui.js";
import { useMembers, nameOf, memberOptions, canPatrol, isPartyMember } from "./people.js";
import { GROUP_KINDS, hours, thisMonth } from "./report.js";

export const SESSION_KINDS = { rehearsal: "排练 Rehearsal", practice: "练习 Practice",
  performance: "演出 Performance", match: "比赛 Match" };
const itemsOf = (answer) => (Array.isArray(answer) ? answer : (answer && answer.items) || []);
const whole = (text) => (/^\d+$/.test(String(text).trim()) ? Number(text) : text);

/** A group's helpers ticked by name (`options`: [id, label] pairs). */
function Helpers({ options, chosen, onChange, error, legend = "协助者 Helpers" }) {
  const toggle = (id) => (on) => onChange(on ? [...chosen, id] : chosen.filter((h) => h !== id));
  return html`<fieldset><legend>${legend} (${chosen.length})</legend>
    <div class="checklist">
      ${options.map(([id, label]) => html`<${Check} key=${id} label=${label} checked=${chosen.includes(id)}
        onInput=${toggle(id)} />`)}
      ${options.length === 0 && html`<p class="muted">无 None</p>`}
    </div>
    ${error && html`<span class="error" role="alert">${messagesOf(error).join(" ")}</span>`}
  </fieldset>`;
}

function GroupForm({ group, members, onSaved, onClose }) {
  const form = useForm(group ? { name: group.name, kind: group.kind, leader_id: group.leader_id || "",
                                 helper_ids: group.helper_ids, active: group.active }
    : { name: "", kind: "dance", leader_id: "", helper_ids: [], active: true });
  const [key, setKey] = useState(newKey);
  const [done, setDone] = useState("");
  const leaders = memberOptions(members, isPartyMember);
  const helpers = memberOptions(members, canPatrol).filter(([id]) => id !== form.values.leader_id);
  const submit = (event) => {
    event.preventDefault();
    setDone("");
    form.submit(async (v) => {
      const body = { name: v.name.trim(), kind: v.kind, leader_id: v.leader_id || null,
                     helper_ids: v.helper_ids.filter((h) => h !== v.leader_id) };
      if (group) {
        const saved = await api("PATCH", `/groups/${encodeURIComponent(group.id)}`, { body: { ...body,
          active: v.active } });
        onSaved(saved);
        return;
      }
      const made = await api("POST", "/groups", { key, body });
      setKey(newKey());
      form.reset();
      setDone(`已新建队伍 Group created: ${made.name}`);
      onSaved(made);
    });
  };
  const id = group ? group.id : "new";
  return html`<form class="card" onSubmit=${submit} aria-labelledby=${"group-form-h-" + id}>
    <h2 id=${"group-form-h-" + id}>${group ? `编辑队伍 Edit group: ${group.name}` : "新建文体队伍 New activity group"}</h2>
    <div class="grid">
      <${Field} label="名称 Name" name="name" value=${form.values.name} onInput=${form.set("name")}
        error=${form.errors.name} hint="例如 e.g. 夕阳红舞蹈队 Sunset dance troupe" />
      <${Select} label="类型 Kind" name="kind" value=${form.values.kind} onInput=${form.set("kind")}
        options=${Object.entries(GROUP_KINDS)} error=${form.errors.kind} />
      <${Select} label="队长（党员）Leader (a party member)" name="leader_id" value=${form.values.leader_id}
        onInput=${form.set("leader_id")} options=${leaders} blank="— 暂无 None yet —" error=${form.errors.leader_id} />
    </div>
    <${Helpers} options=${helpers} chosen=${form.values.helper_ids} error=${form.errors.helper_ids}
      onChange=${(ids) => form.setValues((v) => ({ ...v, helper_ids: ids }))} />
    ${group && html`<${Check} label="活动中 Active (an inactive group records no sessions)" checked=${form.values.active}
      onInput=${form.set("active")} />`}
    <${Problem} error=${form.problem} shown=${["name", "kind", "leader_id", "helper_ids"]} />
    <${Done}>${done}<//>
    <p class="row"><button class="primary" type="submit" disabled=${form.busy}>
        ${group ? "保存 Save" : "新建队伍 Create group"}</button>
      ${onClose && html`<button type="button" onClick=${onClose}>取消 Cancel</button>`}</p>
  </form>`;
}

/** A session held: when, how long, where, what was done, how many took part, which helpers came.
 * `helperOptions`: the group's helpers as [id, name] (the office's page; a leader's phone has none). */
export function SessionForm({ group, helperOptions = [], onSaved, onClose }) {
  const form = useForm({ held_on: communityToday(), starts_at: "09:00", duration_minutes: "90", place: "",
                         what: "", kind: "practice", participants: "", helper_ids: [] });
  const [key, setKey] = useState(newKey);
  const box = useRef(null);
  const submit = (event) => {
    event.preventDefault();
    form.submit(async (v) => {
      const body = { held_on: v.held_on, starts_at: v.starts_at, duration_minutes: whole(v.duration_minutes),
                     place: v.place.trim(), what: v.what.trim(), kind: v.kind, participants: whole(v.participants),
                     helper_ids: v.helper_ids };
      const session = await api("POST", `/groups/${encodeURIComponent(group.id)}/sessions`, { key, body });
      setKey(newKey());
      form.reset();
      onSaved(session);
    });
  };
  const { values: v, set, errors } = form;
  return html`<form class="card mine-form" ref=${box} onSubmit=${submit} aria-labelledby=${"session-h-" + group.id}>
    <h3 id=${"session-h-" + group.id}>记录活动 Record a session: ${group.name}</h3>
    <div class="grid">
      <${Field} label="日期 Date" name="held_on" type="date" value=${v.held_on} onInput=${set("held_on")}
        max=${communityToday()} error=${errors.held_on} />
      <${Field} label="开始时间 Starts at" name="starts_at" type="time" value=${v.starts_at} onInput=${set("starts_at")}
        error=${errors.starts_at} />
      <${Field} label="时长（分钟）Minutes" name="duration_minutes" value=${v.duration_minutes} inputmode="numeric"
        onInput=${set("duration_minutes")} error=${errors.duration_minutes} hint="1–720" />
      <${Select} label="类型 Kind" name="kind" value=${v.kind} onInput=${set("kind")}
        options=${Object.entries(SESSION_KINDS)} error=${errors.kind} />
      <${Field} label="地点 Place" name="place" value=${v.place} onInput=${set("place")} error=${errors.place} />
      <${Field} label="参与居民人数 Residents taking part" name="participants" value=${v.participants}
        inputmode="numeric" onInput=${set("participants")} error=${errors.participants}
        hint="人数，不记姓名 A count, no names" />
    </div>
    <${Field} label="活动内容 What was done" name="what" type="textarea" value=${v.what} onInput=${set("what")}
      error=${errors.what} />
    ${helperOptions.length > 0 && html`<${Helpers} legend="到场的协助者 Helpers present" options=${helperOptions}
      chosen=${v.helper_ids} error=${errors.helper_ids}
      onChange=${(ids) => form.setValues((old) => ({ ...old, helper_ids: ids }))} />`}
    <${Problem} error=${form.problem}
      shown=${["held_on", "starts_at", "duration_minutes", "kind", "place", "participants", "what", "helper_ids"]} />
    <p class="row"><button class="primary big" type="submit" disabled=${form.busy}>记录活动 Record session</button>
      ${onClose && html`<button type="button" onClick=${onClose}>取消 Cancel</button>`}</p>
  </form>`;
}

/** A group's sessions this month, newest first. */
function Sessions({ group, version }) {
  const [page, , error] = useLoad(() => api("GET", "/sessions", { query: { group_id: group.id, month: thisMonth(),
                                                                          limit: 20 } }), [group.id, version]);
  const sessions = itemsOf(page);
  if (error) return html`<${Problem} error=${error} />`;
  if (!page) return null;
  if (!sessions.length) return html`<p class="muted">本月还没有活动记录。No session recorded this month.</p>`;
  return html`<div class="table-wrap"><table class="stack" aria-label=${`本月活动 Sessions this month: ${group.name}`}>
    <thead><tr><th>日期 Date</th><th>类型 Kind</th><th>地点 Place</th><th>内容 What</th>
      <th class="num">时长 Hours</th><th class="num">参与人数 Participants</th></tr></thead>
    <tbody>${sessions.map((s) => html`<tr key=${s.id}>
      <td data-label="日期 Date" class="nowrap">${s.held_on} ${s.starts_at}</td>
      <td data-label="类型 Kind">${SESSION_KINDS[s.kind] || s.kind}</td>
      <td data-label="地点 Place">${s.place}</td><td data-label="内容 What" class="prewrap">${s.what}</td>
      <td data-label="时长 Hours" class="num">${hours(s.duration_minutes)}</td>
      <td data-label="参与人数 Participants" class="num">${s.participants}</td></tr>`)}</tbody>
  </table></div>`;
}

function GroupCard({ group, members, onSaved }) {
  const [doing, setDoing] = useState(null); // "edit" | "session" | null
  const [done, setDone] = useState("");
  const [version, setVersion] = useState(0);
  const helperName = (id, i) => (group.helper_names && group.helper_names[i]) || nameOf(members, id);
  const helperOptions = group.helper_ids.map((id, i) => [id, helperName(id, i)]);
  const leader = group.leader_id ? group.leader_name || nameOf(members, group.leader_id) : null;
  return html`<section class="card group" aria-labelledby=${"group-h-" + group.id}>
    <h2 id=${"group-h-" + group.id}>${group.name}
      ${!group.active && html` <span class="tag retired">已停止 Inactive</span>`}</h2>
    <dl class="facts">
      <dt>类型 Kind</dt><dd>${GROUP_KINDS[group.kind] || group.kind}</dd>
      <dt>队长 Leader</dt><dd>${leader || html`<span class="muted">未设，不能记录活动 None yet: no session can be
        recorded</span>`}</dd>
      <dt>协助者 Helpers</dt><dd>${helperOptions.length ? helperOptions.map(([, name]) => name).join("、")
        : html`<span class="muted">无 None</span>`}</dd>
    </dl>
    <${Done}>${done}<//>
    ${doing === "edit" && html`<${GroupForm} group=${group} members=${members} onClose=${() => setDoing(null)}
      onSaved=${(g) => { setDoing(null); setDone(`已保存 Saved: ${g.name}`); onSaved(g); }} />`}
    ${doing === "session" && html`<${SessionForm} group=${group} helperOptions=${helperOptions}
      onClose=${() => setDoing(null)}
      onSaved=${(s) => { setDoing(null); setVersion((n) => n + 1);
                         setDone(`已记录活动 Session recorded: ${s.held_on}，${s.participants} 人参与 took part`); }} />`}
    ${doing === null && html`<p class="row">
      <button type="button" class="primary" onClick=${() => { setDone(""); setDoing("session"); }}
        disabled=${!group.leader_id || !group.active}
        aria-label=${`记录活动 Record a session: ${group.name}`}>记录活动 Record a session</button>
      <button type="button" onClick=${() => { setDone(""); setDoing("edit"); }}
        aria-label=${`编辑队伍 Edit group ${group.name}`}>编辑 Edit</button></p>`}
    <h3>本月活动 Sessions this month</h3>
    <${Sessions} group=${group} version=${version} />
  </section>`;
}

function GroupsBody() {
  const [members, membersError] = useMembers();
  const [answer, reload, error] = useLoad(() => all("/groups"));
  const groups = itemsOf(answer);
  return html`
    <h1>文体队伍 Activity groups</h1>
    <p class="muted">每支队伍由一位党员任队长；记录的活动只记参与人数，不记居民姓名。队长和到场的协助者得到服务时长。
      Each group is led by a party member. A session records how many residents took part, never their names;
      the leader and the helpers present get its hours.</p>
    <${Problem} error=${error || membersError} />
    ${!answer && !error && html`<p class="loading">正在加载 Loading…</p>`}
    ${answer && !groups.length && html`<p class="muted">还没有文体队伍。No activity group yet.</p>`}
    ${groups.map((group) => html`<${GroupCard} key=${group.id} group=${group} members=${members} onSaved=${reload} />`)}
    <${GroupForm} members=${members} onSaved=${reload} />`;
}

export function GroupsPage(props) {
  return html`<${Guarded}><${GroupsBody} ...${props} /><//>`;
}

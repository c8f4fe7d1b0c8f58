// 片区与巡逻队 Zones and teams: each zone's compounds, its team by name and when it
// was last patrolled; a new zone; a zone's team chosen from the members by name; the
// patrols closed automatically (never finished within the cap), whose times the office corrects.
import { useEffect, useRef, useState } from "/static/vendor/htm-preact.module.js";
import { api, all, newKey } from "./api.js";
import {
  html, Guarded, Field, Select, Check, Problem, Done, useForm, useLoad, messagesOf, when, communityInput,
  fromCommunityInput, hours,
} from "./ui.js";
import { useMembers, nameOf, memberOptions, canPatrol } from "./people.js";

/** "幸福花园\n阳光小区, 和平里" -> ["幸福花园", "阳光小区", "和平里"] */
const splitCompounds = (text) => text.split(/[\n,，、;；]+/).map((c) => c.trim()).filter(Boolean);

function NewZoneForm({ onDone }) {
  const form = useForm({ name: "", compounds: "" });
  const [key, setKey] = useState(newKey);
  const [done, setDone] = useState("");
  const box = useRef(null);
  const submit = (event) => {
    event.preventDefault();
    setDone("");
    form.submit(async (v) => {
      const zone = await api("POST", "/zones", { key, body: { name: v.name.trim(),
                                                              compounds: splitCompounds(v.compounds) } });
      setKey(newKey());
      form.reset();
      setDone(`已新建片区 Zone created: ${zone.name}`);
      box.current?.querySelector("input")?.focus();
      onDone(zone);
    });
  };
  return html`<form class="card" ref=${box} onSubmit=${submit} aria-labelledby="new-zone-h">
    <h2 id="new-zone-h">新建片区 New zone</h2>
    <div class="grid">
      <${Field} label="名称 Name" name="name" value=${form.values.name} onInput=${form.set("name")}
        error=${form.errors.name} />
      <${Field} label="小区 Compounds" name="compounds" type="textarea" value=${form.values.compounds}
        onInput=${form.set("compounds")} hint="每行一个，或用逗号分开 One per line, or comma separated"
        error=${form.errors.compounds} />
    </div>
    <${Problem} error=${form.problem} shown=${["name", "compounds"]} />
    <${Done}>${done}<//>
    <p><button class="primary" type="submit" disabled=${form.busy}>新建片区 New zone</button></p>
  </form>`;
}

/** A zone's team: the leader from a list of names, the members ticked by name (with a filter box). */
function TeamForm({ zone, members, onSaved, onClose }) {
  const form = useForm({ leader_id: zone.team.leader_id || "", member_ids: zone.team.member_ids });
  const [filter, setFilter] = useState("");
  const box = useRef(null);
  useEffect(() => { box.current?.querySelector("select")?.focus(); }, [zone.id]);
  const options = memberOptions(members, canPatrol);
  const wanted = filter.trim().toLowerCase();
  const shown = options.filter(([id, label]) => id !== form.values.leader_id
    && (!wanted || label.toLowerCase().includes(wanted) || form.values.member_ids.includes(id)));
  const toggle = (id) => (on) => form.setValues((v) => ({ ...v,
    member_ids: on ? [...v.member_ids, id] : v.member_ids.filter((m) => m !== id) }));
  const submit = (event) => {
    event.preventDefault();
    if (!form.values.leader_id) {
      form.setProblem({ message: "请选择队长。Choose a leader." });
      box.current?.querySelector("select")?.focus();
      return;
    }
    form.submit(async (v) => {
      const saved = await api("PUT", `/zones/${encodeURIComponent(zone.id)}/team`, { body: {
        leader_id: v.leader_id, member_ids: v.member_ids.filter((m) => m !== v.leader_id) } });
      onSaved(saved);
    });
  };
  return html`<form class="card team" ref=${box} onSubmit=${submit} aria-labelledby=${"team-h-" + zone.id}>
    <h3 id=${"team-h-" + zone.id}>巡逻队 Team: ${zone.name}</h3>
    <${Select} label="队长 Leader" name="leader_id" value=${form.values.leader_id} onInput=${form.set("leader_id")}
      options=${options} blank="— 请选择 Choose —" error=${form.errors.leader_id} />
    <fieldset><legend>队员 Members (${form.values.member_ids.filter((m) => m !== form.values.leader_id).length})</legend>
      <${Field} label="筛选 Filter by name or compound" name="filter" type="search" value=${filter}
        onInput=${setFilter} onKeyDown=${(e) => { if (e.key === "Enter") e.preventDefault(); }} />
      <div class="checklist">
        ${shown.map(([id, label]) => html`<${Check} key=${id} label=${label}
          checked=${form.values.member_ids.includes(id)} onInput=${toggle(id)} />`)}
        ${shown.length === 0 && html`<p class="muted">没有符合的成员。No member matches.</p>`}
      </div>
      ${form.errors.member_ids && html`<span class="error" role="alert">
        ${messagesOf(form.errors.member_ids).join(" ")}</span>`}
    </fieldset>
    <${Problem} error=${form.problem} shown=${["leader_id", "member_ids"]} />
    <p class="row"><button class="primary" type="submit" disabled=${form.busy}>保存巡逻队 Save team</button>
      <button type="button" onClick=${onClose}>取消 Cancel</button></p>
  </form>`;
}

function Coverage({ covered, days }) {
  if (!covered) return null;
  if (!covered.last_patrol_at) return html`<span class="tag retired">从未巡逻 Never patrolled</span>`;
  return html`最近巡逻 Last patrol ${when(covered.last_patrol_at)}
    ${covered.covered ? html` <span class="tag">已覆盖 Covered</span>`
      : html` <span class="tag retired">${days} 天未巡逻 Not patrolled for ${days} days</span>`}`;
}

function ZoneCard({ zone, members, coverage, days, onSaved }) {
  const [editing, setEditing] = useState(false);
  const [done, setDone] = useState("");
  const edit = useRef(null);
  const { leader_id: leader, member_ids: ids } = zone.team;
  return html`<section class="card" aria-labelledby=${"zone-h-" + zone.id}>
    <h2 id=${"zone-h-" + zone.id}>${zone.name}</h2>
    <p>${zone.compounds.map((c) => html`<span class="tag">${c}</span>`)}</p>
    <dl class="facts">
      <dt>队长 Leader</dt><dd>${leader ? nameOf(members, leader) : html`<span class="muted">未设 None yet</span>`}</dd>
      <dt>队员 Members</dt><dd>${ids.length ? ids.map((id) => nameOf(members, id)).join("、")
        : html`<span class="muted">无 None</span>`}</dd>
      <dt>巡逻 Coverage</dt><dd><${Coverage} covered=${coverage} days=${days} /></dd>
    </dl>
    <${Done}>${done}<//>
    ${editing ? html`<${TeamForm} zone=${zone} members=${members}
        onClose=${() => { setEditing(false); setTimeout(() => edit.current?.focus()); }}
        onSaved=${(z) => { setEditing(false); setDone(`已保存巡逻队 Team saved: ${z.name}`); onSaved(z);
                           setTimeout(() => edit.current?.focus()); }} />`
      : html`<button type="button" ref=${edit} onClick=${() => { setDone(""); setEditing(true); }}
          aria-label=${`编辑巡逻队 Edit team ${zone.name}`}>编辑巡逻队 Edit team</button>`}
  </section>`;
}

/** The office's corrected times for one patrol: start, end (the community's time) and why. */
function CorrectForm({ patrol, onSaved, onClose }) {
  const form = useForm({ started_at: communityInput(patrol.started_at), finished_at: communityInput(patrol.finished_at),
                         reason: "" });
  const box = useRef(null);
  useEffect(() => { box.current?.querySelector("input")?.focus(); }, [patrol.id]);
  const submit = (event) => {
    event.preventDefault();
    const missing = {};
    const started = fromCommunityInput(form.values.started_at);
    const finished = fromCommunityInput(form.values.finished_at);
    if (!started) missing.started_at = ["请填写开始时间。Give the start."];
    if (!finished) missing.finished_at = ["请填写结束时间。Give the end."];
    if (!form.values.reason.trim()) missing.reason = ["请写明原因。Say why."];
    if (Object.keys(missing).length) {
      form.setErrors(missing);
      form.setProblem({ message: "请补全标出的项目。Please fill in what is marked.", fields: {} });
      return;
    }
    form.submit(async (v) => onSaved(await api("POST", `/patrols/${encodeURIComponent(patrol.id)}/correct`, {
      body: { started_at: started, finished_at: finished, reason: v.reason.trim() } })));
  };
  return html`<form class="card" ref=${box} onSubmit=${submit} aria-labelledby=${"correct-h-" + patrol.id} novalidate>
    <h3 id=${"correct-h-" + patrol.id}>更正巡逻时间 Correct the times</h3>
    <div class="grid">
      <${Field} label="开始 Started" name="started_at" type="datetime-local" value=${form.values.started_at}
        onInput=${form.set("started_at")} error=${form.errors.started_at} />
      <${Field} label="结束 Finished" name="finished_at" type="datetime-local" value=${form.values.finished_at}
        onInput=${form.set("finished_at")} error=${form.errors.finished_at}
        hint="最长 24 小时，不能晚于现在 At most 24 hours, not later than now" />
    </div>
    <${Field} label="原因 Reason" name="reason" type="textarea" value=${form.values.reason}
      onInput=${form.set("reason")} error=${form.errors.reason}
      hint="例如：队员忘记结束，电话核实了时间 e.g. the volunteer forgot to finish; times checked by phone" />
    <${Problem} error=${form.problem} shown=${["started_at", "finished_at", "reason"]} />
    <p class="row"><button class="primary" type="submit" disabled=${form.busy}>保存更正 Save correction</button>
      <button type="button" onClick=${onClose}>取消 Cancel</button></p>
  </form>`;
}

/** Patrols the service closed because no one finished them: counted up to the cap until the office corrects them. */
function ClosedAutomatically({ members, zones, onCorrected }) {
  const [page, reload, error] = useLoad(() => api("GET", "/patrols", { query: { closed_automatically: "true",
                                                                                limit: 20 } }));
  const [editing, setEditing] = useState(null);
  const [done, setDone] = useState("");
  const zoneName = (id) => ((zones || []).find((z) => z.id === id) || {}).name || "";
  const items = (page && page.items) || [];
  return html`<section class="card" aria-labelledby="auto-h">
    <h2 id="auto-h">自动结束的巡逻 Patrols closed automatically</h2>
    <p class="muted">队员没有结束的巡逻，到时限后由系统结束，只计到时限；请核实后更正时间。
      Patrols no one finished are closed at the time limit and count only up to it: check and correct their times.</p>
    <${Problem} error=${error} />
    <${Done}>${done}<//>
    ${page && items.length === 0 && html`<p class="muted">没有。None.</p>`}
    ${items.length > 0 && html`<div class="table-wrap"><table class="stack" aria-label="自动结束的巡逻 Patrols closed automatically">
      <thead><tr><th>队员 Member</th><th>片区 Zone</th><th>开始 Started</th><th>结束 Finished</th>
        <th>计时 Counted</th><th></th></tr></thead>
      <tbody>${items.map((p) => html`<tr key=${p.id}>
        <td data-label="队员 Member">${nameOf(members, p.member_id)}</td>
        <td data-label="片区 Zone">${zoneName(p.zone_id)}</td>
        <td data-label="开始 Started">${when(p.started_at)}</td>
        <td data-label="结束 Finished">${when(p.finished_at)} ${p.corrected_at
          ? html`<span class="tag">已更正 Corrected</span>`
          : html`<span class="tag retired">自动结束 Closed automatically</span>`}</td>
        <td data-label="计时 Counted">${hours(p.duration_minutes)} 小时 h</td>
        <td><button type="button" onClick=${() => { setDone(""); setEditing(p); }}
          aria-label=${`更正时间 Correct times: ${nameOf(members, p.member_id)}, ${when(p.started_at)}`}>
          更正时间 Correct times</button></td></tr>`)}</tbody></table></div>`}
    ${editing && html`<${CorrectForm} patrol=${editing} key=${editing.id} onClose=${() => setEditing(null)}
      onSaved=${(p) => { setEditing(null); reload(); onCorrected();
                         setDone(`已更正 Times corrected: ${nameOf(members, p.member_id)}, ${when(p.started_at)}–`
                                 + `${when(p.finished_at)}, ${hours(p.duration_minutes)} 小时 h`); }} />`}
  </section>`;
}

function ZonesBody() {
  const [members, membersError] = useMembers();
  const [zones, setZones] = useState(null);
  const [problem, setProblem] = useState(null);
  const [coverage, reloadCoverage] = useLoad(() => api("GET", "/zones/coverage"));
  const load = () => all("/zones").then(setZones, setProblem);
  useEffect(() => { load(); }, []);
  const byZone = Object.fromEntries(((coverage && coverage.zones) || []).map((c) => [c.zone_id, c]));
  const saved = (zone) => setZones((old) => old.map((z) => (z.id === zone.id ? zone : z)));
  return html`
    <h1>片区与巡逻队 Zones and teams</h1>
    <${Problem} error=${problem || membersError} />
    ${zones === null && !problem ? html`<p class="loading">正在加载 Loading…</p>` : null}
    ${zones && zones.length === 0 && html`<p class="muted">还没有片区。No zones yet.</p>`}
    <${ClosedAutomatically} members=${members} zones=${zones} onCorrected=${reloadCoverage} />
    ${zones && zones.map((zone) => html`<${ZoneCard} key=${zone.id} zone=${zone} members=${members}
      coverage=${byZone[zone.id]} days=${coverage && coverage.days} onSaved=${saved} />`)}
    <${NewZoneForm} onDone=${(zone) => { setZones((old) => [zone, ...(old || [])]); reloadCoverage(); }} />`;
}

export function ZonesPage(props) {
  return html`<${Guarded}><${ZonesBody} ...${props} /><//>`;
}

// 事件 Incidents, on a phone: a zone leader's queue of the zone's open incidents
// (newest first, acknowledged or not), acknowledged with one tap and resolved with a
// resolution; the office sees every zone's open ones, those of zones without a leader
// first, and acknowledges for an absent leader; a volunteer follows their own reports.
// `#/incidents/<id>`: one incident (alerts link here). Writes go through pending.js.
import { useEffect, useState } from "/static/vendor/htm-preact.module.js";
import { api, all, session, ApiError } from "./api.js";
import { send } from "./pending.js";
import { html, Guarded, Field, Problem, Done, useForm, categoryLabel, when } from "./ui.js";
import { loadMembers, nameOf } from "./people.js";
import { SEVERITY_LABELS, KEPT } from "./patrol.js";

const STATUS_LABELS = { open: "未解决 Open", resolved: "已解决 Resolved" };
const link = (incident) => "#/incidents/" + encodeURIComponent(incident.id);
const newestFirst = (a, b) => (a.reported_at < b.reported_at ? 1 : a.reported_at > b.reported_at ? -1 : 0);

/** Everyone's names for the office (GET /members is theirs alone); null for anyone else. */
function useNames(admin) {
  const [members, setMembers] = useState(null);
  useEffect(() => { if (admin) loadMembers().then(setMembers, () => {}); }, [admin]);
  return members;
}

/** Who did it, in words: a member sees no one else's name, only who they were to the zone. */
function who(id, { me, zone, members, office = false }) {
  if (!id) return "";
  if (id === me) return "我 Me";
  if (members) return nameOf(members, id);
  if (zone && id === zone.team.leader_id) return "队长 The leader";
  // Only the leader or the office acknowledges and resolves.
  return office ? "社区办公室 The office" : "另一位成员 Another member";
}

const mayHandle = (incident, zone, me, admin) => admin || (zone && zone.team.leader_id === me);

function Facts({ incident, zone, ctx }) {
  return html`<dl class="facts">
    <dt>状态 Status</dt><dd><strong>${STATUS_LABELS[incident.status] || incident.status}</strong></dd>
    <dt>小区 Compound</dt><dd class="wrap">${incident.compound}${zone ? ` · ${zone.name}` : ""}
      ${zone && !zone.team.leader_id && html` <span class="tag retired">无队长 No leader</span>`}</dd>
    <dt>报告 Reported</dt><dd>${when(incident.reported_at)} · ${who(incident.reported_by, ctx)}</dd>
    <dt>确认 Acknowledged</dt><dd>${incident.acked_at
      ? `${when(incident.acked_at)} · ${who(incident.acked_by, { ...ctx, office: true })}`
      : html`<span class="tag retired">未确认 Not yet</span>`}
      ${incident.escalated_at && html` <span class="tag retired">已上报办公室 Escalated ${when(incident.escalated_at)}</span>`}</dd>
    ${incident.status === "resolved" && html`<dt>解决 Resolved</dt>
      <dd>${when(incident.resolved_at)} · ${who(incident.resolved_by, { ...ctx, office: true })}</dd>`}
  </dl>`;
}

function Description({ incident }) {
  if (incident.free_text_hidden) {
    return html`<p class="muted">情况描述只有本队和办公室可见。Only the zone's team and the office read the description.</p>`;
  }
  return html`<p class="prewrap wrap">${incident.description}</p>
    ${incident.resolution && html`<p class="prewrap wrap"><strong>处理结果 Resolution：</strong>${incident.resolution}</p>`}`;
}

function Heading({ incident, level = "h2" }) {
  const text = categoryLabel("incident", incident.category);
  return html`<${level} class="incident-h">
    <span class=${"tag sev sev-" + incident.severity}>${SEVERITY_LABELS[incident.severity] || incident.severity}</span>
    ${" "}${text}<//>`;
}

function AckButton({ incident, onDone }) {
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState(null);
  const [kept, setKept] = useState(false);
  if (incident.acked_at || incident.status !== "open") return null;
  if (kept) return html`<div class="notice busy" role="status">确认 Acknowledge: ${KEPT}</div>`;
  const ack = async () => {
    setBusy(true); setProblem(null);
    try {
      const answer = await send("POST", `/incidents/${encodeURIComponent(incident.id)}/ack`, undefined,
                                `确认事件 Acknowledge: ${incident.compound}, ${categoryLabel("incident", incident.category)}`);
      if (answer.pending) setKept(true);
      else onDone(answer, "已确认，不会再上报。Acknowledged: it will not escalate.");
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      setProblem(error);
    } finally {
      setBusy(false);
    }
  };
  return html`<button class="primary big" type="button" disabled=${busy} onClick=${ack}
      aria-label=${`确认 Acknowledge: ${incident.compound}, ${categoryLabel("incident", incident.category)}`}>
      确认收到 Acknowledge</button>
    <${Problem} error=${problem} />`;
}

function ResolveForm({ incident, onDone }) {
  const form = useForm({ resolution: "" });
  const [kept, setKept] = useState(false);
  if (kept) return html`<div class="notice busy" role="status">解决 Resolve: ${KEPT}</div>`;
  const submit = (event) => {
    event.preventDefault();
    if (!form.values.resolution.trim()) {
      form.setErrors({ resolution: ["请写下怎样解决的。Say how it was settled."] });
      return;
    }
    form.submit(async (v) => {
      const answer = await send("POST", `/incidents/${encodeURIComponent(incident.id)}/resolve`,
                                { resolution: v.resolution.trim() },
                                `解决事件 Resolve: ${incident.compound}, ${categoryLabel("incident", incident.category)}`);
      if (answer.pending) setKept(true);
      else onDone(answer, "已解决。Resolved.");
    });
  };
  return html`<form class="resolve" onSubmit=${submit} aria-label="解决 Resolve" novalidate>
    <${Field} label="处理结果 Resolution" name="resolution" type="textarea" value=${form.values.resolution}
      onInput=${form.set("resolution")} error=${form.errors.resolution} />
    <${Problem} error=${form.problem} shown=${["resolution"]} />
    <p><button class="primary big" type="submit" disabled=${form.busy}>标为已解决 Resolve</button></p>
  </form>`;
}

function Card({ incident, zone, ctx, onChanged }) {
  const [done, setDone] = useState("");
  const changed = (answer, text) => { setDone(text); onChanged(answer); };
  return html`<article class="card incident" aria-label=${`${incident.compound} ${categoryLabel("incident", incident.category)}`}>
    <${Heading} incident=${incident} level="h3" />
    <${Facts} incident=${incident} zone=${zone} ctx=${ctx} />
    <${Description} incident=${incident} />
    <${Done}>${done}<//>
    <div class="actions">
      ${mayHandle(incident, zone, ctx.me, ctx.admin) && html`<${AckButton} incident=${incident} onDone=${changed} />`}
      <a class="button big" href=${link(incident)}>${incident.status === "open" && mayHandle(incident, zone, ctx.me, ctx.admin)
        ? "查看与解决 Open and resolve" : "查看 Open"}</a>
    </div>
  </article>`;
}

function IncidentList() {
  const me = session.claims().sub;
  const admin = session.roles().includes("admin");
  const members = useNames(admin);
  const [zones, setZones] = useState(null);
  const [queue, setQueue] = useState(null);
  const [mine, setMine] = useState(null);
  const [problem, setProblem] = useState(null);
  const load = async () => {
    setProblem(null);
    try {
      const allZones = await all("/zones");
      setZones(allZones);
      const led = allZones.filter((z) => z.team.leader_id === me);
      let open = [];
      if (admin) {
        // Zones without a leader first: no one else will acknowledge those.
        const leaderless = new Set(allZones.filter((z) => !z.team.leader_id).map((z) => z.id));
        open = (await all("/incidents", { status: "open" })).sort((a, b) =>
          (leaderless.has(b.zone_id) - leaderless.has(a.zone_id)) || newestFirst(a, b));
      } else if (led.length) {
        const lists = await Promise.all(led.map((z) => all("/incidents", { zone_id: z.id, status: "open" })));
        open = lists.flat().sort(newestFirst);
      }
      setQueue(admin || led.length ? open : null);
      setMine(admin ? [] : (await api("GET", "/incidents", { query: { reported_by: me, limit: 30 } })).items);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      setProblem(error);
    }
  };
  useEffect(() => { load(); }, []);
  const zoneOf = (id) => (zones || []).find((z) => z.id === id);
  const ctx = { me, admin, members };
  const replace = (set) => (answer) => set((old) => old.map((i) => (i.id === answer.id ? answer : i)));
  const cards = (list, set) => list.map((i) => html`<${Card} key=${i.id} incident=${i} zone=${zoneOf(i.zone_id)}
    ctx=${{ ...ctx, zone: zoneOf(i.zone_id) }} onChanged=${replace(set)} />`);
  const loading = zones === null && !problem;
  return html`
    <h1>事件 Incidents</h1>
    <${Problem} error=${problem} />
    <p><button type="button" onClick=${load}>刷新 Refresh</button></p>
    ${loading && html`<p class="loading">正在加载 Loading…</p>`}
    ${queue && html`<section aria-labelledby="queue-h">
      <h2 id="queue-h">${admin ? "各片区未解决的事件 Open incidents, every zone" : "我片区未解决的事件 Open in my zones"}${" "}
        <span class="count">(${queue.length})</span></h2>
      ${admin && html`<p class="muted">无队长片区的排在前面：请代为确认。Zones without a leader come first:
        acknowledge them for the absent leader.</p>`}
      ${queue.length === 0 && html`<p class="muted">没有未解决的事件。Nothing open.</p>`}
      ${cards(queue, setQueue)}
    </section>`}
    ${mine && mine.length > 0 && html`<section aria-labelledby="mine-h">
      <h2 id="mine-h">我报告的 My reports</h2>
      ${cards(mine.filter((i) => !(queue || []).some((q) => q.id === i.id)), setMine)}
    </section>`}
    ${!loading && !queue && mine && mine.length === 0 && html`<p class="muted">你还没有报告过事件。
      You have reported no incidents. <a href="#/patrol">巡逻 Patrol</a></p>`}`;
}

function IncidentPage({ id }) {
  const me = session.claims().sub;
  const admin = session.roles().includes("admin");
  const members = useNames(admin);
  const [incident, setIncident] = useState(null);
  const [zone, setZone] = useState(null);
  const [problem, setProblem] = useState(null);
  const [done, setDone] = useState("");
  useEffect(() => {
    api("GET", `/incidents/${encodeURIComponent(id)}`).then((found) => {
      setIncident(found);
      return api("GET", `/zones/${encodeURIComponent(found.zone_id)}`).then(setZone);
    }).catch((error) => { if (error instanceof ApiError) setProblem(error); else throw error; });
  }, [id]);
  const back = html`<p><a class="button" href="#/incidents">← 事件 Incidents</a></p>`;
  if (problem) {
    return html`${back}<h1>事件 Incident</h1>${problem.status === 404
      ? html`<p class="notice bad" role="alert">没有这个事件。No such incident.</p>` : html`<${Problem} error=${problem} />`}`;
  }
  if (!incident) return html`${back}<p class="loading">正在加载 Loading…</p>`;
  const ctx = { me, admin, members, zone };
  const changed = (answer, text) => { setIncident(answer); setDone(text); };
  const handles = mayHandle(incident, zone, me, admin) && incident.status === "open";
  return html`${back}
    <h1>事件 Incident</h1>
    <section class="card incident" aria-label="事件 Incident">
      <${Heading} incident=${incident} />
      <${Facts} incident=${incident} zone=${zone} ctx=${ctx} />
      <${Description} incident=${incident} />
      <${Done}>${done}<//>
      ${handles && html`<div class="actions"><${AckButton} incident=${incident} onDone=${changed} /></div>
        <h3>解决 Resolve</h3>
        <${ResolveForm} incident=${incident} onDone=${changed} />`}
    </section>`;
}

export function IncidentsPage({ args = [] }) {
  return html`<div class="field-page"><${Guarded}>${args[0] ? html`<${IncidentPage} id=${args[0]} key=${args[0]} />`
    : html`<${IncidentList} />`}<//></div>`;
}

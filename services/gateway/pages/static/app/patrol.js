// 巡逻 Patrol, on a phone in the field: my zones (those whose team I lead or am in);
// start a patrol with one tap, the running one and finishing it with notes; report an
// incident (compound from the zone's list, category by label, severity, description).
// Every write goes through pending.js: with no signal it is kept on the phone and sent
// later with the same Idempotency-Key, so it counts once.
import { useEffect, useState } from "/static/vendor/htm-preact.module.js";
import { api, all, session } from "./api.js";
import { send } from "./pending.js";
import {
  html, Guarded, Field, Select, Problem, Done, useForm, categoryOptions, categoryLabel, when, hours,
} from "./ui.js";

export const SEVERITY_LABELS = { low: "低 Low", medium: "中 Medium", high: "高 High" };
export const KEPT = "网络不通：已保存在手机上，网络恢复后自动发送（只记一次）。"
  + "No network: kept on this phone and sent by itself when the network is back (counted once).";

/** The zones whose team `me` leads or is in. */
export function myZones(zones, me) {
  return (zones || []).filter((z) => z.team.leader_id === me || z.team.member_ids.includes(me));
}

/** A write's refusal by the form; a field's by the field (`useForm` does both). */
const need = (form, errors) => {
  if (!Object.keys(errors).length) return false;
  form.setErrors(errors);
  form.setProblem({ message: "请补全标出的项目。Please fill in what is marked.", fields: {} });
  return true;
};

function Running({ patrol, zone, onFinished, onGone }) {
  const form = useForm({ notes: "" });
  const [kept, setKept] = useState(false);
  const submit = (event) => {
    event.preventDefault();
    form.submit(async (v) => {
      let done;
      try {
        done = await send("POST", `/patrols/${encodeURIComponent(patrol.id)}/finish`, { notes: v.notes.trim() },
                          `结束巡逻 Finish patrol: ${zone ? zone.name : ""}`);
      } catch (error) {
        if (error.status === 409) onGone(); // closed automatically meanwhile: the page then says so
        throw error;
      }
      if (done.pending) setKept(true);
      else onFinished(done);
    });
  };
  return html`<section class="card on-patrol" aria-labelledby="running-h">
    <h2 id="running-h">正在巡逻 On patrol: ${zone ? zone.name : ""}</h2>
    <p>开始于 Started ${when(patrol.started_at)}</p>
    ${kept ? html`<div class="notice busy" role="status">结束巡逻 Finish patrol: ${KEPT}</div>`
      : html`<form onSubmit=${submit} aria-label="结束巡逻 Finish patrol">
        <${Field} label="巡逻记录 Notes" name="notes" type="textarea" value=${form.values.notes}
          onInput=${form.set("notes")} error=${form.errors.notes}
          hint="看到了什么、做了什么（只有本队和办公室可见）What you saw and did (only your team and the office read it)" />
        <${Problem} error=${form.problem} shown=${["notes"]} />
        <p><button class="primary big" type="submit" disabled=${form.busy}>结束巡逻 Finish patrol</button></p>
      </form>`}
  </section>`;
}

/** The member's last patrol, when the service closed it: it counts only up to the time limit. */
function LastClosed({ patrol }) {
  if (!patrol || !patrol.closed_automatically) return null;
  // How long it ran before the service closed it (the cap then in force): "4", "0.5".
  const after = String(Number((((new Date(patrol.finished_at) - new Date(patrol.started_at)) / 3600000)).toFixed(1)));
  const counted = hours(patrol.duration_minutes);
  return html`<div class="notice busy closed-automatically" role="status">
    <p>上次巡逻（${when(patrol.started_at)} 开始）没有结束，${after} 小时后已自动结束，计 ${counted} 小时。</p>
    <p>${`Your last patrol (started ${when(patrol.started_at)}) was not finished: it was closed automatically `
      + `after ${after} h and counts ${counted} h.`}</p>
    <p>${patrol.corrected_at ? "办公室已更正时间。The office has corrected its times."
      : "如时间不对，请联系办公室更正。If the times are wrong, ask the office to correct them."}</p>
  </div>`;
}

function ZoneList({ zones, me, running, startKept, onStart }) {
  const [problem, setProblem] = useState(null);
  const [busy, setBusy] = useState(false);
  const start = async (zone) => {
    setBusy(true); setProblem(null);
    try {
      onStart(zone, await send("POST", "/patrols", { zone_id: zone.id }, `开始巡逻 Start patrol: ${zone.name}`));
    } catch (error) {
      setProblem(error);
    } finally {
      setBusy(false);
    }
  };
  return html`<section class="card" aria-labelledby="zones-h">
    <h2 id="zones-h">我的片区 My zones</h2>
    ${zones.map((zone) => html`<div class="zone-row" key=${zone.id}>
      <h3>${zone.name} <span class="tag">${zone.team.leader_id === me ? "队长 Leader" : "队员 Member"}</span></h3>
      <p class="compounds">${zone.compounds.map((c) => html`<span class="tag">${c}</span>`)}</p>
      ${!running && !startKept && html`<button class="primary big" type="button" disabled=${busy}
        onClick=${() => start(zone)} aria-label=${`开始巡逻 Start patrol: ${zone.name}`}>开始巡逻 Start patrol</button>`}
    </div>`)}
    ${startKept && html`<div class="notice busy" role="status">开始巡逻 Start patrol: ${KEPT}</div>`}
    <${Problem} error=${problem} />
  </section>`;
}

function Severity({ value, onInput, error }) {
  return html`<fieldset class="severity" aria-invalid=${Boolean(error)}>
    <legend>严重程度 Severity</legend>
    <div class="choices">
      ${Object.entries(SEVERITY_LABELS).map(([code, text]) => html`<label key=${code} class=${"choice sev-" + code}>
        <input type="radio" name="severity" value=${code} checked=${value === code} onChange=${() => onInput(code)} />
        <span class="choice-text"><b>${text.split(" ")[0]}</b> ${text.split(" ")[1]}</span></label>`)}
    </div>
    ${error && html`<span class="error" role="alert">${[].concat(error).join(" ")}</span>`}
  </fieldset>`;
}

function ReportForm({ zones, zoneId }) {
  const form = useForm({ zone_id: zoneId || (zones[0] && zones[0].id) || "", compound: "", category: "",
                         severity: "", description: "" });
  const [done, setDone] = useState(null);
  const { values: v, errors } = form;
  // A field's complaint goes once the person changes it.
  const set = (name) => (value) => {
    form.set(name)(value);
    if (errors[name]) form.setErrors((old) => ({ ...old, [name]: undefined }));
    form.setProblem(null);
  };
  // A patrol started in another zone moves the form there; a compound already chosen in the same zone stays
  // (the start's answer may land just after the person chose it).
  useEffect(() => {
    if (zoneId) form.setValues((old) => (old.zone_id === zoneId ? old : { ...old, zone_id: zoneId, compound: "" }));
  }, [zoneId]);
  const zone = zones.find((z) => z.id === v.zone_id);
  const submit = (event) => {
    event.preventDefault();
    setDone(null);
    const missing = {};
    if (!v.zone_id) missing.zone_id = ["请选择片区。Choose the zone."];
    if (!v.compound) missing.compound = ["请选择小区。Choose the compound."];
    if (!v.category) missing.category = ["请选择类别。Choose the category."];
    if (!v.severity) missing.severity = ["请选择严重程度。Choose how serious it is."];
    if (!v.description.trim()) missing.description = ["请写下情况。Say what you found."];
    if (need(form, missing)) return;
    form.submit(async (values) => {
      const body = { ...values, description: values.description.trim() };
      const what = `报告事件 Report: ${values.compound}, ${categoryLabel("incident", values.category)}`;
      const answer = await send("POST", "/incidents", body, what);
      setDone(answer.pending ? { kept: true, what } : { incident: answer, what });
      form.setValues((old) => ({ ...old, compound: "", category: "", severity: "", description: "" }));
    });
  };
  return html`<form class="card report" onSubmit=${submit} aria-labelledby="report-h" novalidate>
    <h2 id="report-h">报告事件 Report an incident</h2>
    ${zones.length > 1 && html`<${Select} label="片区 Zone" name="zone_id" value=${v.zone_id}
      onInput=${(id) => { set("zone_id")(id); form.setValues((old) => ({ ...old, compound: "" })); }}
      options=${zones.map((z) => [z.id, z.name])} error=${errors.zone_id} />`}
    <${Select} label="小区 Compound" name="compound" value=${v.compound} onInput=${set("compound")}
      options=${(zone ? zone.compounds : []).map((c) => [c, c])} blank="— 请选择 Choose —" error=${errors.compound} />
    <${Select} label="类别 Category" name="category" value=${v.category} onInput=${set("category")}
      options=${categoryOptions("incident")} blank="— 请选择 Choose —" error=${errors.category} />
    <${Severity} value=${v.severity} onInput=${set("severity")} error=${errors.severity} />
    <${Field} label="情况描述 Description" name="description" type="textarea" value=${v.description}
      onInput=${set("description")} error=${errors.description}
      hint="只有本队和办公室可见 Only your team and the office read it" />
    <${Problem} error=${form.problem} shown=${["zone_id", "compound", "category", "severity", "description"]} />
    ${done && done.kept && html`<div class="notice busy" role="status">${done.what}: ${KEPT}</div>`}
    ${done && done.incident && html`<${Done}>已报告，队长已收到提醒。Reported: the leader has been alerted.
      <a href=${"#/incidents/" + encodeURIComponent(done.incident.id)}>查看 Open it</a><//>`}
    <p><button class="primary big" type="submit" disabled=${form.busy}>报告 Report</button></p>
  </form>`;
}

function PatrolBody() {
  const me = session.claims().sub;
  const admin = session.roles().includes("admin");
  const [zones, setZones] = useState(null);
  const [running, setRunning] = useState(undefined);
  const [startKept, setStartKept] = useState(false);
  const [problem, setProblem] = useState(null);
  const [finished, setFinished] = useState("");
  const [last, setLast] = useState(null);
  const loadRunning = () => api("GET", "/patrols", { query: { member_id: me, active: "true", limit: 1 } })
    .then((page) => { setRunning(page.items[0] || null); if (page.items[0]) setStartKept(false); }, setProblem);
  const loadLast = () => api("GET", "/patrols", { query: { member_id: me, active: "false", limit: 1 } })
    .then((page) => setLast(page.items[0] || null), setProblem);
  useEffect(() => { all("/zones").then(setZones, setProblem); loadRunning(); loadLast(); }, []);
  if (problem) return html`<h1>巡逻 Patrol</h1><${Problem} error=${problem} />`;
  if (zones === null || running === undefined) return html`<h1>巡逻 Patrol</h1><p class="loading">正在加载 Loading…</p>`;
  const mine = myZones(zones, me);
  const zoneOf = (id) => zones.find((z) => z.id === id);
  // The office may report in any zone; a volunteer in their own.
  const reportZones = admin ? zones : mine;
  const started = (zone, answer) => {
    setFinished("");
    if (answer.pending) setStartKept(true);
    else setRunning(answer);
  };
  return html`
    <h1>巡逻 Patrol</h1>
    ${mine.length === 0 && html`<p class="notice">你还不在任何巡逻队，办公室安排队伍后即可巡逻。
      You are in no patrol team yet: the office sets the teams.</p>`}
    <${Done}>${finished}<//>
    ${!running && html`<${LastClosed} patrol=${last} />`}
    ${running && html`<${Running} patrol=${running} zone=${zoneOf(running.zone_id)}
      onGone=${() => { loadRunning(); loadLast(); }}
      onFinished=${(p) => { setRunning(null); setLast(p); setFinished(`巡逻已结束 Patrol finished: ${when(p.finished_at)}`
                                                                   + ` · ${hours(p.duration_minutes)} 小时 h`); }} />`}
    ${mine.length > 0 && html`<${ZoneList} zones=${mine} me=${me} running=${running} startKept=${startKept}
      onStart=${started} />`}
    ${startKept && html`<p><button type="button" onClick=${loadRunning}>刷新 Refresh</button></p>`}
    ${reportZones.length > 0 && html`<${ReportForm} zones=${reportZones}
      zoneId=${running ? running.zone_id : undefined} />`}`;
}

export function PatrolPage(props) {
  return html`<div class="field-page"><${Guarded}><${PatrolBody} ...${props} /><//></div>`;
}

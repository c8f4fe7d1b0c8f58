// 我的个案 My cases: a party member's hardship cases, on a phone at the household's
// door. The list (`#/mine`): each open case with its compound, categories, last
// visit and when the next is due (overdue first, marked). A case (`#/mine/<id>`):
// the household's address, people and a phone to call (each read is in welfare's
// audit log), the summary, visits and referrals; log a visit, record a referral's
// next stage, refer, close. Writes go through pending.js: with no signal they are
// kept on the phone and sent later, once.
import { useEffect, useState } from "/static/vendor/htm-preact.module.js";
import { all, api, session } from "./api.js";
import { send } from "./pending.js";
import {
  html, Guarded, Field, Problem, Done, useForm, categoryLabel, communityDay, communityToday, when,
} from "./ui.js";
import {
  CloseFields, OUTCOME_KIND_LABELS, REFERRAL_LABELS, STAGE_LABELS, STATUS_LABELS, closeBody,
} from "./cases.js";

const ACTIVE = ["open", "in_progress"];
const STAGES = Object.keys(STAGE_LABELS); // REFERRAL_STAGES' order: the API takes only the next one
const KEPT = "网络不通：已存在手机上，有信号时自动发送（只记一次）。"
  + "No network: kept on this phone and sent by itself when there is signal (counted once).";

const caseLink = (id) => "#/mine/" + encodeURIComponent(id);
const labels = (codes) => (codes || []).map((c) => categoryLabel("case", c)).join("、");
const isOverdue = (c) => Boolean(c.next_visit_due) && new Date(c.next_visit_due) <= new Date();

function NextDue({ kase }) {
  if (!kase.next_visit_due) return html`<span class="muted">—</span>`;
  const day = communityDay(kase.next_visit_due);
  return isOverdue(kase)
    ? html`<strong class="overdue nowrap">逾期 Overdue · ${day}</strong>`
    : html`<span class="nowrap">${day}</span>`;
}

// -- the list -------------------------------------------------------------------------

function CaseList() {
  const [cases, setCases] = useState(null);
  const [problem, setProblem] = useState(null);
  useEffect(() => {
    // An admin sees every case in GET /cases: "mine" is the ones assigned to me, for everyone.
    all("/cases", { assignee_id: session.claims().sub }, 500).then(setCases, setProblem);
  }, []);
  if (problem) return html`<h1>我的个案 My cases</h1><${Problem} error=${problem} />`;
  if (!cases) return html`<h1>我的个案 My cases</h1><p class="loading">正在加载 Loading…</p>`;
  const open = cases.filter((c) => ACTIVE.includes(c.status))
    .sort((a, b) => (a.next_visit_due || "9").localeCompare(b.next_visit_due || "9"));
  const closed = cases.filter((c) => c.status === "closed");
  return html`<div class="mine-page">
    <h1>我的个案 My cases</h1>
    ${open.length === 0 && html`<p class="muted">现在没有要跟进的个案。No open cases for you now.</p>`}
    <ul class="mine-list" aria-label="进行中的个案 Open cases">
      ${open.map((c) => html`<li key=${c.id}><${CaseCard} kase=${c} /></li>`)}
    </ul>
    ${closed.length > 0 && html`<details class="mine-closed"><summary>已结案 Closed (${closed.length})</summary>
      <ul class="mine-list">${closed.map((c) => html`<li key=${c.id}><${CaseCard} kase=${c} /></li>`)}</ul>
    </details>`}</div>`;
}

function CaseCard({ kase }) {
  return html`<a class=${"mine-card" + (isOverdue(kase) ? " is-overdue" : "")} href=${caseLink(kase.id)}>
    <span class="mine-card-title">${kase.compound}</span>
    <span class="mine-card-cats">${labels(kase.categories)}</span>
    <span class="mine-card-facts">
      <span>最近走访 Last visit: ${kase.last_visit_on || html`<em>未走访 None yet</em>`}</span>
      ${ACTIVE.includes(kase.status)
        ? html`<span>下次走访 Next due: <${NextDue} kase=${kase} /></span>`
        : html`<span>${STATUS_LABELS[kase.status] || kase.status}</span>`}
    </span>
  </a>`;
}

// -- one case ---------------------------------------------------------------------------

function Household({ household, problem }) {
  if (problem) return html`<section class="card" aria-label="住户 Household"><${Problem} error=${problem} /></section>`;
  if (!household) return html`<p class="loading">正在加载住户 Loading the household…</p>`;
  const year = Number(communityToday().slice(0, 4));
  return html`<section class="card mine-household" aria-labelledby="hh-h">
    <h2 id="hh-h">住户 Household</h2>
    <p class="mine-address"><span class="muted">地址 Address</span><br /><strong>${household.address}</strong>
      <br /><span class="muted">${household.compound}</span></p>
    ${household.phone
      ? html`<p><a class="big-link" href=${"tel:" + household.phone.replace(/[^\d+]/g, "")}>
          拨打 Call ${household.phone}</a></p>`
      : html`<p class="muted">没有联系电话 No contact phone</p>`}
    <ul class="plain" aria-label="家庭成员 People">
      ${household.people.map((p, i) => html`<li key=${i}><strong>${p.name}</strong>${` · ${p.relation} · `}${
        year - p.birth_year} 岁 years
        ${p.conditions && p.conditions.length > 0 && html`<br /><span class="muted">${p.conditions.join("、")}</span>`}
      </li>`)}
    </ul>
  </section>`;
}

/** A form of one write: its fields, its refusal in words beside it, one big button; `pending`
 * when the write was kept on the phone for later. */
function WriteForm({ title, button, form, onSubmit, children, label }) {
  const [note, setNote] = useState("");
  const submit = (event) => {
    event.preventDefault();
    setNote("");
    form.submit(async (values) => {
      const done = await onSubmit(values);
      if (done) setNote(done);
    });
  };
  return html`<form class="card mine-form" onSubmit=${submit} aria-label=${label || title}>
    <h3>${title}</h3>
    ${children}
    <${Problem} error=${form.problem} shown=${Object.keys(form.values)} />
    ${note && html`<div class=${"notice " + (note === KEPT ? "busy" : "good")} role="status">${note}</div>`}
    <button class="primary big" type="submit" disabled=${form.busy}>${button}</button>
  </form>`;
}

function VisitForm({ kase, onDone }) {
  const form = useForm({ visited_on: communityToday(), notes: "" });
  return html`<${WriteForm} title="记录走访 Log a visit" button="记录走访 Log visit" form=${form}
    onSubmit=${async (v) => {
      const answer = await send("POST", `/cases/${encodeURIComponent(kase.id)}/visits`,
                                { visited_on: v.visited_on, notes: v.notes.trim() },
                                `走访 Visit ${kase.compound} ${v.visited_on}`);
      form.setValues({ visited_on: communityToday(), notes: "" });
      if (answer.pending) return KEPT;
      onDone();
      return "已记录走访 Visit logged";
    }}>
    <${Field} label="日期 Date" name="visited_on" type="date" value=${form.values.visited_on} required
      max=${communityToday()} onInput=${form.set("visited_on")} error=${form.errors.visited_on} />
    <${Field} label="情况 Notes" name="notes" type="textarea" value=${form.values.notes} required
      onInput=${form.set("notes")} error=${form.errors.notes} />
  <//>`;
}

function StageForm({ referral, onDone }) {
  const recorded = referral.stages || [];
  const next = STAGES[recorded.length];
  const form = useForm({ on: communityToday() });
  if (!next) return html`<p class="muted">各进度已记录，等待结果。Every stage is recorded: waiting for the decision.</p>`;
  const previous = recorded.length ? recorded[recorded.length - 1].on : undefined;
  return html`<${WriteForm} title=${`下一进度 Next stage: ${STAGE_LABELS[next]}`}
    label=${`记录进度 Record stage: ${referral.agency}`} button="记录进度 Record stage" form=${form}
    onSubmit=${async (v) => {
      const answer = await send("POST", `/referrals/${encodeURIComponent(referral.id)}/stages`,
                                { stage: next, on: v.on }, `进度 Stage: ${STAGE_LABELS[next]} ${v.on}`);
      if (answer.pending) return KEPT;
      onDone();
      return "已记录进度 Stage recorded";
    }}>
    <${Field} label="日期 Date" name="on" type="date" value=${form.values.on} required min=${previous}
      max=${communityToday()} onInput=${form.set("on")} error=${form.errors.on} />
  <//>`;
}

function Referral({ referral, active, onDone }) {
  const recorded = referral.stages || [];
  return html`<li class="mine-referral">
    <strong>${referral.agency}</strong> · ${referral.benefit}
    <br /><span class="tag">${REFERRAL_LABELS[referral.status] || referral.status}</span>
    ${referral.deadline && html`<span class="muted"> 期限 Deadline ${referral.deadline}</span>`}
    <ol class="mine-stages" aria-label="进度 Stages">
      ${STAGES.map((stage, i) => html`<li key=${stage} class=${i < recorded.length ? "done" : "todo"}>
        ${STAGE_LABELS[stage]}${i < recorded.length ? html` · <strong>${recorded[i].on}</strong>` : ""}</li>`)}
    </ol>
    ${active && referral.status === "submitted" && html`<${StageForm} referral=${referral} onDone=${onDone} />`}
  </li>`;
}

function ReferralForm({ kase, onDone }) {
  const form = useForm({ agency: "", benefit: "", deadline: "" });
  return html`<${WriteForm} title="新转介 New referral" button="转介 Refer" form=${form}
    onSubmit=${async (v) => {
      const answer = await send("POST", `/cases/${encodeURIComponent(kase.id)}/referrals`,
                                { agency: v.agency.trim(), benefit: v.benefit.trim(), deadline: v.deadline || null },
                                `转介 Referral: ${v.agency.trim()}`);
      form.reset();
      if (answer.pending) return KEPT;
      onDone();
      return "已转介 Referred";
    }}>
    <${Field} label="机构 Agency" name="agency" value=${form.values.agency} required
      onInput=${form.set("agency")} error=${form.errors.agency} />
    <${Field} label="事项 Benefit" name="benefit" value=${form.values.benefit} required
      onInput=${form.set("benefit")} error=${form.errors.benefit} />
    <${Field} label="期限（可不填）Deadline (optional)" name="deadline" type="date" value=${form.values.deadline}
      onInput=${form.set("deadline")} error=${form.errors.deadline} />
  <//>`;
}

function CloseForm({ kase, onDone }) {
  const form = useForm({ outcome: "", outcome_kind: "" });
  return html`<${WriteForm} title="结案 Close the case" button="结案 Close case" form=${form}
    onSubmit=${async (v) => {
      const answer = await send("POST", `/cases/${encodeURIComponent(kase.id)}/close`,
                                closeBody(v), `结案 Close: ${kase.compound}`);
      if (answer.pending) return KEPT;
      onDone();
      return "已结案 Closed";
    }}>
    <${CloseFields} form=${form} />
  <//>`;
}

function CaseView({ id }) {
  const [kase, setKase] = useState(null);
  const [household, setHousehold] = useState(null);
  const [problem, setProblem] = useState(null);
  const [householdProblem, setHouseholdProblem] = useState(null);
  const path = `/cases/${encodeURIComponent(id)}`;
  const reload = () => api("GET", path).then(setKase, setProblem);
  useEffect(() => {
    reload();
    api("GET", path + "/household").then(setHousehold, setHouseholdProblem);
  }, [id]);
  if (problem) return html`<h1>个案 Case</h1><${Problem} error=${problem} />
    <p><a class="big-link" href="#/mine">← 我的个案 My cases</a></p>`;
  if (!kase) return html`<h1>个案 Case</h1><p class="loading">正在加载 Loading…</p>`;
  const active = ACTIVE.includes(kase.status);
  const referrals = kase.referrals || [];
  const visits = [...(kase.visits || [])].sort((a, b) => b.visited_on.localeCompare(a.visited_on));
  return html`<div class="mine-page">
    <p class="no-print"><a class="back" href="#/mine">← 我的个案 My cases</a></p>
    <h1>${kase.compound} · ${labels(kase.categories)}</h1>
    <p><span class="tag">${STATUS_LABELS[kase.status] || kase.status}</span>
      ${active && html` 下次走访 Next due: <${NextDue} kase=${kase} />`}</p>
    <${Household} household=${household} problem=${householdProblem} />
    <section class="card" aria-labelledby="sum-h">
      <h2 id="sum-h">概况 Summary</h2>
      <p class="prewrap">${kase.summary}</p>
      ${kase.outcome && html`<p><span class="muted">结果 Outcome</span><br />${kase.outcome}</p>`}
      ${kase.outcome_kind && html`<p><span class="muted">结案类型 How it ended</span><br />
        ${OUTCOME_KIND_LABELS[kase.outcome_kind] || kase.outcome_kind}</p>`}
    </section>
    ${active && html`<${VisitForm} kase=${kase} onDone=${reload} />`}
    <section class="card" aria-labelledby="visits-h">
      <h2 id="visits-h">走访 Visits</h2>
      <p class="muted">最近走访 Last visit: ${kase.last_visit_on || "—"}</p>
      ${visits.length === 0 ? html`<p class="muted">还没有走访。No visits yet.</p>`
        : html`<ul class="plain">${visits.map((v) => html`<li key=${v.id}><strong>${v.visited_on}</strong>
            <br /><span class="prewrap">${v.notes}</span></li>`)}</ul>`}
    </section>
    <section class="card" aria-labelledby="refs-h">
      <h2 id="refs-h">转介 Referrals</h2>
      ${referrals.length === 0 ? html`<p class="muted">还没有转介。No referrals yet.</p>`
        : html`<ul class="plain">${referrals.map((r) => html`<${Referral} key=${r.id} referral=${r}
            active=${active} onDone=${reload} />`)}</ul>`}
    </section>
    ${active && html`<${ReferralForm} kase=${kase} onDone=${reload} />`}
    ${active && html`<${CloseForm} kase=${kase} onDone=${reload} />`}
    ${kase.closed_at && html`<${Done}>已结案 Closed ${when(kase.closed_at)}<//>`}</div>`;
}

function MyCasesBody({ args }) {
  return args && args[0] ? html`<${CaseView} id=${args[0]} key=${args[0]} />` : html`<${CaseList} />`;
}

export function MyCasesPage(props) {
  return html`<${Guarded}><${MyCasesBody} ...${props} /><//>`;
}

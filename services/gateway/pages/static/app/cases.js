// 帮扶个案 Cases: the list by status, category, assignee and overdue follow-up;
// `#/cases/<id>`: the case with its visits, referrals and goods received, and what
// the office does with it: assign, close, reopen, and confirm or dismiss a draft
// found on patrol, and erase a closed one's personal details once the retention
// period has passed (welfare says from when). Every case shown is in welfare's audit log.
import { useEffect, useRef, useState } from "/static/vendor/htm-preact.module.js";
import { api, all } from "./api.js";
import {
  html, Guarded, Field, Select, Check, Problem, Done, useForm, useLoad, categoryLabel, categoryOptions, messagesOf,
  when,
} from "./ui.js";
import { useMembers, nameOf, memberOptions, isPartyMember } from "./people.js";

const PAGE_SIZE = 50;
export const STATUS_LABELS = {
  draft: "待确认 Draft", open: "待跟进 Open", in_progress: "跟进中 In progress",
  closed: "已结案 Closed", dismissed: "已驳回 Dismissed",
};
export const REFERRAL_LABELS = { submitted: "已提交 Submitted", approved: "已批准 Approved", rejected: "未批准 Rejected" };
export const STAGE_LABELS = { application_submitted: "已递交申请 Application submitted",
                       documents_checked: "材料已审 Documents checked",
                       agency_home_visit: "入户核查 Agency home visit", decision_made: "已决定 Decision made" };
// How a case ended (the monthly report counts them); the words are welfare's (domain.OUTCOME_KIND_LABELS).
export const OUTCOME_KIND_LABELS = {
  helped: "已解决 Helped", referred: "已转介 Referred", moved_away: "已搬走 Moved away",
  deceased: "已去世 Deceased", declined: "本人谢绝 Declined help", other: "其他 Other",
};
const ACTIVE = ["open", "in_progress"];
const ERASABLE = ["closed", "dismissed"];

const caseLink = (c) => "#/cases/" + encodeURIComponent(c.id);
const labels = (codes) => (codes || []).map((c) => categoryLabel("case", c)).join("、");

function CaseList() {
  const [members, membersError] = useMembers();
  const search = useForm({ status: "", category: "", assignee_id: "", compound: "", overdue: false,
                           erasable: false });
  const [found, setFound] = useState(null);
  const run = (query, cursor) => search.submit(async () => {
    const page = await api("GET", "/cases", { query: { ...query, limit: PAGE_SIZE, cursor } });
    setFound((old) => ({ items: cursor ? [...old.items, ...page.items] : page.items,
                         next_cursor: page.next_cursor, query }));
  });
  const current = () => {
    const v = search.values;
    return { status: v.status, category: v.category, assignee_id: v.assignee_id, compound: v.compound.trim(),
             overdue: v.overdue ? "true" : "", erasable: v.erasable ? "true" : "" };
  };
  useEffect(() => { run({}); }, []);
  const { values: v, set, errors } = search;
  return html`
    <h1>帮扶个案 Cases</h1>
    <form class="card" onSubmit=${(e) => { e.preventDefault(); run(current()); }} aria-label="筛选个案 Filter cases">
      <div class="grid">
        <${Select} label="状态 Status" name="status" value=${v.status} onInput=${set("status")}
          options=${Object.entries(STATUS_LABELS)} blank="全部 All" error=${errors.status} />
        <${Select} label="类别 Category" name="category" value=${v.category} onInput=${set("category")}
          options=${categoryOptions("case", { retired: true })} blank="全部 All" error=${errors.category} />
        <${Select} label="负责人 Assignee" name="assignee_id" value=${v.assignee_id} onInput=${set("assignee_id")}
          options=${memberOptions(members, isPartyMember)} blank="全部 All" error=${errors.assignee_id} />
        <${Field} label="小区 Compound" name="compound" value=${v.compound} onInput=${set("compound")}
          error=${errors.compound} />
      </div>
      <div class="row"><${Check} label="逾期未走访 Overdue follow-up" checked=${v.overdue} onInput=${set("overdue")} />
        <${Check} label="可删除个人资料 Past retention: may be erased" checked=${v.erasable}
          onInput=${set("erasable")} /></div>
      <${Problem} error=${search.problem || membersError}
        shown=${["status", "category", "assignee_id", "compound"]} />
      <p><button class="primary" type="submit" disabled=${search.busy}>查找 Search</button></p>
    </form>
    ${found && found.items.length > 0 && html`<div class="table-wrap"><table class="stack" aria-label="个案 Cases">
      <thead><tr><th>小区 Compound</th><th>类别 Categories</th><th>状态 Status</th><th>负责人 Assignee</th>
        <th>最近走访 Last visit</th><th>开立 Opened</th><th></th></tr></thead>
      <tbody>${found.items.map((c) => html`<tr key=${c.id}>
        <td data-label="小区 Compound">${c.compound}</td><td data-label="类别 Categories">${labels(c.categories)}</td>
        <td data-label="状态 Status">${STATUS_LABELS[c.status] || c.status}${c.erased_at
          && html` · <span class="muted">资料已删除 Erased</span>`}</td>
        <td data-label="负责人 Assignee">${c.assignee_id ? nameOf(members, c.assignee_id) : "—"}</td>
        <td data-label="最近走访 Last visit">${c.last_visit_on || html`<span class="muted">未走访 None</span>`}</td>
        <td data-label="开立 Opened">${when(c.opened_at)}</td>
        <td class="actions"><a href=${caseLink(c)}
          aria-label=${`查看个案 Open case: ${c.compound} ${labels(c.categories)}`}>查看 Open</a></td>
      </tr>`)}</tbody>
    </table></div>`}
    ${found && html`${found.items.length === 0 && html`<p class="muted">没有符合的个案。No cases match.</p>`}
    ${found.next_cursor && html`<p><button type="button" disabled=${search.busy}
      onClick=${() => run(found.query, found.next_cursor)}>更多 More</button></p>`}`}`;
}

/** A small form of one action: its fields, its problem, one button; emptied once done. */
function ActionForm({ title, button, fields, onSubmit, form }) {
  const submit = (event) => {
    event.preventDefault();
    form.submit(async (values) => { await onSubmit(values); form.reset(); });
  };
  return html`<form class="card" onSubmit=${submit}
      aria-label=${title}>
    <h3>${title}</h3>
    ${fields}
    <${Problem} error=${form.problem} shown=${Object.keys(form.values)} />
    <p><button class="primary" type="submit" disabled=${form.busy}>${button}</button></p>
  </form>`;
}

function AssignForm({ kase, members, onDone }) {
  const form = useForm({ assignee_id: "" });
  const options = memberOptions(members, (m) => isPartyMember(m) && m.id !== kase.assignee_id);
  return html`<${ActionForm} title="指派 Assign" button="指派 Assign" form=${form}
    onSubmit=${async (v) => onDone(await api("POST", `/cases/${encodeURIComponent(kase.id)}/assign`,
                                             { body: v }), "已指派 Assigned")}
    fields=${html`<${Select} label="负责党员 Party member" name="assignee_id" value=${form.values.assignee_id}
      onInput=${form.set("assignee_id")} options=${options} blank="— 请选择 Choose —"
      error=${form.errors.assignee_id} />`} />`;
}

/** Close: the outcome in words, and how it ended (for the monthly counts; may be left unsaid). */
export function CloseFields({ form }) {
  return html`
    <${Field} label="结果 Outcome" name="outcome" type="textarea" value=${form.values.outcome}
      onInput=${form.set("outcome")} error=${form.errors.outcome} />
    <${Select} label="结案类型 How it ended" name="outcome_kind" value=${form.values.outcome_kind}
      onInput=${form.set("outcome_kind")} options=${Object.entries(OUTCOME_KIND_LABELS)}
      blank="— 未说明 Not said —" error=${form.errors.outcome_kind} />`;
}

/** The body of a close: the kind only when one was chosen. */
export const closeBody = (v) => (v.outcome_kind ? { outcome: v.outcome.trim(), outcome_kind: v.outcome_kind }
                                                 : { outcome: v.outcome.trim() });

function CloseForm({ kase, onDone }) {
  const form = useForm({ outcome: "", outcome_kind: "" });
  return html`<${ActionForm} title="结案 Close" button="结案 Close" form=${form}
    onSubmit=${async (v) => onDone(await api("POST", `/cases/${encodeURIComponent(kase.id)}/close`,
                                             { body: closeBody(v) }), "已结案 Closed")}
    fields=${html`<${CloseFields} form=${form} />`} />`;
}

function TextAction({ kase, title, button, label, name, path, done, onDone }) {
  const form = useForm({ [name]: "" });
  return html`<${ActionForm} title=${title} button=${button} form=${form}
    onSubmit=${async (v) => onDone(await api("POST", `/cases/${encodeURIComponent(kase.id)}/${path}`,
                                             { body: { [name]: v[name].trim() } }), done)}
    fields=${html`<${Field} label=${label} name=${name} type="textarea" value=${form.values[name]}
      onInput=${form.set(name)} error=${form.errors[name]} />`} />`;
}

/** A draft found on patrol becomes a case: its household (found by address or name), categories,
 * summary and party member. */
function ConfirmForm({ kase, members, onDone }) {
  const form = useForm({ household_id: "", categories: [], summary: kase.summary || "", assignee_id: "" });
  const [households, setHouseholds] = useState(null);
  const [q, setQ] = useState("");
  const [searchProblem, setSearchProblem] = useState(null);
  const find = async (event) => {
    event && event.preventDefault();
    setSearchProblem(null);
    try {
      setHouseholds(await all("/households", { compound: kase.compound, q: q.trim() }, 200));
    } catch (error) {
      setSearchProblem(error);
    }
  };
  useEffect(() => { find(); }, []);
  const submit = (event) => {
    event.preventDefault();
    form.submit(async (v) => onDone(await api("POST", `/cases/${encodeURIComponent(kase.id)}/confirm`, {
      body: { ...v, summary: v.summary.trim() } }), "已确认为个案 Confirmed as a case"));
  };
  const { values: v, errors } = form;
  return html`<section class="card" aria-labelledby="confirm-h">
    <h3 id="confirm-h">确认 Confirm</h3>
    <form class="row" onSubmit=${find} aria-label="查找住户 Find household">
      <${Field} label=${`查找 ${kase.compound} 的住户 Find household: 地址或姓名 Address or name`} name="q"
        type="search" value=${q} onInput=${setQ} />
      <button type="submit">查找住户 Find household</button>
    </form>
    <${Problem} error=${searchProblem} />
    <form onSubmit=${submit} aria-label="确认个案 Confirm case">
      <${Select} label="住户 Household" name="household_id" value=${v.household_id}
        onInput=${form.set("household_id")} blank="— 请选择 Choose —" error=${errors.household_id}
        options=${(households || []).map((h) => [h.id, `${h.address} · ${h.people.map((p) => p.name).join("、")}`])} />
      <p class="muted">没有这户？No such household? <a href="#/households">新建住户 New household</a></p>
      <${CaseFields} form=${form} members=${members} />
      <${Problem} error=${form.problem} shown=${Object.keys(v)} />
      <p><button class="primary" type="submit" disabled=${form.busy}>确认 Confirm</button></p>
    </form>
  </section>`;
}

/** What a case is about and who takes it, as opening a case and confirming a draft both ask it:
 * its categories (checkboxes by label), a summary, the party member chosen by name. */
export function CaseFields({ form, members }) {
  const { values: v, errors } = form;
  const toggle = (code) => (on) => form.setValues((old) => ({ ...old,
    categories: on ? [...old.categories, code] : old.categories.filter((c) => c !== code) }));
  return html`
    <fieldset><legend>类别 Categories</legend>
      <div class="checklist">${categoryOptions("case").map(([code, label]) => html`<${Check} key=${code}
        label=${label} checked=${v.categories.includes(code)} onInput=${toggle(code)} />`)}</div>
      ${errors.categories && html`<span class="error" role="alert">${messagesOf(errors.categories).join(" ")}</span>`}
    </fieldset>
    <${Field} label="概况 Summary" name="summary" type="textarea" value=${v.summary} onInput=${form.set("summary")}
      error=${errors.summary} />
    <${Select} label="负责党员 Assignee (party member)" name="assignee_id" value=${v.assignee_id}
      onInput=${form.set("assignee_id")} options=${memberOptions(members, isPartyMember)}
      blank="— 请选择 Choose —" error=${errors.assignee_id} />`;
}

function Visits({ visits, members }) {
  if (!visits.length) return html`<p class="muted">还没有走访。No visits yet.</p>`;
  return html`<ul class="plain">${visits.map((visit) => html`<li key=${visit.id}>
    <strong>${visit.visited_on}</strong> · ${nameOf(members, visit.logged_by)}<br />${visit.notes}</li>`)}</ul>`;
}

function Referrals({ referrals }) {
  if (!referrals.length) return html`<p class="muted">还没有转介。No referrals yet.</p>`;
  return html`<div class="table-wrap"><table class="stack" aria-label="转介 Referrals">
    <thead><tr><th>机构 Agency</th><th>事项 Benefit</th><th>状态 Status</th><th>进度 Stages</th>
      <th>期限 Deadline</th></tr></thead>
    <tbody>${referrals.map((r) => html`<tr key=${r.id}><td data-label="机构 Agency">${r.agency}</td>
      <td data-label="事项 Benefit">${r.benefit}</td>
      <td data-label="状态 Status">${REFERRAL_LABELS[r.status] || r.status}</td>
      <td data-label="进度 Stages">${(r.stages || []).map((s) => html`<div>${STAGE_LABELS[s.stage] || s.stage}
        ${s.on}</div>`)}</td>
      <td data-label="期限 Deadline">${r.deadline || "—"}</td></tr>`)}</tbody>
  </table></div>`;
}

function CaseDetail({ id }) {
  const [members] = useMembers();
  const [loaded, , error] = useLoad(() => api("GET", `/cases/${encodeURIComponent(id)}`), [id]);
  const [kase, setKase] = useState(null);
  const [done, setDone] = useState("");
  const status = useRef(null);
  useEffect(() => { if (loaded) setKase(loaded); }, [loaded]);
  if (error) return html`<h1>个案 Case</h1><${Problem} error=${error} />
    <p><a href="#/cases">返回个案 Back to cases</a></p>`;
  if (!kase) return html`<h1>个案 Case</h1><p class="loading">正在加载 Loading…</p>`;
  const acted = (changed, words) => {
    setKase(changed);
    setDone(`${words}: ${STATUS_LABELS[changed.status] || changed.status}`);
    setTimeout(() => status.current?.focus());
  };
  const isActive = ACTIVE.includes(kase.status);
  return html`
    <p class="no-print"><a href="#/cases">← 帮扶个案 Cases</a></p>
    <h1>个案 Case: ${kase.compound} · ${labels(kase.categories) || STATUS_LABELS[kase.status]}</h1>
    <div tabindex="-1" ref=${status}><${Done}>${done}<//></div>
    <section class="card">
      <dl class="facts">
        <dt>状态 Status</dt><dd><strong>${STATUS_LABELS[kase.status] || kase.status}</strong></dd>
        <dt>小区 Compound</dt><dd>${kase.compound}</dd>
        <dt>类别 Categories</dt><dd>${labels(kase.categories) || "—"}</dd>
        <dt>住户 Household</dt><dd>${kase.household_id
          ? html`<a href=${"#/households/" + encodeURIComponent(kase.household_id)}>查看住户 View household</a>`
          : html`<span class="muted">未确认 Not yet known</span>`}</dd>
        <dt>负责人 Assignee</dt><dd>${kase.assignee_id ? nameOf(members, kase.assignee_id) : "—"}</dd>
        <dt>开立 Opened</dt><dd>${when(kase.opened_at)} · ${nameOf(members, kase.opened_by)}</dd>
        ${kase.source_incident_id && html`<dt>来源 Source</dt><dd>巡逻发现 Found on patrol</dd>`}
        <dt>最近走访 Last visit</dt><dd>${kase.last_visit_on || "—"}</dd>
        ${kase.outcome && html`<dt>${kase.status === "dismissed" ? "驳回原因 Reason" : "结果 Outcome"}</dt>
          <dd>${kase.outcome}</dd>`}
        ${kase.outcome_kind && html`<dt>结案类型 How it ended</dt>
          <dd>${OUTCOME_KIND_LABELS[kase.outcome_kind] || kase.outcome_kind}</dd>`}
        ${kase.closed_at && html`<dt>结束 Ended</dt><dd>${when(kase.closed_at)}</dd>`}
        ${kase.erased_at && html`<dt>个人资料 Personal details</dt>
          <dd><strong class="erased">已删除 Erased</strong> ${when(kase.erased_at)}</dd>`}
      </dl>
      <h2>概况 Summary</h2>
      <p class="prewrap">${kase.summary}</p>
      ${(kase.reopenings || []).length > 0 && html`<h2>重新打开 Reopened</h2><ul class="plain">
        ${kase.reopenings.map((r, i) => html`<li key=${i}><strong>${when(r.reopened_at)}</strong>
          · ${nameOf(members, r.reopened_by)} · 原因 Reason: ${r.reason}
          ${r.previous_outcome && html`<br /><span class="muted">此前结果 Earlier outcome: ${r.previous_outcome}</span>`}
        </li>`)}</ul>`}
      <h2>走访 Visits</h2>
      <${Visits} visits=${kase.visits || []} members=${members} />
      <h2>转介 Referrals</h2>
      <${Referrals} referrals=${kase.referrals || []} />
      ${(kase.assistance || []).length > 0 && html`<h2>收到物品 Goods received</h2><ul class="plain">
        ${kase.assistance.map((a) => html`<li key=${a.dispatch_id}>${categoryLabel("goods", a.category)} ×${a.quantity}
          · ${when(a.received_at)}</li>`)}</ul>`}
    </section>
    <div class="grid actions-grid no-print">
      ${isActive && html`<${AssignForm} kase=${kase} members=${members} onDone=${acted} />`}
      ${isActive && html`<${CloseForm} kase=${kase} onDone=${acted} />`}
      ${ERASABLE.includes(kase.status) && !kase.erased_at && html`<${TextAction} kase=${kase}
        title="删除个人资料 Erase personal details" button="删除个人资料 Erase" label="原因 Reason" name="reason"
        path="erase" done="个人资料已删除 Personal details erased" onDone=${acted} />`}
      ${kase.status === "closed" && !kase.erased_at && html`<${TextAction} kase=${kase} title="重新打开 Reopen"
        button="重新打开 Reopen" label="原因 Reason" name="reason" path="reopen" done="已重新打开 Reopened"
        onDone=${acted} />`}
      ${kase.status === "draft" && html`<${ConfirmForm} kase=${kase} members=${members} onDone=${acted} />`}
      ${kase.status === "draft" && html`<${TextAction} kase=${kase} title="驳回 Dismiss" button="驳回 Dismiss"
        label="原因 Reason" name="reason" path="dismiss" done="已驳回 Dismissed" onDone=${acted} />`}
    </div>`;
}

function CasesBody({ args }) {
  return args && args[0] ? html`<${CaseDetail} id=${args[0]} key=${args[0]} />` : html`<${CaseList} />`;
}

export function CasesPage(props) {
  return html`<${Guarded}><${CasesBody} ...${props} /><//>`;
}

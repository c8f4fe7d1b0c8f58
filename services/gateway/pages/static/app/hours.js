// 志愿服务时长 Service hours: each member's hours in a month (patrols, group sessions and other service),
// the records behind them, other service recorded by the office (a tutor's weekend classes, a clean-up),
// and the month's records as CSV or XLSX for the street office.
import { useState } from "/static/vendor/htm-preact.module.js";
import { api, download, newKey } from "./api.js";
import { html, Guarded, Field, Select, Problem, Done, useForm, useLoad, communityToday } from "./ui.js";
import { useMembers, nameOf, memberOptions, canPatrol } from "./people.js";
import { hours, monthName, thisMonth } from "./report.js";

export const SOURCES = { patrol: "巡逻 Patrol", session: "文体活动 Group session", other: "其他服务 Other service" };
const ROLES = { patrol: "巡逻 patrol", leader: "队长 leader", helper: "协助 helper" };
const itemsOf = (answer) => (Array.isArray(answer) ? answer : (answer && answer.items) || []);

/** Hours as typed ("2.5") -> minutes (150); anything else is sent as it is, for the API to name. */
function minutesFrom(text) {
  const clean = String(text).trim();
  if (/^\d+(\.\d)?$/.test(clean)) return Math.round(Number(clean) * 60);
  return clean;  // the API says what is wrong with it
}

function RecordOther({ members, onSaved }) {
  const form = useForm({ member_id: "", served_on: communityToday(), hours: "", what: "" });
  const [key, setKey] = useState(newKey);
  const [done, setDone] = useState("");
  const submit = (event) => {
    event.preventDefault();
    setDone("");
    if (!form.values.member_id) {
      form.setErrors({ member_id: ["请选择成员。Choose a member."] });
      return;
    }
    form.submit(async (v) => {
      const minutes = minutesFrom(v.hours);
      if (typeof minutes !== "number") {
        form.setErrors({ minutes: ["请填写小时数，例如 2.5。Give the hours, e.g. 2.5."] });
        return;
      }
      const record = await api("POST", "/service", { key, body: { member_id: v.member_id, served_on: v.served_on,
                                                                   minutes, what: v.what.trim() } });
      setKey(newKey());
      form.reset();
      setDone(`已记录 Recorded: ${nameOf(members, record.member_id)} ${hours(record.minutes)} 小时 hours`);
      onSaved(record);
    });
  };
  const { values: v, set, errors } = form;
  return html`<form class="card" onSubmit=${submit} aria-labelledby="other-h">
    <h2 id="other-h">记录其他服务 Record other service</h2>
    <p class="muted">巡逻和文体活动的时长会自动记录；这里记录其他的志愿服务（例如周末辅导、清扫）。
      Patrols and group sessions are counted by themselves; record any other volunteer work here.</p>
    <div class="grid">
      <${Select} label="成员 Member" name="member_id" value=${v.member_id} onInput=${set("member_id")}
        options=${memberOptions(members, canPatrol)} blank="— 请选择 Choose —" error=${errors.member_id} />
      <${Field} label="日期 Date" name="served_on" type="date" value=${v.served_on} onInput=${set("served_on")}
        max=${communityToday()} error=${errors.served_on} />
      <${Field} label="时长（小时）Hours" name="hours" value=${v.hours} onInput=${set("hours")} inputmode="decimal"
        hint="例如 e.g. 2.5" error=${errors.minutes} />
    </div>
    <${Field} label="做了什么 What was done" name="what" type="textarea" value=${v.what} onInput=${set("what")}
      error=${errors.what} hint="不写居民的姓名或情况 No resident's name or circumstances" />
    <${Problem} error=${form.problem} shown=${["member_id", "served_on", "minutes", "what"]} />
    <${Done}>${done}<//>
    <p><button class="primary" type="submit" disabled=${form.busy}>记录 Record</button></p>
  </form>`;
}

function Totals({ month, version }) {
  const [totals, , error] = useLoad(() => api("GET", "/service/totals", { query: { month } }), [month, version]);
  if (error) return html`<${Problem} error=${error} />`;
  if (!totals) return html`<p class="loading">正在加载 Loading…</p>`;
  const rows = [...totals.members].sort((a, b) => b.minutes - a.minutes);
  const sum = rows.reduce((n, m) => n + m.minutes, 0);
  if (!rows.length) return html`<p class="muted">这个月还没有服务记录。No service recorded this month.</p>`;
  return html`<p>共 ${rows.length} 位成员，${hours(sum)} 小时。${rows.length} members, ${hours(sum)} hours in all.</p>
    <div class="table-wrap"><table class="stack" aria-label="每人时长 Hours per member">
      <thead><tr><th>成员 Member</th><th class="num">合计（小时）Total (hours)</th><th class="num">巡逻 Patrol</th>
        <th class="num">文体活动 Sessions</th><th class="num">其他 Other</th></tr></thead>
      <tbody>${rows.map((m) => html`<tr key=${m.member_id}>
        <td data-label="成员 Member">${m.member_name}</td>
        <td data-label="合计 Total" class="num"><b>${hours(m.minutes)}</b></td>
        <td data-label="巡逻 Patrol" class="num">${hours(m.patrol)}</td>
        <td data-label="文体活动 Sessions" class="num">${hours(m.session)}</td>
        <td data-label="其他 Other" class="num">${hours(m.other)}</td></tr>`)}</tbody>
    </table></div>`;
}

function Records({ month, memberId, version }) {
  const [page, , error] = useLoad(() => api("GET", "/service", { query: { month, member_id: memberId } }),
                                  [month, memberId, version]);
  if (error) return html`<${Problem} error=${error} />`;
  if (!page) return html`<p class="loading">正在加载 Loading…</p>`;
  const all = itemsOf(page);
  const records = all.slice(0, 50);
  if (!records.length) return html`<p class="muted">没有记录。No records.</p>`;
  return html`<div class="table-wrap"><table class="stack" aria-label="服务记录 Service records">
    <thead><tr><th>日期 Date</th><th>成员 Member</th><th>来源 Source</th><th>内容 What</th>
      <th class="num">小时 Hours</th></tr></thead>
    <tbody>${records.map((r) => html`<tr key=${r.id}>
      <td data-label="日期 Date" class="nowrap">${r.served_on}</td>
      <td data-label="成员 Member">${r.member_name}</td>
      <td data-label="来源 Source">${SOURCES[r.source] || r.source}${r.role && r.source !== "patrol"
        ? ` · ${ROLES[r.role] || r.role}` : ""}</td>
      <td data-label="内容 What">${r.what || ""}</td>
      <td data-label="小时 Hours" class="num">${hours(r.minutes)}</td></tr>`)}</tbody>
  </table></div>
  ${(page.next_cursor || all.length > 50) && html`<p class="muted">只显示最近 50 条；完整记录请导出。Showing the latest 50: export for
    them all.</p>`}`;
}

function HoursBody() {
  const [members, membersError] = useMembers();
  const [month, setMonth] = useState(thisMonth());
  const [memberId, setMemberId] = useState("");
  const [version, setVersion] = useState(0);
  const [problem, setProblem] = useState(null);
  const get = (format) => () => {
    setProblem(null);
    download("/service", { month, member_id: memberId, format }).catch(setProblem);
  };
  return html`
    <h1>志愿服务时长 Service hours</h1>
    <${Problem} error=${membersError} />
    <form class="card row" onSubmit=${(e) => e.preventDefault()} aria-label="月份与成员 Month and member">
      <label class="field" for="hours-month">月份 Month
        <input id="hours-month" name="month" type="month" value=${month} max=${thisMonth()}
          onInput=${(e) => e.currentTarget.value && setMonth(e.currentTarget.value)} /></label>
      <${Select} label="成员 Member" name="member" value=${memberId} onInput=${setMemberId}
        options=${memberOptions(members, canPatrol)} blank="全部成员 Everyone" />
      <button type="button" onClick=${get("csv")}>导出 Export (CSV)</button>
      <button type="button" onClick=${get("xlsx")}>导出 Export (XLSX)</button>
    </form>
    <${Problem} error=${problem} />
    <section class="card" aria-labelledby="totals-h">
      <h2 id="totals-h">${monthName(month)} 每人合计 Totals per member</h2>
      <${Totals} month=${month} version=${version} />
    </section>
    <section class="card" aria-labelledby="records-h">
      <h2 id="records-h">服务记录 Records${memberId ? ` · ${nameOf(members, memberId)}` : ""}</h2>
      <${Records} month=${month} memberId=${memberId} version=${version} />
    </section>
    <${RecordOther} members=${members} onSaved=${() => setVersion((n) => n + 1)} />`;
}

export function HoursPage(props) {
  return html`<${Guarded}><${HoursBody} ...${props} /><//>`;
}

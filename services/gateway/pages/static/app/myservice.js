// 我的服务 My service, on a phone: one's own volunteer hours this year, month by month, and the latest
// records (patrols, group sessions, other service). A group's leader records the group's session here too.
import { useState } from "/static/vendor/htm-preact.module.js";
import { all, api, session } from "./api.js";
import { html, Guarded, Problem, Done, useLoad, communityDay } from "./ui.js";
import { hours } from "./report.js";
import { SOURCES } from "./hours.js";
import { SessionForm } from "./groups.js";

const itemsOf = (answer) => (Array.isArray(answer) ? answer : (answer && answer.items) || []);

function MonthBars({ months }) {
  const shown = months.filter((m) => m.minutes > 0);
  if (!shown.length) return html`<p class="muted">今年还没有服务记录。No service recorded this year yet.</p>`;
  const most = Math.max(...shown.map((m) => m.minutes));
  return html`<ul class="month-bars" aria-label="每月时长 Hours by month">
    ${shown.map((m) => html`<li key=${m.month}>
      <span>${m.month}</span>
      <span class="bar" title=${`巡逻 ${hours(m.patrol)} · 活动 ${hours(m.session)} · 其他 ${hours(m.other)}`}>
        <span style=${{ width: `${Math.round((m.minutes / most) * 100)}%` }}></span></span>
      <span class="num">${hours(m.minutes)} h</span></li>`)}
  </ul>`;
}

/** The groups this member leads, each with a button to record a session held. */
function MyGroups({ onRecorded }) {
  const me = session.claims().sub;
  const [answer] = useLoad(() => all("/groups"));
  const [open, setOpen] = useState(null);
  const [done, setDone] = useState("");
  const mine = itemsOf(answer).filter((g) => g.leader_id === me && g.active);
  if (!mine.length) return null;
  return html`<section class="card" aria-labelledby="my-groups-h">
    <h2 id="my-groups-h">我带的队伍 Groups I lead</h2>
    <${Done}>${done}<//>
    ${mine.map((group) => (open === group.id
      ? html`<${SessionForm} key=${group.id} group=${group} onClose=${() => setOpen(null)}
          onSaved=${(s) => { setOpen(null); setDone(`已记录活动 Session recorded: ${group.name}，${s.held_on}`);
                             onRecorded(); }} />`
      : html`<p key=${group.id}><button type="button" class="primary big"
          onClick=${() => { setDone(""); setOpen(group.id); }}>记录活动 Record a session: ${group.name}</button></p>`))}
  </section>`;
}

function MyServiceBody() {
  const year = communityDay().slice(0, 4);
  const [mine, reload, error] = useLoad(() => api("GET", "/me/service", { query: { year } }), [year]);
  return html`<div class="mine-page field-page">
    <h1>我的服务 My service</h1>
    <${Problem} error=${error} />
    ${!mine && !error && html`<p class="loading">正在加载 Loading…</p>`}
    ${mine && html`
      <section class="card" aria-labelledby="year-h">
        <h2 id="year-h">${mine.year} 年 This year</h2>
        <p><span class="big-total">${hours(mine.total_minutes)}</span> 小时志愿服务 hours of service</p>
        <${MonthBars} months=${mine.months} />
      </section>
      <section class="card" aria-labelledby="latest-h">
        <h2 id="latest-h">最近的记录 Latest records</h2>
        ${mine.records.length === 0 && html`<p class="muted">还没有记录。Nothing yet.</p>`}
        <ul class="plain">${mine.records.map((r) => html`<li key=${r.id}>${
          `${r.served_on} · ${SOURCES[r.source] || r.source}${r.what ? ` · ${r.what}` : ""} · `}<b>${
          `${hours(r.minutes)} 小时 h`}</b></li>`)}</ul>
        <p class="muted">时长有误请联系社区办公室。Hours wrong? Tell the community office.</p>
      </section>`}
    <${MyGroups} onRecorded=${reload} />
  </div>`;
}

export function MyServicePage(props) {
  return html`<${Guarded}><${MyServiceBody} ...${props} /><//>`;
}

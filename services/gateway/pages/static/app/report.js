// 月报 Monthly report: one month for the street office, in words it reads: patrols and zones, incidents
// by category and how they were settled, drives and where goods went, cases (counts only), activity
// groups' sessions and volunteer hours. Printed on A4 (no menu, no buttons), or saved as a workbook.
// The address keeps the month (#/report/2026-11), so a bookmark opens the same report.
import { useEffect, useState } from "/static/vendor/htm-preact.module.js";
import { api, download } from "./api.js";
import { html, Guarded, Problem, communityDay, useLoad, when, yuan } from "./ui.js";

const OUTCOMES = [["helped", "已帮扶 Helped"], ["referred", "已转介 Referred"], ["moved_away", "已搬离 Moved away"],
  ["deceased", "已去世 Deceased"], ["declined", "本人谢绝 Declined"], ["other", "其他 Other"],
  ["unspecified", "未注明 Not stated"]];
const SESSION_KINDS = [["rehearsal", "排练 Rehearsals"], ["practice", "练习 Practice"],
  ["performance", "演出 Performances"], ["match", "比赛 Matches"]];
export const GROUP_KINDS = { dance: "舞蹈 Dance", sport: "体育 Sport", art: "书画 Art", music: "音乐 Music",
  other: "其他 Other" };
const DRIVE_STATUS = { open: "进行中 open", closed: "已结束 closed" };

/** Minutes as hours with one decimal: 1530 -> "25.5". */
export const hours = (minutes) => (minutes / 60).toFixed(1);
const label = (entry) => `${entry.label_zh} ${entry.label_en}`;

/** "2026-11" -> "2026年11月 November 2026". */
export function monthName(month) {
  const [year, m] = month.split("-").map(Number);
  const en = new Date(Date.UTC(year, m - 1, 1)).toLocaleString("en", { month: "long", timeZone: "UTC" });
  return `${year}年${m}月 ${en} ${year}`;
}

/** The month before the community's this one (the report an office files), "2026-11". */
export function lastMonth() {
  const [year, month] = communityDay().split("-").map(Number);
  return month === 1 ? `${year - 1}-12` : `${year}-${String(month - 1).padStart(2, "0")}`;
}
export const thisMonth = () => communityDay().slice(0, 7);

/** The part in a sentence, in Chinese and then in English (built as strings: no line break to lose a space). */
function Said({ zh, en }) {
  return html`<p class="said">${zh}<br /><span class="en">${en}</span></p>`;
}

function Figure({ value, children }) {
  return html`<div class="figure"><b>${value}</b><span>${children}</span></div>`;
}

function Patrols({ p }) {
  const incidents = p.incidents;
  return html`<section class="card report-part" aria-labelledby="r-patrol">
    <h2 id="r-patrol">巡逻与事件 Patrols and incidents</h2>
    <div class="figures">
      <${Figure} value=${p.patrols}>次巡逻 patrols<//>
      <${Figure} value=${hours(p.patrol_minutes)}>小时巡逻 hours on patrol<//>
      <${Figure} value=${`${p.zones_covered} / ${p.zones_total}`}>片区巡逻到 zones patrolled<//>
      <${Figure} value=${incidents.reported}>件事件上报 incidents reported<//>
      <${Figure} value=${incidents.resolved}>件解决 resolved<//>
    </div>
    <${Said} zh=${`本月巡逻 ${p.patrols} 次，共 ${hours(p.patrol_minutes)} 小时，${p.zones_total} 个片区中巡逻到 ${p.zones_covered} 个${
        p.patrols_closed_automatically ? `；其中 ${p.patrols_closed_automatically} 次忘记结束，由系统自动结束` : ""}。`
        + `上报事件 ${incidents.reported} 件，解决 ${incidents.resolved} 件；本月上报的到月底仍有 ${incidents.open_at_month_end} 件未解决。`}
      en=${`${p.patrols} patrols, ${hours(p.patrol_minutes)} hours in all; ${p.zones_covered} of ${p.zones_total} zones `
        + `patrolled${p.patrols_closed_automatically ? `; ${p.patrols_closed_automatically} left open and closed automatically`
          : ""}. ${incidents.reported} incidents reported, ${incidents.resolved} resolved; of this month's, `
        + `${incidents.open_at_month_end} still open at its end.`} />
    <div class="report-tables">
      ${p.zones.length > 0 && html`<table aria-label="片区 Zones">
        <thead><tr><th>片区 Zone</th><th class="num">巡逻次数 Patrols</th></tr></thead>
        <tbody>${p.zones.map((z) => html`<tr key=${z.zone_id} class=${z.patrols ? "" : "uncovered"}>
          <td>${z.name}</td><td class="num">${z.patrols}</td></tr>`)}</tbody></table>`}
      ${p.incidents_by_category.length > 0 && html`<table aria-label="事件类别 Incidents by category">
        <thead><tr><th>事件类别 Category</th><th class="num">上报 Reported</th><th class="num">解决 Resolved</th></tr></thead>
        <tbody>${p.incidents_by_category.map((c) => html`<tr key=${c.category}>
          <td>${label(c)}</td><td class="num">${c.reported}</td><td class="num">${c.resolved}</td></tr>`)}</tbody>
      </table>`}
    </div>
  </section>`;
}

function goodsText(items) {
  return items.map((i) => `${label(i)} × ${i.quantity}`).join("，");
}

function Donations({ d }) {
  return html`<section class="card report-part" aria-labelledby="r-donations">
    <h2 id="r-donations">募捐 Donation drives</h2>
    <div class="figures">
      <${Figure} value=${"¥" + yuan(d.cash_fen)}>善款 cash received<//>
      <${Figure} value=${d.gifts}>笔捐赠 gifts<//>
      <${Figure} value=${d.dispatches.length}>次送出物资 dispatches<//>
    </div>
    <${Said} zh=${`本月收到善款 ¥${yuan(d.cash_fen)}，共 ${d.gifts} 笔捐赠${d.voided ? `（另有 ${d.voided} 笔登记有误已作废）` : ""}${
        d.items_received.length ? `；收到物资：${goodsText(d.items_received)}` : ""}。`}
      en=${`¥${yuan(d.cash_fen)} received in ${d.gifts} gifts${d.voided ? ` (${d.voided} recorded in error and voided)` : ""}; `
        + `goods sent ${d.dispatches.length} times.`} />
    <div class="report-tables">
      ${d.drives.length > 0 && html`<table aria-label="募捐活动 Drives">
        <thead><tr><th>活动 Drive</th><th>状态 Status</th><th class="num">本月善款 Cash this month</th>
          <th class="num">笔数 Gifts</th></tr></thead>
        <tbody>${d.drives.map((c) => html`<tr key=${c.campaign_id}><td>${c.name}</td>
          <td>${DRIVE_STATUS[c.status] || c.status}</td><td class="num">¥${yuan(c.cash_fen)}</td>
          <td class="num">${c.gifts}</td></tr>`)}</tbody></table>`}
      ${d.dispatches.length > 0 && html`<table aria-label="送出物资 Goods sent">
        <thead><tr><th>日期 Date</th><th>送往 To</th><th>物资 Goods</th></tr></thead>
        <tbody>${d.dispatches.map((s, i) => html`<tr key=${i}><td class="nowrap">${s.dispatched_on}</td>
          <td>${s.to_case ? "困难家庭 A household in need" : s.destination}</td><td>${goodsText(s.items)}</td></tr>`)}
        </tbody></table>`}
    </div>
  </section>`;
}

function Cases({ w }) {
  const outcomes = OUTCOMES.filter(([kind]) => w.closed_by_outcome[kind]);
  return html`<section class="card report-part" aria-labelledby="r-cases">
    <h2 id="r-cases">帮扶个案 Hardship cases</h2>
    <div class="figures">
      <${Figure} value=${w.cases_opened}>个新开 opened<//>
      <${Figure} value=${w.cases_helped}>个得到帮扶 helped<//>
      <${Figure} value=${w.cases_closed}>个结案 closed<//>
      <${Figure} value=${w.open_at_month_end}>个月底在办 open at month end<//>
    </div>
    <${Said} zh=${`本月新开个案 ${w.cases_opened} 个，${w.cases_helped} 个得到帮扶（走访 ${w.visits} 次，转介 ${w.referrals_made} 次，`
        + `获批 ${w.referrals_granted} 次），结案 ${w.cases_closed} 个；月底在办 ${w.open_at_month_end} 个。`}
      en=${`${w.cases_opened} cases opened, ${w.cases_helped} helped (${w.visits} visits, ${w.referrals_made} referrals `
        + `made, ${w.referrals_granted} granted), ${w.cases_closed} closed; ${w.open_at_month_end} open at the month's end.`} />
    <div class="report-tables">
      ${w.cases_opened_by_category.length > 0 && html`<table aria-label="新开个案类别 Cases opened by category">
        <thead><tr><th>类别 Category</th><th class="num">新开 Opened</th></tr></thead>
        <tbody>${w.cases_opened_by_category.map((c) => html`<tr key=${c.category}><td>${label(c)}</td>
          <td class="num">${c.count}</td></tr>`)}</tbody></table>`}
      ${outcomes.length > 0 && html`<table aria-label="结案结果 Cases closed by outcome">
        <thead><tr><th>结案结果 Outcome</th><th class="num">个案 Cases</th></tr></thead>
        <tbody>${outcomes.map(([kind, text]) => html`<tr key=${kind}><td>${text}</td>
          <td class="num">${w.closed_by_outcome[kind]}</td></tr>`)}</tbody></table>`}
    </div>
  </section>`;
}

function Volunteers({ v }) {
  const kinds = SESSION_KINDS.filter(([kind]) => v.sessions_by_kind[kind]);
  const by = v.minutes_by_source;
  return html`<section class="card report-part" aria-labelledby="r-volunteers">
    <h2 id="r-volunteers">文体活动与志愿服务 Activity groups and volunteer hours</h2>
    <div class="figures">
      <${Figure} value=${v.sessions}>场活动 sessions<//>
      <${Figure} value=${v.participants}>人次参与 participants<//>
      <${Figure} value=${hours(v.minutes)}>小时志愿服务 volunteer hours<//>
      <${Figure} value=${v.members_serving}>位成员服务 members serving<//>
    </div>
    <${Said} zh=${`${v.groups_active} 支文体队伍活动 ${v.sessions} 场${kinds.length
        ? `（${kinds.map(([kind, text]) => `${text.split(" ")[0]} ${v.sessions_by_kind[kind]}`).join("，")}）` : ""}，`
        + `参与居民 ${v.participants} 人次。${v.members_serving} 位成员志愿服务共 ${hours(v.minutes)} 小时：`
        + `巡逻 ${hours(by.patrol)}，文体活动 ${hours(by.session)}，其他服务 ${hours(by.other)}。`}
      en=${`${v.groups_active} groups held ${v.sessions} sessions with ${v.participants} participants. `
        + `${v.members_serving} members gave ${hours(v.minutes)} hours: patrols ${hours(by.patrol)}, `
        + `group sessions ${hours(by.session)}, other service ${hours(by.other)}.`} />
    ${v.groups.length > 0 && html`<div class="report-tables"><table aria-label="文体队伍 Activity groups">
      <thead><tr><th>队伍 Group</th><th>类型 Kind</th><th class="num">场次 Sessions</th>
        <th class="num">参与人次 Participants</th></tr></thead>
      <tbody>${v.groups.map((g) => html`<tr key=${g.group_id}><td>${g.name}</td><td>${GROUP_KINDS[g.kind] || g.kind}</td>
        <td class="num">${g.sessions}</td><td class="num">${g.participants}</td></tr>`)}</tbody></table></div>`}
  </section>`;
}

function ReportBody({ args }) {
  const month = /^\d{4}-\d{2}$/.test(args[0] || "") ? args[0] : lastMonth();
  const [chosen, setChosen] = useState(month);
  useEffect(() => setChosen(month), [month]);
  const [report, , error] = useLoad(() => api("GET", "/reports/monthly", { query: { month } }), [month]);
  const [problem, setProblem] = useState(null);
  const show = (event) => {
    event.preventDefault();
    if (chosen) location.hash = `#/report/${chosen}`;
  };
  const xlsx = () => { setProblem(null); download("/reports/monthly", { month, format: "xlsx" }).catch(setProblem); };
  return html`
    <form class="card row no-print report-choose" onSubmit=${show} aria-label="选择月份 Choose the month">
      <label class="field" for="report-month">月份 Month
        <input id="report-month" name="month" type="month" value=${chosen} max=${thisMonth()}
          onInput=${(e) => setChosen(e.currentTarget.value)} required /></label>
      <button type="submit">查看 Show</button>
      <button type="button" class="primary" onClick=${() => window.print()} disabled=${!report}>打印 Print</button>
      <button type="button" class="link" onClick=${xlsx} disabled=${!report}>下载 XLSX Download XLSX</button>
    </form>
    <${Problem} error=${problem} />
    <article class="monthly-report" aria-labelledby="report-h">
      <h1 id="report-h">社区月报 Monthly report · ${monthName(month)}</h1>
      ${error && html`<${Problem} error=${error} />`}
      ${!report && !error && html`<p class="loading">正在汇总 Gathering the month…</p>`}
      ${report && html`
        <p class="muted">只有数字，不含任何人的姓名或情况。Counts only: no one's name or circumstances.
          生成于 Made ${when(report.generated_at)}</p>
        <${Patrols} p=${report.patrol} />
        <${Donations} d=${report.donations} />
        <${Cases} w=${report.welfare} />
        <${Volunteers} v=${report.volunteers} />`}
    </article>`;
}

export function ReportPage(props) {
  return html`<${Guarded}><${ReportBody} ...${props} /><//>`;
}

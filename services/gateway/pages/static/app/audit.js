// 查阅记录 Audit log: who read whose personal details, and when, as each service
// keeps it (GET /audit?source=...): people by name, records as links where the
// workspace has a page for them.
import { useEffect, useState } from "/static/vendor/htm-preact.module.js";
import { api } from "./api.js";
import { html, Guarded, Select, Problem, ROLE_LABELS, when } from "./ui.js";
import { useMembers, nameOf } from "./people.js";

const PAGE_SIZE = 50;
const SOURCES = [["welfare", "帮扶 Welfare: cases and households"], ["patrol", "巡逻 Patrol: incidents and notes"],
                 ["donations", "捐赠 Donations: ledgers"], ["accounts", "账号 Accounts: member searches"]];
// What was done, in words; an action not here shows as the service named it.
const ACTIONS = {
  read_case: "查看个案 Read a case", list_case: "个案列表 Listed a case", read_household: "查看住户 Read a household",
  household_search: "查找住户时列出 Listed in a household search", list_household: "住户列表 Listed a household",
  edit_household: "修改住户 Edited a household", update_household: "修改住户 Edited a household",
  record_consent: "记录知情同意 Recorded a consent", export_household: "导出住户资料 Exported a household",
  erase_case: "删除个案个人资料 Erased a case's personal details",
  recipients_list: "可受助个案列表 Listed cases that can receive goods",
  read_incident: "查看事件全文 Read an incident in full", list_incident: "事件列表全文 Listed an incident in full",
  read_patrol: "查看巡逻记录 Read a patrol's notes", list_patrol: "巡逻列表全文 Listed a patrol's notes",
  ledger_export: "导出捐赠明细 Exported a drive's ledger", export_ledger: "导出捐赠明细 Exported a drive's ledger",
  ledger: "读取捐赠明细 Read a drive's ledger", member_search: "查找成员 Searched members",
  device_issued: "发放大屏令牌 Issued a wall screen's token", device_revoked: "撤销大屏令牌 Revoked a wall screen's token",
};
const SHOWN = new Set(["id", "actor_id", "action", "at"]);
const FILTER_NAMES = { q: "关键词 Keyword", role: "角色 Role", compound: "小区 Compound",
                       party_member: "党员 Party member", active: "在用 Active", status: "状态 Status",
                       category: "类别 Category", assignee_id: "负责人 Assignee", overdue: "逾期 Overdue",
                       rows: "行数 Rows", name: "名称 Name", days: "天数 Days", device_id: "大屏 Screen" };

/** A search's filter in words: a person by name, a role by its label, yes or no. */
function filterValue(name, value, members) {
  if (name === "device_id") return "…" + String(value).slice(-6);
  if (name.endsWith("_id")) return nameOf(members, value);
  if (name === "role") return ROLE_LABELS[value] || value;
  if (value === true || value === "true") return "是 Yes";
  if (value === false || value === "false") return "否 No";
  return value;
}

/** What an entry concerns: a link where the workspace shows it, the filters of a search, else a short note. */
function Record({ entry, members }) {
  const parts = [];
  for (const [name, value] of Object.entries(entry)) {
    if (SHOWN.has(name) || value === null || value === undefined || value === "") continue;
    if (name === "case_id") parts.push(html`<a href=${"#/cases/" + encodeURIComponent(value)}>个案 Case</a>`);
    else if (name === "household_id") {
      parts.push(html`<a href=${"#/households/" + encodeURIComponent(value)}>住户 Household</a>`);
    } else if (name === "incident_id") parts.push(html`<span>事件 Incident …${String(value).slice(-6)}</span>`);
    else if (name === "patrol_id") parts.push(html`<span>巡逻 Patrol …${String(value).slice(-6)}</span>`);
    else if (name === "campaign_id") {
      parts.push(html`<a href=${"#/drives/" + encodeURIComponent(value)}>募捐活动 Drive</a>`);
    }
    else if (value && typeof value === "object") {
      const shown = Object.entries(value).filter(([, v]) => v !== null && v !== "" && v !== undefined)
        .map(([k, v]) => `${FILTER_NAMES[k] || k}: ${filterValue(k, v, members)}`);
      parts.push(html`<span>${shown.length ? shown.join("; ") : "全部 All"}</span>`);
    } else parts.push(html`<span>${FILTER_NAMES[name] || name}: ${value}</span>`);
  }
  return parts.length ? parts.map((p, i) => html`${i ? " · " : ""}${p}`) : html`<span class="muted">—</span>`;
}

function AuditBody() {
  const [members, membersError] = useMembers();
  const [source, setSource] = useState("welfare");
  const [page, setPage] = useState(null);
  const [problem, setProblem] = useState(null);
  const [busy, setBusy] = useState(false);
  const load = async (cursor) => {
    setBusy(true);
    setProblem(null);
    try {
      const answer = await api("GET", "/audit", { query: { source, limit: PAGE_SIZE, cursor } });
      setPage((old) => ({ items: cursor ? [...old.items, ...answer.items] : answer.items,
                          next_cursor: answer.next_cursor }));
    } catch (error) {
      setProblem(error);
      if (!cursor) setPage(null);
    } finally {
      setBusy(false);
    }
  };
  useEffect(() => { load(); }, [source]);
  return html`
    <h1>查阅记录 Audit log</h1>
    <p class="muted">谁在何时查看了谁的个人资料。Who read whose personal details, and when.</p>
    <div class="card">
      <${Select} label="来源 Source" name="source" value=${source} onInput=${setSource} options=${SOURCES} />
    </div>
    <${Problem} error=${problem || membersError} />
    ${page && page.items.length > 0 && html`<div class="table-wrap"><table class="stack" aria-label="查阅记录 Audit log">
      <thead><tr><th>时间 When</th><th>人员 Who</th><th>操作 What</th><th>对象 Record</th></tr></thead>
      <tbody>${page.items.map((entry) => html`<tr key=${entry.id}>
        <td data-label="时间 When">${when(entry.at)}</td><td data-label="人员 Who">${nameOf(members, entry.actor_id)}</td>
        <td data-label="操作 What">${ACTIONS[entry.action] || entry.action}</td>
        <td data-label="对象 Record"><${Record} entry=${entry} members=${members} /></td>
      </tr>`)}</tbody>
    </table></div>`}
    ${page && html`${page.items.length === 0 && html`<p class="muted">没有记录。Nothing recorded.</p>`}
    ${page.next_cursor && html`<p><button type="button" disabled=${busy}
      onClick=${() => load(page.next_cursor)}>更多 More</button></p>`}`}
    ${busy && !page && html`<p class="loading">正在加载 Loading…</p>`}`;
}

export function AuditPage(props) {
  return html`<${Guarded}><${AuditBody} ...${props} /><//>`;
}

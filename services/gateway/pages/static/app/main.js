// Linli's workspace: log in, then one page per daily task, found by the address
// after `#` (so a reload or a bookmark opens the same page). The office (admin)
// gets its desk pages and the field pages; a member (a party member visiting
// households, a patrol volunteer or leader) gets the field pages, made for a
// phone; the wall screen's viewer account is sent to the dashboard.
import { render, useEffect, useState } from "/static/vendor/htm-preact.module.js";
import { api, onBusy, session } from "./api.js";
import { html, Field, Problem, useForm, loadCategories } from "./ui.js";
import { DeskPage } from "./desk.js";
import { DrivesPage } from "./drives.js";
import { ReceiptPage } from "./receipt.js";
import { MembersPage } from "./members.js";
import { ZonesPage } from "./zones.js";
import { HouseholdsPage } from "./households.js";
import { CasesPage } from "./cases.js";
import { CategoriesPage } from "./categories.js";
import { AuditPage } from "./audit.js";
import { DevicesPage } from "./devices.js";
import { MyCasesPage } from "./mycases.js";
import { PatrolPage } from "./patrol.js";
import { IncidentsPage } from "./incidents.js";
import { AlertsPage } from "./alerts.js";
import { PendingSends } from "./pending.js";
import { ReportPage } from "./report.js";
import { GroupsPage } from "./groups.js";
import { HoursPage } from "./hours.js";
import { MyServicePage } from "./myservice.js";

// [hash path, nav text, page]; a page gets the rest of the path as `args`.
const OFFICE_PAGES = [
  ["desk", "捐赠登记 Donation table", DeskPage],
  ["drives", "募捐活动 Drives", DrivesPage],
  ["members", "成员 Members", MembersPage],
  ["zones", "片区与巡逻队 Zones and teams", ZonesPage],
  ["households", "住户 Households", HouseholdsPage],
  ["cases", "帮扶个案 Cases", CasesPage],
  ["categories", "类别 Categories", CategoriesPage],
  ["groups", "文体队伍 Activity groups", GroupsPage],
  ["hours", "志愿服务时长 Service hours", HoursPage],
  ["report", "月报 Monthly report", ReportPage],
  ["audit", "查阅记录 Audit log", AuditPage],
  ["devices", "大屏设备 Wall screens", DevicesPage],
];
// In the field, on a phone: an admin sees them too (to acknowledge for an absent leader).
const FIELD_PAGES = [
  ["mine", "我的个案 My cases", MyCasesPage],
  ["patrol", "巡逻 Patrol", PatrolPage],
  ["incidents", "事件 Incidents", IncidentsPage],
  ["alerts", "提醒 Alerts", AlertsPage],
  ["service", "我的服务 My service", MyServicePage],
];
const HIDDEN = [["receipt", ReceiptPage]]; // opened from a page, not the menu

/** The menu a role gets, and the page an empty address opens. */
function pagesFor(roles) {
  if (roles.includes("admin")) return { pages: [...OFFICE_PAGES, ...FIELD_PAGES], home: "desk" };
  if (roles.includes("member")) return { pages: FIELD_PAGES, home: "mine" };
  return { pages: [], home: null };
}

function route() {
  const [name = "", ...args] = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  return { name, args };
}

function Login() {
  const form = useForm({ username: "", password: "" });
  const submit = (event) => {
    event.preventDefault();
    form.submit(async (values) => {
      const token = await api("POST", "/auth/token", { body: values });
      session.start(token.access_token);
    });
  };
  return html`<form class="card login" onSubmit=${submit} aria-label="登录 Log in">
    <h1>邻里 Linli · 社区办公 Community office</h1>
    <${Field} label="用户名 Username" name="username" value=${form.values.username} onInput=${form.set("username")}
      autocomplete="username" autofocus error=${form.errors.username} />
    <${Field} label="密码 Password" name="password" type="password" value=${form.values.password}
      onInput=${form.set("password")} autocomplete="current-password" error=${form.errors.password} />
    <${Problem} error=${form.problem} />
    <p><button class="primary" type="submit" disabled=${form.busy}>登录 Log in</button></p>
  </form>`;
}

function NotForYou() {
  return html`<main><div class="notice bad" role="alert">此账号用于大屏，不能办理事务。
    This account is for the wall screen: it has no pages here.
    <a href="/dashboard">大屏 Dashboard</a></div>
    <button onClick=${() => session.end()}>退出 Log out</button></main>`;
}

function Busy() {
  const [seconds, setSeconds] = useState(0);
  useEffect(() => onBusy(setSeconds), []);
  return seconds ? html`<div class="notice busy no-print" role="status">系统繁忙，${seconds} 秒后自动重试（不会重复登记）。
    Busy: retrying in ${seconds} s (nothing is recorded twice).</div>` : null;
}

function App() {
  const [, setTick] = useState(0);
  const [where, setWhere] = useState(route);
  const [ready, setReady] = useState(false);
  useEffect(() => session.onChange(() => { setReady(false); setTick((t) => t + 1); }), []);
  useEffect(() => {
    const onHash = () => setWhere(route());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  const loggedIn = Boolean(session.token);
  useEffect(() => {
    // The community's categories label every page: load them before the first one shows.
    if (loggedIn && !ready) loadCategories(true).then(() => setReady(true), () => setReady(true));
  }, [loggedIn, ready]);
  if (!loggedIn) return html`<${Login} />`;
  const { pages, home } = pagesFor(session.roles());
  if (!home) return html`<${NotForYou} />`;
  const name = where.name || home;
  const page = pages.find(([n]) => n === name) || HIDDEN.find(([n]) => n === name);
  const Page = page ? page[page.length - 1] : null;
  return html`
    <header class="top no-print">
      <span class="brand">邻里 Linli</span>
      <nav aria-label="页面 Pages" class=${home === "desk" ? "office" : "field"}>
        ${pages.map(([n, text]) => html`<a href=${"#/" + n}
          aria-current=${name === n ? "page" : undefined}>${text}</a>`)}
        ${home === "desk" && html`<a href="/dashboard">大屏 Dashboard</a>`}
      </nav>
      <button onClick=${() => session.end()}>退出 Log out</button>
    </header>
    <${Busy} />
    <${PendingSends} />
    <main>
      ${!ready ? html`<p class="loading">正在加载 Loading…</p>`
        : Page ? html`<${Page} args=${where.args} key=${name} />`
        : html`<p>没有这个页面。No such page. <a href=${"#/" + home}>${pages[0][1]}</a></p>`}
    </main>`;
}

const root = document.getElementById("app");
root.replaceChildren(); // the page's own "Loading…": Preact would leave it below the app
render(html`<${App} />`, root);

"use strict";
// The office's wall screen. It logs in with a device token the office issues (kept in localStorage,
// so a reboot does not lose it) or, for a person, with a username and password (this tab only).
// It says 实时 live only while its event stream is open; a refused token shows why and asks for a new one.
const api = "/api/v1";
const DEVICE_KEY = "linli-wall-token";
const $ = (id) => document.getElementById(id);
const yuan = (fen) => (fen / 100).toLocaleString("zh-CN", {minimumFractionDigits: 2, maximumFractionDigits: 2});

let token = localStorage.getItem(DEVICE_KEY) || sessionStorage.getItem("linli-token");
let byDevice = Boolean(localStorage.getItem(DEVICE_KEY));

function counter(label, value) {
  const div = document.createElement("div");
  div.className = "counter";
  const b = document.createElement("b");
  b.textContent = value;
  div.append(b, label);
  return div;
}
function fill(id, items) { $(id).replaceChildren(...items); }
function line(text, cls) { const li = document.createElement("li"); li.textContent = text; if (cls) li.className = cls; return li; }
function unavailable(id) { fill(id, [line("暂不可用 unavailable", "unavailable")]); }

// -- the community's time zone (GET /dashboard/summary's `timezone`), never the screen's or UTC ------------
let zone = "Asia/Shanghai";
const inZone = (options) => new Intl.DateTimeFormat("zh-CN", {timeZone: zone, hour12: false, ...options});
const clockTime = (iso) => inZone({hour: "2-digit", minute: "2-digit", second: "2-digit"}).format(new Date(iso));
const localDay = (date) => new Intl.DateTimeFormat("en-CA", {timeZone: zone}).format(date);  // YYYY-MM-DD
function tick() {
  $("clock").textContent = inZone({month: "long", day: "numeric", weekday: "short", hour: "2-digit",
                                   minute: "2-digit"}).format(new Date());
}

// -- labels: categories by the community's words, zones and drives by name -----------------------------
let labels = {incident: {}, case: {}, goods: {}};
let zoneNames = {};
let driveNames = {};
async function loadCategories() {
  const answer = await fetch(api + "/categories");
  if (!answer.ok) { return; }  // the codes stay readable until the next try
  const all = await answer.json();
  labels = Object.fromEntries(Object.entries(all).map(([kind, list]) =>
    [kind, Object.fromEntries(list.map((c) => [c.code, `${c.label_zh} ${c.label_en}`]))]));
}
const label = (kind, code) => (labels[kind] || {})[code] || code;

// -- the figures ------------------------------------------------------------------------------------------
const SEVERITY = {high: "高 high", medium: "中 medium", low: "低 low"};

// A running drive first; a test drive, one not yet started and a closed (or ended) one apart.
function driveState(c, today) {
  if (c.test) { return "测试 test"; }
  if (c.status !== "open" || c.ends_on < today) { return "已结束 closed"; }
  if (c.starts_on > today) { return "未开始 not started"; }
  return null;
}

async function loadSummary() {
  let answer;
  try {
    answer = await fetch(api + "/dashboard/summary", {headers: {Authorization: "Bearer " + token}});
  } catch {
    offline("无法连接服务器 cannot reach the server");
    return false;
  }
  if (answer.status === 401 || answer.status === 403) {
    const body = await answer.json().catch(() => ({}));
    refused(body.error || {});
    return false;
  }
  if (!answer.ok) { offline(`服务器忙 the server is busy (${answer.status})`); return false; }
  const s = await answer.json();
  zone = s.timezone || zone;
  tick();
  if (s.patrol.available) {
    zoneNames = Object.fromEntries(s.patrol.zones.map((z) => [z.zone_id, z.name]));
    fill("patrol-counters", [counter("今日巡逻 patrols today", s.patrol.patrols_today),
                             counter("未覆盖片区 zones uncovered", s.patrol.zones_uncovered)]);
    fill("zones", s.patrol.zones.map((z) => line(
      `${z.name}: ${z.covered ? "已覆盖 covered" : "未覆盖 uncovered"} · 今日 today ${s.patrol.patrols_today_by_zone[z.zone_id] || 0}`,
      z.covered ? "covered" : "uncovered")));
    const sev = s.patrol.open_incidents_by_severity;
    fill("incident-counters", ["high", "medium", "low"].map((k) => counter(SEVERITY[k], sev[k])));
  } else { unavailable("patrol-counters"); unavailable("zones"); unavailable("incident-counters"); }
  if (s.welfare.available) {
    const st = s.welfare.open_cases_by_status;
    fill("case-counters", [counter("待确认 draft", st.draft), counter("新开 open", st.open),
                           counter("进行中 in progress", st.in_progress), counter("待回访 follow-ups due", s.welfare.followups_overdue)]);
    fill("categories", Object.entries(s.welfare.open_cases_by_category).map(([c, n]) => line(`${label("case", c)}: ${n}`)));
  } else { unavailable("case-counters"); unavailable("categories"); }
  if (s.donations.available) {
    const today = localDay(new Date());
    driveNames = Object.fromEntries(s.donations.campaigns.map((c) => [c.id, c.name]));
    const running = s.donations.campaigns.filter((c) => !driveState(c, today));
    const others = s.donations.campaigns.filter((c) => driveState(c, today));
    fill("campaigns", running.length ? running.map((c) => {
      const li = line(`${c.name} · ¥${yuan(c.totals.cash_fen)} / ¥${yuan(c.goal_fen)} · ${c.totals.donations} 笔 donations` +
        (Object.keys(c.totals.items).length ? " · " + Object.entries(c.totals.items).map(([k, v]) => `${label("goods", k)} ${v}`).join(", ") : ""));
      const bar = document.createElement("div"); bar.className = "bar";
      const span = document.createElement("span"); span.style.width = Math.min(100, c.progress_percent) + "%";
      bar.append(span); li.append(bar); return li;
    }) : [line("目前没有进行中的募捐 no drive running now", "unavailable")]);
    $("other-campaigns-heading").hidden = others.length === 0;
    fill("other-campaigns", others.slice(0, 8).map((c) => line(
      `${driveState(c, today)} · ${c.name} · ¥${yuan(c.totals.cash_fen)} · ${c.starts_on} – ${c.ends_on}`)));
  } else { unavailable("campaigns"); fill("other-campaigns", []); }
  // This month's activity sessions and volunteer hours (an older gateway sends no `volunteers`: unavailable).
  if (s.volunteers && s.volunteers.available) {
    const v = s.volunteers;
    const hours = (minutes) => (minutes / 60).toFixed(1);
    $("volunteers-month").textContent = v.month;
    fill("volunteer-counters", [counter("本月活动 sessions", v.sessions), counter("参与人次 participants", v.participants),
                                counter("服务小时 service hours", hours(v.minutes))]);
    const by = v.minutes_by_source || {};
    fill("service-sources", [line(`巡逻 patrols ${hours(by.patrol || 0)} · 文体活动 group sessions ${hours(by.session || 0)}` +
                                  ` · 其他 other ${hours(by.other || 0)} 小时 hours`)]);
  } else { $("volunteers-month").textContent = ""; unavailable("volunteer-counters"); fill("service-sources", []); }
  $("updated").textContent = `更新于 updated ${clockTime(s.generated_at)} · 时区 time zone ${zone}`;
  return true;
}

// -- the feed, in words ------------------------------------------------------------------------------------
const drive = (d) => driveNames[d.campaign_id] || "";
const zoneOf = (d) => zoneNames[d.zone_id] || "";
const goodsList = (items) => (items || []).map((i) => `${label("goods", i.category)} ${i.quantity}`).join(", ");
const join = (...parts) => parts.filter((p) => p !== undefined && p !== null && p !== "").join(" · ");
const SAID = {
  donation_received: (d) => d.amount_fen ? join(`收到捐款 Gift ¥${yuan(d.amount_fen)}`, drive(d))
                                          : join(`收到物资 Goods ${goodsList(d.items)}`, drive(d)),
  donation_voided: (d) => join("捐赠作废 Gift voided", d.amount_fen ? `¥${yuan(d.amount_fen)}` : goodsList(d.items), drive(d)),
  items_dispatched: (d) => join(`送出物资 Goods sent ${goodsList(d.items)}`,
                                d.to === "case" ? "给困难家庭 to a household in need" : "给安置点 to a place", drive(d)),
  campaign_created: (d) => join("新募捐 New drive", d.goal_fen ? `目标 goal ¥${yuan(d.goal_fen)}` : "", drive(d)),
  campaign_updated: (d) => join("募捐已修改 Drive changed", drive(d)),
  campaign_closed: (d) => join("募捐结束 Drive closed", drive(d)),
  goal_reached: (d) => join("达成目标 Goal reached", d.cash_fen ? `¥${yuan(d.cash_fen)}` : "", drive(d)),
  patrol_started: (d) => join("巡逻开始 Patrol started", zoneOf(d)),
  patrol_finished: (d) => join(d.closed_automatically ? "巡逻自动结束 Patrol closed automatically"
                                                     : "巡逻结束 Patrol finished", zoneOf(d)),
  patrol_corrected: (d) => join("巡逻时间已更正 Patrol times corrected", zoneOf(d)),
  incident_reported: (d) => join("上报问题 Incident reported", label("incident", d.category), SEVERITY[d.severity], d.compound),
  incident_acknowledged: (d) => join("问题已确认 Incident acknowledged", label("incident", d.category), d.compound),
  incident_escalated: (d) => join("问题升级 Incident escalated", d.minutes_unacknowledged ? `${d.minutes_unacknowledged} 分钟未确认 min unacknowledged` : "", d.compound),
  incident_resolved: (d) => join("问题已解决 Incident resolved", label("incident", d.category), d.compound),
  zone_created: (d) => join("新片区 Zone created", zoneOf(d)),
  team_assigned: (d) => join("巡逻队已安排 Team assigned", zoneOf(d)),
  zone_uncovered: (d) => join("片区久未巡逻 Zone not patrolled", zoneOf(d), d.days ? `${d.days} 天 days` : ""),
  case_opened: (d) => join("新帮扶个案 Case opened", (d.categories || []).map((c) => label("case", c)).join(", "), d.compound),
  case_drafted: (d) => join("巡逻发现困难 Hardship found on patrol", d.compound),
  case_dismissed: (d) => join("草稿个案已驳回 Draft case dismissed", d.compound),
  case_assigned: (d) => join("个案已分配 Case assigned", d.compound),
  visit_logged: (d) => join("已走访 Visit logged", d.compound),
  referral_updated: (d) => join("转介进展 Referral updated", d.referral_status || d.status),
  case_closed: (d) => join("个案结案 Case closed", d.compound),
  case_reopened: (d) => join("个案重开 Case reopened", d.compound),
  followup_overdue: (d) => join("待回访 Follow-up due", d.days ? `${d.days} 天未走访 days since a visit` : ""),
  referral_overdue: () => "转介逾期 Referral past its deadline",
  group_created: () => "新文体队伍 Activity group formed",
  session_held: (d) => join("文体活动 Group session held", d.participants !== undefined ? `${d.participants} 人参与 took part` : ""),
  service_recorded: (d) => join("志愿服务已记录 Service recorded", d.minutes ? `${(d.minutes / 60).toFixed(1)} 小时 hours` : ""),
  member_registered: () => "新成员 Member registered",
  member_updated: () => "成员资料更新 Member updated",
  alert_created: () => "已发提醒 Alert sent",
  category_added: (d, kind) => join("新类别 Category added", label(kind, d.code)),
  category_retired: (d, kind) => join("类别停用 Category retired", label(kind, d.code)),
};
const KIND_OF_SOURCE = {patrol: "incident", welfare: "case", donations: "goods"};
function said(e) {
  const say = SAID[e.type];
  return say ? say(e.data || {}, KIND_OF_SOURCE[e.source]) : e.type.replace(/_/g, " ");
}

// -- live, reconnecting, or offline and why ------------------------------------------------------------------
let source = null;
let refresh = null;
let retry = null;
function pill(text, cls) { $("status").textContent = text; $("status").className = cls; }
function offline(why) {
  pill("离线 offline", "offline");
  // Said on the board too (a wall has no mouse to hover over the pill); the figures below may be old.
  $("trouble").hidden = !why || !token;
  $("trouble").textContent = `离线 Offline: ${why}。数字可能不是最新的，每 5 秒重试。The figures may be out of date; retrying every 5 s.`;
  clearTimeout(retry);
  retry = setTimeout(() => { if (token) { connect(); } }, 5000);
}

const REASONS = {
  revoked: "此大屏的令牌已被撤销 This screen's token was revoked.",
  expired: "此大屏的令牌已过期 This screen's token has expired.",
};
// The token is refused: say why, forget it, and ask for a new one. Only the sign-in shows.
function refused(error) {
  const reason = (error.details || {}).reason;
  const why = REASONS[reason] || (byDevice ? "此大屏的令牌无效 This screen's token is not valid."
                                           : "登录已失效 Your login has ended.");
  showSignIn(`${why} ${byDevice ? "请向办公室索取新令牌并粘贴在下面 Ask the office for a new one and paste it below."
                                 : "请重新登录 Please log in again."}`);
}

function showSignIn(notice) {
  if (source) { source.close(); source = null; }
  clearTimeout(retry);
  token = null;
  localStorage.removeItem(DEVICE_KEY);
  sessionStorage.removeItem("linli-token");
  pill("离线 offline", "offline");
  $("trouble").hidden = true;
  $("board").hidden = true;
  $("signin").hidden = false;
  $("notice").hidden = !notice;
  $("notice").textContent = notice || "";
}

function connectFeed() {
  if (source) { source.close(); }
  const stream = new EventSource(api + "/events/stream?access_token=" + encodeURIComponent(token));
  source = stream;
  stream.onopen = () => { clearTimeout(retry); pill("实时 live", "live"); $("trouble").hidden = true; };
  stream.onerror = () => {
    if (source !== stream) { return; }
    // Not live any more: the browser tries again by itself; the summary says whether the token still holds.
    pill("离线 offline · 重新连接中… reconnecting…", "offline");
    if (stream.readyState === EventSource.CLOSED) { source = null; }
    clearTimeout(refresh);
    refresh = setTimeout(async () => {
      if (await loadSummary() && !source) { offline("实时动态中断 the live feed stopped"); }
    }, 1000);
  };
  // The server ends a stream whose token was revoked or expired, saying why first.
  stream.addEventListener("closed", (message) => {
    stream.close(); source = null;
    refused({details: JSON.parse(message.data)});
  });
  stream.addEventListener("event", (message) => {
    const e = JSON.parse(message.data);
    if (e.type === "category_added" || e.type === "category_retired") { loadCategories(); }
    const li = line(" " + said(e));
    const at = document.createElement("time");
    at.dateTime = e.occurred_at; at.textContent = clockTime(e.occurred_at);
    li.prepend(at);
    $("feed").prepend(li);
    while ($("feed").children.length > 50) { $("feed").lastChild.remove(); }
    clearTimeout(refresh); refresh = setTimeout(loadSummary, 300);
  });
}

// The office's own people open `/` to work: their workspace is /app/ (the wall stays at /dashboard).
function isOffice() {
  try { return JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).roles.includes("admin"); }
  catch { return false; }
}

async function connect() {
  if (location.pathname === "/" && isOffice()) { location.replace("/app/"); return; }
  await loadCategories().catch(() => {});
  if (!(await loadSummary())) { return; }
  $("signin").hidden = true; $("board").hidden = false;
  connectFeed();
}

$("device-login").addEventListener("submit", (event) => {
  event.preventDefault();
  const pasted = $("device-token").value.trim();
  if (!pasted) { $("device-error").textContent = "请粘贴令牌 Paste the token."; return; }
  token = pasted; byDevice = true;
  localStorage.setItem(DEVICE_KEY, token);
  $("device-token").value = ""; $("device-error").textContent = "";
  connect();
});
$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const answer = await fetch(api + "/auth/token", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({username: $("username").value, password: $("password").value})});
  const body = await answer.json();
  if (!answer.ok) { $("login-error").textContent = body.error.message; return; }
  token = body.access_token; byDevice = false;
  sessionStorage.setItem("linli-token", token); $("login-error").textContent = "";
  connect();
});

tick();
setInterval(tick, 15000);
setInterval(() => { if (token && !$("board").hidden) { loadSummary(); } }, 60000);
if (token) { connect(); } else { showSignIn(""); }

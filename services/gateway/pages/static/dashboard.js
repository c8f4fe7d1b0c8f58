"use strict";
const api = "/api/v1";
let token = sessionStorage.getItem("linli-token");
const $ = (id) => document.getElementById(id);
const yuan = (fen) => (fen / 100).toLocaleString("zh-CN", {minimumFractionDigits: 2});

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

// Each kind's categories by code (incident, case, goods): the wall shows their labels, never a code.
let labels = {incident: {}, case: {}, goods: {}};
const KIND_OF_SOURCE = {patrol: "incident", welfare: "case", donations: "goods"};
async function loadCategories() {
  const answer = await fetch(api + "/categories", {headers: {Authorization: "Bearer " + token}});
  if (!answer.ok) { return; }  // the codes stay readable until the next try
  const all = await answer.json();
  labels = Object.fromEntries(Object.entries(all).map(([kind, list]) =>
    [kind, Object.fromEntries(list.map((c) => [c.code, `${c.label_zh} ${c.label_en}`]))]));
}
const label = (kind, code) => (labels[kind] || {})[code] || code;

async function loadSummary() {
  const answer = await fetch(api + "/dashboard/summary", {headers: {Authorization: "Bearer " + token}});
  if (answer.status === 401) { return showLogin(); }
  const s = await answer.json();
  if (s.patrol.available) {
    fill("patrol-counters", [counter("今日巡逻 patrols today", s.patrol.patrols_today),
                             counter("未覆盖片区 zones uncovered", s.patrol.zones_uncovered)]);
    fill("zones", s.patrol.zones.map((z) => line(
      `${z.name}: ${z.covered ? "已覆盖 covered" : "未覆盖 uncovered"} · 今日 ${s.patrol.patrols_today_by_zone[z.zone_id] || 0}`,
      z.covered ? "covered" : "uncovered")));
    const sev = s.patrol.open_incidents_by_severity;
    fill("incident-counters", [counter("高 high", sev.high), counter("中 medium", sev.medium), counter("低 low", sev.low)]);
  } else { unavailable("patrol-counters"); unavailable("zones"); unavailable("incident-counters"); }
  if (s.welfare.available) {
    const st = s.welfare.open_cases_by_status;
    fill("case-counters", [counter("待确认 draft", st.draft), counter("新开 open", st.open),
                           counter("进行中 in progress", st.in_progress), counter("待回访 follow-ups due", s.welfare.followups_overdue)]);
    fill("categories", Object.entries(s.welfare.open_cases_by_category).map(([c, n]) => line(`${label("case", c)}: ${n}`)));
  } else { unavailable("case-counters"); unavailable("categories"); }
  if (s.donations.available) {
    fill("campaigns", s.donations.campaigns.map((c) => {
      const li = line(`${c.name} · ¥${yuan(c.totals.cash_fen)} / ¥${yuan(c.goal_fen)} · ${c.totals.donations} 笔 donations · ` +
        Object.entries(c.totals.items).map(([k, v]) => `${label("goods", k)} ${v}`).join(", "));
      const bar = document.createElement("div"); bar.className = "bar";
      const span = document.createElement("span"); span.style.width = Math.min(100, c.progress_percent) + "%";
      bar.append(span); li.append(bar); return li;
    }));
  } else { unavailable("campaigns"); }
}

let refresh = null;
function connectFeed() {
  const status = $("status");
  const source = new EventSource(api + "/events/stream?access_token=" + encodeURIComponent(token));
  source.onopen = () => { status.textContent = "实时 live"; status.className = "live"; };
  source.onerror = () => { status.textContent = "重新连接中… reconnecting…"; status.className = "reconnecting"; };
  source.addEventListener("event", (message) => {
    const e = JSON.parse(message.data);
    if (e.type === "category_added" || e.type === "category_retired") { loadCategories(); }
    const kind = KIND_OF_SOURCE[e.source];
    const shown = (k, v) => k === "category" ? label(kind, v)
      : k === "categories" && Array.isArray(v) ? v.map((c) => label(kind, c)).join(", ")
      : k === "items" && Array.isArray(v) ? v.map((i) => `${label(kind, i.category)} ${i.quantity}`).join(", ")
      : typeof v === "object" ? JSON.stringify(v) : v;
    const fields = Object.entries(e.data).filter(([k]) => !k.endsWith("_id") && !k.endsWith("_ids"))
      .map(([k, v]) => `${k}=${shown(k, v)}`).join(" ");
    $("feed").prepend(line(`${e.occurred_at.slice(11, 19)}  ${e.source}.${e.type}  ${fields}`));
    while ($("feed").children.length > 50) { $("feed").lastChild.remove(); }
    clearTimeout(refresh); refresh = setTimeout(loadSummary, 300);
  });
}

function showLogin() { sessionStorage.removeItem("linli-token"); $("board").hidden = true; $("login").hidden = false; }
// The office's own people open `/` to work: their workspace is /app/ (the wall stays at /dashboard).
function isOffice() {
  try { return JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).roles.includes("admin"); }
  catch { return false; }
}
async function start() {
  if (location.pathname === "/" && isOffice()) { location.replace("/app/"); return; }
  $("login").hidden = true; $("board").hidden = false;
  await loadCategories(); await loadSummary(); connectFeed();
}

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const answer = await fetch(api + "/auth/token", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({username: $("username").value, password: $("password").value})});
  const body = await answer.json();
  if (!answer.ok) { $("login-error").textContent = body.error.message; return; }
  token = body.access_token; sessionStorage.setItem("linli-token", token); start();
});
if (token) { start(); } else { showLogin(); }

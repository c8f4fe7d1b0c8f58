// 提醒 Alerts: one's alerts, newest first, unread marked; new ones arrive live (an
// EventSource on /me/alerts/stream, which takes the token as ?access_token= since
// an EventSource sends no headers); the page says when it is not live and
// reconnects by itself. Each alert links to what it is about, and is acknowledged
// here. Its message is the API's own words: the page never composes one.
import { useEffect, useRef, useState } from "/static/vendor/htm-preact.module.js";
import { api, session } from "./api.js";
import { send } from "./pending.js";
import { html, Guarded, Problem, when } from "./ui.js";

const PAGE_SIZE = 50;
const RETRY_MS = 5000; // after the browser gave up on the stream (a refusal, not a drop)

/** Where an alert's `ref` leads: a case of mine, or an incident (the patrol pages). */
function target(ref) {
  if (!ref || !ref.id) return null;
  const id = encodeURIComponent(ref.id);
  if (ref.type === "case") return ["#/mine/" + id, "查看个案 Open case"];
  if (ref.type === "incident") return ["#/incidents/" + id, "查看事件 Open incident"];
  return null;
}

/** The live stream: `onAlert(alert)` for each new one; `onLive(bool)` as it connects and drops. */
function useAlertStream(onAlert, onLive) {
  useEffect(() => {
    let source = null;
    let timer = null;
    let stopped = false;
    const connect = () => {
      if (stopped || !session.token) return;
      source = new EventSource("/api/v1/me/alerts/stream?access_token=" + encodeURIComponent(session.token));
      source.onopen = () => onLive(true);
      source.onerror = () => {
        onLive(false);
        // A dropped connection is retried by the browser (with Last-Event-ID); a refused one
        // (429: too many streams, a restart) is closed for good: start a new one ourselves.
        if (source.readyState === EventSource.CLOSED) {
          source.close();
          timer = setTimeout(connect, RETRY_MS);
        }
      };
      source.addEventListener("alert", (message) => {
        try { onAlert(JSON.parse(message.data)); } catch { /* not an alert: ignore */ }
      });
    };
    connect();
    return () => { stopped = true; clearTimeout(timer); if (source) source.close(); };
  }, []);
}

function AlertItem({ alert, onAck, chosen }) {
  const item = useRef(null);
  // Opened from a link to this alert (a webhook's message, #/alerts/<id>): shown, in sight.
  useEffect(() => { if (chosen) item.current?.scrollIntoView({ block: "center" }); }, [chosen]);
  const [problem, setProblem] = useState(null);
  const [busy, setBusy] = useState(false);
  const [kept, setKept] = useState(false);
  const unread = !alert.acked_at;
  const link = target(alert.ref);
  const ack = async () => {
    setBusy(true); setProblem(null);
    try {
      const answer = await send("POST", `/me/alerts/${encodeURIComponent(alert.id)}/ack`, undefined,
                                "确认提醒 Acknowledge alert");
      if (answer.pending) setKept(true);
      onAck(answer.pending ? { ...alert, acked_at: new Date().toISOString() } : answer);
    } catch (error) {
      setProblem(error);
    } finally {
      setBusy(false);
    }
  };
  return html`<li ref=${item} class=${"alert-item" + (unread ? " unread" : "") + (chosen ? " chosen" : "")}
    aria-current=${chosen ? "true" : undefined}>
    <p class="alert-head">${unread && html`<span class="tag unread-tag">未读 Unread</span>`}
      <span class="muted">${when(alert.created_at)}</span></p>
    <p class="alert-message">${alert.message}</p>
    ${kept && html`<p class="muted">网络不通：确认已存在手机上，稍后发送。No network: the acknowledgement is kept and sent
      later.</p>`}
    <${Problem} error=${problem} />
    <div class="alert-actions">
      ${link && html`<a class="big-link" href=${link[0]}>${link[1]}</a>`}
      ${unread && html`<button type="button" class="big" disabled=${busy} onClick=${ack}>知道了 Acknowledge</button>`}
    </div>
  </li>`;
}

function Alerts({ args }) {
  const chosen = args && args[0];
  const [alerts, setAlerts] = useState(null);
  const [cursor, setCursor] = useState(null);
  const [problem, setProblem] = useState(null);
  const [live, setLive] = useState(null); // null: connecting for the first time
  const [paged, setPaged] = useState(false); // "More" was pressed: a reload keeps its cursor
  const load = (after) => api("GET", "/me/alerts", { query: { limit: PAGE_SIZE, cursor: after } }).then((page) => {
    setProblem(null);
    setAlerts((old) => merge(old || [], page.items));
    if (after) setPaged(true);
    if (after || !paged) setCursor(page.next_cursor);
  }, setProblem);
  useEffect(() => { load(); }, []);
  useAlertStream(
    (alert) => setAlerts((old) => merge(old || [], [alert])),
    (on) => { setLive(on); if (on) load(); }, // (re)connected: fetch what came meanwhile
  );
  const replace = (changed) => setAlerts((old) => old.map((a) => (a.id === changed.id ? changed : a)));
  const unread = (alerts || []).filter((a) => !a.acked_at).length;
  return html`<div class="mine-page">
    <h1>提醒 Alerts</h1>
    <p class=${"live-state " + (live ? "is-live" : "not-live")} role="status">${
      live ? "● 实时 Live: new alerts appear here by themselves."
      : live === null ? "○ 正在连接… Connecting…"
      : "○ 未连接，正在重连… Not live: reconnecting… (new alerts show once it is back)"}</p>
    <${Problem} error=${problem} />
    ${alerts === null && !problem && html`<p class="loading">正在加载 Loading…</p>`}
    ${alerts && html`<p class="muted">${unread} 条未读 unread · 共 ${alerts.length} 条 shown</p>`}
    ${alerts && alerts.length === 0 && html`<p class="muted">没有提醒。No alerts.</p>`}
    ${alerts && alerts.length > 0 && html`<ul class="alert-list" aria-label="提醒 Alerts">
      ${alerts.map((a) => html`<${AlertItem} key=${a.id} alert=${a} onAck=${replace}
        chosen=${a.id === chosen} />`)}</ul>`}
    ${cursor && html`<p><button type="button" class="big" onClick=${() => load(cursor)}>更多 More</button></p>`}</div>`;
}

/** Alerts by id, newest first: what is shown already, with `fresh` added or updated. */
function merge(old, fresh) {
  const byId = new Map(old.map((a) => [a.id, a]));
  for (const alert of fresh) byId.set(alert.id, { ...byId.get(alert.id), ...alert });
  return [...byId.values()].sort((a, b) => (b.created_at || "").localeCompare(a.created_at || ""));
}

export function AlertsPage(props) {
  return html`<${Guarded}><${Alerts} ...${props} /><//>`;
}

// Records made in the field that could not reach Linli (one bar of signal in a
// stairwell): kept in this browser with their Idempotency-Key and sent again by
// themselves when the network is back (and every 30 s), each counting once
// however often it is tried. Kept per account: another person logging in on
// the same phone never sends them.
import { html, useEffect, useState } from "/static/vendor/htm-preact.module.js";
import { api, ApiError, newKey, session } from "./api.js";

const STORE = "linli-pending";
const RETRY_MS = 30_000;
const NETWORK_RETRIES = 1;
const listeners = new Set();

function read() {
  try { return JSON.parse(localStorage.getItem(STORE)) || []; } catch { return []; }
}
function write(items) {
  localStorage.setItem(STORE, JSON.stringify(items));
  listeners.forEach((fn) => fn(items));
}
const mine = (items) => items.filter((item) => item.owner === session.claims().sub);
const offline = (error) => error instanceof ApiError && error.status === 0;

/**
 * Record something (`what` says it in words: "走访 Visit"): the API's answer, or
 * `{pending: true}` when the network is down — then it is kept and sent later
 * with the same key. A refusal (400, 409 ...) is thrown, as `api` does.
 */
export async function send(method, path, body, what) {
  const key = newKey();
  try {
    // One more try after 2 s, then kept: in a stairwell, waiting longer helps no one.
    return await api(method, path, { body, key, networkRetries: NETWORK_RETRIES });
  } catch (error) {
    if (!offline(error)) throw error;
    write([...read(), { method, path, body, key, what, owner: session.claims().sub,
                        at: new Date().toISOString(), refused: null }]);
    return { pending: true };
  }
}

let sending = false;
/** Send what is waiting, oldest first; stop at the first that still finds no network. */
export async function sendWaiting() {
  if (sending || !session.token) return;
  sending = true;
  try {
    for (const item of mine(read()).filter((i) => !i.refused)) {
      try {
        await api(item.method, item.path, { body: item.body, key: item.key, networkRetries: NETWORK_RETRIES });
        write(read().filter((i) => i.key !== item.key));
      } catch (error) {
        if (offline(error) || !session.token) break;
        // Refused now (the case was closed meanwhile ...): kept, with why, until the person has read it.
        write(read().map((i) => (i.key === item.key ? { ...i, refused: error.message } : i)));
      }
    }
  } finally {
    sending = false;
  }
}

/** The bar that says what is waiting to be sent, and what was refused. */
export function PendingSends() {
  const [items, setItems] = useState(() => mine(read()));
  useEffect(() => {
    const fn = (all) => setItems(mine(all));
    listeners.add(fn);
    const timer = setInterval(sendWaiting, RETRY_MS);
    addEventListener("online", sendWaiting);
    sendWaiting();
    return () => { listeners.delete(fn); clearInterval(timer); removeEventListener("online", sendWaiting); };
  }, []);
  if (!items.length) return null;
  const waiting = items.filter((i) => !i.refused);
  const refused = items.filter((i) => i.refused);
  const drop = (key) => write(read().filter((i) => i.key !== key));
  return html`<div class="no-print pending">
    ${waiting.length > 0 && html`<div class="notice busy" role="status">
      ${waiting.length} 条记录待发送（网络恢复后自动发送，不会重复）。
      ${waiting.length} waiting to be sent: they go by themselves when the network is back, once each.
      <ul class="plain">${waiting.map((i) => html`<li key=${i.key}>${i.what}</li>`)}</ul>
      <button type="button" onClick=${sendWaiting}>现在重试 Send now</button></div>`}
    ${refused.map((i) => html`<div class="notice bad" role="alert" key=${i.key}>
      未能登记 Not recorded: ${i.what} — ${i.refused}
      <button type="button" onClick=${() => drop(i.key)}>知道了 Dismiss</button></div>`)}
  </div>`;
}

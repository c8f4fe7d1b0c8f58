// The one way the pages talk to Linli: the public API at /api/v1, with the
// token kept in this tab's sessionStorage (never a cookie another site's page
// could make the browser send, never the address bar).
const TOKEN_KEY = "linli-token";
const BUSY_RETRIES = 5;
const listeners = new Set();

export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  start(token) { sessionStorage.setItem(TOKEN_KEY, token); listeners.forEach((fn) => fn()); },
  end() { sessionStorage.removeItem(TOKEN_KEY); listeners.forEach((fn) => fn()); },
  onChange(fn) { listeners.add(fn); return () => listeners.delete(fn); },
  /** The token's claims (`sub`, `roles`), for showing the right pages; the gateway decides. */
  claims() {
    try { return JSON.parse(atob(this.token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))) || {}; }
    catch { return {}; }
  },
  roles() { return this.claims().roles || []; },
};

/** An answer that was not a success, in words: `message` for a person, `fields` by field name. */
export class ApiError extends Error {
  constructor(status, error) {
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code;
    this.details = error.details || {};
    this.fields = this.details.fields || {};
  }
}

/** A new Idempotency-Key: one per thing a person records, reused on every retry of it. */
export function newKey() { return crypto.randomUUID(); }

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
let busyListener = () => {};
/** `fn(seconds)` while a request waits to be retried, `fn(0)` when it is done. */
export function onBusy(fn) { busyListener = fn; }

/**
 * `api("POST", "/campaigns/x/donations", {body, key})` -> the JSON answer, or throws ApiError.
 * A 503 (the office is busy, or a service restarts) is retried after its Retry-After when that
 * is safe: a read, or a write sent with its Idempotency-Key, which then counts once whatever
 * happened to the first try. So is a write whose answer was lost on the network (up to
 * `networkRetries` times: pending.js keeps a field record sooner, and sends it later).
 */
export async function api(method, path, { body, query, key, raw = false, networkRetries = BUSY_RETRIES } = {}) {
  const url = new URL("/api/v1" + path, location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  const headers = {};
  if (session.token) headers.Authorization = "Bearer " + session.token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (key) headers["Idempotency-Key"] = key;
  const retryable = method === "GET" || Boolean(key);
  for (let attempt = 0; ; attempt += 1) {
    let answer;
    try {
      answer = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch {
      if (retryable && attempt < networkRetries) { busyListener(2); await sleep(2000); continue; }
      busyListener(0);
      throw new ApiError(0, { code: "network", message: "网络不通，请稍后再试。The network is down: try again." });
    }
    if (answer.status === 503 && retryable && attempt < BUSY_RETRIES) {
      const wait = Math.min(30, Number(answer.headers.get("Retry-After")) || 1);
      busyListener(wait);
      await sleep(wait * 1000);
      continue;
    }
    busyListener(0);
    if (answer.status === 401 && path !== "/auth/token") {
      session.end();
      throw new ApiError(401, { message: "请重新登录。Please log in again." });
    }
    if (raw && answer.ok) return answer;
    const text = await answer.text();
    let payload = null;
    try { payload = text ? JSON.parse(text) : null; } catch { payload = null; }
    if (!answer.ok) {
      throw new ApiError(answer.status, (payload && payload.error) || { message: `HTTP ${answer.status}` });
    }
    return payload;
  }
}

/** Every item of a paginated list (the API's `next_cursor`), up to `max`. */
export async function all(path, query = {}, max = 2000) {
  const items = [];
  let cursor;
  do {
    const page = await api("GET", path, { query: { ...query, limit: 200, cursor } });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return items;
}

/** Download an export (`?format=csv|xlsx`) with the token, as a file the browser saves. */
export async function download(path, query) {
  const answer = await api("GET", path, { query, raw: true });
  const disposition = answer.headers.get("Content-Disposition") || "";
  const name = (/filename\*=UTF-8''([^;]+)/.exec(disposition) || [])[1];
  const plain = (/filename="?([^";]+)"?/.exec(disposition) || [])[1];
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await answer.blob());
  link.download = name ? decodeURIComponent(name) : plain || "export";
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

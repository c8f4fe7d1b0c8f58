// The pieces every page is made of: labelled fields whose errors stand next to
// them, buttons that say what they do, and the community's words for codes.
import { html, useEffect, useRef, useState, useCallback, useErrorBoundary } from "/static/vendor/htm-preact.module.js";
import { api, ApiError } from "./api.js";

export { html };

let fieldCount = 0;
const nextId = () => `f${++fieldCount}`;

/** `<${Field} label="金额 Amount" name="amount" value=... onInput=... error=${errors.amount} />` */
export function Field({ label, name, type = "text", value, onInput, error, hint, ...rest }) {
  const [id] = useState(nextId);
  const errors = messagesOf(error);
  return html`<label class="field" for=${id}>${label}
    ${type === "textarea"
      ? html`<textarea id=${id} name=${name} value=${value ?? ""} aria-invalid=${errors.length > 0}
          aria-describedby=${errors.length ? id + "-e" : undefined}
          onInput=${(e) => onInput && onInput(e.currentTarget.value)} ...${rest}></textarea>`
      : html`<input id=${id} name=${name} type=${type} value=${value ?? ""} aria-invalid=${errors.length > 0}
          aria-describedby=${errors.length ? id + "-e" : undefined}
          onInput=${(e) => onInput && onInput(type === "checkbox" ? e.currentTarget.checked : e.currentTarget.value)}
          ...${rest} />`}
    ${hint && html`<span class="muted">${hint}</span>`}
    ${errors.length > 0 && html`<span class="error" id=${id + "-e"} role="alert">${errors.join(" ")}</span>`}
  </label>`;
}

/** A labelled `<select>`; `options` are `[value, text]` pairs. */
export function Select({ label, name, value, onInput, options, error, blank, ...rest }) {
  const [id] = useState(nextId);
  const errors = messagesOf(error);
  return html`<label class="field" for=${id}>${label}
    <select id=${id} name=${name} value=${value ?? ""} aria-invalid=${errors.length > 0}
        onChange=${(e) => onInput && onInput(e.currentTarget.value)} ...${rest}>
      ${blank !== undefined && html`<option value="">${blank}</option>`}
      ${options.map(([v, text]) => html`<option value=${v} selected=${v === value}>${text}</option>`)}
    </select>
    ${errors.length > 0 && html`<span class="error" role="alert">${errors.join(" ")}</span>`}
  </label>`;
}

export function Check({ label, checked, onInput, ...rest }) {
  return html`<label class="check"><input type="checkbox" checked=${checked}
    onChange=${(e) => onInput(e.currentTarget.checked)} ...${rest} /> ${label}</label>`;
}

/** What went wrong, in words; field errors are shown by their fields, the rest here
 * (`shown`: the names of the fields the form shows its errors beside, not repeated here). */
export function Problem({ error, shown = [] }) {
  if (!error) return null;
  const fields = flatFields(error.fields || {}).filter(([name]) => !shown.includes(name));
  return html`<div class="notice bad" role="alert">${error.message}
    ${fields.length > 0 && html`<ul>${fields.map(([name, msgs]) => html`<li>${name}: ${msgs.join(" ")}</li>`)}</ul>`}
  </div>`;
}

/** The API's field errors as `[name, [messages]]` pairs; a nested list's are named by their path
 * (`{items: {0: {quantity: [...]}}}` -> `["items.0.quantity", [...]]`). */
export function flatFields(fields, prefix = "") {
  return Object.entries(fields).flatMap(([name, msgs]) => (
    msgs && typeof msgs === "object" && !Array.isArray(msgs)
      ? flatFields(msgs, prefix + name + ".") : [[prefix + name, [].concat(msgs)]]));
}

/** A field's messages as a list, also when they come per item (`{"0": ["..."]}`). */
export function messagesOf(error) {
  if (!error) return [];
  if (typeof error === "object" && !Array.isArray(error)) return flatFields(error).flatMap(([, m]) => m);
  return [].concat(error);
}

/** The errors of a nested field: `errorAt(form.errors, "people", 0, "name")`. */
export function errorAt(errors, ...path) {
  return path.reduce((at, name) => (at && typeof at === "object" ? at[name] : undefined), errors);
}

/** A page's body that fails while drawing shows what happened, never a blank page. */
export function Guarded({ children }) {
  const [error, reset] = useErrorBoundary((e) => console.warn(e));
  if (!error) return children;
  return html`<div class="notice bad" role="alert">此页出错了，请刷新重试。Something went wrong on this page:
    reload it and try again. <span class="muted">(${String(error.message || error)})</span>
    <p><button type="button" onClick=${reset}>重试 Try again</button></p></div>`;
}

export function Done({ children }) {
  return children ? html`<div class="notice good" role="status">${children}</div>` : null;
}

/**
 * A form's state: values, each field's errors from the API, the general problem,
 * and `submit(fn)` that runs `fn(values)` once at a time and keeps the API's
 * field errors by the fields they concern.
 */
export function useForm(initial) {
  const [values, setValues] = useState(initial);
  const [errors, setErrors] = useState({});
  const [problem, setProblem] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (name) => (value) => setValues((v) => ({ ...v, [name]: value }));
  const submit = async (fn) => {
    if (busy) return undefined;
    setBusy(true); setErrors({}); setProblem(null);
    try {
      return await fn(values);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      setErrors(error.fields);
      setProblem(error);
      return undefined;
    } finally {
      setBusy(false);
    }
  };
  return { values, setValues, set, errors, setErrors, problem, setProblem, busy, submit,
           reset: () => { setValues(initial); setErrors({}); setProblem(null); } };
}

/** `const [data, reload, error] = useLoad(() => api("GET", "/zones"), [deps])` */
export function useLoad(load, deps = []) {
  const [state, setState] = useState({ data: undefined, error: null, of: undefined });
  const latest = useRef(0);
  const of = JSON.stringify(deps);
  const reload = useCallback(() => {
    // Only the latest load counts: an older answer arriving late (last month's report after this month's)
    // must not overwrite what the page now shows.
    const call = ++latest.current;
    load().then((data) => call === latest.current && setState({ data, error: null, of }),
                (error) => call === latest.current && setState({ data: undefined, error, of }));
  }, deps);
  useEffect(reload, [reload]);
  // What was loaded for other deps is not shown as theirs (last month's figures under this month's
  // heading): nothing until this load answers. A reload for the same deps keeps showing the last answer.
  if (state.of !== of) return [undefined, reload, null];
  return [state.data, reload, state.error];
}

// -- the community's words ---------------------------------------------------------

let categories = null;
/** `{incident: [...], case: [...], goods: [...]}` from GET /categories, loaded once per page load. */
export async function loadCategories(force = false) {
  if (!categories || force) categories = await api("GET", "/categories");
  return categories;
}
/** "违章建筑 Illegal structure" for a code; the code itself only if the list does not know it. */
export function categoryLabel(kind, code) {
  const found = categories && (categories[kind] || []).find((c) => c.code === code);
  return found ? `${found.label_zh} ${found.label_en}` : code;
}
/** `[code, label]` pairs of a kind's categories a new record may use (not retired; all with `retired`, for filters). */
export function categoryOptions(kind, { retired = false } = {}) {
  return ((categories && categories[kind]) || []).filter((c) => retired || !c.retired)
    .map((c) => [c.code, `${c.label_zh} ${c.label_en}`]);
}

export const ROLE_LABELS = { admin: "管理员 Admin", member: "志愿者 Member", viewer: "大屏 Viewer" };

/** 12345 fen -> "123.45" */
export function yuan(fen) {
  if (fen === null || fen === undefined) return "";
  return (fen / 100).toLocaleString("zh-CN", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}
/** "123.45" (yuan, as typed) -> 12345 fen, or null when it is not an amount. */
export function toFen(text) {
  const clean = String(text).trim().replace(/[,，\s]/g, "");
  if (!/^\d+(\.\d{1,2})?$/.test(clean)) return null;
  const [whole, part = ""] = clean.split(".");
  return Number(whole) * 100 + Number((part + "00").slice(0, 2));
}
// -- the community's clock and calendar ----------------------------------------------
// Times and days are shown where the community lives (LINLI_TIMEZONE, which /app/
// is served with), whatever the computer's or the phone's own clock is set to.
const COMMUNITY_ZONE = document.querySelector('meta[name="linli-timezone"]')?.content || undefined;

/** An ISO time from the API (UTC, with or without its "Z") as a Date. */
const moment = (at) => (typeof at === "string" ? new Date(at.endsWith("Z") || at.includes("+") ? at : at + "Z") : at);

/** Intl's formatter in the community's zone; the browser's own if the zone is unknown to it. */
function inCommunity(locale, options) {
  try { return new Intl.DateTimeFormat(locale, { ...options, timeZone: COMMUNITY_ZONE }); }
  catch { return new Intl.DateTimeFormat(locale, options); }
}

/** An ISO time from the API, in the community's time, to the minute. */
export function when(iso) {
  if (!iso) return "";
  return inCommunity("zh-CN", { dateStyle: "short", timeStyle: "short" }).format(moment(iso));
}

/** A moment as a day of the community's calendar, "2026-05-20" (`at`: a Date or an ISO time; default now). */
export function communityDay(at = new Date()) {
  const parts = inCommunity("en-CA", { year: "numeric", month: "2-digit", day: "2-digit" }).formatToParts(moment(at));
  const part = (type) => parts.find((p) => p.type === type).value;
  return `${part("year")}-${part("month")}-${part("day")}`;
}
/** Today in the community's calendar, as an <input type=date> value. */
export const communityToday = () => communityDay();

/** The community's clock at a moment: {year, month, day, hour, minute} as numbers. */
function clockAt(at) {
  const parts = inCommunity("en-CA", { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
                                       minute: "2-digit", hourCycle: "h23" }).formatToParts(moment(at));
  const part = (type) => Number(parts.find((p) => p.type === type).value);
  return { year: part("year"), month: part("month"), day: part("day"), hour: part("hour"), minute: part("minute") };
}
const pad = (n) => String(n).padStart(2, "0");
/** An ISO time from the API as an <input type=datetime-local> value in the community's time. */
export function communityInput(iso) {
  if (!iso) return "";
  const c = clockAt(iso);
  return `${c.year}-${pad(c.month)}-${pad(c.day)}T${pad(c.hour)}:${pad(c.minute)}`;
}
/** An <input type=datetime-local> value, read as the community's time, as an ISO time in UTC (null if it is none). */
export function fromCommunityInput(value) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})$/.exec(value || "");
  if (!m) return null;
  const wanted = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
  // The zone's offset at a moment: what its clock reads then, less UTC's. Twice, for a change of offset between.
  const offset = (at) => { const c = clockAt(new Date(at));
    return Date.UTC(c.year, c.month - 1, c.day, c.hour, c.minute) - Math.floor(at / 60000) * 60000; };
  let at = wanted - offset(wanted);
  at = wanted - offset(at);
  return new Date(at).toISOString();
}
/** 270 minutes -> "4.5" hours, one decimal. */
export const hours = (minutes) => (minutes === null || minutes === undefined ? "" : (minutes / 60).toFixed(1));

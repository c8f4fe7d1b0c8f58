// Donation drives: open one, follow its totals, correct it (edit, close, void a gift
// recorded in error), send its goods on, and export its ledger and public summary.
import { useEffect, useRef, useState } from "/static/vendor/htm-preact.module.js";
import { all, api, download, newKey, ApiError } from "./api.js";
import { html, Field, Select, Problem, Done, useForm, useLoad, categoryLabel, yuan, toFen, when } from "./ui.js";
import { donorText, fieldErrors, giftText } from "./desk.js";

const STATUS = { open: "进行中 Open", closed: "已结束 Closed" };
const path = (id) => `/campaigns/${encodeURIComponent(id)}`;

/** Today in the reader's calendar, as an <input type=date> value. */
function today() {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

function Progress({ percent }) {
  return html`<div class="progress" role="progressbar" aria-label="进度 Progress" aria-valuemin="0"
      aria-valuemax="100" aria-valuenow=${percent}><span style=${{ width: `${Math.min(100, percent)}%` }}></span></div>`;
}

/** The goal's problems, checked where it is typed: "abc" or 0 is not a goal. */
function goalError(text) {
  const fen = toFen(text);
  if (fen === null) return "请输入目标金额（元），如 50000。Type the goal in yuan, like 50000.";
  if (fen <= 0) return "目标须大于 0。The goal must be more than 0.";
  return null;
}

const DRIVE_FIELDS = { goal_fen: "goal" };

export function DrivesPage({ args }) {
  return args[0] ? html`<${DrivePage} id=${args[0]} key=${args[0]} />` : html`<${DriveList} />`;
}

// -- the list, and a new drive ------------------------------------------------------------

function DriveList() {
  const [drives, reload, error] = useLoad(() => all("/campaigns"), []);
  return html`<h1>募捐活动 Drives</h1>
    <${Problem} error=${error} />
    ${drives && (drives.length === 0 ? html`<p class="muted">还没有募捐活动。No drives yet.</p>`
      : html`<div class="table-wrap card"><table class="drive-list stack">
        <thead><tr><th>名称 Name</th><th>日期 Dates</th><th>状态 Status</th><th class="num">目标 Goal</th>
          <th class="num">已收现金 Cash</th><th>进度 Progress</th><th class="num">笔数 Gifts</th></tr></thead>
        <tbody>${drives.map((d) => html`<tr key=${d.id}>
          <td><a href=${`#/drives/${encodeURIComponent(d.id)}`}>${d.name}</a></td>
          <td data-label="日期 Dates">${d.starts_on} – ${d.ends_on}</td>
          <td data-label="状态 Status">${STATUS[d.status] || d.status}</td>
          <td class="num" data-label="目标 Goal">¥${yuan(d.goal_fen)}</td>
          <td class="num" data-label="已收现金 Cash">¥${yuan(d.totals.cash_fen)}</td>
          <td data-label="进度 Progress">${d.progress_percent}%<${Progress} percent=${d.progress_percent} /></td>
          <td class="num" data-label="笔数 Gifts">${d.totals.donations}</td></tr>`)}</tbody></table></div>`)}
    <${NewDrive} onOpened=${reload} />`;
}

function NewDrive({ onOpened }) {
  const start = { name: "", goal: "", starts_on: today(), ends_on: "" };
  const form = useForm(start);
  const key = useRef(newKey()); // this drive's, until it is opened
  const [opened, setOpened] = useState(null);
  const v = form.values;
  const submit = (event) => {
    event.preventDefault();
    const errors = {};
    if (!v.name.trim()) errors.name = "请写活动名称。Give the drive a name.";
    const bad = goalError(v.goal);
    if (bad) errors.goal = bad;
    if (!v.starts_on) errors.starts_on = "请选择开始日期。Choose the first day.";
    if (!v.ends_on) errors.ends_on = "请选择结束日期。Choose the last day.";
    if (Object.keys(errors).length) { form.setProblem(null); form.setErrors(errors); setOpened(null); return; }
    form.submit(async () => {
      try {
        const drive = await api("POST", "/campaigns", { key: key.current, body: {
          name: v.name.trim(), goal_fen: toFen(v.goal), starts_on: v.starts_on, ends_on: v.ends_on } });
        key.current = newKey();
        form.reset();
        setOpened(drive);
        onOpened();
      } catch (error) {
        if (error instanceof ApiError) error.fields = fieldErrors(error.fields, DRIVE_FIELDS);
        throw error;
      }
    });
  };
  return html`<form class="card" onSubmit=${submit} aria-labelledby="new-drive-h">
    <h2 id="new-drive-h">开始新的募捐 Open a drive</h2>
    <div class="grid">
      <${Field} label="名称 Name" name="name" value=${v.name} onInput=${form.set("name")} error=${form.errors.name} />
      <${Field} label="目标（元）Goal (yuan)" name="goal" value=${v.goal} onInput=${form.set("goal")}
        inputmode="decimal" error=${form.errors.goal} />
      <${Field} label="开始日期 Starts on" name="starts_on" type="date" value=${v.starts_on}
        onInput=${form.set("starts_on")} error=${form.errors.starts_on} />
      <${Field} label="结束日期 Ends on" name="ends_on" type="date" value=${v.ends_on}
        onInput=${form.set("ends_on")} error=${form.errors.ends_on} />
    </div>
    <${Problem} error=${form.problem} shown=${["name", "goal", "starts_on", "ends_on"]} />
    ${opened && html`<${Done}>已开始 Opened: <a href=${`#/drives/${encodeURIComponent(opened.id)}`}>${opened.name}</a>${" · "}<a href=${`#/desk/${encodeURIComponent(opened.id)}`}>去登记 To the donation table</a><//>`}
    <p><button class="primary" type="submit" disabled=${form.busy}>开始 Open</button></p>
  </form>`;
}

// -- one drive -------------------------------------------------------------------------------

function DrivePage({ id }) {
  const [campaign, reload, error] = useLoad(() => api("GET", path(id)), [id]);
  if (error) return html`<h1>募捐活动 Drive</h1><${Problem} error=${error} /><p><a href="#/drives">全部活动 All drives</a></p>`;
  if (!campaign) return html`<p class="loading">正在加载 Loading…</p>`;
  const items = Object.entries(campaign.totals.items || {});
  return html`<p class="no-print"><a href="#/drives">← 全部活动 All drives</a></p>
    <h1>募捐活动 Drive: ${campaign.name}</h1>
    <section class="card drive-summary" aria-label="总计 Totals">
      <div><div class="muted">已收现金 Cash received</div><div class="big drive-cash">¥${yuan(campaign.totals.cash_fen)}</div>
        <div>目标 Goal ¥${yuan(campaign.goal_fen)} · ${campaign.progress_percent}%</div>
        <${Progress} percent=${campaign.progress_percent} /></div>
      <div><div class="muted">捐赠笔数 Gifts</div><div class="big drive-count">${campaign.totals.donations}</div>
        ${campaign.goal_reached_at && html`<div class="muted">达成目标 Goal reached ${when(campaign.goal_reached_at)}</div>`}</div>
      <div><div class="muted">状态 Status</div><div class="big">${STATUS[campaign.status] || campaign.status}</div>
        <div>${campaign.starts_on} – ${campaign.ends_on}</div>
        ${campaign.status === "open" && html`<a href=${`#/desk/${encodeURIComponent(id)}`}>去登记 To the donation table</a>`}</div>
      <div><div class="muted">收到物品 Goods received</div>
        ${items.length ? items.map(([code, n]) => html`<div>${categoryLabel("goods", code)} × ${n}</div>`)
          : html`<div>—</div>`}</div>
    </section>
    <${Exports} id=${id} />
    <${Gifts} id=${id} onVoided=${reload} />
    <${Stock} campaign=${campaign} onSent=${reload} />
    <${EditDrive} campaign=${campaign} onSaved=${reload} key=${campaign.status} />`;
}

function Exports({ id }) {
  const [problem, setProblem] = useState(null);
  // The ledger is the gifts' list as a file, the summary the drive's public facts as one.
  const get = (what, format) => () => {
    setProblem(null);
    download(`${path(id)}/${what}`, { format }).catch(setProblem);
  };
  return html`<section class="card no-print" aria-labelledby="exports-h">
    <h2 id="exports-h">导出 Exports</h2>
    <div class="row">
      <button onClick=${get("donations", "csv")}>导出台账 Export ledger (CSV)</button>
      <button onClick=${get("donations", "xlsx")}>导出台账 Export ledger (XLSX)</button>
      <button onClick=${get("summary", "csv")}>导出公示 Export summary (CSV)</button>
      <button onClick=${get("summary", "xlsx")}>导出公示 Export summary (XLSX)</button>
    </div>
    <p class="muted">台账含捐赠人姓名，每次导出都会记录。The ledger has donors' names: each export is in the audit log.</p>
    <${Problem} error=${problem} />
  </section>`;
}

// The gifts, newest first, a page at a time; a gift recorded in error is voided with its reason.
function Gifts({ id, onVoided }) {
  const [gifts, setGifts] = useState([]);
  const [cursor, setCursor] = useState(undefined); // undefined: not loaded yet; null: no more
  const [problem, setProblem] = useState(null);
  const [voiding, setVoiding] = useState(null);
  const more = (from) => {
    setProblem(null);
    api("GET", `${path(id)}/donations`, { query: { limit: 20, cursor: from } }).then((page) => {
      setGifts((list) => (from ? [...list, ...page.items] : page.items));
      setCursor(page.next_cursor);
    }, setProblem);
  };
  useEffect(() => more(undefined), [id]);
  // After voiding or not, the cursor goes back to the gift's row (its receipt link, or its Void button).
  const refocus = (no, what) => setTimeout(() => {
    const target = document.querySelector(`[data-${what}="${CSS.escape(no)}"]`);
    if (target) target.focus();
  }, 0);
  const voided = (gift) => {
    setGifts((list) => list.map((g) => (g.receipt_no === gift.receipt_no ? gift : g)));
    setVoiding(null);
    onVoided();
    refocus(gift.receipt_no, "receipt");
  };
  const cancel = () => { refocus(voiding, "void"); setVoiding(null); };
  return html`<section class="card" aria-labelledby="gifts-h">
    <h2 id="gifts-h">捐赠记录 Gifts</h2>
    <${Problem} error=${problem} />
    ${cursor !== undefined && gifts.length === 0 && html`<p class="muted">还没有捐赠。No gifts yet.</p>`}
    ${gifts.length > 0 && html`<div class="table-wrap"><table class="stack">
      <thead><tr><th>收据编号 Receipt no.</th><th>日期 Date</th><th>金额或物品 Amount or goods</th>
        <th>捐赠人 Donor</th><th>操作 Actions</th></tr></thead>
      <tbody>${gifts.map((gift) => html`<tr key=${gift.receipt_no}>
        <td data-label="收据编号 Receipt no."><a href=${`#/receipt/${encodeURIComponent(id)}/${encodeURIComponent(gift.receipt_no)}`}
          data-receipt=${gift.receipt_no}>${gift.receipt_no}</a>
          ${gift.voided && html` <span class="tag voided">已作废 Voided</span>`}</td>
        <td data-label="日期 Date">${when(gift.created_at)}</td>
        <td data-label="金额或物品 Amount or goods">${giftText(gift)}</td><td data-label="捐赠人 Donor">${donorText(gift)}</td>
        <td class="actions">${gift.voided ? html`<span class="muted">作废原因 Reason: ${gift.void_reason || ""}</span>`
          : voiding === gift.receipt_no
            ? html`<${VoidForm} id=${id} gift=${gift} onVoided=${voided} onCancel=${cancel} />`
            : html`<button data-void=${gift.receipt_no} onClick=${() => setVoiding(gift.receipt_no)}>作废 Void</button>`}</td>
      </tr>`)}</tbody></table></div>`}
    ${cursor && html`<p><button onClick=${() => more(cursor)}>更多 More</button></p>`}
  </section>`;
}

function VoidForm({ id, gift, onVoided, onCancel }) {
  const form = useForm({ reason: "" });
  const key = useRef(newKey());
  const formRef = useRef(null);
  useEffect(() => formRef.current.elements.reason.focus(), []);
  const submit = (event) => {
    event.preventDefault();
    if (!form.values.reason.trim()) {
      form.setProblem(null);
      form.setErrors({ reason: "请写明作废原因。Say why the gift is voided." });
      return;
    }
    form.submit(async () => {
      onVoided(await api("POST", `${path(id)}/donations/${encodeURIComponent(gift.receipt_no)}/void`,
                         { key: key.current, body: { reason: form.values.reason.trim() } }));
    });
  };
  return html`<form ref=${formRef} onSubmit=${submit} aria-label=${`作废 Void ${gift.receipt_no}`}>
    <${Field} label="作废原因 Reason" name="reason" value=${form.values.reason} onInput=${form.set("reason")}
      error=${form.errors.reason} />
    <${Problem} error=${form.problem} shown=${["reason"]} />
    <div class="confirm"><button class="primary" type="submit" disabled=${form.busy}>确认作废 Void</button>
      <button type="button" onClick=${onCancel}>取消 Cancel</button></div>
  </form>`;
}

// -- goods: what is left, and sending it on ----------------------------------------------------

function Stock({ campaign, onSent }) {
  const stock = Object.entries(campaign.stock || {});
  const [sentCount, setSentCount] = useState(0);
  const [dispatches, , error] = useLoad(() => all(`${path(campaign.id)}/dispatches`, {}, 200), [campaign.id, sentCount]);
  const sent = () => { setSentCount((n) => n + 1); onSent(); };
  return html`<section class="card" aria-labelledby="stock-h">
    <h2 id="stock-h">物品库存 Goods in stock</h2>
    ${stock.length === 0 ? html`<p class="muted">没有物品。No goods received.</p>` : html`<div class="table-wrap"><table>
      <thead><tr><th>物品类别 Category</th><th class="num">库存 In stock</th>
        <th class="num">已收 Received</th></tr></thead>
      <tbody>${stock.map(([code, left]) => html`<tr key=${code}><td>${categoryLabel("goods", code)}</td>
        <td class="num">${left}</td><td class="num">${(campaign.totals.items || {})[code] ?? ""}</td></tr>`)}</tbody>
    </table></div>`}
    ${stock.some(([, left]) => left > 0) && html`<${DispatchForm} campaign=${campaign} onSent=${sent} />`}
    <h3>已发出 Sent</h3>
    <${Problem} error=${error} />
    ${dispatches && (dispatches.length === 0 ? html`<p class="muted">还没有发出物品。Nothing sent yet.</p>`
      : html`<div class="table-wrap"><table class="stack">
        <thead><tr><th>日期 Date</th><th>发往 To</th><th>物品 Goods</th></tr></thead>
        <tbody>${dispatches.map((d) => html`<tr key=${d.id}><td data-label="日期 Date">${when(d.created_at)}</td>
          <td data-label="发往 To">${d.case_id ? "帮扶个案 A hardship case" : d.destination}</td>
          <td data-label="物品 Goods">${d.items.map((i) => `${categoryLabel("goods", i.category)} × ${i.quantity}`).join("；")}</td></tr>`)}
        </tbody></table></div>`)}
  </section>`;
}

/** A case that can receive goods, by where and what it is about: never a name. */
function recipientText(r) {
  const summary = r.summary && r.summary.length > 60 ? r.summary.slice(0, 60) + "…" : r.summary || "";
  return `${r.compound} · ${(r.categories || []).map((c) => categoryLabel("case", c)).join("、")} · ${summary}`;
}

function DispatchForm({ campaign, onSent }) {
  const blank = { to: "place", destination: "", case_id: "", category: "", quantity: "" };
  const form = useForm(blank);
  const key = useRef(newKey()); // this dispatch's, until it is sent
  const [recipients, setRecipients] = useState(null);
  const [done, setDone] = useState(null);
  const v = form.values;
  useEffect(() => {
    // The list of cases is itself a read of welfare's records: fetched only when it is wanted.
    if (v.to === "case" && recipients === null) {
      setRecipients([]);
      all("/cases/recipients").then(setRecipients, (error) => { setRecipients([]); form.setProblem(error); });
    }
  }, [v.to]);
  const options = Object.entries(campaign.stock || {}).filter(([, left]) => left > 0)
    .map(([code, left]) => [code, `${categoryLabel("goods", code)}（余 ${left} left）`]);
  const submit = (event) => {
    event.preventDefault();
    const errors = {};
    if (v.to === "place" && !v.destination.trim()) errors.destination = "请写目的地。Say where the goods go.";
    if (v.to === "case" && !v.case_id) errors.case_id = "请选择帮扶个案。Choose the case.";
    if (!v.category) errors.category = "请选择物品类别。Choose the category.";
    if (!/^\s*[1-9]\d*\s*$/.test(v.quantity)) errors.quantity = "数量须为正整数。The quantity is a whole number above 0.";
    if (Object.keys(errors).length) { form.setProblem(null); form.setErrors(errors); setDone(null); return; }
    const body = { items: [{ category: v.category, quantity: Number(v.quantity) }],
                   ...(v.to === "place" ? { destination: v.destination.trim() } : { case_id: v.case_id }) };
    setDone(null);
    form.submit(async () => {
      try {
        await api("POST", `${path(campaign.id)}/dispatches`, { key: key.current, body });
        key.current = newKey();
        setDone(`已发出 Sent: ${categoryLabel("goods", v.category)} × ${v.quantity}`);
        form.setValues({ ...blank, to: v.to });
        onSent();
      } catch (error) {
        if (error instanceof ApiError) {
          error.fields = fieldErrors(error.fields, {});
          const short = (error.details && error.details.stock) || {};
          for (const [code, text] of Object.entries(short)) {
            error.fields.quantity = [...(error.fields.quantity || []),
                                     `库存不足 Not enough in stock: ${categoryLabel("goods", code)}: ${text}`];
          }
        }
        throw error;
      }
    });
  };
  return html`<form onSubmit=${submit} aria-labelledby="dispatch-h">
    <h3 id="dispatch-h">发出物品 Send goods</h3>
    <div class="grid">
      <${Select} label="发往 To" name="to" value=${v.to} onInput=${form.set("to")}
        options=${[["place", "一个地点 To a place"], ["case", "帮扶个案 To a hardship case"]]} />
      ${v.to === "place"
        ? html`<${Field} label="目的地 Destination" name="destination" value=${v.destination}
            onInput=${form.set("destination")} error=${form.errors.destination} />`
        : html`<${Select} label="帮扶个案 Hardship case" name="case_id" value=${v.case_id} onInput=${form.set("case_id")}
            options=${(recipients || []).map((r) => [r.id, recipientText(r)])}
            blank=${recipients && recipients.length === 0 ? "没有可接收的个案 No case can receive goods" : "请选择 Choose"}
            error=${form.errors.case_id} />`}
      <${Select} label="物品类别 Category" name="category" value=${v.category} options=${options} blank="请选择 Choose"
        onInput=${form.set("category")} error=${form.errors.category} />
      <${Field} label="数量 Quantity" name="quantity" value=${v.quantity} onInput=${form.set("quantity")}
        inputmode="numeric" error=${form.errors.quantity} />
    </div>
    <${Problem} error=${form.problem} shown=${["destination", "case_id", "category", "quantity"]} />
    <${Done}>${done}<//>
    <p><button class="primary" type="submit" disabled=${form.busy}>发出 Send</button></p>
  </form>`;
}

// -- correcting the drive itself ------------------------------------------------------------------

function EditDrive({ campaign, onSaved }) {
  const initial = { name: campaign.name, goal: (campaign.goal_fen / 100).toFixed(2).replace(/\.00$/, ""),
                    starts_on: campaign.starts_on, ends_on: campaign.ends_on };
  const form = useForm(initial);
  const [done, setDone] = useState(null);
  const [confirming, setConfirming] = useState(false);
  const [closeProblem, setCloseProblem] = useState(null);
  const confirmRef = useRef(null);
  const closed = campaign.status !== "open";
  const v = form.values;
  useEffect(() => { if (confirming && confirmRef.current) confirmRef.current.focus(); }, [confirming]);

  const save = (event) => {
    event.preventDefault();
    setDone(null);
    const bad = goalError(v.goal);
    if (bad) { form.setProblem(null); form.setErrors({ goal: bad }); return; }
    const changes = {};
    if (v.name.trim() !== campaign.name) changes.name = v.name.trim();
    if (toFen(v.goal) !== campaign.goal_fen) changes.goal_fen = toFen(v.goal);
    if (v.starts_on !== campaign.starts_on) changes.starts_on = v.starts_on;
    if (v.ends_on !== campaign.ends_on) changes.ends_on = v.ends_on;
    if (!Object.keys(changes).length) { setDone("没有改动。Nothing changed."); return; }
    form.submit(async () => {
      try {
        await api("PATCH", path(campaign.id), { body: changes });
        setDone("已保存 Saved.");
        onSaved();
      } catch (error) {
        if (error instanceof ApiError) error.fields = fieldErrors(error.fields, DRIVE_FIELDS);
        throw error;
      }
    });
  };
  const close = () => {
    setCloseProblem(null);
    api("POST", `${path(campaign.id)}/close`).then(() => { setConfirming(false); onSaved(); }, setCloseProblem);
  };

  return html`<section class="card no-print" aria-labelledby="edit-h">
    <h2 id="edit-h">修改活动 Edit the drive</h2>
    <form onSubmit=${save}>
      <div class="grid">
        <${Field} label="名称 Name" name="name" value=${v.name} onInput=${form.set("name")} error=${form.errors.name} />
        <${Field} label="目标（元）Goal (yuan)" name="goal" value=${v.goal} onInput=${form.set("goal")} disabled=${closed}
          inputmode="decimal" error=${form.errors.goal} />
        <${Field} label="开始日期 Starts on" name="starts_on" type="date" value=${v.starts_on} disabled=${closed}
          onInput=${form.set("starts_on")} error=${form.errors.starts_on} />
        <${Field} label="结束日期 Ends on" name="ends_on" type="date" value=${v.ends_on} disabled=${closed}
          onInput=${form.set("ends_on")} error=${form.errors.ends_on} />
      </div>
      ${closed && html`<p class="muted">活动已结束，只能改名称。The drive is closed: only its name can change.</p>`}
      <${Problem} error=${form.problem} shown=${["name", "goal", "starts_on", "ends_on"]} />
      <${Done}>${done}<//>
      <p><button class="primary" type="submit" disabled=${form.busy}>保存 Save</button></p>
    </form>
    ${!closed && html`<h3>结束活动 Close the drive</h3>
      <p class="muted">结束后不再登记捐赠，物品仍可发出。A closed drive takes no more gifts; its goods can still be sent.</p>
      ${confirming
        ? html`<div class="confirm" role="group" aria-label="确认结束 Confirm closing">
            <button class="primary" ref=${confirmRef} onClick=${close}>确认结束 Confirm close</button>
            <button onClick=${() => setConfirming(false)}>取消 Cancel</button></div>`
        : html`<button onClick=${() => setConfirming(true)}>结束活动 Close drive</button>`}
      <${Problem} error=${closeProblem} />`}
  </section>`;
}

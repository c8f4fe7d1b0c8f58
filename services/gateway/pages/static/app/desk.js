// The donation table: a queue of residents, one screen, the keyboard alone. Each gift
// is one form sent with its own Idempotency-Key, so a double Enter or a retried lost
// answer never counts a gift twice.
import { useCallback, useEffect, useRef, useState } from "/static/vendor/htm-preact.module.js";
import { all, api, newKey, ApiError } from "./api.js";
import { html, Field, Select, Check, Problem, useForm, useLoad, categoryLabel, categoryOptions, yuan, toFen }
  from "./ui.js";

export const KINDS = [["cash", "现金 Cash"], ["in_kind", "物品 Goods"]];
const REFRESH_MS = 30_000;
const BLANK = { kind: "cash", amount: "", category: "", quantity: "", donor: "", anonymous: false };
// The form's fields whose errors stand beside them (Problem does not repeat them).
const FIELDS = ["amount", "category", "quantity", "donor"];
// What was recorded at this table, per drive: kept while the workspace is open, so that
// printing a receipt and coming back still shows the queue's last gifts.
const recorded = new Map();

/** "¥200.00" for cash, "衣物 Clothing × 3" for goods. */
export function giftText(gift) {
  if (gift.kind === "cash") return `¥${yuan(gift.amount_fen)}`;
  return (gift.items || []).map((item) => `${categoryLabel("goods", item.category)} × ${item.quantity}`).join("；");
}

export function donorText(gift) {
  return gift.anonymous ? "匿名 Anonymous" : gift.donor_name || "未留名 No name given";
}

/** The API's field errors, renamed to the fields a form shows: `{items: {0: {quantity}}}` -> `quantity`. */
export function fieldErrors(fields, names) {
  const out = {};
  const add = (name, msgs) => { out[name] = [...(out[name] || []), ...[].concat(msgs)]; };
  for (const [name, msgs] of Object.entries(fields || {})) {
    if (name === "items" && msgs && !Array.isArray(msgs)) {
      for (const line of Object.values(msgs)) {
        for (const [inner, text] of Object.entries(line)) add(inner === "category" ? "category" : "quantity", text);
      }
    } else {
      add(names[name] || name, msgs);
    }
  }
  return out;
}

export function DeskPage({ args }) {
  const [campaignId] = args;
  const [drives, , drivesError] = useLoad(() => all("/campaigns"), []);
  const [campaign, setCampaign] = useState(null);
  const [campaignError, setCampaignError] = useState(null);
  const shown = useRef(campaignId);
  shown.current = campaignId; // an answer about a drive chosen before is dropped
  // A refresh that fails keeps what is on screen (and the gift being typed) and says why.
  const reloadCampaign = useCallback(() => {
    if (!campaignId) return;
    api("GET", `/campaigns/${encodeURIComponent(campaignId)}`).then((found) => {
      if (found.id === shown.current) { setCampaign(found); setCampaignError(null); }
    }, setCampaignError);
  }, [campaignId]);
  useEffect(() => { setCampaign(null); reloadCampaign(); }, [reloadCampaign]);
  const open = (drives || []).filter((d) => d.status === "open");
  useEffect(() => {
    // Other tables record gifts to the same drive: the total follows them.
    const timer = setInterval(reloadCampaign, REFRESH_MS);
    return () => clearInterval(timer);
  }, [reloadCampaign]);
  useEffect(() => {
    // One open drive: the table is for it.
    if (!campaignId && drives && open.length === 1) location.replace(`#/desk/${encodeURIComponent(open[0].id)}`);
  }, [campaignId, drives]);
  const choose = (id) => { location.hash = id ? `#/desk/${encodeURIComponent(id)}` : "#/desk"; };
  const options = open.map((d) => [d.id, `${d.name}（${d.starts_on} – ${d.ends_on}）`]);
  if (campaign && !open.some((d) => d.id === campaign.id)) options.push([campaign.id, campaign.name]);

  return html`<h1>捐赠登记 Donation table</h1>
    <${Problem} error=${drivesError || campaignError} />
    <div class="card desk-drive">
      ${drives && html`<${Select} label="募捐活动 Drive" name="campaign" value=${campaignId || ""} options=${options}
        blank="请选择 Choose a drive" onInput=${choose} />`}
      ${drives && open.length === 0 && html`<p class="muted">没有进行中的募捐活动。No drive is open:
        <a href="#/drives">开一个 Open one</a>.</p>`}
      ${campaign && html`<${RunningTotal} campaign=${campaign} />`}
    </div>
    ${campaign && campaign.status !== "open" && html`<div class="notice bad" role="alert">这个活动已结束，不再登记捐赠。
      This drive is closed: it takes no more gifts.</div>`}
    ${campaign && campaign.status === "open"
      && html`<${GiftForm} campaign=${campaign} key=${campaign.id} onRecorded=${reloadCampaign} />`}`;
}

function RunningTotal({ campaign }) {
  const items = Object.entries(campaign.totals.items || {});
  return html`<p class="desk-total" aria-live="polite">
    <strong>已收现金 Cash received: ¥${yuan(campaign.totals.cash_fen)}</strong>
    <span> / 目标 Goal ¥${yuan(campaign.goal_fen)}（${campaign.progress_percent}%）</span>
    <span> · 共 ${campaign.totals.donations} 笔 gifts</span>
    ${items.length > 0 && html`<br /><span class="muted">物品 Goods: ${items.map(([code, n]) =>
      `${categoryLabel("goods", code)} × ${n}`).join("；")}</span>`}
  </p>`;
}

function GiftForm({ campaign, onRecorded }) {
  const form = useForm(BLANK);
  const key = useRef(newKey()); // this gift's: kept across retries and double presses
  const sending = useRef(false);
  const formRef = useRef(null);
  const [recent, setRecent] = useState(() => recorded.get(campaign.id) || []);
  const v = form.values;
  const goods = categoryOptions("goods");

  useEffect(() => {
    // The table opens ready for the queue's first gift.
    if (formRef.current) formRef.current.elements.kind.focus();
  }, []);
  useEffect(() => {
    // After a refusal, the first field it concerns takes the cursor.
    const bad = formRef.current && formRef.current.querySelector('[aria-invalid="true"]');
    if (bad) bad.focus();
  }, [form.errors]);

  const check = () => {
    const errors = {};
    if (v.kind === "cash") {
      const fen = toFen(v.amount);
      if (fen === null) errors.amount = "请输入金额（元），如 200 或 35.5。Type the amount in yuan, like 200 or 35.5.";
      else if (fen <= 0) errors.amount = "金额须大于 0。The amount must be more than 0.";
    } else {
      if (!v.category) errors.category = "请选择物品类别。Choose the goods' category.";
      if (!/^\s*[1-9]\d*\s*$/.test(v.quantity)) errors.quantity = "数量须为正整数。The quantity is a whole number above 0.";
    }
    if (!v.anonymous && !v.donor.trim()) {
      errors.donor = "请写捐赠人姓名，或勾选匿名。Write the donor's name, or tick Anonymous.";
    }
    return errors;
  };

  const submit = (event) => {
    event.preventDefault();
    if (sending.current) return; // a second Enter while the first is on its way
    const errors = check();
    if (Object.keys(errors).length) { form.setProblem(null); form.setErrors(errors); return; }
    const body = v.kind === "cash"
      ? { kind: "cash", amount_fen: toFen(v.amount) }
      : { kind: "in_kind", items: [{ category: v.category, quantity: Number(v.quantity) }] };
    body.anonymous = v.anonymous;
    if (!v.anonymous) body.donor_name = v.donor.trim(); // an anonymous donor's name is never sent
    form.submit(async () => {
      sending.current = true; // before the first await: a second Enter finds it set
      try {
        const gift = await api("POST", `/campaigns/${encodeURIComponent(campaign.id)}/donations`,
                               { body, key: key.current });
        key.current = newKey(); // the next gift is another thing recorded
        const list = [gift, ...recent.filter((g) => g.receipt_no !== gift.receipt_no)].slice(0, 20);
        recorded.set(campaign.id, list);
        setRecent(list);
        form.setValues({ ...BLANK, kind: v.kind });
        onRecorded();
        setTimeout(() => formRef.current && formRef.current.elements.kind.focus(), 0);
      } catch (error) {
        if (error instanceof ApiError) {
          error.fields = fieldErrors(error.fields, { amount_fen: "amount", donor_name: "donor", anonymous: "donor" });
          if (error.code === "idempotency_key_reused") {
            // The first try was recorded but its answer was lost, and the form was changed since:
            // the next press is a gift of its own.
            key.current = newKey();
            error.message = "上一次登记已经成功（回答丢失了），请在活动的捐赠记录里核对后再登记。"
              + " The first try was recorded (its answer was lost): check the drive's gifts before recording again.";
          }
        }
        throw error;
      } finally {
        sending.current = false;
      }
    });
  };

  return html`<form class="card desk-form" ref=${formRef} onSubmit=${submit} aria-label="登记一笔捐赠 Record a gift">
      <div class="row">
        <${Select} label="类型 Kind" name="kind" value=${v.kind} options=${KINDS} onInput=${form.set("kind")} />
        ${v.kind === "cash"
          ? html`<${Field} label="金额（元）Amount (yuan)" name="amount" value=${v.amount} onInput=${form.set("amount")}
              inputmode="decimal" autocomplete="off" error=${form.errors.amount} />`
          : html`<${Select} label="物品类别 Goods category" name="category" value=${v.category} options=${goods}
              blank="请选择 Choose" onInput=${form.set("category")} error=${form.errors.category} />
            <${Field} label="数量 Quantity" name="quantity" value=${v.quantity} onInput=${form.set("quantity")}
              inputmode="numeric" autocomplete="off" error=${form.errors.quantity} />`}
        <${Field} label="捐赠人 Donor name" name="donor" value=${v.anonymous ? "" : v.donor} onInput=${form.set("donor")}
          disabled=${v.anonymous} autocomplete="off" error=${form.errors.donor} />
        <${Check} label="匿名 Anonymous" checked=${v.anonymous} onInput=${form.set("anonymous")} name="anonymous" />
        <button class="primary" type="submit" disabled=${form.busy}>登记 Record</button>
      </div>
      <${Problem} error=${form.problem} shown=${FIELDS} />
    </form>
    <section class="card" aria-labelledby="recent-h">
      <h2 id="recent-h">刚登记 Just recorded</h2>
      ${recent.length === 0 ? html`<p class="muted">还没有。None yet.</p>` : html`<div class="table-wrap"><table class="stack">
        <thead><tr><th>收据编号 Receipt no.</th><th>金额或物品 Amount or goods</th><th>捐赠人 Donor</th>
          <th>核验码 Code</th><th>收据 Receipt</th></tr></thead>
        <tbody>${recent.map((gift) => html`<tr key=${gift.receipt_no}>
          <td data-label="收据编号 Receipt no.">${gift.receipt_no}</td>
          <td data-label="金额或物品 Amount or goods">${giftText(gift)}</td>
          <td data-label="捐赠人 Donor">${donorText(gift)}</td>
          <td data-label="核验码 Code"><code>${gift.verification_code}</code></td>
          <td><a href=${`#/receipt/${encodeURIComponent(campaign.id)}/${encodeURIComponent(gift.receipt_no)}`}>
            打印收据 Print receipt</a></td></tr>`)}</tbody></table></div>`}
    </section>`;
}

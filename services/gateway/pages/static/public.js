"use strict";
const $ = (id) => document.getElementById(id);
const yuan = (fen) => (fen / 100).toLocaleString("zh-CN", {minimumFractionDigits: 2});
function el(tag, text) { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; return e; }
function table(rows, head) {
  const t = el("table"); const tr = el("tr"); head.forEach((h) => tr.append(el("th", h))); t.append(tr);
  rows.forEach((r) => { const row = el("tr"); r.forEach((c) => row.append(el("td", c))); t.append(row); });
  return t;
}

// Where goods went, each dispatch with its day (the community's calendar), newest first.
const destination = (to) => to === "a household in need (hardship case)" ? "困难家庭 a household in need" : to;
function quiet(text) { const p = el("p", text); p.className = "quiet"; return p; }
function sent(dispatches, none) {
  if (!dispatches.length) { return quiet(none); }
  return table(dispatches.map((d) => [d.sent_on, destination(d.to), d.items.map((i) => `${goods(i.category)} ${i.quantity}`).join(", ")]),
               ["日期 date", "去向 to", "物资 goods"]);
}

// Goods are shown by the community's labels ("衣物 Clothing"), never by code.
let goodsLabels = {};
const goods = (code) => goodsLabels[code] || code;
const labelsLoaded = fetch("/api/v1/categories").then((a) => (a.ok ? a.json() : {goods: []})).then((all) => {
  goodsLabels = Object.fromEntries(all.goods.map((c) => [c.code, `${c.label_zh} ${c.label_en}`]));
}, () => {});

labelsLoaded.then(() => fetch("/api/v1/public/summary")).then((a) => a.json()).then((s) => {
  $("campaigns").replaceChildren(...s.campaigns.map((c) => {
    const sec = el("section");
    sec.append(el("h2", c.name), el("p", `善款 Cash: ¥${yuan(c.totals.cash_fen)} / 目标 goal ¥${yuan(c.goal_fen)} · ${c.totals.donations} 笔 donations · ${c.starts_on} – ${c.ends_on}`));
    const bar = el("div"); bar.className = "bar"; const span = el("span"); span.style.width = Math.min(100, c.progress_percent) + "%"; bar.append(span);
    sec.append(bar, el("h3", "物资 Goods received"),
      Object.keys(c.totals.items).length
        ? table(Object.entries(c.totals.items).map(([code, n]) => [goods(code), n]), ["类别 category", "数量 quantity"])
        : quiet("尚未收到物资 No goods received yet."),
      el("h3", "去向 Where goods went"),
      sent(c.dispatches, "尚未送出物资 No goods sent yet."));
    return sec;
  }));
});

async function lookUp(event) {
  if (event) event.preventDefault();
  await labelsLoaded;
  const answer = await fetch(`/api/v1/receipts/${encodeURIComponent($("receipt").value.trim())}?code=${encodeURIComponent($("code").value.trim())}`);
  const r = await answer.json();
  const out = $("receipt-result");
  if (!answer.ok) { out.replaceChildren(el("p", r.error.message)); out.firstChild.className = "error"; return; }
  out.replaceChildren(el("p", `${r.receipt_no} · ${r.campaign.name} · ${r.received_on} · ` +
    (r.kind === "cash" ? `¥${yuan(r.amount_fen)}` : r.items.map((i) => `${goods(i.category)} ${i.quantity}`).join(", "))));
  if (r.kind !== "cash") {
    // Goods are pooled: where goods of these kinds went after this gift was recorded, never before.
    out.append(el("h3", "此后同类物资的去向 Where goods of these kinds went after this gift"),
               sent(r.dispatches, "此后尚未送出此类物资 None sent since this gift."));
  }
  if (r.voided) {
    const note = el("p", `已作废 Voided ${r.voided_at.slice(0, 10)}: 此笔捐赠已更正，不计入总数 this gift was recorded in error and is not counted.`);
    note.className = "error"; out.prepend(note);
  }
}
$("lookup").addEventListener("submit", lookUp);
// A printed receipt links here with ?receipt=&code=: look it up at once.
const given = new URLSearchParams(location.search);
if (given.get("receipt") && given.get("code")) {
  $("receipt").value = given.get("receipt"); $("code").value = given.get("code");
  lookUp();
}

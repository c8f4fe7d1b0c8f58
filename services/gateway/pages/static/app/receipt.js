// A gift's receipt, printed on A5 or on a receipt printer's roll: what was given, to which
// drive, and a QR code of the public page where anyone holding it can check it.
import { useEffect, useState } from "/static/vendor/htm-preact.module.js";
import qrcode from "/static/vendor/qrcode.mjs";
import { api } from "./api.js";
import { html, Problem, useLoad, when } from "./ui.js";
import { donorText, giftText } from "./desk.js";

/** The public lookup address of a receipt (the API's `lookup_path`, or made the same way). */
export function lookupUrl(gift) {
  const path = gift.lookup_path
    || `/public?receipt=${encodeURIComponent(gift.receipt_no)}&code=${encodeURIComponent(gift.verification_code)}`;
  return location.origin + path;
}

/** A QR code of `text` as a data: URL (an <img> the page's CSP allows). */
function qrImage(text) {
  const qr = qrcode(0, "M");
  qr.addData(text);
  qr.make();
  return qr.createDataURL(4, 2);
}

export function ReceiptPage({ args }) {
  const [campaignId, receiptNo] = args;
  const base = `/campaigns/${encodeURIComponent(campaignId || "")}`;
  const [data, , error] = useLoad(() => Promise.all([
    api("GET", `${base}/donations/${encodeURIComponent(receiptNo || "")}`), api("GET", base)]), [campaignId, receiptNo]);
  const [roll, setRoll] = useState(false);
  const [printing, setPrinting] = useState(0);
  useEffect(() => { if (printing) window.print(); }, [printing]); // once the chosen layout is on screen
  const print = (asRoll) => { setRoll(asRoll); setPrinting((n) => n + 1); };

  if (error) {
    return html`<h1>捐赠收据 Donation receipt</h1><${Problem} error=${error} />
      <p><a href="#/desk">捐赠登记 Donation table</a></p>`;
  }
  if (!data) return html`<p class="loading">正在加载 Loading…</p>`;
  const [gift, campaign] = data;
  const url = lookupUrl(gift);
  return html`
    <div class="row no-print receipt-actions">
      <button class="primary" onClick=${() => print(false)}>打印 Print (A5)</button>
      <button onClick=${() => print(true)}>打印 Print (receipt printer)</button>
      <a href=${`#/desk/${encodeURIComponent(campaignId)}`}>返回登记 Back to the table</a>
      <a href=${`#/drives/${encodeURIComponent(campaignId)}`}>活动详情 The drive</a>
    </div>
    <article class=${roll ? "receipt roll" : "receipt"} aria-label="收据 Receipt">
      <h1>邻里 Linli · 捐赠收据 Donation receipt</h1>
      <p class="receipt-drive">${campaign.name}</p>
      ${gift.voided && html`<p class="voided-stamp" role="status">已作废 VOIDED
        <span>${when(gift.voided_at)}</span></p>`}
      <dl>
        <dt>收据编号 Receipt no.</dt><dd class="receipt-no">${gift.receipt_no}</dd>
        <dt>日期 Date</dt><dd>${when(gift.created_at)}</dd>
        <dt>${gift.kind === "cash" ? "金额 Amount" : "物品 Goods"}</dt><dd>${giftText(gift)}</dd>
        <dt>捐赠人 Donor</dt><dd>${donorText(gift)}</dd>
        <dt>核验码 Verification code</dt><dd class="receipt-code"><code>${gift.verification_code}</code></dd>
      </dl>
      <div class="qr">
        <img src=${qrImage(url)} alt="收据查询二维码 QR code of the receipt's public lookup" />
        <p class="muted">扫码或访问以下地址核对 Scan or visit to check: <span class="lookup">${url}</span></p>
      </div>
      <p class="muted">感谢您的爱心！Thank you for your gift.</p>
    </article>`;
}

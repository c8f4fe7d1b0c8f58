// 大屏设备 Wall screens: the office issues a device token for each wall screen (shown once, with a copy
// button, to paste into the screen at /dashboard), sees them all, and revokes one (the screen goes offline
// within seconds and says why).
import { useState } from "/static/vendor/htm-preact.module.js";
import { all, api } from "./api.js";
import { html, Guarded, Field, Problem, useForm, useLoad, when } from "./ui.js";

const STATUS = { active: "有效 Active", revoked: "已撤销 Revoked", expired: "已过期 Expired" };

function Issued({ device, onClose }) {
  const [copied, setCopied] = useState("");
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(device.token);
      setCopied("已复制 Copied");
    } catch {
      setCopied("请手动选中复制 Select the token and copy it by hand");
    }
  };
  return html`<section class="card" aria-labelledby="issued-h">
    <h2 id="issued-h">「${device.name}」的令牌 Token for ${device.name}</h2>
    <div class="notice good" role="status">只显示这一次：请复制，在大屏上打开 /dashboard 粘贴。
      Shown this once: copy it, open /dashboard on the screen and paste it there.</div>
    <label for="device-token-once">令牌 Token</label>
    <textarea id="device-token-once" class="token" readonly rows="4" value=${device.token}
      onFocus=${(e) => e.target.select()}></textarea>
    <p><button class="primary" type="button" onClick=${copy}>复制令牌 Copy token</button>
      <button type="button" onClick=${onClose}>完成 Done</button>
      <span role="status"> ${copied}</span></p>
    <p class="muted">有效期至 Valid until ${when(device.expires_at)}</p>
  </section>`;
}

function IssueForm({ onIssued }) {
  const form = useForm({ name: "", days: "365" });
  const submit = (event) => {
    event.preventDefault();
    form.submit(async ({ name, days }) => {
      const body = { name: name.trim() };
      if (String(days).trim()) body.days = /^\d+$/.test(String(days).trim()) ? Number(days) : days;
      const device = await api("POST", "/devices", { body });
      form.reset();
      onIssued(device);
    });
  };
  const { values: v, set, errors } = form;
  return html`<form class="card" onSubmit=${submit} aria-labelledby="issue-h">
    <h2 id="issue-h">发放令牌 Issue a token</h2>
    <div class="grid">
      <${Field} label="大屏名称 Screen name" name="name" value=${v.name} onInput=${set("name")}
        hint="例如 e.g. 大厅大屏 Hall screen" error=${errors.name} autocomplete="off" />
      <${Field} label="有效天数 Days valid" name="days" value=${v.days} onInput=${set("days")} inputmode="numeric"
        hint="1–730，默认 365 / 1 to 730, default 365" error=${errors.days} />
    </div>
    <${Problem} error=${form.problem} shown=${["name", "days"]} />
    <p><button class="primary" type="submit" disabled=${form.busy}>发放令牌 Issue token</button></p>
  </form>`;
}

function RevokeButton({ device, onRevoked }) {
  const [asking, setAsking] = useState(false);
  const [problem, setProblem] = useState(null);
  const revoke = async () => {
    setProblem(null);
    try {
      await api("DELETE", `/devices/${encodeURIComponent(device.id)}`);
      onRevoked();
    } catch (error) {
      setProblem(error);
      setAsking(false);
    }
  };
  return html`${asking
      ? html`<button type="button" class="primary" onClick=${revoke}
            aria-label=${`确认撤销 Confirm revoke ${device.name}`}>确认撤销 Confirm revoke</button>
          <button type="button" onClick=${() => setAsking(false)}>取消 Cancel</button>`
      : html`<button type="button" onClick=${() => setAsking(true)}
            aria-label=${`撤销 Revoke ${device.name}`}>撤销 Revoke</button>`}
    <${Problem} error=${problem} />`;
}

function DevicesBody() {
  const [devices, reload, error] = useLoad(() => all("/devices"));
  const [issued, setIssued] = useState(null);
  return html`
    <h1>大屏设备 Wall screens</h1>
    <p class="muted">每块大屏用自己的令牌登录，只能看大屏，不能办理事务；撤销后几秒内大屏显示离线并说明原因。
      Each wall screen logs in with its own token: it reads the dashboard and nothing else. Revoked, the screen
      shows offline within seconds and says why.</p>
    ${issued ? html`<${Issued} device=${issued} onClose=${() => setIssued(null)} />`
      : html`<${IssueForm} onIssued=${(device) => { setIssued(device); reload(); }} />`}
    <section class="card" aria-labelledby="devices-h">
      <h2 id="devices-h">已发放 Issued</h2>
      <${Problem} error=${error} />
      ${!devices && !error && html`<p class="loading">正在加载 Loading…</p>`}
      ${devices && !devices.length && html`<p class="muted">还没有 None yet.</p>`}
      ${devices && devices.length > 0 && html`<div class="table-wrap"><table aria-label="大屏设备 Wall screens">
        <thead><tr><th>名称 Name</th><th>状态 Status</th><th>发放 Issued</th><th>有效期至 Valid until</th>
          <th>最近连接 Last seen</th><th>操作 Actions</th></tr></thead>
        <tbody>${devices.map((d) => html`<tr key=${d.id}>
          <td>${d.name}</td>
          <td>${d.status === "active" ? STATUS.active : html`<span class="tag retired">${STATUS[d.status]}</span>`}</td>
          <td>${when(d.created_at)}</td><td>${when(d.expires_at)}</td>
          <td>${d.last_seen_at ? when(d.last_seen_at) : html`<span class="muted">从未 never</span>`}</td>
          <td class="actions">${d.status === "active" && html`<${RevokeButton} device=${d} onRevoked=${reload} />`}</td>
        </tr>`)}</tbody>
      </table></div>`}
    </section>`;
}

export function DevicesPage(props) {
  return html`<${Guarded}><${DevicesBody} ...${props} /><//>`;
}

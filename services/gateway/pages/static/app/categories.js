// 类别 Categories: the community's own incident, case and goods categories. Adding
// one or retiring one reloads the labels every page shows (loadCategories).
import { useEffect, useRef, useState } from "/static/vendor/htm-preact.module.js";
import { api, newKey } from "./api.js";
import { html, Guarded, Field, Select, Problem, Done, useForm, useLoad, loadCategories } from "./ui.js";

const KINDS = [["incident", "事件 Incident"], ["case", "个案 Case"], ["goods", "物品 Goods"]];

/** 停用 Retire takes two presses: the first asks, the second retires. */
function RetireButton({ kind, category, onRetired, onProblem }) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const confirm = useRef(null);
  useEffect(() => { if (asking) confirm.current?.focus(); }, [asking]);
  const label = `${category.label_zh} ${category.label_en}`;
  const retire = async () => {
    setBusy(true);
    onProblem(null);
    try {
      onRetired(await api("POST", `/categories/${kind}/${encodeURIComponent(category.code)}/retire`));
    } catch (error) {
      onProblem({ label, error });
      setAsking(false);
    } finally {
      setBusy(false);
    }
  };
  return html`${asking
      ? html`<button type="button" class="primary" disabled=${busy} onClick=${retire} ref=${confirm}
            aria-label=${`确认停用 Confirm retire ${label}`}>确认停用 Confirm retire</button>
          <button type="button" onClick=${() => setAsking(false)}>取消 Cancel</button>`
      : html`<button type="button" onClick=${() => setAsking(true)}
            aria-label=${`停用 Retire ${label}`}>停用 Retire</button>`}`;
}

function KindTable({ kind, title, items, onChange }) {
  const [problem, setProblem] = useState(null); // {label, error}: a retirement refused
  return html`<section class="card" aria-labelledby=${"kind-h-" + kind}>
    <h2 id=${"kind-h-" + kind}>${title}</h2>
    ${problem && html`<div class="notice bad" role="alert">${problem.label}: ${problem.error.message}</div>`}
    <div class="table-wrap"><table class="kinds" aria-label=${title}>
      <thead><tr><th>名称 Label <span class="muted">· 代码 Code</span></th><th>状态 Status</th>
        <th>操作 Actions</th></tr></thead>
      <tbody>${items.map((c) => html`<tr key=${c.code}>
        <td><span lang="zh">${c.label_zh}</span> ${c.label_en}<br /><code class="muted">${c.code}</code></td>
        <td>${c.retired ? html`<span class="tag retired">已停用 Retired</span>` : "在用 In use"}</td>
        <td class="actions">${!c.retired && html`<${RetireButton} kind=${kind} category=${c} onRetired=${onChange}
          onProblem=${setProblem} />`}</td>
      </tr>`)}</tbody>
    </table></div>
  </section>`;
}

function AddForm({ onDone }) {
  const form = useForm({ kind: "incident", code: "", label_zh: "", label_en: "" });
  const [key, setKey] = useState(newKey);
  const [done, setDone] = useState("");
  const box = useRef(null);
  const submit = (event) => {
    event.preventDefault();
    setDone("");
    form.submit(async ({ kind, code, label_zh, label_en }) => {
      const added = await api("POST", `/categories/${kind}`, { key, body: {
        code: code.trim(), label_zh: label_zh.trim(), label_en: label_en.trim() } });
      setKey(newKey());
      form.setValues((v) => ({ ...v, code: "", label_zh: "", label_en: "" }));
      setDone(`已新增 Added: ${added.label_zh} ${added.label_en}`);
      box.current?.querySelector("input")?.focus();
      await onDone();
    });
  };
  const { values: v, set, errors } = form;
  return html`<form class="card" ref=${box} onSubmit=${submit} aria-labelledby="add-cat-h">
    <h2 id="add-cat-h">新增类别 Add category</h2>
    <div class="grid">
      <${Select} label="种类 Kind" name="kind" value=${v.kind} onInput=${(k) => { set("kind")(k); setKey(newKey()); }}
        options=${KINDS} error=${errors.kind} />
      <${Field} label="代码 Code" name="code" value=${v.code} onInput=${set("code")} autocomplete="off"
        hint="小写字母开头，可含数字和 _ / a-z first, then a-z, 0-9, _" error=${errors.code} />
      <${Field} label="中文名称 Chinese label" name="label_zh" value=${v.label_zh} onInput=${set("label_zh")}
        error=${errors.label_zh} />
      <${Field} label="英文名称 English label" name="label_en" value=${v.label_en} onInput=${set("label_en")}
        error=${errors.label_en} />
    </div>
    <${Problem} error=${form.problem} shown=${["kind", "code", "label_zh", "label_en"]} />
    <${Done}>${done}<//>
    <p><button class="primary" type="submit" disabled=${form.busy}>新增类别 Add category</button></p>
  </form>`;
}

function CategoriesBody() {
  const [categories, reload, error] = useLoad(() => loadCategories(true));
  const changed = reload; // asks GET /categories again: this page and every other show the change
  return html`
    <h1>类别 Categories</h1>
    <p class="muted">事件、个案、物品的类别由社区自行维护；停用的类别不能再用于新记录，旧记录照常显示。
      The community keeps its own categories; a retired one is not offered for new records, old records keep it.</p>
    <${Problem} error=${error} />
    ${!categories && !error && html`<p class="loading">正在加载 Loading…</p>`}
    ${categories && KINDS.map(([kind, title]) => html`<${KindTable} key=${kind} kind=${kind} title=${title}
      items=${categories[kind] || []} onChange=${changed} />`)}
    <${AddForm} onDone=${changed} />`;
}

export function CategoriesPage(props) {
  return html`<${Guarded}><${CategoriesBody} ...${props} /><//>`;
}

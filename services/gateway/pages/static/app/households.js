// 住户 Households: find one by compound, address or a person's name; register a
// new one with its people; `#/households/<id>` shows it, edits it and opens a
// case for it, records who of it consented to what (or withdrew), downloads
// everything held about it, and shows it erased once its last case was. Every
// read of households is audited by welfare, so the list is asked for only when
// the office searches.
import { useEffect, useRef, useState } from "/static/vendor/htm-preact.module.js";
import { api, download, newKey } from "./api.js";
import {
  html, Guarded, Field, Select, Problem, Done, useForm, useLoad, errorAt, flatFields, when,
} from "./ui.js";
import { useMembers } from "./people.js";
import { CaseFields } from "./cases.js";

const PAGE_SIZE = 50;
const NO_ONE = { name: "", relation: "", birth_year: "", conditions: "" };

/** "行动不便, 高血压" -> ["行动不便", "高血压"] */
const splitList = (text) => text.split(/[\n,，、;；]+/).map((c) => c.trim()).filter(Boolean);

/** A household as the form edits it (numbers and lists as typed text). */
export function householdForm(h) {
  return { compound: h ? h.compound : "", address: h ? h.address : "", phone: (h && h.phone) || "",
           people: h ? h.people.map((p) => ({ ...p, birth_year: String(p.birth_year),
                                              conditions: p.conditions.join("、") }))
                     : [{ ...NO_ONE }] };
}

/** The form's text as the API takes it; a birth year that is not a number goes as typed (the API names it). */
function householdBody(v, withPhone) {
  const body = { compound: v.compound.trim(), address: v.address.trim(), people: v.people.map((p) => ({
    name: p.name.trim(), relation: p.relation.trim(),
    birth_year: /^\d{4}$/.test(p.birth_year.trim()) ? Number(p.birth_year.trim()) : p.birth_year,
    conditions: splitList(p.conditions) })) };
  if (withPhone || v.phone.trim()) body.phone = v.phone.trim() || null;
  return body;
}

/** The people of a household: a fieldset per person, rows added and removed. */
function PeopleRows({ form }) {
  const { values, errors } = form;
  const setPerson = (i, name) => (value) => form.setValues((v) => ({ ...v,
    people: v.people.map((p, j) => (j === i ? { ...p, [name]: value } : p)) }));
  const box = useRef(null);
  const add = () => {
    form.setValues((v) => ({ ...v, people: [...v.people, { ...NO_ONE }] }));
    setTimeout(() => [...(box.current?.querySelectorAll("fieldset") || [])].pop()?.querySelector("input")?.focus());
  };
  const remove = (i) => {
    form.setValues((v) => ({ ...v, people: v.people.filter((_, j) => j !== i) }));
    setTimeout(() => box.current?.querySelector("button.add")?.focus());
  };
  const listError = errorAt(errors, "people");
  return html`<div ref=${box}>
    ${values.people.map((p, i) => html`<fieldset class="person" key=${i}>
      <legend>第 ${i + 1} 人 Person ${i + 1}</legend>
      <div class="grid">
        <${Field} label="姓名 Name" value=${p.name} onInput=${setPerson(i, "name")}
          error=${errorAt(errors, "people", String(i), "name")} />
        <${Field} label="关系 Relation" value=${p.relation} onInput=${setPerson(i, "relation")}
          hint="如 户主、配偶、子女 e.g. head, spouse, child" error=${errorAt(errors, "people", String(i), "relation")} />
        <${Field} label="出生年份 Birth year" value=${p.birth_year} onInput=${setPerson(i, "birth_year")}
          inputmode="numeric" error=${errorAt(errors, "people", String(i), "birth_year")} />
        <${Field} label="状况 Conditions" value=${p.conditions} onInput=${setPerson(i, "conditions")}
          hint="用逗号分开 Comma separated" error=${errorAt(errors, "people", String(i), "conditions")} />
      </div>
      ${values.people.length > 1 && html`<button type="button" onClick=${() => remove(i)}
        aria-label=${`删除第 ${i + 1} 人 Remove person ${i + 1}`}>删除此人 Remove person</button>`}
    </fieldset>`)}
    ${Array.isArray(listError) && html`<p class="error" role="alert">${listError.join(" ")}</p>`}
    <p><button type="button" class="add" onClick=${add}>添加一人 Add person</button></p>
  </div>`;
}

/** The fields of a household's errors its form shows beside them (each person's too). */
const shownByFields = (errors) => flatFields(errors).map(([name]) => name)
  .filter((name) => ["compound", "address", "phone"].includes(name) || name.startsWith("people"));

/** New or edited household: compound, address, contact phone, people. */
export function HouseholdForm({ household, title, action, onSaved, onCancel }) {
  const form = useForm(householdForm(household));
  const [key, setKey] = useState(newKey);
  const box = useRef(null);
  // The contact phone: shown on a new household; sent when typed, or when the household has one already.
  const withPhone = Boolean(household && "phone" in household);
  const submit = (event) => {
    event.preventDefault();
    form.submit(async (v) => {
      const body = householdBody(v, withPhone);
      const saved = household
        ? await api("PATCH", `/households/${encodeURIComponent(household.id)}`, { body })
        : await api("POST", "/households", { key, body });
      setKey(newKey());
      if (!household) form.reset();
      onSaved(saved);
    }).then(() => setTimeout(() => box.current?.querySelector("[aria-invalid=true]")?.focus()));
  };
  const { values: v, set, errors } = form;
  return html`<form class="card" ref=${box} onSubmit=${submit} aria-label=${title}>
    <h2>${title}</h2>
    <div class="grid">
      <${Field} label="小区 Compound" name="compound" value=${v.compound} onInput=${set("compound")}
        error=${errors.compound} />
      <${Field} label="地址 Address" name="address" value=${v.address} onInput=${set("address")}
        hint="楼、单元、房号 Building, unit, room" error=${errors.address} />
      ${(withPhone || !household) && html`<${Field} label="联系电话 Contact phone (可不填 optional)" name="phone" type="tel"
        value=${v.phone} onInput=${set("phone")} error=${errors.phone} />`}
    </div>
    <h3>家庭成员 People</h3>
    <${PeopleRows} form=${form} />
    <${Problem} error=${form.problem} shown=${shownByFields(form.errors)} />
    <p class="row"><button class="primary" type="submit" disabled=${form.busy}>${action}</button>
      ${onCancel && html`<button type="button" onClick=${onCancel}>取消 Cancel</button>`}</p>
  </form>`;
}

const names = (h) => h.people.map((p) => p.name).join("、");

// What a person may consent to (welfare's domain.CONSENT_PURPOSES, in its order).
const PURPOSES = {
  case_records: "建立帮扶档案 Keeping case records",
  health_information: "记录健康状况 Recording health conditions",
  financial_information: "记录收入与救助 Recording income and benefits",
  sharing_with_agencies: "向民政等机构转介 Sharing with agencies for referrals",
};
const ANSWERS = [["true", "同意 Consented"], ["false", "撤回 Withdrawn"]];

/** Each person's current answer per purpose, and the form that records a new one (a withdrawal too). */
function Consents({ household, onRecorded }) {
  const form = useForm({ person_position: "", purpose: "", given: "true", given_on: "" });
  const [key, setKey] = useState(newKey);
  const [done, setDone] = useState("");
  const submit = (event) => {
    event.preventDefault();
    setDone("");
    form.submit(async (v) => {
      const body = { purpose: v.purpose, given: v.given === "true" };
      // The person by place; none chosen goes as sent, and the API names the field.
      if (v.person_position !== "") body.person_position = Number(v.person_position);
      if (v.given_on) body.given_on = v.given_on;
      const saved = await api("POST", `/households/${encodeURIComponent(household.id)}/consents`, { key, body });
      setKey(newKey());
      form.reset();
      setDone(`已记录 Recorded: ${saved.person_name} · ${PURPOSES[saved.purpose] || saved.purpose} · `
              + (saved.given ? "同意 Consented" : "撤回 Withdrawn"));
      onRecorded();
    });
  };
  const consents = household.consents || [];
  const { values: v, set, errors } = form;
  return html`<section class="card" aria-labelledby="consents-h">
    <h2 id="consents-h">知情同意 Consents</h2>
    ${consents.length === 0 ? html`<p class="muted">还没有记录同意。No consents recorded yet.</p>`
      : html`<div class="table-wrap"><table class="stack" aria-label="知情同意 Consents">
        <thead><tr><th>姓名 Person</th><th>用途 Purpose</th><th>现状 Now</th><th>日期 On</th></tr></thead>
        <tbody>${consents.map((c) => html`<tr key=${c.id}>
          <td data-label="姓名 Person">${c.person_name}</td>
          <td data-label="用途 Purpose">${PURPOSES[c.purpose] || c.purpose}</td>
          <td data-label="现状 Now">${c.given ? "同意 Consented" : html`<strong>撤回 Withdrawn</strong>`}</td>
          <td data-label="日期 On">${c.given_on}</td></tr>`)}</tbody>
      </table></div>`}
    ${!household.erased_at && html`<form onSubmit=${submit} aria-label="记录同意 Record consent">
      <div class="grid">
        <${Select} label="家庭成员 Person" name="person_position" value=${v.person_position}
          onInput=${set("person_position")} blank="— 请选择 Choose —" error=${errors.person_position}
          options=${household.people.map((p, i) => [String(i), p.name])} />
        <${Select} label="用途 Purpose" name="purpose" value=${v.purpose} onInput=${set("purpose")}
          blank="— 请选择 Choose —" options=${Object.entries(PURPOSES)} error=${errors.purpose} />
        <${Select} label="同意或撤回 Consent or withdrawal" name="given" value=${v.given} onInput=${set("given")}
          options=${ANSWERS} error=${errors.given} />
        <${Field} label="日期 On (不填为今天 empty: today)" name="given_on" type="date" value=${v.given_on}
          onInput=${set("given_on")} error=${errors.given_on} />
      </div>
      <${Problem} error=${form.problem} shown=${["person_position", "person_name", "purpose", "given", "given_on"]} />
      <${Done}>${done}<//>
      <p><button class="primary" type="submit" disabled=${form.busy}>记录 Record</button></p>
    </form>`}
  </section>`;
}

/** Everything welfare holds about the household, as a file for the household (the download is audited). */
function ExportButton({ household }) {
  const [problem, setProblem] = useState(null);
  const [busy, setBusy] = useState(false);
  const run = () => {
    setProblem(null);
    setBusy(true);
    download(`/households/${encodeURIComponent(household.id)}/export`).catch(setProblem)
      .finally(() => setBusy(false));
  };
  return html`<p class="row no-print"><button type="button" onClick=${run} disabled=${busy}>
      导出全部资料 Export everything held (JSON)</button>
    <span class="muted">应住户要求时导出；每次导出都会记录。For the household on request; each export is in the audit log.</span></p>
    <${Problem} error=${problem} />`;
}

function HouseholdList() {
  const search = useForm({ compound: "", q: "" });
  const [found, setFound] = useState(null);
  const [done, setDone] = useState(null);
  const run = (query, cursor) => search.submit(async () => {
    const page = await api("GET", "/households", { query: { ...query, limit: PAGE_SIZE, cursor } });
    setFound((old) => ({ items: cursor ? [...old.items, ...page.items] : page.items,
                         next_cursor: page.next_cursor, query }));
  });
  const submit = (event) => {
    event.preventDefault();
    run({ compound: search.values.compound.trim(), q: search.values.q.trim() });
  };
  return html`
    <h1>住户 Households</h1>
    <form class="card" onSubmit=${submit} aria-label="查找住户 Find households">
      <div class="grid">
        <${Field} label="小区 Compound" name="compound" value=${search.values.compound}
          onInput=${search.set("compound")} error=${search.errors.compound} />
        <${Field} label="地址或姓名 Address or name" name="q" type="search" value=${search.values.q}
          onInput=${search.set("q")} error=${search.errors.q} />
      </div>
      <p class="muted">住户资料的每次查阅都会记录。Every look at households is in the audit log.</p>
      <${Problem} error=${search.problem} shown=${["compound", "q"]} />
      <p><button class="primary" type="submit" disabled=${search.busy}>查找 Search</button></p>
    </form>
    ${found && found.items.length > 0 && html`<div class="table-wrap"><table class="stack" aria-label="住户 Households">
      <thead><tr><th>小区 Compound</th><th>地址 Address</th><th>家庭成员 People</th><th>登记 Registered</th></tr></thead>
      <tbody>${found.items.map((h) => html`<tr key=${h.id}>
        <td data-label="小区 Compound">${h.compound}</td>
        <td data-label="地址 Address"><a href=${"#/households/" + encodeURIComponent(h.id)}>${h.address}</a></td>
        <td data-label="家庭成员 People">${names(h)}</td>
        <td data-label="登记 Registered">${when(h.created_at)}</td></tr>`)}</tbody>
    </table></div>`}
    ${found && html`${found.items.length === 0 && html`<p class="muted">没有找到住户。No households found.</p>`}
    ${found.next_cursor && html`<p><button type="button" disabled=${search.busy}
      onClick=${() => run(found.query, found.next_cursor)}>更多 More</button></p>`}`}
    ${done && html`<${Done}>已登记住户 Household registered: <a href=${"#/households/" + done.id}>${done.address}</a><//>`}
    <${HouseholdForm} title="新建住户 New household" action="新建住户 New household"
      onSaved=${(h) => { location.hash = "#/households/" + encodeURIComponent(h.id); setDone(h); }} />`;
}

/** Open a case for this household: its categories, a summary, the party member who takes it. */
function OpenCaseForm({ household }) {
  const [members, membersError] = useMembers();
  const form = useForm({ categories: [], summary: "", assignee_id: "" });
  const [key, setKey] = useState(newKey);
  const submit = (event) => {
    event.preventDefault();
    form.submit(async (v) => {
      const opened = await api("POST", "/cases", { key, body: { household_id: household.id,
        categories: v.categories, summary: v.summary.trim(), assignee_id: v.assignee_id } });
      setKey(newKey());
      location.hash = "#/cases/" + encodeURIComponent(opened.id);
    });
  };
  return html`<form class="card" onSubmit=${submit} aria-labelledby="open-case-h">
    <h2 id="open-case-h">开立个案 Open case</h2>
    <${CaseFields} form=${form} members=${members} />
    <${Problem} error=${form.problem || membersError} shown=${["categories", "summary", "assignee_id"]} />
    <p><button class="primary" type="submit" disabled=${form.busy}>开立个案 Open case</button></p>
  </form>`;
}

function HouseholdDetail({ id }) {
  const [loaded, , error] = useLoad(() => api("GET", `/households/${encodeURIComponent(id)}`), [id]);
  const [household, setHousehold] = useState(null);
  const reload = () => api("GET", `/households/${encodeURIComponent(id)}`).then(setHousehold);
  const [editing, setEditing] = useState(false);
  const [done, setDone] = useState("");
  const heading = useRef(null);
  useEffect(() => { if (loaded) setHousehold(loaded); }, [loaded]);
  useEffect(() => { heading.current?.focus(); }, [household && household.id, editing]);
  if (error) return html`<h1>住户 Household</h1><${Problem} error=${error} />
    <p><a href="#/households">返回住户 Back to households</a></p>`;
  if (!household) return html`<h1>住户 Household</h1><p class="loading">正在加载 Loading…</p>`;
  return html`
    <p class="no-print"><a href="#/households">← 住户 Households</a></p>
    <h1 tabindex="-1" ref=${heading}>住户 Household: ${household.compound} ${household.address}</h1>
    <${Done}>${done}<//>
    ${household.erased_at && html`<p class="notice busy" role="status"><strong>个人资料已删除 Personal details
      erased</strong> ${when(household.erased_at)}: 保留期满后随最后一个个案删除，只留统计所需。Erased with its last
      case after the retention period; only what the counts need is kept.</p>`}
    ${editing
      ? html`<${HouseholdForm} household=${household} title="编辑住户 Edit household" action="保存 Save"
          onCancel=${() => setEditing(false)}
          onSaved=${(h) => { setHousehold(h); setEditing(false); setDone("已保存 Saved"); }} />`
      : html`<section class="card">
          <dl class="facts">
            <dt>小区 Compound</dt><dd>${household.compound}</dd>
            <dt>地址 Address</dt><dd>${household.address}</dd>
            ${"phone" in household && html`<dt>联系电话 Contact phone</dt><dd>${household.phone || "—"}</dd>`}
            <dt>登记 Registered</dt><dd>${when(household.created_at)}</dd>
          </dl>
          <div class="table-wrap"><table class="stack" aria-label="家庭成员 People">
            <thead><tr><th>姓名 Name</th><th>关系 Relation</th><th class="num">出生年份 Birth year</th>
              <th>状况 Conditions</th></tr></thead>
            <tbody>${household.people.map((p, i) => html`<tr key=${i}><td data-label="姓名 Name">${p.name}</td>
              <td data-label="关系 Relation">${p.relation}</td>
              <td data-label="出生年份 Birth year" class="num">${p.birth_year}</td>
              <td data-label="状况 Conditions">${p.conditions.join("、") || "—"}</td></tr>`)}</tbody>
          </table></div>
          ${!household.erased_at && html`<p><button type="button"
            onClick=${() => { setDone(""); setEditing(true); }}>编辑 Edit</button></p>`}
          <${ExportButton} household=${household} />
        </section>`}
    <${Consents} household=${household} onRecorded=${reload} />
    ${!household.erased_at && html`<${OpenCaseForm} household=${household} />`}`;
}

function HouseholdsBody({ args }) {
  return args && args[0] ? html`<${HouseholdDetail} id=${args[0]} key=${args[0]} />` : html`<${HouseholdList} />`;
}

export function HouseholdsPage(props) {
  return html`<${Guarded}><${HouseholdsBody} ...${props} /><//>`;
}

// 成员 Members: find an account by name, phone or username; register one; change
// one (name, phone, compound, roles, party membership), disable or enable it, and
// set a forgotten password. A search by keyword reads personal data in bulk: the
// gateway audits it (GET /audit?source=accounts).
import { useEffect, useRef, useState } from "/static/vendor/htm-preact.module.js";
import { api, newKey } from "./api.js";
import { html, Guarded, Field, Select, Check, Problem, Done, useForm, ROLE_LABELS } from "./ui.js";
import { loadMembers } from "./people.js";

const PAGE_SIZE = 50;
const ROLE_OPTIONS = Object.entries(ROLE_LABELS);
const YES_NO = [["true", "是 Yes"], ["false", "否 No"]];

/** Who a member is, as registering and editing both ask it: name, phone, compound. */
function ProfileFields({ form }) {
  const { values: v, set, errors } = form;
  return html`
    <${Field} label="姓名 Name" name="name" value=${v.name} onInput=${set("name")} error=${errors.name} />
    <${Field} label="电话 Phone" name="phone" type="tel" value=${v.phone} onInput=${set("phone")}
      error=${errors.phone} />
    <${Field} label="小区 Compound" name="compound" value=${v.compound} onInput=${set("compound")}
      error=${errors.compound} />`;
}

/** What a member may do: roles, and whether they are a party member. */
function RolesRow({ form }) {
  const { values: v, set, errors } = form;
  return html`<div class="row">
    <${RoleChecks} roles=${v.roles} onInput=${set("roles")} error=${errors.roles} />
    <${Check} label="党员 Party member" checked=${v.party_member} onInput=${set("party_member")} />
  </div>`;
}

/** Roles as checkboxes; at least one stays ticked (the API needs one). */
function RoleChecks({ roles, onInput, error }) {
  const toggle = (role) => (on) => onInput(on ? [...new Set([...roles, role])] : roles.filter((r) => r !== role));
  const errors = [].concat(error || []);
  return html`<fieldset class="roles"><legend>角色 Roles</legend>
    ${ROLE_OPTIONS.map(([role, text]) => html`<${Check} label=${text} checked=${roles.includes(role)}
      onInput=${toggle(role)} />`)}
    ${errors.length > 0 && html`<span class="error" role="alert">${errors.join(" ")}</span>`}
  </fieldset>`;
}

const BLANK = { username: "", password: "", name: "", phone: "", roles: ["member"], party_member: false, compound: "" };

/** The phone and compound as the API takes them: an empty box is "none". */
const orNull = (text) => (text && text.trim() ? text.trim() : null);

function RegisterForm({ onDone }) {
  const form = useForm(BLANK);
  const [key, setKey] = useState(newKey);
  const [done, setDone] = useState("");
  const first = useRef(null);
  const submit = (event) => {
    event.preventDefault();
    setDone("");
    form.submit(async (v) => {
      const member = await api("POST", "/members", { key, body: {
        username: v.username.trim(), password: v.password, name: v.name.trim(), phone: orNull(v.phone),
        roles: v.roles, party_member: v.party_member, compound: orNull(v.compound) } });
      setKey(newKey());
      form.reset();
      setDone(`已登记 Registered: ${member.name} (${member.username})`);
      first.current?.querySelector("input")?.focus();
      onDone(member);
    });
  };
  const { values: v, set, errors } = form;
  return html`<form class="card" onSubmit=${submit} ref=${first} aria-labelledby="register-h">
    <h2 id="register-h">登记成员 Register member</h2>
    <div class="grid">
      <${Field} label="用户名 Username" name="username" value=${v.username} onInput=${set("username")}
        autocomplete="off" hint="3–40 个小写字母、数字、_ . - / a-z, 0-9, _ . -" error=${errors.username} />
      <${Field} label="初始密码 Password" name="password" type="password" value=${v.password}
        onInput=${set("password")} autocomplete="new-password" hint="至少 10 位 At least 10 characters"
        error=${errors.password} />
      <${ProfileFields} form=${form} />
    </div>
    <${RolesRow} form=${form} />
    <${Problem} error=${form.problem} shown=${Object.keys(BLANK)} />
    <${Done}>${done}<//>
    <p><button class="primary" type="submit" disabled=${form.busy}>登记成员 Register member</button></p>
  </form>`;
}

/** One member's edit panel: the account's details, and a new password. */
function EditPanel({ member, onSaved, onClose }) {
  const form = useForm({ name: member.name, phone: member.phone || "", compound: member.compound || "",
                         roles: member.roles, party_member: member.party_member });
  const pw = useForm({ new_password: "" });
  const [done, setDone] = useState("");
  const box = useRef(null);
  useEffect(() => { box.current?.querySelector("input")?.focus(); }, [member.id]);
  const save = (event) => {
    event.preventDefault();
    setDone("");
    form.submit(async (v) => {
      const saved = await api("PATCH", `/members/${encodeURIComponent(member.id)}`, { body: {
        name: v.name.trim(), phone: orNull(v.phone), compound: orNull(v.compound), roles: v.roles,
        party_member: v.party_member } });
      setDone(`已保存 Saved: ${saved.name}`);
      onSaved(saved);
    });
  };
  const setPassword = (event) => {
    event.preventDefault();
    setDone("");
    pw.submit(async (v) => {
      await api("POST", `/members/${encodeURIComponent(member.id)}/password`, { body: v });
      pw.reset();
      setDone(`已重置密码 Password reset for ${member.name}: 其已登录的设备需重新登录 their sessions have ended.`);
    });
  };
  return html`<section class="card" ref=${box} aria-labelledby="edit-h">
    <h2 id="edit-h">编辑成员 Edit member: ${member.name} <span class="muted">(${member.username})</span></h2>
    <form onSubmit=${save}>
      <div class="grid">
        <${ProfileFields} form=${form} />
      </div>
      <${RolesRow} form=${form} />
      <${Problem} error=${form.problem} shown=${["name", "phone", "compound", "roles"]} />
      <p class="row"><button class="primary" type="submit" disabled=${form.busy}>保存 Save</button>
        <button type="button" onClick=${onClose}>关闭 Close</button></p>
    </form>
    <form onSubmit=${setPassword} class="row">
      <${Field} label="新密码 New password" name="new_password" type="password" value=${pw.values.new_password}
        onInput=${pw.set("new_password")} autocomplete="new-password" error=${pw.errors.new_password} />
      <button type="submit" disabled=${pw.busy}>重置密码 Reset password</button>
    </form>
    <${Problem} error=${pw.problem} shown=${["new_password"]} />
    <${Done}>${done}<//>
  </section>`;
}

function MemberRow({ member, onEdit, onToggle, busy }) {
  const roles = member.roles.map((r) => ROLE_LABELS[r] || r).join("、");
  return html`<tr>
    <td data-label="姓名 Name">${member.name}</td>
    <td data-label="用户名 Username">${member.username}</td>
    <td data-label="电话 Phone" class="nowrap">${member.phone || "—"}</td>
    <td data-label="角色 Roles">${roles}</td>
    <td data-label="党员 Party member">${member.party_member ? "是 Yes" : "否 No"}</td>
    <td data-label="小区 Compound">${member.compound || "—"}</td>
    <td data-label="状态 Status">${member.active ? "在用 Active" : html`<span class="tag retired">已停用 Disabled</span>`}</td>
    <td class="actions">
      <button type="button" onClick=${() => onEdit(member)} aria-label=${`编辑 Edit ${member.name}`}>编辑 Edit</button>
      <button type="button" disabled=${busy} onClick=${() => onToggle(member)}
        aria-label=${`${member.active ? "停用 Disable" : "启用 Enable"} ${member.name}`}>
        ${member.active ? "停用 Disable" : "启用 Enable"}</button>
    </td>
  </tr>`;
}

function MembersBody() {
  const search = useForm({ q: "", role: "", compound: "", party_member: "", active: "" });
  const [found, setFound] = useState(null); // {items, next_cursor, query}
  const [editing, setEditing] = useState(null);
  const [rowProblem, setRowProblem] = useState(null);
  const [rowBusy, setRowBusy] = useState(false);

  const run = (query, cursor) => search.submit(async () => {
    const page = await api("GET", "/members", { query: { ...query, limit: PAGE_SIZE, cursor } });
    setFound((old) => ({ items: cursor ? [...old.items, ...page.items] : page.items,
                         next_cursor: page.next_cursor, query }));
  });
  const current = () => {
    const v = search.values;
    return { q: v.q.trim(), role: v.role, compound: v.compound.trim(), party_member: v.party_member,
             active: v.active };
  };
  useEffect(() => { run({}); }, []);

  const replace = (member) => setFound((old) => old && ({ ...old,
    items: old.items.map((m) => (m.id === member.id ? member : m)) }));
  const toggle = async (member) => {
    setRowProblem(null);
    setRowBusy(true);
    try {
      replace(await api("PATCH", `/members/${encodeURIComponent(member.id)}`, { body: { active: !member.active } }));
      loadMembers(true);
    } catch (error) {
      setRowProblem({ who: member.name, error });
    } finally {
      setRowBusy(false);
    }
  };
  const { values: v, set, errors } = search;
  return html`
    <h1>成员 Members</h1>
    <form class="card" onSubmit=${(e) => { e.preventDefault(); run(current()); }} aria-label="查找成员 Find members">
      <div class="grid">
        <${Field} label="关键词 Name, phone or username" name="q" type="search" value=${v.q} onInput=${set("q")}
          error=${errors.q} />
        <${Select} label="角色 Role" name="role" value=${v.role} onInput=${set("role")} options=${ROLE_OPTIONS}
          blank="全部 All" error=${errors.role} />
        <${Field} label="小区 Compound" name="compound" value=${v.compound} onInput=${set("compound")}
          error=${errors.compound} />
        <${Select} label="党员 Party member" name="party_member" value=${v.party_member}
          onInput=${set("party_member")} options=${YES_NO} blank="全部 All" error=${errors.party_member} />
        <${Select} label="在用 Active" name="active" value=${v.active} onInput=${set("active")} options=${YES_NO}
          blank="全部 All" error=${errors.active} />
      </div>
      <${Problem} error=${search.problem} shown=${["q", "role", "compound", "party_member", "active"]} />
      <p><button class="primary" type="submit" disabled=${search.busy}>查找 Search</button></p>
    </form>
    ${editing && html`<${EditPanel} key=${editing.id} member=${editing} onClose=${() => setEditing(null)}
      onSaved=${(m) => { replace(m); setEditing(m); loadMembers(true); }} />`}
    ${rowProblem && html`<div class="notice bad" role="alert">${rowProblem.who}: ${rowProblem.error.message}</div>`}
    ${found && found.items.length > 0 && html`<div class="table-wrap"><table class="stack" aria-label="成员 Members">
      <thead><tr><th>姓名 Name</th><th>用户名 Username</th><th>电话 Phone</th><th>角色 Roles</th>
        <th>党员 Party member</th><th>小区 Compound</th><th>状态 Status</th><th>操作 Actions</th></tr></thead>
      <tbody>${found.items.map((m) => html`<${MemberRow} key=${m.id} member=${m} busy=${rowBusy}
        onEdit=${(member) => { setRowProblem(null); setEditing(member); }} onToggle=${toggle} />`)}</tbody>
    </table></div>`}
    ${found && html`${found.items.length === 0 && html`<p class="muted">没有找到成员。No members found.</p>`}
    ${found.next_cursor && html`<p><button type="button" disabled=${search.busy}
      onClick=${() => run(found.query, found.next_cursor)}>更多 More</button></p>`}`}
    <${RegisterForm} onDone=${(m) => { loadMembers(true); setFound((old) => old && ({ ...old,
      items: [m, ...old.items.filter((x) => x.id !== m.id)] })); }} />`;
}

export function MembersPage(props) {
  return html`<${Guarded}><${MembersBody} ...${props} /><//>`;
}

// PLACEHOLDER, replaced by this work: the shell's page for "我的个案 My cases".
import { html } from "./ui.js";

export function MyCasesPage() {
  return html`<h1>我的个案 My cases</h1>`;
}

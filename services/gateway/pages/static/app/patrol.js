// PLACEHOLDER, replaced by this work: the shell's page for "巡逻 Patrol".
import { html } from "./ui.js";

export function PatrolPage() {
  return html`<h1>巡逻 Patrol</h1>`;
}

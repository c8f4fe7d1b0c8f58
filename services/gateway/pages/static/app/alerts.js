// PLACEHOLDER, replaced by this work: the shell's page for "提醒 Alerts".
import { html } from "./ui.js";

export function AlertsPage() {
  return html`<h1>提醒 Alerts</h1>`;
}

// PLACEHOLDER, replaced by this work: the shell's page for "事件 Incidents".
import { html } from "./ui.js";

export function IncidentsPage() {
  return html`<h1>事件 Incidents</h1>`;
}

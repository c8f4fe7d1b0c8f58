// Placeholder until this page is built.
import { html } from "./ui.js";

export function CasesPage() {
  return html`<h1>cases</h1><p class="muted">尚未建成 Not built yet.</p>`;
}

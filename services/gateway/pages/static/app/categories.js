// Placeholder until this page is built.
import { html } from "./ui.js";

export function CategoriesPage() {
  return html`<h1>categories</h1><p class="muted">尚未建成 Not built yet.</p>`;
}

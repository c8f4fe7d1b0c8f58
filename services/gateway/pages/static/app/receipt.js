// Placeholder until this page is built.
import { html } from "./ui.js";

export function ReceiptPage() {
  return html`<h1>receipt</h1><p class="muted">尚未建成 Not built yet.</p>`;
}

// The token prompt of the desk pages (ledger, registers, review): `#login` with its `#token` field and `#go` button.
// It shows when the page holds no token or the API refused the one held; a token entered (button or Enter) is kept
// by the page's client and the page starts again.
import { $ } from "./dom.js";

export function tokenPrompt(client, start) {
  const box = $("login");
  const enter = () => { client.setToken($("token").value.trim()); start(); };
  $("go").addEventListener("click", enter);
  $("token").addEventListener("keydown", ev => { if (ev.key === "Enter") enter(); });
  return {
    /** Shows the prompt and says true when no token is held (the page waits for one). */
    missing() { if (client.token) return false; box.classList.remove("hidden"); return true; },
    show() { box.classList.remove("hidden"); },
    hide() { box.classList.add("hidden"); },
  };
}

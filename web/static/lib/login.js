// The token prompt of the desk pages (ledger, registers, review): `#login` with its `#token` field and `#go` button,
// and the page's `#error` line. The prompt shows when the page holds no token or the API refused the one held; a
// token entered (button or Enter) is kept by the page's client and the page starts again. A failure that is not
// about the token (no network, the server down or restarting) never asks for the token again: it is said as such
// and the page tries again by itself, sooner first, then every 30 s.
import { $ } from "./dom.js";

export function tokenPrompt(client, start) {
  const box = $("login");
  let attempt = 0;
  let timer = null;
  const enter = () => {
    const token = $("token").value.trim();
    if (!token) { $("error").textContent = "请输入访问令牌"; return; }
    client.setToken(token);
    start();
  };
  $("go").addEventListener("click", enter);
  $("token").addEventListener("keydown", ev => { if (ev.key === "Enter") enter(); });
  return {
    /** Shows the prompt and says true when no token is held (the page waits for one). */
    missing() { if (client.token) return false; box.classList.remove("hidden"); return true; },
    show() { box.classList.remove("hidden"); },
    /** The page started: the prompt and any retry notice go. */
    hide() { box.classList.add("hidden"); attempt = 0; clearTimeout(timer); },
    /** The page's first requests failed with `e`: a refused token (401, 403) shows the prompt with the reason
     *  (`forbidden` for a 403, if the page has its own words); anything else is a network or server fault, said
     *  so, and the page starts again by itself. */
    failed(e, forbidden = "") {
      clearTimeout(timer);
      if (e.status === 401 || e.status === 403) {
        attempt = 0;
        $("error").textContent = e.status === 401 ? "访问令牌无效、已过期或已被吊销，请重新输入"
          : forbidden || e.message || "当前身份无权使用本页";
        box.classList.remove("hidden");
        return;
      }
      attempt += 1;
      const seconds = Math.min(30, 2 ** attempt);
      $("error").textContent = `${e.status ? e.message : "网络异常：未能连接服务器"}（${seconds} 秒后自动重试）`;
      box.classList.add("hidden");
      timer = setTimeout(start, seconds * 1000);
    },
  };
}

// The inspector page's entry: the live feed, sign-in (a one-time link or a token), the offline shell, start.
import { $, CACHE, M, S, TOKEN_KEY, hooks, store } from "./state.js";
import { call, flash, setConn } from "./ui.js";
import { announce, loadAlerts, scheduleReload } from "./alerts.js";
import { openTask, refreshAlert, renderTask, route, taskOf } from "./task.js";
import { buildItems } from "./form.js";

let started = false;
Object.assign(hooks, { openTask, refreshAlert, renderTask, taskOf, scheduleReload, showLogin });

// -- the live feed -------------------------------------------------------------------------------------------------
export function connect() {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${proto}://${location.host}/api/v1/live`);  // the token goes in the first message
  liveSocket = ws; heardAt = Date.now();
  ws.onopen = () => {
    const auth = { type: "auth", token: S.token };
    if (S.lastId != null) auth.since = S.lastId;
    ws.send(JSON.stringify(auth));
  };
  ws.onmessage = msg => {
    if (liveSocket !== ws) return;
    heardAt = Date.now();
    const ev = JSON.parse(msg.data);
    if (ev.type === "ping") return;
    if (ev.type === "error") {
      if (["AUTH_INVALID", "FORBIDDEN_ROLE", "AUTH_REQUIRED"].includes(ev.code)) { ws.onclose = null; ws.close(); showLogin(ev.message); }
      return;
    }
    if (ev.type === "hello") {
      if (ev.ping_s) silenceLimitMs = 3 * ev.ping_s * 1000;
      setConn(true, "实时连接正常");
      if (S.announceAfter == null) S.announceAfter = ev.last_id;
      if (S.lastId == null) S.lastId = ev.last_id;
      return;
    }
    if (ev.type === "reset") { S.lastId = ev.last_id; scheduleReload(); return; }
    S.lastId = Math.max(S.lastId || 0, ev.id);
    const d = ev.data || {};
    if (ev.type === "page") {
      if (d.staff_id !== S.me.id) return;
      scheduleReload();
      if (ev.id > S.announceAfter) announce(d);
    } else if (["alert", "anomaly", "anomaly_resolved"].includes(ev.type)) {
      if (S.alerts.some(a => a.id === d.alert_id) || (S.me && d.assignee_staff_id === S.me.id)) scheduleReload();
    }
  };
  ws.onclose = () => { setConn(false, "连接中断，正在重连…"); setTimeout(connect, 2000); };
}
// A link that hears nothing for three of the server's pings is dead even if it never closed (a half-open
// connection after the phone changed networks): dropped, and the page reconnects and resumes from lastId.
let liveSocket = null;
let heardAt = 0;
let silenceLimitMs = 60000;
setInterval(() => {
  if (liveSocket && liveSocket.readyState === WebSocket.OPEN && Date.now() - heardAt > silenceLimitMs) {
    const dead = liveSocket;
    liveSocket = null;
    dead.onclose = null;
    try { dead.close(); } catch { /* already gone */ }
    setConn(false, "连接中断，正在重连…");
    setTimeout(connect, 1000);
  }
}, 2000);

// -- sign-in -------------------------------------------------------------------------------------------------------
export function showLogin(message) {
  $("login").classList.remove("hidden");
  $("login-error").textContent = message || "";
}
$("login-form").addEventListener("submit", ev => {
  ev.preventDefault();
  S.token = $("login-token").value.trim();
  for (const k of store.keys(sessionStorage)) if (k.startsWith(CACHE)) store.drop(sessionStorage, k);  // another person's
  try { sessionStorage.setItem(TOKEN_KEY, S.token); } catch { /* kept in memory */ }
  $("login").classList.add("hidden");
  start();
});

// A one-time sign-in link (#signin=…) an admin issued: exchanged once for a session of a working day.
export async function redeemSignIn() {
  const m = location.hash.match(/signin=([A-Za-z0-9_-]+)/);
  if (!m) return;
  history.replaceState(null, "", location.pathname);
  try {
    const res = await fetch("/auth/sign-in", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ code: m[1] }) });
    const body = await res.json();
    if (!res.ok) { S.token = null; showLogin(body.message || `登录失败（HTTP ${res.status}）`); return; }
    for (const k of store.keys(sessionStorage)) if (k.startsWith(CACHE)) store.drop(sessionStorage, k);
    S.token = body.token;
    try { sessionStorage.setItem(TOKEN_KEY, S.token); } catch { /* kept in memory */ }
    flash(`${body.name}，已登录，本次登录有效至 ${M.dateTime(body.expires_at)}`);
  } catch { showLogin("网络异常：未能连接服务器，请联网后重新打开登录链接"); }
}

// The offline shell: a reload without network shows this page and its drafts (web/static/shell-sw.js, served as /inspector-sw.js).
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/inspector-sw.js", { scope: "/inspector" })
    .then(() => { document.body.dataset.offlineShell = "registered"; })
    .catch(() => { document.body.dataset.offlineShell = "unavailable"; });
}

export async function start() {
  if (location.hash.includes("signin=")) await redeemSignIn();
  if (!S.token) { if ($("login").classList.contains("hidden")) showLogin(); return; }
  try {
    S.me = await call("/api/v1/staff/me");
    store.set(sessionStorage, CACHE + "me", S.me);
  } catch (e) {
    S.me = e.network ? store.get(sessionStorage, CACHE + "me") : null;
    if (!S.me) {
      if (e.network) setTimeout(start, 5000);
      else showLogin(e.status === 404 ? "该令牌未绑定抽查人员，请向管理员索取本人的令牌" : e.message);
      return;
    }
  }
  $("me").textContent = `${S.me.name}${S.me.on_duty ? " · 在岗" : " · 不在岗"}`;
  document.dispatchEvent(new Event("monitor:signed-in"));  // the page's other sections (draws) may now load
  if (started) return;
  started = true;
  await M.catalogue;
  buildItems();
  await loadAlerts();
  route();
  connect();
  setInterval(loadAlerts, 60000);  // a safety net: deadlines and pages even if an event was missed
}
start();

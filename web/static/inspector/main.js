// The inspector page's entry: the live feed, sign-in (a one-time link or a token), the offline shell, start.
import { $ } from "../lib/dom.js";
import { catalogue } from "../lib/catalogue.js";
import { dateTime } from "../lib/format.js";
import { openLive } from "../lib/live.js";
import { registerShell } from "../lib/shell.js";
import { CACHE, S, client, hooks, store } from "./state.js";
import { call, flash, setConn } from "./ui.js";
import { announce, loadAlerts, scheduleReload } from "./alerts.js";
import { openTask, refreshAlert, renderTask, route, taskOf } from "./task.js";
import { buildItems } from "./form.js";
import "./draws.js";

let started = false;
Object.assign(hooks, { openTask, refreshAlert, renderTask, taskOf, scheduleReload, showLogin });

// -- the live feed (web/static/lib/live.js: the token in the first message, resumed from the last event after a
// drop, a silent link dropped as dead) ------------------------------------------------------------------------------
let live = null;
function onEvent(ev) {
  const d = ev.data || {};
  if (ev.type === "page") {
    if (!S.me || d.staff_id !== S.me.id) return;
    scheduleReload();
    if (ev.id > S.announceAfter) announce(d);  // events up to the first hello are history: no sound for them
  } else if (["alert", "anomaly", "anomaly_resolved"].includes(ev.type)) {
    if (S.alerts.some(a => a.id === d.alert_id) || (S.me && d.assignee_staff_id === S.me.id)) scheduleReload();
  }
}
export function connect() {
  if (live) { live.restart(); return; }  // signed in again (another token): the feed follows it
  live = openLive(client, {
    hello(ev) { if (S.announceAfter == null) S.announceAfter = ev.last_id; },
    event: onEvent,
    reset: () => scheduleReload(),
    auth: message => { setConn(false, "登录已失效，实时推送已停止"); showLogin(message); },
    status({ live: up, attempt }) {
      if (up) setConn(true, "实时连接正常");
      else if (attempt > 0) setConn(false, "连接中断，正在重连…");
    },
  });
}

// -- sign-in -------------------------------------------------------------------------------------------------------
export function showLogin(message) {
  $("login").classList.remove("hidden");
  $("login-error").textContent = message || "";
}
function forgetAnswers() {  // the last answers kept for this tab are another person's
  for (const k of store.keys(sessionStorage)) if (k.startsWith(CACHE)) store.drop(sessionStorage, k);
}
$("login-form").addEventListener("submit", ev => {
  ev.preventDefault();
  forgetAnswers();
  client.setToken($("login-token").value.trim());
  $("login").classList.add("hidden");
  start();
});

// A one-time sign-in link (#signin=…) an admin issued: exchanged once for a session of a working day.
export async function redeemSignIn() {
  const m = location.hash.match(/signin=([A-Za-z0-9_-]+)/);
  if (!m) return;
  history.replaceState(null, "", location.pathname);
  try {
    const body = await client.request("/auth/sign-in", { method: "POST", json: { code: m[1] }, auth: false });
    forgetAnswers();
    client.setToken(body.token);
    flash(`${body.name}，已登录，本次登录有效至 ${dateTime(body.expires_at)}`);
  } catch (e) {
    if (e.network) { showLogin("网络异常：未能连接服务器，请联网后重新打开登录链接"); return; }
    client.setToken(null);
    showLogin(e.message || `登录失败（HTTP ${e.status}）`);
  }
}

registerShell("inspector");  // a reload without network shows this page and its drafts

export async function start() {
  if (location.hash.includes("signin=")) await redeemSignIn();
  if (!client.token) { if ($("login").classList.contains("hidden")) showLogin(); return; }
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
  if (started) { connect(); return; }
  started = true;
  await catalogue;
  buildItems();
  await loadAlerts();
  route();
  connect();
  setInterval(loadAlerts, 60000);  // a safety net: deadlines and pages even if an event was missed
}
start();

// The inspector's alerts: a new page's sound, vibration and notification; the lists of my tasks and history.
import { $, el } from "../lib/dom.js";
import { SEVERITY, ruleName } from "../lib/catalogue.js";
import { dateTime, time } from "../lib/format.js";
import { CACHE, CHECK_OF, DRAFT, FINISHED, OUTCOMES, S, WORKING, hooks, store } from "./state.js";
import { call, flash, post, say, why } from "./ui.js";

// -- sound and vibration for a new page: only once the inspector has touched the page (browsers require it) --------
export let audio = null;
export function unlock() {
  try {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!audio && Ctx) audio = new Ctx();
    if (audio && audio.state === "suspended") audio.resume().catch(() => {});
  } catch { audio = null; }
  $("sound").textContent = "新任务提示音和振动已开启";
  $("sound").classList.add("on");
  // A system notification too, when the phone allows it (asked once, on this first touch).
  try {
    if ("Notification" in window && Notification.permission === "default") Notification.requestPermission().catch(() => {});
  } catch { /* no notifications on this browser */ }
}
for (const type of ["pointerdown", "keydown", "touchstart"]) document.addEventListener(type, unlock, { passive: true });
export function beep() {
  if (!audio || audio.state !== "running") return false;
  try {
    const t = audio.currentTime;
    for (const [at, freq] of [[0, 880], [0.25, 1175]]) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = "sine"; osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, t + at);
      gain.gain.exponentialRampToValueAtTime(0.3, t + at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + at + 0.2);
      osc.connect(gain).connect(audio.destination);
      osc.start(t + at); osc.stop(t + at + 0.22);
    }
    return true;
  } catch { return false; }
}
export function buzz() {
  try {
    const active = !navigator.userActivation || navigator.userActivation.hasBeenActive;
    if (active && typeof navigator.vibrate === "function") navigator.vibrate([200, 100, 200]);
  } catch { /* no vibration on this device */ }
}
export function announce(data) {
  const b = document.body.dataset;
  b.paged = String(Number(b.paged || 0) + 1);
  if (beep()) b.sounded = String(Number(b.sounded || 0) + 1);
  buzz();
  const text = `新任务：${ruleName(data.rule)} · ${data.class_name || ""}`;
  flash(text);
  notify(text, data);
}
// While the page is open (also in the background), a new page shows a system notification; a tap on it opens the task.
export function notify(text, data) {
  try {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    const n = new Notification("抽查任务", { body: text, tag: `alert-${data.alert_id || data.id || ""}`, renotify: true,
      lang: "zh-CN", requireInteraction: true });
    n.onclick = () => { window.focus(); if (data.alert_id) location.hash = `#alert=${data.alert_id}`; n.close(); };
    const b = document.body.dataset;
    b.notified = String(Number(b.notified || 0) + 1);
  } catch { /* some phones allow notifications only from a service worker */ }
}

// -- my alerts -----------------------------------------------------------------------------------------------------
export const myOpenPage = a => a.pages.filter(p => p.staff_id === S.me.id && p.state === "paged").at(-1);
export function kindOf(a) {
  if (a.state === "dispatched" && myOpenPage(a)) return "paged";
  if (a.assignee_staff_id === S.me.id && WORKING.includes(a.state)) return "working";
  if (FINISHED.includes(a.state) && (a.assignee_staff_id === S.me.id
      || a.transitions.some(t => t.staff_id === S.me.id && t.action === "close"))) return "history";
  return null;
}
export const closing = a => [...a.transitions].reverse().find(t => t.action === "close" || t.action === "dismiss");

export function card(a, kind) {
  const li = el("li", `card ${kind} ${a.severity}`);
  li.dataset.alertId = a.id;
  const title = el("div", "title");
  title.append(el("b", "", ruleName(a.rule)), el("span", `badge ${a.state}`, a.state_name));
  li.append(title, el("div", "where", a.class_name), el("div", "sub", a.institution_name),
    el("div", "sub", `${SEVERITY[a.severity] || a.severity} · 共 ${a.count} 次 · 最近 ${dateTime(a.last_at)}`));
  if (kind === "paged") {
    const due = el("div", "due");
    due.dataset.deadline = myOpenPage(a).deadline;
    const btn = el("button", "accept", "接单");
    btn.type = "button";
    const msg = el("p", "msg");
    btn.addEventListener("click", ev => { ev.stopPropagation(); accept(a.id, btn, msg); });
    li.append(due, btn, msg);
  } else if (kind === "working") {
    const btn = el("button", "open", "处理");
    btn.type = "button";
    li.append(btn);
  } else {
    const step = closing(a);
    li.append(el("div", "outcome", `处置结果：${OUTCOMES[a.outcome] || a.state_name}`));
    if (step) li.append(el("div", "sub", `${dateTime(step.at)} ${step.actor}${step.note ? "：" + step.note : ""}`));
    if (a.inspection_ids && a.inspection_ids.length) li.append(el("div", "sub", `已归档检查表 ${a.inspection_ids.length} 份`));
  }
  li.addEventListener("click", () => hooks.openTask(a.id));
  return li;
}

export function renderLists() {
  const tasks = [], done = [];
  for (const a of S.alerts) {
    const kind = kindOf(a);
    if (kind === "paged" || kind === "working") tasks.push([a, kind]);
    else if (kind === "history") done.push([a, kind]);
  }
  tasks.sort((x, y) => (x[1] === "paged" ? 0 : 1) - (y[1] === "paged" ? 0 : 1));
  $("tasks").replaceChildren(...tasks.map(([a, k]) => card(a, k)));
  $("history").replaceChildren(...done.map(([a, k]) => card(a, k)));
  $("tasks-empty").classList.toggle("hidden", tasks.length > 0);
  $("history-empty").classList.toggle("hidden", done.length > 0);
  const paged = tasks.filter(([, k]) => k === "paged").length;
  $("task-count").textContent = tasks.length ? `（待接单 ${paged}，处理中 ${tasks.length - paged}）` : "";
  document.title = (paged ? `(${paged}) ` : "") + "抽查任务 · 云南省职业技能培训监控调度中心";
  tick();
}

export function tick() {
  for (const due of document.querySelectorAll("[data-deadline]")) {
    const left = Math.round((Date.parse(due.dataset.deadline) - Date.now()) / 1000);
    due.classList.toggle("late", left <= 0);
    due.textContent = left > 0
      ? `请在 ${time(due.dataset.deadline)} 前接单（剩余 ${Math.floor(left / 60)} 分 ${String(left % 60).padStart(2, "0")} 秒）`
      : `接单时限 ${time(due.dataset.deadline)} 已过，可能已转派他人`;
  }
}
setInterval(tick, 1000);

export function pruneDrafts() {  // drafts of finished alerts are no longer needed on this phone
  for (const a of S.alerts.filter(x => FINISHED.includes(x.state))) {
    store.drop(localStorage, `${DRAFT}close.${a.id}`);
    store.drop(localStorage, `${DRAFT}inspect.${a.id}`);
    const checkId = store.get(localStorage, CHECK_OF + a.id);
    if (checkId != null) {
      for (const k of store.keys(localStorage)) if (k.startsWith(`${DRAFT}call.${checkId}.`)) store.drop(localStorage, k);
      store.drop(localStorage, CHECK_OF + a.id);
    }
  }
}

export async function loadAlerts() {
  try {
    S.alerts = await call("/api/v1/my/alerts");
    store.set(sessionStorage, CACHE + "alerts", S.alerts);
    pruneDrafts();
  } catch (e) {
    if (!e.network) flash(why(e));
    if (!S.alerts.length) S.alerts = store.get(sessionStorage, CACHE + "alerts") || [];
  }
  renderLists();
  if (S.current != null) hooks.renderTask();
}
export let reloadTimer = null;
export function scheduleReload() { clearTimeout(reloadTimer); reloadTimer = setTimeout(loadAlerts, 250); }

export function upsert(a) {
  const i = S.alerts.findIndex(x => x.id === a.id);
  if (i >= 0) S.alerts[i] = a; else S.alerts.unshift(a);
  store.set(sessionStorage, CACHE + "alerts", S.alerts);
  renderLists();
  if (S.current === a.id) hooks.renderTask();
}

export async function accept(id, button, msg) {
  button.disabled = true;
  say(msg, "正在接单…", "wait");
  try {
    upsert(await post(`/api/v1/alerts/${id}/accept`));
    say(msg, "");
    hooks.openTask(id);
  } catch (e) {
    say(msg, why(e), "bad");
    if (e.status === 409) scheduleReload();
  } finally { button.disabled = false; }
}

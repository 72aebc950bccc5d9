// Classroom-snapshot mode for a phone fixed in the classroom: the rear camera takes a picture of the class at
// the chosen interval and each goes through the same offline queue as the sign-ins (POST /api/v1/snapshots).
// The schedule survives a reload (localStorage); the screen is kept on while it runs (Wake Lock, where offered).
import * as M from "../lib/monitor.js";
import { device, outbox } from "./state.js";
import { SiteCamera } from "./camera.js";
import { SiteVerdict } from "./verdict.js";

const { $ } = M;

export const SiteSnapshot = (() => {
  const SETTINGS = "monitor.site.snapshot";
  let classes = [];
  let timer = null;
  let nextAt = 0;
  let lastAt = null;
  let wakeLock = null;
  let cameraOk = false;
  const settings = JSON.parse(localStorage.getItem(SETTINGS) || "{}");
  const save = () => { try { localStorage.setItem(SETTINGS, JSON.stringify(settings)); } catch { /* memory only */ } };

  const chosen = () => classes.find(c => String(c.id) === $("snap-class").value);
  function showClass() {
    const c = chosen();
    $("snap-class-name").textContent = c ? `${c.name}（${c.code}）` : "";
  }
  function classesChanged(list) {
    classes = list;
    if (settings.class_id && classes.some(c => c.id === settings.class_id)) $("snap-class").value = String(settings.class_id);
    showClass();
  }

  function status() {
    const parts = [];
    if (timer) parts.push(`定时抓拍中（每 ${Math.round(settings.interval / 60)} 分钟）`);
    if (lastAt) parts.push(`上次 ${M.time(lastAt)}`);
    if (timer && nextAt) parts.push(`下次约 ${M.time(new Date(nextAt).toISOString())}`);
    $("snap-status").textContent = parts.join(" · ") || "未开始";
    $("snap-start").classList.toggle("hidden", Boolean(timer));
    $("snap-stop").classList.toggle("hidden", !timer);
    document.body.dataset.snapshots = timer ? "running" : "stopped";
  }

  async function openCamera() {
    const ok = await SiteCamera.start($("snap-preview"), "environment");
    cameraOk = ok === true;
    $("snap-hint").textContent = cameraOk ? "请确认画面能拍到全班学员和讲台" : `${ok}：课堂抓拍需要使用相机，请允许相机权限后刷新`;
  }

  async function takeOne() {
    const c = chosen();
    if (!c) { $("snap-hint").textContent = "请先选择班次"; return; }
    if (!cameraOk) await openCamera();
    if (!cameraOk) return;
    const now = new Date();
    const captured_at = M.isoWithZone(now);
    const photo = await SiteCamera.capture(1600, 0.85);
    lastAt = captured_at;
    await outbox.add({ key: M.newKey(), kind: "snapshot", photo, frames: [], captured_at, fix: null,
      fields: { class_id: c.id, camera_id: device, captured_at }, label: `课堂抓拍（${c.name}）` });
    status();
  }

  function schedule() {
    clearInterval(timer);
    const ms = settings.interval * 1000;
    nextAt = Date.now() + ms;
    timer = setInterval(() => { nextAt = Date.now() + ms; takeOne().catch(showError); }, ms);
  }
  function showError(e) { $("snap-hint").textContent = e.message || "抓拍失败"; }

  async function start() {
    settings.class_id = Number($("snap-class").value) || null;
    settings.interval = Number($("snap-interval").value);
    settings.running = true;
    save();
    schedule();
    status();
    try { wakeLock = await navigator.wakeLock?.request("screen"); } catch { wakeLock = null; }
    await takeOne().catch(showError);
  }
  function stop(remember = true) {
    clearInterval(timer);
    timer = null;
    nextAt = 0;
    if (remember) { settings.running = false; save(); }
    wakeLock?.release?.().catch(() => {});
    wakeLock = null;
    status();
  }

  function result(item, r) {
    const box = $("snap-result");
    if (r.outcome === "delivered") {
      SiteVerdict.show(box, SiteVerdict.describe(r.body, "snapshot"));
      box.dataset.snapshotId = r.body.id;
    } else if (r.outcome === "refused") {
      SiteVerdict.show(box, SiteVerdict.refusal(r.body, "snapshot"));
    } else return;
    box.append(M.el("p", "who", `${item.label} · 拍摄于 ${M.time(item.captured_at)}`));
  }

  function init() {
    if (settings.interval) $("snap-interval").value = String(settings.interval);
    $("snap-class").addEventListener("change", () => { showClass(); settings.class_id = Number($("snap-class").value); save(); });
    $("snap-interval").addEventListener("change", () => {
      settings.interval = Number($("snap-interval").value);
      save();
      if (timer) { schedule(); status(); }
    });
    $("snap-start").addEventListener("click", () => start());
    $("snap-stop").addEventListener("click", () => stop());
    $("snap-now").addEventListener("click", () => takeOne().catch(showError));
    document.addEventListener("visibilitychange", async () => {  // the lock is released when the page is hidden
      if (timer && document.visibilityState === "visible" && !wakeLock) {
        try { wakeLock = await navigator.wakeLock?.request("screen"); } catch { wakeLock = null; }
      }
    });
    status();
  }

  async function enter() {
    await openCamera();
    if (settings.running && !timer && chosen()) {
      schedule();
      status();
      try { wakeLock = await navigator.wakeLock?.request("screen"); } catch { wakeLock = null; }
    }
  }
  function leave() {
    if (timer) { stop(); $("snap-hint").textContent = "已切换到学员签到，定时抓拍已停止"; }
    SiteCamera.stop();
    cameraOk = false;
  }

  return { init, enter, leave, result, classesChanged, resumes: () => Boolean(settings.running) };
})();

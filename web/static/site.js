// The training site's phone page: pick class and trainee, take the selfie with the camera in the page (with
// the liveness burst when the class requires it or the server asks), read the GPS fix, and hand the capture to
// the offline queue (site-queue.js), which sends it; the verdict is shown in words a trainee understands.
import { SiteQueue } from "./site-queue.js";
import { SiteCamera } from "./site-camera.js";
import { SiteVerdict } from "./site-verdict.js";
import { SiteSnapshot } from "./site-snapshot.js";
(() => {
  const M = Monitor;
  const $ = id => document.getElementById(id);
  const KEY = "monitor.site.token";
  const CLASSES = "monitor.site.classes";
  const LIVENESS = "monitor.site.liveness";
  const BURST_SPACING_MS = 200;  // the burst: max_frames frames this far apart (about 1.5 s of movement)
  let token = M.takeToken(KEY) || localStorage.getItem(KEY);
  if (token) { try { localStorage.setItem(KEY, token); } catch { /* kept for this tab only */ } }
  let classes = [];
  let fix = null;
  let capture = null;  // { photo, frames, challenge, captured_at, fix, url }
  let lastKey = null;
  const announced = new Set();  // keys whose first failed attempt was reported in the result box
  let cameraReady = false;
  const learned = JSON.parse(localStorage.getItem(LIVENESS) || "{}");  // class id → true, as the server said
  const livenessRequired = {};

  const device = (() => {
    let id = localStorage.getItem("monitor.device");
    if (!id) { id = "web-" + SiteQueue.newKey(); localStorage.setItem("monitor.device", id); }
    return id;
  })();

  // The capture time as the phone knows it, with its zone: 2025-03-01T08:59:03.120+08:00.
  function isoWithZone(d) {
    const off = -d.getTimezoneOffset();
    const pad = n => String(Math.floor(Math.abs(n))).padStart(2, "0");
    const local = new Date(d.getTime() + off * 60000).toISOString().slice(0, 23);
    return `${local}${off >= 0 ? "+" : "-"}${pad(off / 60)}:${pad(off % 60)}`;
  }
  const today = () => new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Shanghai" }).format(new Date());
  const selectedClass = () => classes.find(c => String(c.id) === $("class").value);
  const needsLiveness = () => { const c = selectedClass(); return Boolean(c && (livenessRequired[c.id] || learned[c.id])); };

  function say(kind, text) { const r = $("result"); r.className = `result ${kind}`; r.dataset.tone = kind; r.textContent = text; }

  // --- network indicator -------------------------------------------------------------------------------------
  function showNet() {
    const online = navigator.onLine !== false;
    $("net").textContent = online ? "网络正常" : "离线：记录先存在手机上";
    $("net").className = `net ${online ? "on" : "off"}`;
  }
  window.addEventListener("online", showNet);
  window.addEventListener("offline", showNet);

  // --- GPS ---------------------------------------------------------------------------------------------------
  function locate() {
    if (!navigator.geolocation) { $("gps").textContent = "此设备不支持定位，无法签到"; return; }
    navigator.geolocation.watchPosition(p => {
      fix = { lat: p.coords.latitude, lon: p.coords.longitude, acc: p.coords.accuracy, at: Date.now() };
      const acc = Math.round(fix.acc);
      $("gps").textContent = `已定位 · 精度 ${acc} 米（${SiteVerdict.accuracyWords(fix.acc)}）`;
      $("gps").className = `hint gps ${fix.acc <= 50 ? "good" : "poor"}`;
    }, e => {
      $("gps").className = "hint gps poor";
      $("gps").textContent = e.code === 1 ? "未获得定位权限：请在浏览器设置中允许本页面使用位置信息"
        : e.code === 3 ? "定位超时，正在重试…" : "暂时无法定位：请打开手机定位（GPS），到窗边再试";
    }, { enableHighAccuracy: true, maximumAge: 10000, timeout: 30000 });
  }

  // --- classes and trainees ----------------------------------------------------------------------------------
  function option(value, text) { const o = M.el("option", "", text); o.value = value; return o; }
  function fillClasses() {
    for (const id of ["class", "snap-class"]) {
      const keep = $(id).value;
      $(id).replaceChildren(...classes.map(c => option(c.id, `${c.name}（${c.code}）`)));
      if (keep && classes.some(c => String(c.id) === keep)) $(id).value = keep;
    }
    fillTrainees();
    SiteSnapshot.classesChanged(classes);
  }
  function fillTrainees() {
    const cls = selectedClass();
    $("class-name").textContent = cls ? `${cls.name}（${cls.code}）${needsLiveness() ? " · 须活体检测" : ""}` : "";
    const keep = $("trainee").value;
    $("trainee").replaceChildren(...(cls ? cls.trainees : []).map(t => option(t.id, t.name)));
    if (keep && cls?.trainees.some(t => String(t.id) === keep)) $("trainee").value = keep;
  }

  async function load() {
    if (!token) { showLogin(); return; }
    try {
      const [site, all] = await Promise.all([M.api(token, "/api/v1/site/classes"),
        M.api(token, "/api/v1/classes").catch(() => [])]);
      classes = site;
      for (const c of all) if (c.liveness_required) livenessRequired[c.id] = true;
      try { localStorage.setItem(CLASSES, JSON.stringify({ date: today(), classes, liveness: livenessRequired })); } catch { /* full */ }
    } catch (e) {
      if (e.status === 401 || e.status === 403) { showLogin(e.message); return; }
      const kept = JSON.parse(localStorage.getItem(CLASSES) || "null");
      if (!kept || kept.date !== today()) { say("bad", "网络异常：无法取得今天的班次，请联网后刷新"); return; }
      classes = kept.classes;
      Object.assign(livenessRequired, kept.liveness || {});
      say("wait", "离线：显示的是本机保存的今天班次名单，拍的照片会先存在手机上");
    }
    fillClasses();
    if (!classes.length) say("wait", "本机构今天没有在培训期内的班次");
    SiteQueue.pump(true);
  }
  function showLogin(message) {
    $("login").classList.remove("hidden");
    if (message) say("bad", message);
  }
  $("login-btn").addEventListener("click", () => {
    token = $("token").value.trim();
    if (!token) return;
    sessionStorage.setItem(KEY, token);
    try { localStorage.setItem(KEY, token); } catch { /* this tab only */ }
    $("login").classList.add("hidden");
    load();
  });
  $("class").addEventListener("change", () => { fillTrainees(); resetCapture(); });
  $("trainee").addEventListener("change", resetCapture);

  // --- camera and capture ------------------------------------------------------------------------------------
  async function openCamera() {
    const ok = await SiteCamera.start($("preview"), "user");
    cameraReady = ok === true;
    $("camera").classList.toggle("hidden", !cameraReady);
    $("shoot").classList.toggle("hidden", !cameraReady);
    $("file-fallback").classList.toggle("hidden", cameraReady);
    $("camera-hint").textContent = cameraReady ? "请把脸放进框内，正对镜头，光线充足，然后点“拍照”"
      : `${ok}：请点下方按钮用手机相机拍一张本人正脸照片`;
    document.body.dataset.camera = cameraReady ? "live" : "file";
  }

  function showShot(blob) {
    if (capture?.url) URL.revokeObjectURL(capture.url);
    const url = URL.createObjectURL(blob);
    $("shot").src = url;
    $("shot").classList.remove("hidden");
    $("retake").classList.remove("hidden");
    $("shoot").classList.add("hidden");
    return url;
  }
  function resetCapture() {
    if (capture?.url) URL.revokeObjectURL(capture.url);
    capture = null;
    $("shot").classList.add("hidden");
    $("shot").removeAttribute("src");
    $("retake").classList.add("hidden");
    $("challenge").classList.add("hidden");
    $("shoot").classList.toggle("hidden", !cameraReady);
    $("photo").value = "";
    document.body.dataset.captured = "";
  }
  function busy(on) { for (const id of ["shoot", "retake", "submit"]) $(id).disabled = on; }

  async function shoot() {
    const cls = selectedClass();
    if (!cls || !$("trainee").value) { say("bad", "请先选择班次和学员"); return; }
    if (!fix) { say("bad", "还没有取得定位：请打开手机定位，稍等几秒再拍"); return; }
    busy(true);
    try {
      if (needsLiveness()) await shootWithLiveness(cls);
      else {
        const photo = await SiteCamera.capture();
        capture = { photo, frames: [], challenge: null, captured_at: isoWithZone(new Date()), fix: { ...fix } };
        capture.url = showShot(photo);
        $("camera-hint").textContent = "照片已拍好：确认是本人正脸后点“提交签到”，不满意可点“重拍”";
      }
      document.body.dataset.captured = capture ? "yes" : "";
    } catch (e) {
      say("bad", e.message || "拍照失败，请重试");
    } finally { busy(false); }
  }

  // The liveness challenge: ask the server for an action (needs the network; valid 90 s, single use), show its
  // instruction, take the selfie facing the camera, then the burst while the trainee performs the action.
  async function shootWithLiveness(cls) {
    let challenge;
    try {
      challenge = await M.api(token, "/api/v1/liveness/challenges", { method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ class_id: cls.id, trainee_id: Number($("trainee").value), device_id: device }) });
    } catch (e) {
      throw new Error(e.body?.message ? `无法开始活体检测：${e.body.message}`
        : "本班次签到须完成活体检测，获取检测动作需要联网：请联网后再拍");
    }
    const box = $("challenge");
    box.classList.remove("hidden");
    box.textContent = `请正对镜头，准备：${challenge.instruction}`;
    await SiteCamera.pause(1500);
    const captured_at = isoWithZone(new Date());
    const photo = await SiteCamera.capture();
    const count = Math.max(challenge.min_frames, Math.min(challenge.max_frames, 8));
    box.textContent = `${challenge.instruction}！`;
    const frames = await SiteCamera.burst(count, BURST_SPACING_MS, n => { box.dataset.progress = `${n}/${count}`; });
    box.classList.add("hidden");
    capture = { photo, frames, challenge, captured_at, fix: { ...fix } };
    capture.url = showShot(photo);
    $("camera-hint").textContent = `活体连拍完成（${frames.length} 张）：请在 ${Math.round(
      (new Date(challenge.expires_at) - Date.now()) / 1000)} 秒内点“提交签到”`;
  }

  $("shoot").addEventListener("click", shoot);
  $("retake").addEventListener("click", () => { resetCapture(); say("hidden", ""); });
  $("photo").addEventListener("change", () => {
    const file = $("photo").files[0];
    if (!file) return;
    capture = { photo: file, frames: [], challenge: null, captured_at: isoWithZone(new Date()), fix: fix && { ...fix } };
    capture.url = showShot(file);
    $("shoot").classList.add("hidden");
    document.body.dataset.captured = "yes";
    if (needsLiveness()) say("wait", "本班次须完成活体检测，需要在页面内使用相机：请允许本页面使用相机后刷新");
  });

  // --- submit: into the queue first, then sent -------------------------------------------------------------
  $("checkin").addEventListener("submit", async ev => {
    ev.preventDefault();
    const cls = selectedClass();
    const trainee = cls?.trainees.find(t => String(t.id) === $("trainee").value);
    if (!cls || !trainee) { say("bad", "请先选择班次和学员"); return; }
    if (!capture) { say("bad", cameraReady ? "请先点“拍照”" : "请先拍一张本人正脸照片"); return; }
    const at = capture.fix || fix;
    if (!at) { say("bad", "还没有取得定位：请打开手机定位，稍等几秒再提交"); return; }
    if (capture.challenge && new Date(capture.challenge.expires_at) < Date.now()) {
      resetCapture(); say("bad", "活体检测已超时（须在 90 秒内提交）：请重新拍摄"); return;
    }
    const kind = document.querySelector("input[name=kind]:checked").value;
    const fields = { trainee_id: trainee.id, class_id: cls.id, kind, captured_at: capture.captured_at,
      latitude: at.lat, longitude: at.lon, accuracy_m: Math.round(at.acc * 10) / 10, device_id: device,
      mock_location: "false" };
    if (capture.challenge) fields.challenge_id = capture.challenge.challenge_id;
    const item = { key: SiteQueue.newKey(), kind: "checkin", fields, photo: capture.photo, frames: capture.frames,
      captured_at: capture.captured_at, fix: at,
      label: `${trainee.name} · ${kind === "sign_out" ? "签退" : "签到"}（${cls.name}）` };
    lastKey = item.key;
    busy(true);
    try {
      await SiteQueue.add(item);
      say("wait", navigator.onLine === false ? "已保存在本手机（当前离线），联网后自动上传" : "已保存，正在上传并核验…");
      resetCapture();
      $("camera-hint").textContent = "下一位学员：请把脸放进框内，然后点“拍照”";
    } catch (e) {
      say("bad", "无法保存到本机（存储空间不足或隐私模式）：请释放空间后重试");
    } finally { busy(false); }
  });

  // --- outcomes from the queue -------------------------------------------------------------------------------
  async function finalVerdict(body) {
    const until = Date.now() + 60000;
    while (body.status === "pending" && Date.now() < until) {
      await SiteCamera.pause(1500);
      try { body = await M.api(token, body.status_url); } catch { /* keep asking */ }
    }
    return body;
  }
  function whoLine(item) {
    return M.el("p", "who", `${item.label} · 拍摄于 ${M.time(item.captured_at)}`);
  }
  SiteQueue.on("result", async (item, r) => {
    if (item.kind === "snapshot") { SiteSnapshot.result(item, r); return; }
    const box = $("result");
    if (r.outcome === "delivered") {
      const body = await finalVerdict(r.body);
      SiteVerdict.show(box, SiteVerdict.describe(body, "checkin"));
      box.append(whoLine(item));
      if (r.body.duplicate) box.append(M.el("p", "detail", "此记录此前已送达服务器，本次未重复计入"));
      box.dataset.checkinId = body.id;
      box.dataset.status = body.status;
    } else if (r.outcome === "refused") {
      if (r.body?.code === "LIVENESS_REQUIRED") {
        learned[item.fields.class_id] = true;
        try { localStorage.setItem(LIVENESS, JSON.stringify(learned)); } catch { /* kept in memory */ }
        fillTrainees();
      }
      SiteVerdict.show(box, SiteVerdict.refusal(r.body, "checkin"));
      box.append(whoLine(item));
      box.dataset.code = r.body?.code || "";
    } else if (r.outcome === "auth") {
      say("bad", `${r.body?.message || "机构令牌无效或已停用"}：记录已保存在本手机，请输入有效的机构令牌后自动上传`);
      showLogin();
    } else if (item.key === lastKey && !announced.has(item.key)) {
      announced.add(item.key);
      say("wait", `${r.error}：记录已保存在本手机，联网后自动上传`);
    }
  });

  // --- the queue on screen -----------------------------------------------------------------------------------
  let shown = { items: [], sending: new Set() };
  function renderQueue() {
    const { items, sending } = shown;
    $("queue-box").classList.toggle("hidden", !items.length);
    $("queue-count").textContent = String(items.length);
    $("queue").replaceChildren(...items.map(item => {
      const li = M.el("li");
      li.dataset.key = item.key;
      const wait = item.next_at > Date.now() ? `，约 ${Math.ceil((item.next_at - Date.now()) / 1000)} 秒后重试` : "";
      const state = sending.has(item.key) ? "正在上传…" : item.last_error ? item.last_error + wait : "等待上传";
      li.append(M.el("span", "when", M.time(item.captured_at)), M.el("span", "what", item.label),
        M.el("span", "state", state));
      return li;
    }));
  }
  SiteQueue.on("change", (items, sending) => { shown = { items, sending }; renderQueue(); });
  setInterval(() => { if (shown.items.some(i => i.next_at > Date.now() - 1000)) renderQueue(); }, 1000);
  $("queue-retry").addEventListener("click", () => SiteQueue.pump(true));

  // --- tabs: check-in and classroom snapshots ---------------------------------------------------------------
  function tab(which) {
    const snap = which === "snapshot";
    $("tab-checkin").setAttribute("aria-selected", String(!snap));
    $("tab-snapshot").setAttribute("aria-selected", String(snap));
    $("checkin-view").classList.toggle("hidden", snap);
    $("snapshot-view").classList.toggle("hidden", !snap);
    document.body.dataset.mode = which;
    if (snap) { SiteCamera.stop(); SiteSnapshot.enter(); } else { SiteSnapshot.leave(); openCamera(); }
  }
  $("tab-checkin").addEventListener("click", () => tab("checkin"));
  $("tab-snapshot").addEventListener("click", () => tab("snapshot"));

  // The offline shell: a reload without network shows this page and its queue (web/static/shell-sw.js, served as /site-sw.js).
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/site-sw.js", { scope: "/site" })
      .then(() => { document.body.dataset.offlineShell = "registered"; })
      .catch(() => { document.body.dataset.offlineShell = "unavailable"; });
  }

  SiteSnapshot.init({ device, getToken: () => token, isoWithZone });
  SiteQueue.start(() => token);
  showNet();
  locate();
  load().then(() => (SiteSnapshot.resumes() ? tab("snapshot") : openCamera()));
})();

// The spot-check inspector's phone page: alerts paged to me (pushed live), accept, navigate, phone check, close.
"use strict";

// WGS-84 (GPS, how venues are stored) → GCJ-02 (the datum of AMap and Tencent maps): the same arithmetic as
// monitor/decisions/geodesy.py wgs84_to_gcj02 (tests/test_inspector_page.py compares the two).
const Gcj02 = (() => {
  const A = 6378245.0;
  const EE = 0.00669342162296594323;
  const outsideChina = (lat, lon) => !(lon >= 72.004 && lon <= 137.8347 && lat >= 0.8293 && lat <= 55.8271);
  function transformLat(x, y) {
    let ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
    ret += (20.0 * Math.sin(6.0 * x * Math.PI) + 20.0 * Math.sin(2.0 * x * Math.PI)) * 2.0 / 3.0;
    ret += (20.0 * Math.sin(y * Math.PI) + 40.0 * Math.sin(y / 3.0 * Math.PI)) * 2.0 / 3.0;
    ret += (160.0 * Math.sin(y / 12.0 * Math.PI) + 320 * Math.sin(y * Math.PI / 30.0)) * 2.0 / 3.0;
    return ret;
  }
  function transformLon(x, y) {
    let ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
    ret += (20.0 * Math.sin(6.0 * x * Math.PI) + 20.0 * Math.sin(2.0 * x * Math.PI)) * 2.0 / 3.0;
    ret += (20.0 * Math.sin(x * Math.PI) + 40.0 * Math.sin(x / 3.0 * Math.PI)) * 2.0 / 3.0;
    ret += (150.0 * Math.sin(x / 12.0 * Math.PI) + 300.0 * Math.sin(x / 30.0 * Math.PI)) * 2.0 / 3.0;
    return ret;
  }
  function fromWgs84(lat, lon) {
    if (outsideChina(lat, lon)) return [lat, lon];
    let dlat = transformLat(lon - 105.0, lat - 35.0);
    let dlon = transformLon(lon - 105.0, lat - 35.0);
    const radlat = lat / 180.0 * Math.PI;
    const magic = 1 - EE * Math.sin(radlat) ** 2;
    const sqrtmagic = Math.sqrt(magic);
    dlat = (dlat * 180.0) / ((A * (1 - EE)) / (magic * sqrtmagic) * Math.PI);
    dlon = (dlon * 180.0) / (A / sqrtmagic * Math.cos(radlat) * Math.PI);
    return [lat + dlat, lon + dlon];
  }
  return { fromWgs84, outsideChina };
})();

(() => {
  const M = Monitor;
  const TOKEN_KEY = "monitor.inspector.token";
  // localStorage keeps what the inspector typed until the server has it (drafts), and which phone check belongs to
  // which alert; sessionStorage keeps the last answers (they hold trainees' numbers) only for this tab, so a reload
  // while the network is down still shows the forms.
  const DRAFT = "monitor.inspector.draft.";
  const CHECK_OF = "monitor.inspector.check.";
  const CACHE = "monitor.inspector.cache.";
  const OUTCOMES = M.DISPATCH.outcomes;  // served with the rule catalogue (/public/rules.json)
  const ACTIONS = M.DISPATCH.actions;
  const WORKING = ["accepted", "on_site", "phoning"];
  const FINISHED = ["closed", "resolved"];
  const NET_DOWN = "网络异常：未能连接服务器。已填写的内容已保存在本机，网络恢复后请重新提交。";
  const $ = id => document.getElementById(id);

  let token = M.takeToken(TOKEN_KEY);
  let me = null;
  let alerts = [];
  let current = null; // the alert the task view shows
  let check = null; // its phone check
  let lastId = null; // the last live event seen, so a reconnect resumes where it stopped
  let announceAfter = null; // events up to the first hello are history: no sound for them
  let started = false;

  // -- storage (full or disabled storage never stops the page) -------------------------------------------------------
  const store = {
    get(area, key) { try { return JSON.parse(area.getItem(key)); } catch { return null; } },
    set(area, key, value) { try { area.setItem(key, JSON.stringify(value)); } catch { /* the form still works */ } },
    drop(area, key) { try { area.removeItem(key); } catch { /* nothing to drop */ } },
    keys(area) { try { return Object.keys(area); } catch { return []; } },
  };

  // -- messages ------------------------------------------------------------------------------------------------------
  function say(id, text, kind) {
    const el = typeof id === "string" ? $(id) : id;
    el.textContent = text || "";
    el.className = `msg${kind ? " " + kind : ""}`;
  }
  function setNet(text) { $("net").classList.toggle("hidden", !text); $("net").textContent = text || ""; }
  function setConn(on, text) { $("conn").className = "conn " + (on ? "on" : "off"); $("conn").textContent = text; }
  let flashTimer = null;
  function flash(text) {
    const f = $("flash"); f.textContent = text; f.classList.remove("hidden");
    clearTimeout(flashTimer); flashTimer = setTimeout(() => f.classList.add("hidden"), 6000);
  }
  const why = e => e.network ? NET_DOWN : (e.message || "操作未成功");

  // -- the API: a network failure is told apart from a refusal, and named once at the top of the page ---------------
  async function call(path, options) {
    try {
      const body = await M.api(token, path, options);
      setNet(null);
      return body;
    } catch (e) {
      if (e.status == null) { e.network = true; setNet(NET_DOWN); }
      else if (e.status === 401) showLogin(e.message);
      throw e;
    }
  }
  const post = (path, body) => call(path, { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body || {}) });
  window.addEventListener("offline", () => setNet("网络已断开：可以继续填写，内容保存在本机，恢复后再提交。"));
  window.addEventListener("online", () => { setNet(null); scheduleReload(); });

  // -- sound and vibration for a new page: only once the inspector has touched the page (browsers require it) --------
  let audio = null;
  function unlock() {
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
  function beep() {
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
  function buzz() {
    try {
      const active = !navigator.userActivation || navigator.userActivation.hasBeenActive;
      if (active && typeof navigator.vibrate === "function") navigator.vibrate([200, 100, 200]);
    } catch { /* no vibration on this device */ }
  }
  function announce(data) {
    const b = document.body.dataset;
    b.paged = String(Number(b.paged || 0) + 1);
    if (beep()) b.sounded = String(Number(b.sounded || 0) + 1);
    buzz();
    const text = `新任务：${M.ruleName(data.rule)} · ${data.class_name || ""}`;
    flash(text);
    notify(text, data);
  }
  // While the page is open (also in the background), a new page shows a system notification; a tap on it opens the task.
  function notify(text, data) {
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
  const myOpenPage = a => a.pages.filter(p => p.staff_id === me.id && p.state === "paged").at(-1);
  function kindOf(a) {
    if (a.state === "dispatched" && myOpenPage(a)) return "paged";
    if (a.assignee_staff_id === me.id && WORKING.includes(a.state)) return "working";
    if (FINISHED.includes(a.state) && (a.assignee_staff_id === me.id
        || a.transitions.some(t => t.staff_id === me.id && t.action === "close"))) return "history";
    return null;
  }
  const closing = a => [...a.transitions].reverse().find(t => t.action === "close" || t.action === "dismiss");

  function card(a, kind) {
    const li = M.el("li", `card ${kind} ${a.severity}`);
    li.dataset.alertId = a.id;
    const title = M.el("div", "title");
    title.append(M.el("b", "", M.ruleName(a.rule)), M.el("span", `badge ${a.state}`, a.state_name));
    li.append(title, M.el("div", "where", a.class_name), M.el("div", "sub", a.institution_name),
      M.el("div", "sub", `${M.SEVERITY[a.severity] || a.severity} · 共 ${a.count} 次 · 最近 ${M.dateTime(a.last_at)}`));
    if (kind === "paged") {
      const due = M.el("div", "due");
      due.dataset.deadline = myOpenPage(a).deadline;
      const btn = M.el("button", "accept", "接单");
      btn.type = "button";
      const msg = M.el("p", "msg");
      btn.addEventListener("click", ev => { ev.stopPropagation(); accept(a.id, btn, msg); });
      li.append(due, btn, msg);
    } else if (kind === "working") {
      const btn = M.el("button", "open", "处理");
      btn.type = "button";
      li.append(btn);
    } else {
      const step = closing(a);
      li.append(M.el("div", "outcome", `处置结果：${OUTCOMES[a.outcome] || a.state_name}`));
      if (step) li.append(M.el("div", "sub", `${M.dateTime(step.at)} ${step.actor}${step.note ? "：" + step.note : ""}`));
      if (a.inspection_ids && a.inspection_ids.length) li.append(M.el("div", "sub", `已归档检查表 ${a.inspection_ids.length} 份`));
    }
    li.addEventListener("click", () => openTask(a.id));
    return li;
  }

  function renderLists() {
    const tasks = [], done = [];
    for (const a of alerts) {
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

  function tick() {
    for (const due of document.querySelectorAll("[data-deadline]")) {
      const left = Math.round((Date.parse(due.dataset.deadline) - Date.now()) / 1000);
      due.classList.toggle("late", left <= 0);
      due.textContent = left > 0
        ? `请在 ${M.time(due.dataset.deadline)} 前接单（剩余 ${Math.floor(left / 60)} 分 ${String(left % 60).padStart(2, "0")} 秒）`
        : `接单时限 ${M.time(due.dataset.deadline)} 已过，可能已转派他人`;
    }
  }
  setInterval(tick, 1000);

  function pruneDrafts() {  // drafts of finished alerts are no longer needed on this phone
    for (const a of alerts.filter(x => FINISHED.includes(x.state))) {
      store.drop(localStorage, `${DRAFT}close.${a.id}`);
      store.drop(localStorage, `${DRAFT}inspect.${a.id}`);
      const checkId = store.get(localStorage, CHECK_OF + a.id);
      if (checkId != null) {
        for (const k of store.keys(localStorage)) if (k.startsWith(`${DRAFT}call.${checkId}.`)) store.drop(localStorage, k);
        store.drop(localStorage, CHECK_OF + a.id);
      }
    }
  }

  async function loadAlerts() {
    try {
      alerts = await call("/api/v1/my/alerts");
      store.set(sessionStorage, CACHE + "alerts", alerts);
      pruneDrafts();
    } catch (e) {
      if (!e.network) flash(why(e));
      if (!alerts.length) alerts = store.get(sessionStorage, CACHE + "alerts") || [];
    }
    renderLists();
    if (current != null) renderTask();
  }
  let reloadTimer = null;
  function scheduleReload() { clearTimeout(reloadTimer); reloadTimer = setTimeout(loadAlerts, 250); }

  function upsert(a) {
    const i = alerts.findIndex(x => x.id === a.id);
    if (i >= 0) alerts[i] = a; else alerts.unshift(a);
    store.set(sessionStorage, CACHE + "alerts", alerts);
    renderLists();
    if (current === a.id) renderTask();
  }

  async function accept(id, button, msg) {
    button.disabled = true;
    say(msg, "正在接单…", "wait");
    try {
      upsert(await post(`/api/v1/alerts/${id}/accept`));
      say(msg, "");
      openTask(id);
    } catch (e) {
      say(msg, why(e), "bad");
      if (e.status === 409) scheduleReload();
    } finally { button.disabled = false; }
  }

  // -- one task ------------------------------------------------------------------------------------------------------
  function openTask(id) {
    const hash = `#alert=${id}`;
    if (location.hash !== hash) location.hash = hash; else route();
  }
  function route() {
    const m = location.hash.match(/^#alert=(\d+)$/);
    const id = m ? Number(m[1]) : null;
    if (id !== current) {
      current = id; check = null;
      $("check").classList.add("hidden"); $("check-list").replaceChildren();
      for (const msg of ["t-msg", "check-msg", "close-msg", "insp-msg", "insp-done-msg"]) say(msg, "");
      if (id != null) { restoreClose(); restoreInspection(); const checkId = store.get(localStorage, CHECK_OF + id); if (checkId != null) loadCheck(checkId); }
      window.scrollTo(0, 0);
    }
    $("list-view").classList.toggle("hidden", id != null);
    $("task-view").classList.toggle("hidden", id == null);
    if (id != null) renderTask();
  }
  window.addEventListener("hashchange", route);
  $("back").addEventListener("click", () => { location.hash = ""; });

  const unfolded = new Set();  // alerts whose form the inspector unfolded by hand
  $("insp-unfold").addEventListener("click", () => {
    unfolded.add(current);
    $("insp-form").classList.remove("folded");
    sizePad();
  });

  function contactPhone(phone) {
    const dd = M.el("dd");
    if (!phone) { dd.textContent = "未登记"; return dd; }
    const link = M.el("a", "inline-tel", phone);
    link.href = `tel:${phone}`;
    dd.append(link);
    return dd;
  }

  // Whom the alert is about: each anomaly's trainee with the photo it was raised on next to an enrolled one.
  let subjectsShown = "";
  function renderSubjects(a) {
    const subjects = a.subjects || [];
    $("t-people").classList.toggle("hidden", !subjects.length);
    const key = `${a.id}:${subjects.map(x => x.anomaly_id).join(",")}`;
    if (key === subjectsShown) return;  // photos are not fetched again on every refresh
    subjectsShown = key;
    $("t-subjects").replaceChildren(...subjects.map(x => {
      const li = M.el("li", "subject");
      li.dataset.anomalyId = x.anomaly_id;
      const who = x.trainee_name ? `${x.trainee_name}（${x.id_number_masked}）` : "未指明学员";
      li.append(M.el("b", "", who), M.el("span", "sub", ` ${M.ruleName(x.rule)} · ${M.time(x.at)}`),
        M.el("p", "hint", x.message));
      const photos = M.el("div", "photos");
      for (const [sha, label] of [[x.photo_sha256, "现场照片"], [x.enrolled_sha256, "登记照片"]]) {
        if (!sha) continue;
        const fig = M.el("figure");
        const img = M.el("img"); img.alt = label; img.dataset.sha = sha;
        fig.append(img, M.el("figcaption", "", label));
        photos.append(fig);
        M.photoUrl(token, sha).then(url => { if (url) img.src = url; });
      }
      if (photos.children.length) li.append(photos);
      return li;
    }));
  }

  function navLinks(a) {
    const { lat, lon } = a.venue || {};
    const ok = Number.isFinite(lat) && Number.isFinite(lon);
    $("t-nav").classList.toggle("hidden", !ok);
    if (!ok) { $("t-coords").textContent = "该场地未登记坐标"; return; }
    const [glat, glon] = Gcj02.fromWgs84(lat, lon);
    const name = encodeURIComponent(`${a.institution_name} ${a.class_name}`);
    $("nav-amap").href = `https://uri.amap.com/marker?position=${glon.toFixed(6)},${glat.toFixed(6)}`
      + `&name=${name}&src=yunnan-monitor&coordinate=gaode&callnative=1`;
    // geo: URIs (RFC 5870) are WGS-84 by definition: the phone's map app converts them itself.
    $("nav-geo").href = `geo:${lat.toFixed(6)},${lon.toFixed(6)}?q=${lat.toFixed(6)},${lon.toFixed(6)}(${name})`;
    $("t-coords").textContent = `场地坐标（GCJ-02）${glat.toFixed(6)}, ${glon.toFixed(6)}；围栏半径 ${Math.round(a.venue.radius_m || 0)} 米`;
  }

  function renderTask() {
    const a = alerts.find(x => x.id === current);
    const kind = a && kindOf(a);
    const mine = kind === "working";
    $("t-actions").classList.toggle("hidden", !mine && kind !== "paged");
    $("close-form").classList.toggle("hidden", !mine);
    const filed = Boolean(a && a.inspection_ids && a.inspection_ids.length);
    $("insp-form").classList.toggle("hidden", !mine || (filed && !again.has(current)));
    // Folded until needed: on site, a finished phone check, a draft on this phone, or the inspector's own tap.
    const needed = unfolded.has(a && a.id) || (a && a.state === "on_site") || (check && check.alert_id === (a && a.id)
      && check.state === "done") || Boolean(a && store.get(localStorage, `${DRAFT}inspect.${a.id}`));
    $("insp-form").classList.toggle("folded", !needed);
    $("insp-done").classList.toggle("hidden", !filed);
    $("insp-again").classList.toggle("hidden", !mine || !$("insp-form").classList.contains("hidden"));
    if (!a) {
      $("t-rule").textContent = "任务";
      $("t-state").textContent = "";
      $("t-facts").replaceChildren();
      $("t-history").replaceChildren();
      $("t-nav").classList.add("hidden");
      $("t-coords").textContent = "";
      say("t-msg", "该任务不在您的任务列表中（可能已转派他人或被撤回）", "bad");
      return;
    }
    $("t-rule").textContent = M.ruleName(a.rule);
    $("t-state").textContent = a.state_name;
    $("t-state").className = `badge ${a.state}`;
    const rows = [["班次", a.class_name], ["培训机构", a.institution_name], ["异常规则", `${M.ruleName(a.rule)}（${a.rule}）`],
      ["严重程度", M.SEVERITY[a.severity] || a.severity], ["告警次数", `${a.count} 次（未消除 ${a.open_count}）`],
      ["首次发生", M.dateTime(a.first_at)], ["最近发生", M.dateTime(a.last_at)], ["当前状态", a.state_name]];
    if (a.outcome) rows.push(["处置结果", OUTCOMES[a.outcome] || a.outcome]);
    if (kind === "paged") rows.push(["接单时限", M.dateTime(myOpenPage(a).deadline)]);
    const v = a.venue || {};
    rows.splice(2, 0, ["培训场地", `${v.name || ""}${v.county_name ? "（" + v.county_name + "）" : ""}`],
      ["场地地址", v.address || "未登记地址"]);
    $("t-facts").replaceChildren(...rows.flatMap(([k, val]) => [M.el("dt", "", k), M.el("dd", "", val)]));
    $("t-facts").append(M.el("dt", "", "机构电话"), contactPhone(a.institution_phone));
    navLinks(a);
    renderSubjects(a);
    if (filed) renderFiled(a);
    if (mine && !$("insp-form").dataset.kindPicked) {  // until the inspector picks, the kind follows the alert's state
      for (const r of $("insp-form").elements.kind) r.checked = r.value === (a.state === "phoning" ? "phone" : "on_site");
    }
    if (mine) sizePad();
    const acceptBtn = $("t-accept");
    if (kind === "paged") {
      if (!acceptBtn) {
        const b = M.el("button", "accept", "接单"); b.id = "t-accept"; b.type = "button";
        b.addEventListener("click", () => accept(current, b, $("t-msg")));
        $("t-actions").prepend(b);
      }
    } else if (acceptBtn) acceptBtn.remove();
    $("arrive").classList.toggle("hidden", !mine);
    $("phone").classList.toggle("hidden", !mine || Boolean(check && check.alert_id === a.id));
    $("arrive").disabled = !["accepted", "phoning"].includes(a.state);
    $("arrive").textContent = a.state === "on_site" ? "已到达现场" : "到达现场";
    $("phone").disabled = !WORKING.includes(a.state);
    $("t-history").replaceChildren(...a.transitions.map(t => {
      const li = M.el("li");
      li.append(M.el("span", "at", M.dateTime(t.at)),
        M.el("span", "", ` ${ACTIONS[t.action] || t.action} · ${t.actor}`
          + `${t.outcome ? "（" + (OUTCOMES[t.outcome] || t.outcome) + "）" : ""}${t.note ? "：" + t.note : ""}`));
      return li;
    }));
  }

  async function refreshAlert(id) {
    try { upsert(await call(`/api/v1/alerts/${id}`)); } catch { scheduleReload(); }
  }

  async function step(action, button, done, body) {
    const id = current;
    button.disabled = true;
    say("t-msg", "正在提交…", "wait");
    try {
      upsert(await post(`/api/v1/alerts/${id}/${action}`, body));
      say("t-msg", done, "ok");
    } catch (e) { say("t-msg", why(e), "bad"); button.disabled = false; }
  }

  // Arrival carries the phone's fix (WGS-84 from the browser): the center judges it against the venue's fence.
  function currentFix(timeoutMs = 10000) {
    return new Promise(resolve => {
      if (!navigator.geolocation) { resolve(null); return; }
      navigator.geolocation.getCurrentPosition(
        p => resolve({ latitude: p.coords.latitude, longitude: p.coords.longitude,
                       accuracy_m: Math.max(1, Math.round(p.coords.accuracy)), datum: "WGS-84",
                       captured_at: new Date(p.timestamp || Date.now()).toISOString() }),
        () => resolve(null), { enableHighAccuracy: true, timeout: timeoutMs, maximumAge: 30000 });
    });
  }
  const FENCE = { inside: "定位在培训场地围栏内", outside: "定位在培训场地围栏外（已标记，可继续核查）",
                  uncertain: "定位在围栏边缘，无法确认", unproven: "未取得定位，到场未经定位证明" };
  $("arrive").addEventListener("click", async () => {
    say("t-msg", "正在获取定位…", "wait");
    const fix = await currentFix();
    const where = fix ? `（精度 ${fix.accuracy_m} 米）` : "";
    await step("arrive", $("arrive"), `已记录：到达现场。${fix ? "" : FENCE.unproven}${where}`, fix ? { fix } : {});
    const a = alerts.find(x => x.id === current);
    if (a && a.arrival) say("t-msg", `已记录：到达现场。${FENCE[a.arrival] || ""}${where}`, a.arrival === "inside" ? "ok" : "bad");
  });

  // -- the phone check -----------------------------------------------------------------------------------------------
  $("phone").addEventListener("click", async () => {
    const id = current;
    const button = $("phone");
    button.disabled = true;
    say("t-msg", "正在抽取学员…", "wait");
    try {
      const c = await post(`/api/v1/alerts/${id}/phone-checks`);
      store.set(localStorage, CHECK_OF + id, c.id);
      say("t-msg", `已从班级名册随机抽取 ${c.trainees.length} 名学员，请逐一电话核实（点号码拨出，本页自动计时）`, "ok");
      showCheck(c);
      await refreshAlert(id);
    } catch (e) { say("t-msg", why(e), "bad"); button.disabled = false; }
  });

  async function loadCheck(checkId) {
    const forAlert = current;
    let c = null;
    try {
      c = await call(`/api/v1/phone-checks/${checkId}`);
    } catch (e) {
      c = store.get(sessionStorage, `${CACHE}check.${checkId}`);
      if (!c && !e.network) store.drop(localStorage, CHECK_OF + forAlert);
    }
    if (c && current === forAlert) showCheck(c);
  }

  function showCheck(c) {
    check = c;
    store.set(sessionStorage, `${CACHE}check.${c.id}`, c);
    $("check").classList.remove("hidden");
    const done = c.state === "done";
    $("check-summary").textContent = done
      ? `抽查已完成：抽取 ${c.trainees.length} 人，接通 ${c.reached} 人，确认在班 ${c.confirmed_present} 人（${M.dateTime(c.completed_at)}）`
      : c.done ? `抽取 ${c.trainees.length} 人。${c.message}，可以点「完成抽查」`
        : `抽取 ${c.trainees.length} 人，确认在班 ${c.confirmed_present} 人。${c.message}`;
    $("check-summary").className = `summary ${done ? "ok" : ""}`;
    $("check-list").replaceChildren(...c.trainees.map(t => traineeItem(c, t)));
    $("complete").classList.toggle("hidden", done);
    renderTask();
  }

  function lastCall(c, traineeId) { return c.calls.filter(x => x.trainee_id === traineeId).at(-1); }
  const CDR = { confirmed: " · 话单已印证", unconfirmed: " · 话单未印证" };
  function seconds(s) { return s >= 60 ? `${Math.floor(s / 60)} 分 ${s % 60} 秒` : `${s} 秒`; }
  function callText(k) {
    if (!k) return "尚未记录通话";
    const how = k.reached ? `已接通${k.present === true ? " · 确认在班" : k.present === false ? " · 不在班" : ""}` : "未接通";
    const when = k.started_at ? `${M.time(k.started_at)} 起 ${seconds(k.duration_s)}` : `${seconds(k.duration_s)}`;
    return `${how} · ${when}${k.timing === "page" ? "（本页计时）" : ""}${CDR[k.cdr_state] || ""}${k.answers ? "：" + k.answers : ""}`;
  }

  function traineeItem(c, t) {
    const li = M.el("li", "trainee");
    li.dataset.traineeId = t.trainee_id;
    const who = M.el("div", "who");
    who.append(M.el("b", "", t.name), M.el("span", "idno", t.id_number_masked),
      M.el("span", `state ${t.state}`, t.state_text || ""));
    li.append(who);
    if (t.phone) {
      const tel = M.el("a", "tel button", `拨打 ${t.phone}`);
      tel.href = `tel:${t.phone}`;
      tel.addEventListener("click", () => callStarted(c.id, t.trainee_id));
      li.append(tel);
    } else li.append(M.el("p", "hint", t.has_phone ? `电话 ${t.phone_masked}` : "未登记手机号：无法拨打，不能记为接通"));
    const k = lastCall(c, t.trainee_id);
    li.append(M.el("div", `last ${k ? (k.reached ? "reached" : "missed") : ""}`, callText(k)));
    if (c.state === "open") li.append(callForm(c, t, Boolean(k)));
    return li;
  }

  // A call's times are the page's own: tapping the number starts it, coming back to the page (or 「结束通话」)
  // ends it. Nothing is typed: the server moves them onto its clock and refuses times that cannot be true.
  const draftKey = (checkId, traineeId) => `${DRAFT}call.${checkId}.${traineeId}`;
  function readCall(form) {
    return { reached: form.elements.reached.value, present: form.elements.present.checked,
      answers: form.elements.answers.value,
      started: form.dataset.started ? Number(form.dataset.started) : null,
      ended: form.dataset.ended ? Number(form.dataset.ended) : null };
  }
  function syncPresent(form) {
    const reached = form.elements.reached.value === "yes";
    form.elements.present.disabled = !reached;
    if (!reached) form.elements.present.checked = false;
  }
  function showTiming(form) {
    const started = Number(form.dataset.started || 0), ended = Number(form.dataset.ended || 0);
    const line = form.querySelector(".timing");
    const stop = form.querySelector(".stop");
    stop.classList.toggle("hidden", !started || Boolean(ended));
    if (!started) line.textContent = form.dataset.phone ? "通话计时：点上方号码拨出后自动开始" : "通话计时：无号码，可直接记为未接通";
    else if (!ended) line.textContent = `通话中：${new Date(started).toLocaleTimeString("zh-CN", { hour12: false })} 拨出`;
    else line.textContent = `本页计时：${new Date(started).toLocaleTimeString("zh-CN", { hour12: false })} 拨出，`
      + `通话 ${seconds(Math.round((ended - started) / 1000))}`;
  }

  function callForm(c, t, called) {
    const key = draftKey(c.id, t.trainee_id);
    const details = M.el("details", "call");
    details.append(M.el("summary", "", called ? "重新记录通话" : "记录通话"));
    const form = M.el("form");
    form.noValidate = true;
    if (t.phone) form.dataset.phone = t.phone;
    const timing = M.el("p", "timing hint");
    const stop = M.el("button", "stop secondary hidden", "结束通话"); stop.type = "button";
    stop.addEventListener("click", () => { callEnded(form); });
    const choices = M.el("div", "choices");
    for (const [value, label] of [["yes", "接通"], ["no", "未接通"]]) {
      const l = M.el("label", "choice");
      const input = M.el("input"); input.type = "radio"; input.name = "reached"; input.value = value;
      if (value === "yes" && !t.has_phone) input.disabled = true;  // nobody is reached on a number not on file
      l.append(input, ` ${label}`);
      choices.append(l);
    }
    const presentLabel = M.el("label", "choice");
    const present = M.el("input"); present.type = "checkbox"; present.name = "present";
    presentLabel.append(present, " 确认在班");
    choices.append(presentLabel);
    const answersLabel = M.el("label", "", "通话内容");
    const answers = M.el("textarea"); answers.name = "answers"; answers.rows = 2; answers.maxLength = 2000;
    answers.placeholder = "学员所述：是否在班、今日所学内容等";
    answersLabel.append(answers);
    const submit = M.el("button", "", "保存通话记录"); submit.type = "submit";
    const saved = M.el("p", "hint draft");
    const msg = M.el("p", "msg");
    form.append(timing, stop, choices, answersLabel, saved, submit, msg);
    details.append(form);
    const draft = store.get(localStorage, key);
    if (draft) {
      if (draft.reached) for (const r of form.elements.reached) r.checked = r.value === draft.reached;
      present.checked = Boolean(draft.present);
      answers.value = draft.answers || "";
      if (draft.started) form.dataset.started = draft.started;
      if (draft.ended) form.dataset.ended = draft.ended;
      saved.textContent = "已恢复本机保存的草稿";
    }
    syncPresent(form);
    showTiming(form);
    details.open = !called || Boolean(draft);
    form.addEventListener("input", () => {
      syncPresent(form);
      store.set(localStorage, key, readCall(form));
      saved.textContent = "草稿已保存在本机";
    });
    form.addEventListener("submit", ev => { ev.preventDefault(); recordCall(c.id, t.trainee_id, form, submit, msg); });
    return details;
  }

  function formOf(traineeId) { return document.querySelector(`#check-list li[data-trainee-id="${traineeId}"] form`); }
  function callStarted(checkId, traineeId) {
    const form = formOf(traineeId);
    if (!form) return;
    form.dataset.started = String(Date.now());
    delete form.dataset.ended;
    form.closest("details").open = true;
    showTiming(form);
    store.set(localStorage, draftKey(checkId, traineeId), readCall(form));
  }
  function callEnded(form) {
    if (!form.dataset.started || form.dataset.ended) return;
    form.dataset.ended = String(Date.now());
    showTiming(form);
    form.dispatchEvent(new Event("input"));
  }
  // Back on the page after the dialler: the call has ended.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState !== "visible" || !check) return;
    for (const form of document.querySelectorAll("#check-list form[data-started]")) callEnded(form);
  });

  async function recordCall(checkId, traineeId, form, submit, msg) {
    const f = readCall(form);
    if (!f.reached) { say(msg, "请选择接通或未接通", "bad"); return; }
    const reached = f.reached === "yes";
    let { started, ended } = f;
    if (form.dataset.phone && !started) { say(msg, "请先点上方号码拨出，本页会为通话计时", "bad"); return; }
    if (started && !ended) { callEnded(form); ended = Number(form.dataset.ended); }
    if (!started) started = ended = Date.now();  // no number on file: nothing was dialled
    submit.disabled = true;
    say(msg, "正在保存…", "wait");
    try {
      const c = await post(`/api/v1/phone-checks/${checkId}/calls`, { trainee_id: traineeId, reached,
        present: reached ? f.present : null, answers: f.answers.trim() || null,
        started_at: new Date(started).toISOString(), ended_at: new Date(ended).toISOString(),
        page_now: new Date().toISOString() });
      store.drop(localStorage, draftKey(checkId, traineeId));
      showCheck(c);
      say("check-msg", "通话记录已保存", "ok");
    } catch (e) {
      say(msg, why(e), "bad");
      submit.disabled = false;
    }
  }

  $("complete").addEventListener("click", async () => {
    if (!check) return;
    const button = $("complete");
    button.disabled = true;
    say("check-msg", "正在提交…", "wait");
    try {
      showCheck(await post(`/api/v1/phone-checks/${check.id}/complete`));
      say("check-msg", "电话抽查已完成，请填写检查表并办结", "ok");
    } catch (e) { say("check-msg", why(e), "bad"); } finally { button.disabled = false; }
  });

  // -- closing, with its draft ---------------------------------------------------------------------------------------
  const closeKey = () => `${DRAFT}close.${current}`;
  function restoreClose() {
    const form = $("close-form");
    const draft = store.get(localStorage, closeKey());
    for (const r of form.elements.outcome) r.checked = Boolean(draft && r.value === draft.outcome);
    $("close-note").value = (draft && draft.note) || "";
    $("close-draft").textContent = draft ? "已恢复本机保存的草稿" : "";
  }
  $("close-form").addEventListener("input", () => {
    if (current == null) return;
    store.set(localStorage, closeKey(), { outcome: $("close-form").elements.outcome.value, note: $("close-note").value });
    $("close-draft").textContent = "草稿已保存在本机";
  });
  $("close-form").addEventListener("submit", async ev => {
    ev.preventDefault();
    const id = current;
    const outcome = $("close-form").elements.outcome.value;
    const note = $("close-note").value.trim();
    if (!outcome) { say("close-msg", "请选择处置结果", "bad"); return; }
    if (note.length < 2) { say("close-msg", "请填写处置说明（至少 2 个字）", "bad"); return; }
    $("close-submit").disabled = true;
    say("close-msg", "正在提交…", "wait");
    try {
      const a = await post(`/api/v1/alerts/${id}/close`, { outcome, note });
      store.drop(localStorage, `${DRAFT}close.${id}`);
      upsert(a);
      say("close-msg", "");
      flash(`已办结（${OUTCOMES[a.outcome] || a.outcome}），已移入我的历史`);
      location.hash = "";
    } catch (e) { say("close-msg", why(e), "bad"); } finally { $("close-submit").disabled = false; }
  });

  // -- the inspection form (检查表): checklist, findings, photos from the camera, both signatures -------------------
  // The items and their results come with the catalogue (/public/rules.json), in the form's order. The draft keeps
  // what was typed (not the photos nor the signature: a reload asks for those again).
  const MAX_PHOTOS = 10;
  const MIN_INK = 12; // CSS pixels of strokes: less is a stray tap, not a signature
  const inspectKey = id => `${DRAFT}inspect.${id}`;
  const filedForms = new Map(); // inspection id → what the server answered (its digest), fetched once
  const pdfUrls = new Map(); // inspection id → blob: URL of its PDF, fetched with the token
  const again = new Set(); // alerts whose inspector asked for another form after filing one
  let photos = []; // {file, url, capturedAt, fix (a promise of the phone's fix when it was taken)}
  const resultNames = () => M.DISPATCH.results;
  const checklist = () => Object.entries(M.DISPATCH.checklist);

  function buildItems() {
    const list = $("insp-items");
    if (!checklist().length) {
      list.replaceChildren(M.el("li", "msg bad", "检查项目未能加载，请检查网络后刷新页面"));
      $("insp-submit").disabled = true;
      return;
    }
    list.replaceChildren(...checklist().map(([key, label], n) => {
      const li = M.el("li", "item");
      li.dataset.key = key;
      li.append(M.el("div", "label", `${n + 1}. ${label}`));
      const choices = M.el("div", "choices");
      for (const [value, name] of Object.entries(resultNames())) {
        const l = M.el("label", "choice");
        const input = M.el("input"); input.type = "radio"; input.name = `result.${key}`; input.value = value;
        l.append(input, ` ${name}`);
        choices.append(l);
      }
      const note = M.el("textarea"); note.name = `note.${key}`; note.rows = 1; note.maxLength = 1000;
      note.placeholder = `情况说明（${resultNames().problem || "不符合"}时必填）`;
      li.append(choices, note);
      return li;
    }));
  }

  function readInspection() {
    const els = $("insp-form").elements;
    const items = {};
    for (const [key] of checklist()) {
      items[key] = { result: els[`result.${key}`].value, note: els[`note.${key}`].value };
    }
    return { kind: els.kind.value, kindPicked: Boolean($("insp-form").dataset.kindPicked), items, headcount: $("insp-headcount").value, findings: $("insp-findings").value,
      responsible: $("insp-responsible").value };
  }
  function markProblems() {
    for (const li of $("insp-items").children) {
      const key = li.dataset.key;
      if (key) li.classList.toggle("problem", $("insp-form").elements[`result.${key}`].value === "problem");
    }
  }
  function fillInspection(draft) {
    const els = $("insp-form").elements;
    for (const r of els.kind) r.checked = Boolean(draft && r.value === draft.kind);
    if (draft && draft.kindPicked) $("insp-form").dataset.kindPicked = "1"; else delete $("insp-form").dataset.kindPicked;
    for (const [key] of checklist()) {
      const item = (draft && draft.items && draft.items[key]) || {};
      for (const r of els[`result.${key}`]) r.checked = r.value === item.result;
      els[`note.${key}`].value = item.note || "";
    }
    $("insp-headcount").value = (draft && draft.headcount) || "";
    $("insp-findings").value = (draft && draft.findings) || "";
    $("insp-responsible").value = (draft && draft.responsible) || "";
    markProblems();
  }
  function restoreInspection() {
    if (!checklist().length) return;
    const draft = store.get(localStorage, inspectKey(current));
    fillInspection(draft);
    $("insp-draft").textContent = draft ? "已恢复本机保存的草稿（照片和签名须重新拍摄、签署）" : "";
    clearPhotos();
    clearSignature();
    say("insp-msg", "");
  }
  $("insp-form").addEventListener("input", ev => {
    if (current == null || ev.target === $("insp-photos")) return;
    if (ev.target.name === "kind") $("insp-form").dataset.kindPicked = "1";
    markProblems();
    store.set(localStorage, inspectKey(current), readInspection());
    $("insp-draft").textContent = "草稿已保存在本机（照片和签名不保存）";
  });

  function inspectionProblems(f) {
    const problems = [];
    const problem = resultNames().problem || "不符合";
    if (!f.kind) problems.push("请选择检查方式");
    for (const [key, label] of checklist()) {
      const item = f.items[key];
      if (!item.result) problems.push(`「${label}」未填写检查结果`);
      else if (item.result === "problem" && !item.note.trim()) problems.push(`「${label}」${problem}，须写明具体情况`);
    }
    if (Object.values(f.items).some(i => i.result === "problem") && !f.findings.trim()) {
      problems.push(`有${problem}项时须填写检查发现`);
    }
    const n = Number(f.headcount);
    if (f.headcount !== "" && (!Number.isInteger(n) || n < 0 || n > 10000)) problems.push("实到人数须为 0 到 10000 之间的整数");
    if (!f.responsible.trim()) problems.push("请填写现场负责人姓名");
    return problems;
  }

  // Photos: each camera shot (or several picked at once) is added, up to ten, with a thumbnail to check or remove.
  function renderThumbs() {
    $("insp-thumbs").replaceChildren(...photos.map((p, n) => {
      const li = M.el("li");
      const img = M.el("img"); img.src = p.url; img.alt = `现场照片 ${n + 1}`;
      const drop = M.el("button", "", "×"); drop.type = "button"; drop.setAttribute("aria-label", `删除照片 ${n + 1}`);
      drop.addEventListener("click", () => { URL.revokeObjectURL(p.url); photos.splice(photos.indexOf(p), 1); renderThumbs(); });
      li.append(img, drop);
      return li;
    }));
    $("insp-photo-count").textContent = photos.length
      ? `已拍 ${photos.length} 张（最多 ${MAX_PHOTOS} 张）` : "尚未拍照（可不拍，最多 10 张）";
    $("insp-photos").disabled = photos.length >= MAX_PHOTOS;
  }
  function clearPhotos() {
    for (const p of photos) URL.revokeObjectURL(p.url);
    photos = [];
    renderThumbs();
  }
  $("insp-photos").addEventListener("change", () => {
    const input = $("insp-photos");
    const chosen = [...input.files].filter(f => !f.type || f.type.startsWith("image/"));
    const room = MAX_PHOTOS - photos.length;
    const capturedAt = new Date().toISOString();
    const fix = chosen.length ? currentFix(8000) : null; // where the photos were taken: one fix for the shot
    for (const file of chosen.slice(0, room)) photos.push({ file, url: URL.createObjectURL(file), capturedAt, fix });
    say("insp-msg", chosen.length > room ? `最多 ${MAX_PHOTOS} 张照片，另外 ${chosen.length - room} 张未添加` : "",
      chosen.length > room ? "bad" : "");
    input.value = "";
    renderThumbs();
  });

  // The signature pads (the site's responsible person's and the inspector's own): pointer events (finger, pen or
  // mouse), drawn in each canvas's own pixels.
  function signaturePad(canvasId, clearId) {
    const pad = $(canvasId);
    const pen = pad.getContext("2d");
    let ink = 0;
    let drawing = null; // the pointer drawing, and where it last was
    function size() {
      const rect = pad.getBoundingClientRect();
      if (!rect.width || ink > 0) return; // hidden, or holding a signature that resizing would erase
      const dpr = Math.min(window.devicePixelRatio || 1, 3);
      const w = Math.round(rect.width * dpr), h = Math.round(rect.height * dpr);
      if (pad.width !== w || pad.height !== h) { pad.width = w; pad.height = h; }
    }
    function clear() {
      pen.clearRect(0, 0, pad.width, pad.height);
      ink = 0;
      pad.classList.remove("signed");
      size();
    }
    function padPoint(e) {
      const rect = pad.getBoundingClientRect();
      return { x: (e.clientX - rect.left) * pad.width / rect.width, y: (e.clientY - rect.top) * pad.height / rect.height,
        scale: pad.width / rect.width };
    }
    function stroke(from, to) {
      pen.strokeStyle = "#0b1a33";
      pen.lineWidth = 2.6 * to.scale;
      pen.lineCap = "round"; pen.lineJoin = "round";
      pen.beginPath(); pen.moveTo(from.x, from.y); pen.lineTo(to.x, to.y); pen.stroke();
      ink += Math.hypot(to.x - from.x, to.y - from.y) / to.scale;
    }
    pad.addEventListener("pointerdown", e => {
      if (e.button > 0) return;
      e.preventDefault();
      size();
      try { pad.setPointerCapture(e.pointerId); } catch { /* drawing still works inside the box */ }
      drawing = { id: e.pointerId, at: padPoint(e) };
    });
    pad.addEventListener("pointermove", e => {
      if (!drawing || drawing.id !== e.pointerId) return;
      e.preventDefault();
      const points = typeof e.getCoalescedEvents === "function" ? e.getCoalescedEvents() : [];
      for (const p of points.length ? points : [e]) {
        const at = padPoint(p);
        stroke(drawing.at, at);
        drawing.at = at;
      }
    });
    const penUp = e => {
      if (!drawing || drawing.id !== e.pointerId) return;
      drawing = null;
      pad.classList.toggle("signed", ink >= MIN_INK);
    };
    pad.addEventListener("pointerup", penUp);
    pad.addEventListener("pointercancel", penUp);
    $(clearId).addEventListener("click", clear);
    const png = () => new Promise((resolve, reject) => pad.toBlob(
      b => b ? resolve(b) : reject(new Error("签名图片未能生成，请清除后重新签名")), "image/png"));
    return { size, clear, png, signed: () => ink >= MIN_INK };
  }
  const pads = { responsible: signaturePad("insp-sign", "insp-sign-clear"),
                 inspector: signaturePad("insp-sign-mine", "insp-sign-mine-clear") };
  function sizePad() { pads.responsible.size(); pads.inspector.size(); }
  window.addEventListener("resize", sizePad);
  function clearSignature() { pads.responsible.clear(); pads.inspector.clear(); }

  $("insp-form").addEventListener("submit", async ev => {
    ev.preventDefault();
    const a = alerts.find(x => x.id === current);
    if (!a || !checklist().length) return;
    const f = readInspection();
    const problems = inspectionProblems(f);
    if (!pads.responsible.signed()) problems.push("签名为空：请现场负责人在签名框内签名");
    if (!pads.inspector.signed()) problems.push("检查人员签名为空：请您本人在检查人员签名框内签名");
    if (problems.length) { say("insp-msg", problems.join("；"), "bad"); return; }
    const button = $("insp-submit");
    button.disabled = true;
    say("insp-msg", photos.length ? `正在上传检查表和 ${photos.length} 张照片…` : "正在上传检查表…", "wait");
    try {
      const signature = await pads.responsible.png();
      const mine = await pads.inspector.png();
      const body = new FormData();
      body.append("class_id", String(a.class_id));
      body.append("alert_id", String(a.id));
      body.append("kind", f.kind);
      const items = {};
      for (const [key, item] of Object.entries(f.items)) items[key] = { result: item.result, note: item.note.trim() || null };
      body.append("items", JSON.stringify(items));
      body.append("findings", f.findings.trim());
      body.append("responsible_name", f.responsible.trim());
      if (f.headcount !== "") body.append("headcount_present", String(Number(f.headcount)));
      body.append("signature", signature, "signature.png");
      body.append("inspector_signature", mine, "inspector-signature.png");
      photos.forEach((p, n) => body.append("photos", p.file, p.file.name || `photo-${n + 1}.jpg`));
      // Each photo's capture time (when the page took it) and the phone's fix then, in the photos' order.
      const meta = await Promise.all(photos.map(async p => ({ captured_at: p.capturedAt, fix: await p.fix })));
      if (photos.length) body.append("photo_meta", JSON.stringify(meta));
      const fix = await currentFix(8000);  // where the form is signed: judged against the venue's fence
      if (fix) body.append("fix", JSON.stringify(fix));
      const filed = await call("/api/v1/inspections", { method: "POST", body });
      filedForms.set(filed.id, filed);
      store.drop(localStorage, inspectKey(a.id));
      again.delete(a.id);
      fillInspection(null);
      clearPhotos();
      clearSignature();
      $("insp-draft").textContent = "";
      say("insp-msg", "");
      if (!a.inspection_ids.includes(filed.id)) a.inspection_ids = [...a.inspection_ids, filed.id];
      renderTask();
      say("insp-done-msg", `检查表已归档（第 ${filed.id} 号），请核对后办结`, "ok");
      $("insp-done").scrollIntoView({ block: "start" });
      refreshAlert(a.id);
    } catch (e) { say("insp-msg", why(e), "bad"); } finally { button.disabled = false; }
  });
  $("insp-again").addEventListener("click", () => {
    if (current == null) return;
    again.add(current);
    say("insp-done-msg", "");
    renderTask();
    $("insp-form").scrollIntoView({ block: "start" });
  });

  // Filed forms: the PDF needs the token, so the link fetches it and opens it from a blob: URL.
  const shaLine = f => `SHA-256 ${f.pdf_sha256.slice(0, 16)}…`;
  function renderFiled(a) {
    const ids = a.inspection_ids || [];
    const list = $("insp-filed");
    if (list.dataset.ids === ids.join(",") && ids.every(id => filedForms.has(id))) return;
    list.dataset.ids = ids.join(",");
    list.replaceChildren(...ids.map(id => {
      const li = M.el("li");
      li.dataset.inspectionId = id;
      const f = filedForms.get(id);
      const link = M.el("a", "pdf", `检查表第 ${id} 号（PDF）`);
      link.href = `/api/v1/inspections/${id}/form.pdf`;
      link.dataset.pdfUrl = link.href;
      link.addEventListener("click", ev => openPdf(ev, id, link));
      const sha = M.el("span", "sha", f ? shaLine(f) : "");
      li.append(link, sha);
      if (f) li.append(M.el("span", "sub", `${f.kind === "phone" ? "电话抽查" : "现场检查"} · ${f.inspector} · 负责人 ${f.responsible_name} · ${M.dateTime(f.inspected_at)}`));
      else call(`/api/v1/inspections/${id}`).then(got => { filedForms.set(id, got); renderFiled(a); }).catch(() => {});
      return li;
    }));
  }
  async function sha256Hex(blob) {
    if (!window.crypto || !crypto.subtle) return null; // only in secure contexts
    const digest = await crypto.subtle.digest("SHA-256", await blob.arrayBuffer());
    return [...new Uint8Array(digest)].map(b => b.toString(16).padStart(2, "0")).join("");
  }
  async function openPdf(ev, id, link) {
    if (pdfUrls.has(id)) return; // the link already points at the fetched PDF
    ev.preventDefault();
    say("insp-done-msg", "正在获取检查表 PDF…", "wait");
    try {
      let res;
      try {
        res = await fetch(link.dataset.pdfUrl, { headers: { Authorization: `Bearer ${token}` } });
      } catch { setNet(NET_DOWN); say("insp-done-msg", NET_DOWN, "bad"); return; }
      if (!res.ok) { const body = await res.json().catch(() => null); throw Object.assign(new Error(body?.message || `HTTP ${res.status}`), { status: res.status }); }
      const blob = new Blob([await res.blob()], { type: "application/pdf" });
      const declared = res.headers.get("X-Content-SHA256");
      const got = await sha256Hex(blob);
      if (got && declared && got !== declared) throw new Error("检查表 PDF 与其摘要不符，请重新获取");
      const url = URL.createObjectURL(blob);
      pdfUrls.set(id, url);
      link.href = url; link.target = "_blank"; link.rel = "noopener";
      link.dataset.blob = "1";
      say("insp-done-msg", `检查表 PDF 已获取${got ? "，摘要已核对" : ""}（SHA-256 ${(got || declared || "").slice(0, 16)}…）`, "ok");
      if (!window.open(url, "_blank")) say("insp-done-msg", "浏览器拦截了新窗口：请再点一次链接打开检查表", "wait");
    } catch (e) { say("insp-done-msg", e.message || "未能获取检查表", "bad"); }
  }

  // -- the live feed -------------------------------------------------------------------------------------------------
  function connect() {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${proto}://${location.host}/api/v1/live`);  // the token goes in the first message
    ws.onopen = () => {
      const auth = { type: "auth", token };
      if (lastId != null) auth.since = lastId;
      ws.send(JSON.stringify(auth));
    };
    ws.onmessage = msg => {
      const ev = JSON.parse(msg.data);
      if (ev.type === "error") {
        if (["AUTH_INVALID", "FORBIDDEN_ROLE", "AUTH_REQUIRED"].includes(ev.code)) { ws.onclose = null; ws.close(); showLogin(ev.message); }
        return;
      }
      if (ev.type === "hello") {
        setConn(true, "实时连接正常");
        if (announceAfter == null) announceAfter = ev.last_id;
        if (lastId == null) lastId = ev.last_id;
        return;
      }
      if (ev.type === "reset") { lastId = ev.last_id; scheduleReload(); return; }
      lastId = Math.max(lastId || 0, ev.id);
      const d = ev.data || {};
      if (ev.type === "page") {
        if (d.staff_id !== me.id) return;
        scheduleReload();
        if (ev.id > announceAfter) announce(d);
      } else if (["alert", "anomaly", "anomaly_resolved"].includes(ev.type)) {
        if (alerts.some(a => a.id === d.alert_id) || (me && d.assignee_staff_id === me.id)) scheduleReload();
      }
    };
    ws.onclose = () => { setConn(false, "连接中断，正在重连…"); setTimeout(connect, 2000); };
  }

  // -- sign-in -------------------------------------------------------------------------------------------------------
  function showLogin(message) {
    $("login").classList.remove("hidden");
    $("login-error").textContent = message || "";
  }
  $("login-form").addEventListener("submit", ev => {
    ev.preventDefault();
    token = $("login-token").value.trim();
    for (const k of store.keys(sessionStorage)) if (k.startsWith(CACHE)) store.drop(sessionStorage, k);  // another person's
    try { sessionStorage.setItem(TOKEN_KEY, token); } catch { /* kept in memory */ }
    $("login").classList.add("hidden");
    start();
  });

  // A one-time sign-in link (#signin=…) an admin issued: exchanged once for a session of a working day.
  async function redeemSignIn() {
    const m = location.hash.match(/signin=([A-Za-z0-9_-]+)/);
    if (!m) return;
    history.replaceState(null, "", location.pathname);
    try {
      const res = await fetch("/auth/sign-in", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ code: m[1] }) });
      const body = await res.json();
      if (!res.ok) { token = null; showLogin(body.message || `登录失败（HTTP ${res.status}）`); return; }
      for (const k of store.keys(sessionStorage)) if (k.startsWith(CACHE)) store.drop(sessionStorage, k);
      token = body.token;
      try { sessionStorage.setItem(TOKEN_KEY, token); } catch { /* kept in memory */ }
      flash(`${body.name}，已登录，本次登录有效至 ${M.dateTime(body.expires_at)}`);
      document.dispatchEvent(new Event("monitor:signed-in"));  // other sections of the page may now load
    } catch { showLogin("网络异常：未能连接服务器，请联网后重新打开登录链接"); }
  }

  // The offline shell: a reload without network shows this page and its drafts (web/static/inspector-sw.js).
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/inspector-sw.js", { scope: "/inspector" })
      .then(() => { document.body.dataset.offlineShell = "registered"; })
      .catch(() => { document.body.dataset.offlineShell = "unavailable"; });
  }

  async function start() {
    if (location.hash.includes("signin=")) await redeemSignIn();
    if (!token) { if ($("login").classList.contains("hidden")) showLogin(); return; }
    try {
      me = await call("/api/v1/staff/me");
      store.set(sessionStorage, CACHE + "me", me);
    } catch (e) {
      me = e.network ? store.get(sessionStorage, CACHE + "me") : null;
      if (!me) {
        if (e.network) setTimeout(start, 5000);
        else showLogin(e.status === 404 ? "该令牌未绑定抽查人员，请向管理员索取本人的令牌" : e.message);
        return;
      }
    }
    $("me").textContent = `${me.name}${me.on_duty ? " · 在岗" : " · 不在岗"}`;
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
})();

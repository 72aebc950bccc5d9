// The wall screen: province overview, map of classes, live anomaly feed over the WebSocket.
"use strict";
(() => {
  const M = Monitor;
  const TOKEN_KEY = "monitor.wall.token";
  let token = M.takeToken(TOKEN_KEY);
  let lastId = null; // the last event id seen, so a reconnect resumes where it stopped
  let chart = null;
  let overview = null;
  const alarmedClasses = new Map(); // class id -> last anomaly time (ms)
  const feed = document.getElementById("feed");
  const verdicts = document.getElementById("verdicts");
  let feedCount = 0;
  let role = null; // the token's role, from the live feed's hello: only operators and admins see the dispatch buttons

  function setConn(on, text) {
    const c = document.getElementById("conn");
    c.className = "conn " + (on ? "on" : "off");
    c.textContent = text;
  }
  function tickClock() {
    document.getElementById("clock").textContent = "北京时间 " + M.dateTime(new Date().toISOString());
    tickReturned();
  }

  function showLogin(message) {
    document.getElementById("login").classList.remove("hidden");
    document.getElementById("login-error").textContent = message || "";
  }
  document.getElementById("login-form").addEventListener("submit", ev => {
    ev.preventDefault();
    token = document.getElementById("login-token").value.trim();
    sessionStorage.setItem(TOKEN_KEY, token);
    document.getElementById("login").classList.add("hidden");
    start();
  });

  async function initMap() {
    const geo = await (await fetch("/static/vendor/yunnan.json")).json();
    echarts.registerMap("yunnan", geo);
    chart = echarts.init(document.getElementById("map"));
    window.addEventListener("resize", () => chart.resize());
  }

  function renderMap() {
    if (!chart || !overview) return;
    const now = Date.now();
    const byPref = overview.prefectures.map(p => ({ name: p.name, value: p.anomalies, classes: p.classes, inSession: p.in_session }));
    const max = Math.max(1, ...byPref.map(p => p.value));
    const points = overview.classes.map(c => {
      const alarmed = now - (alarmedClasses.get(c.id) || 0) < 5 * 60 * 1000;
      return { name: c.name, value: [c.lon, c.lat, 1], status: c.status, institution: c.institution,
        itemStyle: { color: alarmed ? "#ff4d4f" : c.status === "in_session" ? "#3dff9e" : "#5b8bd9" } };
    });
    chart.setOption({
      tooltip: { trigger: "item", formatter: p => p.seriesType === "map"
        ? `${p.name}<br>班次 ${p.data?.classes ?? 0}，上课中 ${p.data?.inSession ?? 0}<br>今日异常 ${p.data?.value ?? 0}`
        : `${p.name}<br>${p.data.institution}<br>${p.data.status === "in_session" ? "上课中" : "非上课时段"}` },
      visualMap: { min: 0, max, left: 16, top: 16, text: ["异常多", "少"], calculable: false, seriesIndex: 0,
        inRange: { color: ["#0d2a5c", "#1d4f9a", "#b8452f"] }, textStyle: { color: "#8aa4cf" } },
      geo: { map: "yunnan", roam: false, zoom: 1.1, label: { show: true, color: "#9fc3ff", fontSize: 12 },
        itemStyle: { areaColor: "#0d2a5c", borderColor: "#3f7fd9" }, emphasis: { itemStyle: { areaColor: "#1d5fb5" } } },
      series: [
        { type: "map", geoIndex: 0, data: byPref },
        { type: "effectScatter", coordinateSystem: "geo", data: points, symbolSize: 14,
          rippleEffect: { scale: 3, brushType: "stroke" }, zlevel: 2 },
      ],
    });
  }

  function renderOverview() {
    const c = overview.counters;
    document.getElementById("c-classes").textContent = c.classes_today;
    document.getElementById("c-insession").textContent = c.classes_in_session;
    document.getElementById("c-checkins").textContent = c.checkins_today;
    document.getElementById("c-passrate").textContent = c.pass_rate == null ? "–" : (c.pass_rate * 100).toFixed(1) + "%";
    document.getElementById("c-anomalies").textContent = c.anomalies_today;
    // What is actually waiting: active alerts (anomalies handled by a closed alert no longer count).
    document.getElementById("c-open").textContent = c.alerts_active;
    const waiting = [];
    if (c.alerts_returned) waiting.push(`退回 ${c.alerts_returned}`);
    if (c.alerts_overdue) waiting.push(`超时 ${c.alerts_overdue}`);
    document.getElementById("c-open-label").textContent = waiting.length ? `待处置告警（${waiting.join("，")}）` : "待处置告警";
    // The list of returned alerts is kept by the live feed; a count that disagrees (missed events, a reopened alert
    // that had been paged) reloads it.
    if (Math.min(c.alerts_returned || 0, RETURNED_MAX) !== returned.size) loadReturned();
    const ranking = document.getElementById("ranking");
    ranking.replaceChildren();
    const prefs = [...overview.prefectures].sort((a, b) => b.anomalies - a.anomalies || b.classes - a.classes);
    const top = Math.max(1, ...prefs.map(p => p.anomalies));
    for (const p of prefs.slice(0, 10)) {
      const li = M.el("li");
      li.append(M.el("span", "", p.name.replace(/(彝族|哈尼族|壮族|苗族|傣族|景颇族|傈僳族|藏族|白族).*自治州/, "州")));
      const bar = M.el("span", "bar"); const fill = M.el("i"); fill.style.width = (100 * p.anomalies / top) + "%"; bar.append(fill);
      li.append(bar, M.el("span", "", String(p.anomalies)));
      ranking.append(li);
    }
    const byRule = document.getElementById("by-rule");
    byRule.replaceChildren();
    const rules = Object.entries(overview.anomalies_by_rule).sort((a, b) => b[1] - a[1]);
    if (!rules.length) byRule.append(M.el("li", "", "暂无异常"));
    for (const [rule, n] of rules) { const li = M.el("li"); li.append(M.el("span", "", M.ruleName(rule)), M.el("b", "", String(n))); byRule.append(li); }
    renderMap();
  }

  async function refreshOverview() {
    try {
      overview = await M.api(token, "/api/v1/overview");
      renderOverview();
      renderShortfall(await M.api(token, "/api/v1/inspections/shortfall"));
    } catch (e) {
      if (e.status === 401 || e.status === 403) showLogin(e.message);
    }
  }

  // Classes short of the two inspections each must have (clause 十四), fewest first.
  function renderShortfall(list) {
    const top = [...list].sort((a, b) => a.filed - b.filed).slice(0, 8);
    document.getElementById("short-count").textContent = `${list.length} 个`;
    document.getElementById("shortfall").replaceChildren(...top.map(c => {
      const li = M.el("li");
      li.append(M.el("span", "", `${c.class_name}（${c.institution_name}）`), M.el("b", "", `${c.filed}/${c.required}`));
      return li;
    }));
  }

  // A feed item shows, and opens, the latest anomaly of its alert; a photo that loads late never overwrites a newer one.
  async function showPhoto(li, sha) {
    li.dataset.photo = sha || "";
    const url = await M.photoUrl(token, sha);
    if (li.dataset.photo === (sha || "")) li.querySelector("img").src = url;
  }

  async function addAnomaly(ev, fresh) {
    const d = ev.data;
    alarmedClasses.set(d.class_id, Date.parse(ev.at));
    // Repeats of one rule on one class are one alert: update its count instead of flooding the feed.
    const existing = d.alert_id ? feed.querySelector(`li[data-alert-id="${d.alert_id}"]`) : null;
    if (existing) {
      if (Number(existing.dataset.eventId) > ev.id) return; // an older repeat (replayed): the item already shows a newer one
      existing.dataset.eventId = ev.id;
      existing.latest = ev;
      existing.querySelector(".count").textContent = d.alert_count > 1 ? `×${d.alert_count}` : "";
      existing.querySelector(".msg").textContent = `${d.trainee_name ? d.trainee_name + "：" : ""}${d.message}`;
      existing.querySelector(".time").textContent = M.time(ev.at);
      existing.classList.remove("fresh"); void existing.offsetWidth; existing.classList.add("fresh");
      feed.prepend(existing);
      await showPhoto(existing, d.photo_sha256);
      return;
    }
    const li = M.el("li", `${d.severity}${fresh ? " fresh" : ""}`);
    li.dataset.eventId = ev.id;
    li.dataset.rule = d.rule;
    if (d.alert_id) li.dataset.alertId = d.alert_id;
    li.latest = ev;
    const img = M.el("img"); img.alt = "现场照片";
    const text = M.el("div");
    const title = M.el("div", "rule", `${M.ruleName(d.rule)} · ${M.SEVERITY[d.severity] || ""} `);
    title.append(M.el("span", "count", d.alert_count > 1 ? `×${d.alert_count}` : ""), M.el("span", "state-badge"));
    text.append(title,
      M.el("div", "where", `${d.prefecture_name} ${d.county_name} · ${d.class_name}`),
      M.el("div", "msg", `${d.trainee_name ? d.trainee_name + "：" : ""}${d.message}`),
      M.el("div", "time", M.time(ev.at)));
    li.append(img, text);
    li.addEventListener("click", () => openDetail(li.latest));
    feed.prepend(li);
    while (feed.children.length > 60) feed.lastChild.remove();
    feedCount += 1;
    document.getElementById("feed-count").textContent = `（本次已接收 ${feedCount} 条）`;
    if (d.alert_id) loadState(li, d.alert_id);
    await showPhoto(li, d.photo_sha256);
  }

  // -- dispatch: each feed item shows its alert's state; the detail shows pages, history and the operator's buttons --
  const { actions: ACTIONS, outcomes: OUTCOMES, page_states: PAGE_STATES, levels: LEVELS } = M.DISPATCH;  // served
  const detailBox = document.getElementById("detail");
  let staffList = [];

  function setBadge(li, state, stateName) {
    const badge = li.querySelector(".state-badge");
    badge.textContent = stateName || "";
    badge.className = `state-badge ${state || ""}`;
  }
  // A new item asks for its alert's state once; an "alert" event that arrived meanwhile is newer and wins.
  async function loadState(li, alertId, force = false) {
    try {
      const a = await M.api(token, `/api/v1/alerts/${alertId}`);
      if (force || !li.dataset.stateEvent) setBadge(li, a.state, a.state_name);
    } catch { /* the badge stays empty until the next alert event */ }
  }
  function onAlertEvent(ev) {
    const d = ev.data;
    onReturnedEvent(ev);
    scheduleRefresh();  // the counters (待处置, 退回, 超时) follow every step
    const li = feed.querySelector(`li[data-alert-id="${d.alert_id}"]`);
    if (li && Number(li.dataset.stateEvent || 0) < ev.id) {
      li.dataset.stateEvent = ev.id;
      setBadge(li, d.state, d.state_name);
    }
    if (!detailBox.classList.contains("hidden") && detailBox.dataset.alertId === String(d.alert_id)) refreshDispatch();
  }

  const covers = (s, county) => s.level === "province" || (s.level === "prefecture"
    ? county.startsWith(s.region_code.slice(0, 4)) : s.region_code === county);

  function dispatchMsg(text, ok) {
    const p = document.getElementById("dispatch-msg");
    p.textContent = text || "";
    p.className = `dispatch-msg${ok ? " ok" : ""}`;
  }

  function renderDispatch(a, anomaly) {
    const badge = document.getElementById("dispatch-state");
    badge.textContent = a.state_name;
    badge.className = `state-badge ${a.state}`;
    const accepted = a.pages.filter(p => p.state === "accepted").at(-1);
    const assignee = accepted ? accepted.staff_name
      : (staffList.find(s => s.id === a.assignee_staff_id) || {}).name;
    const rows = [["状态", a.state_name], ["处置结果", a.outcome ? OUTCOMES[a.outcome] || a.outcome : "—"],
      ["接单人", a.assignee_staff_id ? assignee || `抽查人员 ${a.assignee_staff_id}` : "—"],
      ["告警次数", `${a.count} 次（未消除 ${a.open_count}）`], ["首次发生", M.dateTime(a.first_at)]];
    document.getElementById("dispatch-facts").replaceChildren(
      ...rows.flatMap(([k, v]) => [M.el("dt", "", k), M.el("dd", "", v)]));
    const pages = document.getElementById("dispatch-pages");
    pages.replaceChildren(...a.pages.map(p => {
      const tr = M.el("tr");
      for (const v of [p.staff_name, LEVELS[p.level] || p.level, String(p.round), M.time(p.paged_at), M.time(p.deadline),
        PAGE_STATES[p.state] || p.state]) tr.append(M.el("td", "", v));
      return tr;
    }));
    if (!a.pages.length) {
      const tr = M.el("tr"); const td = M.el("td", "", "尚未派发"); td.colSpan = 6; tr.append(td); pages.append(tr);
    }
    const steps = document.getElementById("dispatch-history");
    steps.replaceChildren(...a.transitions.map(t => {
      const li = M.el("li");
      li.append(M.el("span", "at", M.dateTime(t.at)), M.el("span", "", `${ACTIONS[t.action] || t.action} · ${t.actor}`
        + `${t.outcome ? "（" + (OUTCOMES[t.outcome] || t.outcome) + "）" : ""}${t.note ? "：" + t.note : ""}`));
      return li;
    }));
    if (!a.transitions.length) steps.append(M.el("li", "", "暂无处置记录"));
    const operator = role === "operator" || role === "admin";
    document.getElementById("dispatch-actions").classList.toggle("hidden", !operator);
    const open = a.state === "open";
    const finished = a.state === "closed" || a.state === "resolved";
    document.getElementById("dispatch-send").classList.toggle("hidden", !open);
    document.getElementById("btn-dismiss").classList.toggle("hidden", !(open || a.state === "dispatched"));
    document.getElementById("btn-reopen").classList.toggle("hidden", !finished);
    document.getElementById("dispatch-note").classList.toggle("hidden", !(open || a.state === "dispatched" || finished));
    const select = document.getElementById("dispatch-staff");
    const chosen = select.value;
    const eligible = staffList.filter(s => s.active && s.on_duty && covers(s, a.county_code)
      && !(anomaly.institution_id && s.tied_institution_ids.includes(anomaly.institution_id)));
    const auto = M.el("option", "", "系统随机抽取（在岗、无需回避的抽查人员）"); auto.value = "";
    select.replaceChildren(auto, ...eligible.map(s => {
      const o = M.el("option", "", `${s.name}（${LEVELS[s.level] || s.level} · ${s.region_code}）`);
      o.value = s.id;
      return o;
    }));
    if ([...select.options].some(o => o.value === chosen)) select.value = chosen;
  }

  async function refreshDispatch() {
    const id = detailBox.dataset.alertId;
    const anomaly = detailBox.anomaly;
    if (!id || !anomaly) return;
    try {
      const a = await M.api(token, `/api/v1/alerts/${id}`);
      if (detailBox.dataset.alertId === id) renderDispatch(a, anomaly);
    } catch (e) { dispatchMsg(e.message || "网络异常，未能读取处置信息"); }
  }

  async function showDispatch(d) {
    const box = document.getElementById("dispatch");
    dispatchMsg("");
    document.getElementById("dispatch-note").value = "";
    if (!d.alert_id) { box.classList.add("hidden"); return; }
    if (role === "operator" || role === "admin") {
      try { staffList = await M.api(token, "/api/v1/staff"); } catch { staffList = []; }
    }
    box.classList.remove("hidden");
    await refreshDispatch();
  }

  async function operate(action, body, done) {
    const id = detailBox.dataset.alertId;
    const buttons = document.querySelectorAll("#dispatch-actions button");
    buttons.forEach(b => { b.disabled = true; });
    dispatchMsg("正在提交…", true);
    try {
      const a = await M.api(token, `/api/v1/alerts/${id}/${action}`, { method: "POST",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      document.getElementById("dispatch-note").value = "";
      if (detailBox.dataset.alertId === id) renderDispatch(a, detailBox.anomaly);
      const li = feed.querySelector(`li[data-alert-id="${id}"]`);
      if (li) setBadge(li, a.state, a.state_name);
      if (a.state !== "open" && returned.has(a.id)) { returnedLoad += 1; returned.delete(a.id); renderReturned(); }
      dispatchMsg(done(a), true);
    } catch (e) {
      dispatchMsg(e.status == null ? "网络异常，未能提交，请重试" : e.message);
    } finally { buttons.forEach(b => { b.disabled = false; }); }
  }
  document.getElementById("btn-dispatch").addEventListener("click", () => {
    const staffId = document.getElementById("dispatch-staff").value;
    operate("dispatch", staffId ? { staff_id: Number(staffId) } : {},
      a => `已派发：${a.pages.filter(p => p.state === "paged").map(p => p.staff_name).join("、")}`);
  });
  for (const [id, action, word] of [["btn-dismiss", "dismiss", "不予派发"], ["btn-reopen", "reopen", "重新打开"]]) {
    document.getElementById(id).addEventListener("click", () => {
      const note = document.getElementById("dispatch-note").value.trim();
      if (note.length < 2) { dispatchMsg(`${word}必须填写说明（至少 2 个字）`); document.getElementById("dispatch-note").focus(); return; }
      operate(action, { note }, a => `已${word}，当前状态：${a.state_name}`);
    });
  }

  // -- alerts returned to the center: nobody on the ladder accepted, or the inspector handed the task back (a tie). ----
  // They stand out on top of the alerts, each with why it came back and how long it has waited, and a button that
  // opens the dispatch controls; a new one sounds (once a gesture has allowed the page to play sound).
  const RETURNED_MAX = 50;
  const returned = new Map();  // alert id -> what the list shows
  const returnedList = document.getElementById("returned");
  let returnedLoad = 0;  // bumped by every change, so a list load that started before it never overwrites it
  let announceAfter = null;  // events up to the first hello are history: no sound for them

  let audio = null;
  function unlock() {
    try {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!audio && Ctx) audio = new Ctx();
      if (audio && audio.state === "suspended") audio.resume().catch(() => {});
    } catch { audio = null; }
    const sound = document.getElementById("sound");
    sound.textContent = audio ? "声音提示已开启" : "本浏览器不支持声音提示";
    sound.classList.toggle("on", !!audio); sound.classList.toggle("off", !audio);
  }
  for (const type of ["pointerdown", "keydown", "touchstart"]) document.addEventListener(type, unlock, { passive: true });
  function beep() {  // three falling two-tone calls, louder than the inspector's page: a wall is heard across a room
    if (!audio || audio.state !== "running") return false;
    try {
      const t = audio.currentTime;
      for (let i = 0; i < 3; i++) {
        for (const [at, freq] of [[0, 988], [0.22, 740]]) {
          const osc = audio.createOscillator();
          const gain = audio.createGain();
          const start = t + i * 0.6 + at;
          osc.type = "triangle"; osc.frequency.value = freq;
          gain.gain.setValueAtTime(0.0001, start);
          gain.gain.exponentialRampToValueAtTime(0.5, start + 0.02);
          gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.2);
          osc.connect(gain).connect(audio.destination);
          osc.start(start); osc.stop(start + 0.22);
        }
      }
      return true;
    } catch { return false; }
  }
  function announceReturned() {
    const b = document.body.dataset;
    b.returnedAnnounced = String(Number(b.returnedAnnounced || 0) + 1);
    if (beep()) b.sounded = String(Number(b.sounded || 0) + 1);
  }

  const prefectureName = county => ((overview?.prefectures || []).find(p => p.code === county.slice(0, 4) + "00") || {}).name || "";
  function fromDetail(a) {
    const back = [...a.transitions].reverse().find(t => t.to_state === "open");
    return { id: a.id, rule: a.rule, severity: a.severity, class_name: a.class_name, institution_name: a.institution_name,
      county_code: a.county_code, county_name: a.venue.county_name, prefecture_name: prefectureName(a.county_code),
      action: back ? back.action : "return", note: back && back.note || "", since: back ? back.at : a.last_at };
  }
  function fromEvent(d) {
    return { id: d.alert_id, rule: d.rule, severity: d.severity, class_name: d.class_name,
      institution_name: d.institution_name, institution_id: d.institution_id, county_code: d.county_code,
      county_name: d.county_name, prefecture_name: d.prefecture_name, action: d.action, note: d.note || "", since: d.at };
  }

  function waited(since) {
    const minutes = Math.max(0, Math.floor((Date.now() - Date.parse(since)) / 60000));
    if (minutes < 1) return "刚刚退回";
    return minutes < 60 ? `已等待 ${minutes} 分钟` : `已等待 ${Math.floor(minutes / 60)} 小时 ${minutes % 60} 分`;
  }
  function tickReturned() {
    for (const li of returnedList.children) {
      const entry = returned.get(Number(li.dataset.alertId));
      if (entry) li.querySelector(".waited").textContent = waited(entry.since);
    }
  }
  function renderReturned() {
    const entries = [...returned.values()].sort((a, b) => Date.parse(b.since) - Date.parse(a.since));  // newest on top
    document.getElementById("returned-panel").classList.toggle("hidden", !entries.length);
    document.getElementById("returned-count").textContent = entries.length ? `${entries.length} 条` : "";
    const operator = role === "operator" || role === "admin";
    returnedList.replaceChildren(...entries.map(e => {
      const li = M.el("li", `${e.severity || ""}${e.fresh ? " fresh" : ""}`);
      e.fresh = false;  // flashes once, when it arrives
      li.dataset.alertId = e.id;
      const button = M.el("button", "", operator ? "派发" : "查看");
      button.type = "button";
      button.addEventListener("click", () => openReturned(e.id));
      li.append(M.el("div", "what", `${M.ruleName(e.rule)} · ${e.class_name}`), M.el("span", "waited", waited(e.since)),
        M.el("div", "where", `${e.institution_name} · ${e.prefecture_name || ""}${e.county_name || ""}`), button,
        M.el("div", "why", `退回原因：${e.note || ACTIONS[e.action] || "—"}`));
      return li;
    }));
  }

  async function loadReturned() {
    const load = ++returnedLoad;
    try {
      const list = await M.api(token, `/api/v1/alerts?state=returned&limit=${RETURNED_MAX}`);
      const details = await Promise.all(list.map(a => M.api(token, `/api/v1/alerts/${a.id}`).catch(() => null)));
      if (load !== returnedLoad) return;  // a live event changed the list meanwhile: it is newer
      returned.clear();
      for (const a of details) if (a && a.state === "open") returned.set(a.id, fromDetail(a));
      renderReturned();
    } catch { /* the next overview refresh tries again */ }
  }

  function onReturnedEvent(ev) {
    const d = ev.data;
    if (d.state === "open" && d.action === "return") {
      returnedLoad += 1;
      const fresh = announceAfter != null && ev.id > announceAfter;
      returned.set(d.alert_id, { ...fromEvent(d), fresh });
      renderReturned();
      if (fresh) announceReturned();
    } else if (d.state !== "open" && returned.has(d.alert_id)) {
      returnedLoad += 1;
      returned.delete(d.alert_id);
      renderReturned();
    }
  }

  // The dispatch controls of a returned alert: from its feed item when the feed has one (photos, face check), else
  // from the alert itself (its latest anomaly, and its class for the institution the recusal rule needs).
  async function openReturned(id) {
    const li = feed.querySelector(`li[data-alert-id="${id}"]`);
    if (li && li.latest) { openDetail(li.latest); return; }
    const entry = returned.get(id) || {};
    try {
      const a = await M.api(token, `/api/v1/alerts/${id}`);
      const cls = await M.api(token, `/api/v1/classes/${a.class_id}`).catch(() => null);
      const s = a.subjects[0] || {};
      openDetail({ at: s.at || a.last_at, data: { alert_id: a.id, anomaly_id: s.anomaly_id || "", rule: a.rule,
        message: s.message || "", prefecture_name: entry.prefecture_name || prefectureName(a.county_code),
        county_name: a.venue.county_name, class_name: a.class_name, class_code: cls ? cls.code : "",
        institution_name: a.institution_name, institution_id: cls ? cls.institution_id : entry.institution_id,
        venue_name: a.venue.name, trainee_name: s.trainee_name, photo_sha256: s.photo_sha256,
        enrolled_photo_sha256: s.enrolled_sha256 } });
    } catch { /* the alert is gone from this token's scope: the next refresh drops it */ }
  }

  function addVerdict(ev) {
    const d = ev.data;
    if (d.subject_kind !== "checkin") return;
    const li = M.el("li");
    const ok = d.status === "passed";
    li.append(M.el("span", "", `${M.time(ev.at)} ${d.class_name}`),
      M.el("span", ok ? "ok" : "bad", `${d.trainee_name || ""} ${d.kind === "sign_out" ? "签退" : "签到"}${ok ? "通过" : "未通过"}`));
    verdicts.prepend(li);
    while (verdicts.children.length > 12) verdicts.lastChild.remove();
  }

  async function openDetail(ev) {
    const d = ev.data;
    document.getElementById("detail").dataset.anomalyId = d.anomaly_id;
    detailBox.dataset.alertId = d.alert_id || "";
    detailBox.anomaly = d;
    document.getElementById("detail-title").textContent = `${M.ruleName(d.rule)}（${d.rule}）`;
    document.getElementById("detail-message").textContent = d.message;
    const facts = document.getElementById("detail-facts");
    facts.replaceChildren();
    const rows = [["时间", M.dateTime(ev.at)], ["地区", `${d.prefecture_name} ${d.county_name}`], ["班次", `${d.class_name}（${d.class_code}）`],
      ["培训机构", d.institution_name], ["场地", d.venue_name], ["学员", d.trainee_name || "—"]];
    if (d.fix) rows.push(["定位", `${d.fix.lat.toFixed(5)}, ${d.fix.lon.toFixed(5)}（精度 ${Math.round(d.fix.accuracy_m)} 米）`]);
    if (d.face) {
      const dist = d.face.distance === null ? "未比对" : `距离 ${d.face.distance.toFixed(2)}`;
      rows.push(["人脸比对", `${dist}（通过阈值 ≤ ${d.face.threshold.toFixed(2)}，不符阈值 > ${d.face.mismatch_threshold.toFixed(2)}）`]);
      rows.push(["比对模型", `${d.face.engine}（权重 SHA-256 ${d.face.model_sha256.slice(0, 16)}…）`]);
    }
    for (const [k, v] of rows) facts.append(M.el("dt", "", k), M.el("dd", "", v));
    document.getElementById("detail").classList.remove("hidden");
    showDispatch(d);
    document.getElementById("detail-photo").src = await M.photoUrl(token, d.photo_sha256);
    document.getElementById("detail-enrolled").src = await M.photoUrl(token, d.enrolled_photo_sha256);
  }
  document.getElementById("detail-close").addEventListener("click", () => document.getElementById("detail").classList.add("hidden"));

  let refreshTimer = null;
  function scheduleRefresh() { clearTimeout(refreshTimer); refreshTimer = setTimeout(refreshOverview, 800); }

  function connect() {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    // The token goes in the first message, never in the URL (URLs end up in access logs).
    const ws = new WebSocket(`${proto}://${location.host}/api/v1/live`);
    ws.onopen = () => {
      const auth = { type: "auth", token };
      if (lastId != null) auth.since = lastId;
      ws.send(JSON.stringify(auth));
      setConn(true, "实时连接正常");
    };
    ws.onmessage = msg => {
      const ev = JSON.parse(msg.data);
      if (ev.type === "error") {
        if (ev.code === "AUTH_INVALID" || ev.code === "FORBIDDEN_ROLE" || ev.code === "AUTH_REQUIRED") {
          showLogin(ev.message); ws.onclose = null; ws.close();
        }
        return;
      }
      if (ev.type === "hello") {
        role = ev.role;
        if (announceAfter == null) { announceAfter = ev.last_id; renderReturned(); }  // the buttons follow the role
        return;
      }
      if (ev.type === "reset") {  // missed too much while away: start the feed afresh and reload the counters
        feed.replaceChildren(); lastId = ev.last_id; refreshOverview(); loadReturned(); return;
      }
      lastId = Math.max(lastId || 0, ev.id);
      if (ev.type === "anomaly") { addAnomaly(ev, true); scheduleRefresh(); }
      else if (ev.type === "anomaly_resolved") {
        const li = ev.data.alert_state === "resolved" && feed.querySelector(`li[data-alert-id="${ev.data.alert_id}"]`);
        if (li) {
          li.classList.add("resolved"); li.querySelector(".msg").textContent = `已消除：${ev.data.note}`;
          loadState(li, ev.data.alert_id, true);  // resolved by itself: no "alert" event says so
        }
        scheduleRefresh();
      }
      else if (ev.type === "alert") onAlertEvent(ev);
      else if (ev.type === "verdict") { addVerdict(ev); scheduleRefresh(); }
      else if (ev.type === "class_status") scheduleRefresh();
    };
    ws.onclose = () => { setConn(false, "连接中断，正在重连…"); setTimeout(connect, 2000); };
  }

  let started = false;
  async function start() {
    if (!token) { showLogin(); return; }
    if (!started) { started = true; await Promise.all([initMap(), M.catalogue]); }
    await refreshOverview();
    connect();
    setInterval(refreshOverview, 15000);
  }
  tickClock(); setInterval(tickClock, 1000);
  start();
})();

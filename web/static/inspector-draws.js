// The inspector page's 双随机 section: the classes a draw gave this inspector, where, until when and what to do.
(() => {
  const M = Monitor;
  const TOKEN_KEY = "monitor.inspector.token";  // the inspector page's own key (sessionStorage)
  const $ = id => document.getElementById(id);
  const section = $("draws");
  if (!section) return;

  function token() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ""; } catch { return ""; }
  }

  function drawCard(a) {
    const li = M.el("li", "card draw-task" + (a.done ? " done" : ""));
    const title = M.el("div", "title");
    title.append(M.el("b", "", `${a.class_name}（${a.class_code}）`),
      M.el("span", "badge " + (a.done ? "closed" : "accepted"), a.done ? "已提交检查表" : "待检查"));
    li.append(title);
    const facts = M.el("dl", "facts");
    const rows = [["培训机构", a.institution_name], ["培训场地", a.venue_name + (a.venue_address ? `（${a.venue_address}）` : "")],
      ["所在县区", a.county_name], ["上课时间", a.sessions.join("；") || "—"], ["培训期", a.class_dates],
      ["抽取", `${a.day} ${a.kind_name}`], ["抽查人员来源", a.tier_name || "—"],
      ["完成时限", `${M.dateTime(a.window_ends_at)} 前`]];
    if (a.done) rows.push(["已提交", `检查表 ${a.inspection_ids.length} 份`]);
    facts.append(...rows.flatMap(([k, v]) => [M.el("dt", "", k), M.el("dd", "", v)]));
    li.append(facts, M.el("p", "hint", a.todo));
    if (!a.done) {  // the form opens in the task view (web/static/inspector/task.js, #draw=<class id>)
      const go = M.el("a", "button", "填写检查表");
      go.href = `#draw=${a.class_id}`;
      li.append(go);
    }
    if (Number.isFinite(a.latitude) && Number.isFinite(a.longitude)) {
      // geo: URIs (RFC 5870) are WGS-84 by definition: the phone's map app converts them itself.
      const nav = M.el("a", "button secondary", "地图打开场地");
      const name = encodeURIComponent(`${a.institution_name} ${a.venue_name}`);
      nav.href = `geo:${a.latitude.toFixed(6)},${a.longitude.toFixed(6)}?q=${a.latitude.toFixed(6)},${a.longitude.toFixed(6)}(${name})`;
      li.append(nav);
    }
    return li;
  }

  function renderDraws(list) {
    window.MonitorDraws = list;  // the task view builds a drawn class's task from it
    document.dispatchEvent(new Event("monitor:draws"));
    $("draw-tasks").replaceChildren(...list.map(drawCard));
    $("draws-empty").classList.toggle("hidden", list.length > 0);
    const open = list.filter(a => !a.done).length;
    $("draw-count").textContent = list.length ? `（待检查 ${open}，共 ${list.length}）` : "";
  }

  async function loadDraws() {
    try {
      const list = await M.api(token(), "/api/v1/my/assignments");
      section.classList.remove("hidden");
      renderDraws(list);
    } catch (e) {  // refused: the section hides; offline: it keeps what it showed
      if (e.status === 401 || e.status === 403) section.classList.add("hidden");
    }
  }

  loadDraws();
  setInterval(loadDraws, 60000);
  window.addEventListener("focus", loadDraws);
  document.addEventListener("monitor:signed-in", loadDraws);
  document.addEventListener("monitor:filed", loadDraws);  // a form filed from the task view  // signed in by a one-time link after this loaded
})();

// The training site's phone page: pick class and trainee, take a selfie, send it with the GPS fix.
"use strict";
(() => {
  const M = Monitor;
  const KEY = "monitor.site.token";
  let token = M.takeToken(KEY);
  let fix = null;
  let classes = [];
  const $ = id => document.getElementById(id);

  function show(kind, text) { const r = $("result"); r.className = `result ${kind}`; r.textContent = text; }

  function locate() {
    if (!navigator.geolocation) { $("gps").textContent = "此设备不支持定位"; return; }
    navigator.geolocation.watchPosition(p => {
      fix = { lat: p.coords.latitude, lon: p.coords.longitude, acc: p.coords.accuracy };
      $("gps").textContent = `定位：${fix.lat.toFixed(5)}, ${fix.lon.toFixed(5)}（精度 ${Math.round(fix.acc)} 米）`;
    }, e => { $("gps").textContent = "无法获取定位：" + e.message; }, { enableHighAccuracy: true, maximumAge: 10000 });
  }

  function fillTrainees() {
    const cls = classes.find(c => String(c.id) === $("class").value);
    $("trainee").replaceChildren(...(cls ? cls.trainees : []).map(t => { const o = M.el("option", "", t.name); o.value = t.id; return o; }));
  }

  async function load() {
    if (!token) { $("login").classList.remove("hidden"); $("checkin").classList.add("hidden"); return; }
    try {
      classes = await M.api(token, "/api/v1/site/classes");
    } catch (e) { show("bad", e.message); $("login").classList.remove("hidden"); return; }
    $("class").replaceChildren(...classes.map(c => { const o = M.el("option", "", `${c.name}（${c.code}）`); o.value = c.id; return o; }));
    fillTrainees();
    if (!classes.length) show("wait", "本机构今天没有在培训期内的班次");
  }
  $("class").addEventListener("change", fillTrainees);
  // One Idempotency-Key per photo: resending after a network error cannot create a second check-in.
  let key = null;
  $("photo").addEventListener("change", () => { key = crypto.randomUUID(); });
  $("login-btn").addEventListener("click", () => { token = $("token").value.trim(); sessionStorage.setItem(KEY, token); $("login").classList.add("hidden"); $("checkin").classList.remove("hidden"); load(); });

  async function poll(url, until) {
    while (Date.now() < until) {
      await new Promise(r => setTimeout(r, 1000));
      const body = await M.api(token, url);
      if (body.status !== "pending") return body;
    }
    return null;
  }

  $("checkin").addEventListener("submit", async ev => {
    ev.preventDefault();
    if (!fix) { show("bad", "尚未取得定位，请开启定位后重试"); return; }
    const form = new FormData();
    form.append("photo", $("photo").files[0]);
    form.append("trainee_id", $("trainee").value);
    form.append("class_id", $("class").value);
    form.append("kind", document.querySelector("input[name=kind]:checked").value);
    form.append("captured_at", new Date().toISOString());
    form.append("latitude", fix.lat); form.append("longitude", fix.lon); form.append("accuracy_m", fix.acc);
    let device = localStorage.getItem("monitor.device"); if (!device) { device = "web-" + crypto.randomUUID(); localStorage.setItem("monitor.device", device); }
    form.append("device_id", device);
    form.append("mock_location", "false");
    $("submit").disabled = true; show("wait", "正在上传并核验…");
    try {
      let body = await M.api(token, "/api/v1/check-ins", { method: "POST", body: form, headers: { "Idempotency-Key": key || crypto.randomUUID() } });
      if (body.status === "pending") body = (await poll(body.status_url, Date.now() + 60000)) || body;
      show(body.status === "passed" ? "ok" : body.status === "pending" || body.status === "review" ? "wait" : "bad", body.message);
    } catch (e) {
      show("bad", e.body?.message || "网络异常，请稍后重试（照片未丢失，可再次提交）");
    } finally { $("submit").disabled = false; }
  });
  locate();
  load();
})();

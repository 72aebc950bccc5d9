// Shared helpers for the pages: token handling, authorised fetches, Asia/Shanghai times, the served rule names.
"use strict";
const Monitor = (() => {
  // The rule catalogue (zh-CN names) comes from the server (/public/rules.json), never copied here.
  const RULES = {};
  const SEVERITY = {};
  const DISPATCH = { states: {}, actions: {}, outcomes: {}, page_states: {}, levels: {}, checklist: {}, results: {} };
  const catalogue = fetch("/public/rules.json").then(r => r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`)))
    .then(body => {
      for (const rule of body.rules) RULES[rule.code] = rule.name;
      Object.assign(SEVERITY, body.severities);
      for (const key of Object.keys(DISPATCH)) Object.assign(DISPATCH[key], body.dispatch[key]);
    }).catch(() => {});  // without it the pages show rule codes instead of names
  const timeFmt = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  const dateTimeFmt = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });

  function takeToken(key) {
    const m = location.hash.match(/token=([^&]+)/);
    if (m) {
      sessionStorage.setItem(key, decodeURIComponent(m[1]));
      history.replaceState(null, "", location.pathname);
    }
    return sessionStorage.getItem(key);
  }
  async function api(token, path, options = {}) {
    const headers = Object.assign({ Authorization: `Bearer ${token}` }, options.headers || {});
    const res = await fetch(path, Object.assign({}, options, { headers }));
    const body = res.headers.get("content-type")?.includes("json") ? await res.json() : null;
    if (!res.ok) { const e = new Error(body?.message || `HTTP ${res.status}`); e.status = res.status; e.body = body; throw e; }
    return body;
  }
  // A file the API serves behind the token (a photo, a PDF, a download): its blob and headers, or the API's error
  // shape (status, zh-CN message); a network failure has no status.
  async function fetchFile(token, path) {
    const res = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
    if (!res.ok) {
      const body = res.headers.get("content-type")?.includes("json") ? await res.json().catch(() => null) : null;
      const e = new Error(body?.message || `HTTP ${res.status}`); e.status = res.status; e.body = body; throw e;
    }
    return { blob: await res.blob(), headers: res.headers };
  }
  const photoCache = new Map();
  async function photoUrl(token, sha) {
    if (!sha) return "";
    if (!photoCache.has(sha)) {
      photoCache.set(sha, fetchFile(token, `/api/v1/evidence/${sha}`)
        .then(f => URL.createObjectURL(f.blob)).catch(() => ""));
    }
    return photoCache.get(sha);
  }
  const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text != null) e.textContent = text; return e; };
  return {
    RULES, SEVERITY, DISPATCH, catalogue, takeToken, api, fetchFile, photoUrl, el,
    ruleName: c => RULES[c] || c,
    time: iso => timeFmt.format(new Date(iso)),
    dateTime: iso => dateTimeFmt.format(new Date(iso)),
  };
})();

// The site page's offline queue: every capture is written to IndexedDB first (photo, burst, capture time, fix),
// then sent; on a network failure it stays and is retried with back-off, when the network returns (online event)
// and every 15 s, also after a reload. Each item carries one Idempotency-Key for all its attempts, so an attempt
// the server stored but whose answer was lost comes back as `duplicate`, never as a second check-in.
export const SiteQueue = (() => {
  const DB = "monitor-site";
  const STORE = "uploads";
  const TICK_MS = 15000;
  const PATHS = { checkin: "/api/v1/check-ins", snapshot: "/api/v1/snapshots" };
  let dbPromise = null;
  let pumping = false;
  let again = false;
  let tokenOf = () => null;
  const sending = new Set();
  const listeners = { change: [], result: [], auth: [] };

  function open() {
    if (!dbPromise) {
      dbPromise = new Promise((resolve, reject) => {
        const req = indexedDB.open(DB, 1);
        req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "key" });
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
    }
    return dbPromise;
  }
  async function tx(mode, work) {
    const db = await open();
    return new Promise((resolve, reject) => {
      const t = db.transaction(STORE, mode);
      const result = work(t.objectStore(STORE));
      t.oncomplete = () => resolve(result && "result" in result ? result.result : undefined);
      t.onerror = () => reject(t.error);
      t.onabort = () => reject(t.error || new Error("aborted"));
    });
  }
  const put = item => tx("readwrite", s => s.put(item));
  const drop = key => tx("readwrite", s => s.delete(key));
  async function all() {
    const items = (await tx("readonly", s => s.getAll())) || [];
    return items.sort((a, b) => a.created - b.created);
  }
  function emit(kind, ...args) { for (const f of listeners[kind]) { try { f(...args); } catch (e) { console.error(e); } } }
  async function changed() { emit("change", await all(), new Set(sending)); }

  // The wait before the n-th retry: 2 s, 4 s, 8 s … up to a minute, with ±20 % jitter (phones of one class that
  // lost the network together do not all come back in the same second).
  function backoff(attempts) {
    const base = Math.min(60000, 2000 * 2 ** Math.max(0, attempts - 1));
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  function form(item) {
    const body = new FormData();
    for (const [k, v] of Object.entries(item.fields)) body.append(k, String(v));
    body.append("photo", item.photo, "photo.jpg");
    (item.frames || []).forEach((f, i) => body.append("frames", f, `frame${i}.jpg`));
    return body;
  }

  // One attempt. Outcomes: delivered (2xx: stored now, or before — duplicate), refused (a 4xx the server will
  // answer again: the item is dropped and the page says why), or kept (no network, 5xx, 429, 401/403).
  async function attempt(item, token) {
    let res;
    try {
      res = await fetch(PATHS[item.kind], { method: "POST", body: form(item),
        headers: { Authorization: `Bearer ${token}`, "Idempotency-Key": item.key } });
    } catch {
      return { outcome: "kept", error: "网络异常，未能连接服务器" };
    }
    let body = null;
    try { body = res.headers.get("content-type")?.includes("json") ? await res.json() : null; } catch { body = null; }
    if (res.ok) return { outcome: "delivered", body };
    if (res.status === 401 || res.status === 403) return { outcome: "auth", body, status: res.status };
    if (res.status >= 500 || res.status === 429 || res.status === 408) {
      return { outcome: "kept", error: body?.message || `服务器暂时不可用（HTTP ${res.status}）` };
    }
    return { outcome: "refused", body: body || { code: `HTTP_${res.status}`, message: `上传被拒绝（HTTP ${res.status}）` } };
  }

  async function sendOne(item, token) {
    sending.add(item.key);
    await changed();
    const r = await attempt(item, token);
    sending.delete(item.key);
    if (r.outcome === "delivered" || r.outcome === "refused") {
      await drop(item.key);
    } else if (r.outcome === "kept" && navigator.onLine === false) {
      // The phone knows it is offline: not the server's fault, no back-off; the online event sends it.
      item.next_at = 0;
      item.last_error = "当前离线，联网后自动上传";
      await put(item);
    } else {
      item.attempts = (item.attempts || 0) + 1;
      item.next_at = Date.now() + (r.outcome === "auth" ? 60000 : backoff(item.attempts));
      item.last_error = r.outcome === "auth" ? (r.body?.message || "令牌无效或已停用") : r.error;
      await put(item);
      if (r.outcome === "auth") emit("auth", r.body);
    }
    await changed();
    emit("result", item, r);
    return r;
  }

  // Send what is due (all when `force`: the network just came back or someone tapped 立即重试), oldest first,
  // one at a time; stop at the first network failure (the others would fail the same way).
  async function pump(force = false) {
    if (pumping) { again = again || force; return; }
    const token = tokenOf();
    if (!token) return;
    pumping = true;
    try {
      for (const item of await all()) {
        if (!force && (item.next_at || 0) > Date.now()) continue;
        const r = await sendOne(item, token);
        if (r.outcome === "kept" || r.outcome === "auth") break;
      }
    } catch (e) {
      console.error(e);
    } finally {
      pumping = false;
    }
    if (again) { again = false; pump(true); }
  }

  // Queue a capture (written before anything is sent), then try to send it at once.
  async function add(item) {
    Object.assign(item, { created: Date.now(), attempts: 0, next_at: 0, last_error: "" });
    await put(item);
    await changed();
    pump(true);
    return item;
  }

  function start(getToken) {
    tokenOf = getToken;
    window.addEventListener("online", () => pump(true));
    document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") pump(true); });
    setInterval(() => { if (navigator.onLine !== false) pump(false); }, TICK_MS);
    changed().then(() => pump(true));
  }

  return {
    start, add, all, pump, changed,
    on: (kind, f) => listeners[kind].push(f),
    newKey: () => (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`),
  };
})();

// The offline queue (outbox) of uploads, sent through the page's API client: every item is written to IndexedDB
// first (its fields, files, capture time and fix), then sent; on a network failure it stays and is retried with
// back-off, when the network returns (online event), when the page is shown again and every 15 s, also after a
// reload. Each item carries one Idempotency-Key for all its attempts, so an attempt the server stored but whose
// answer was lost comes back as `duplicate`, never as a second record.
import { backoffMs, newKey } from "./api.js";

const STORE = "uploads";
const TICK_MS = 15000;

function openDatabase(name) {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(name, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "key" });
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

// The multipart body of an item: its fields, then its files (`photo` and the burst's `frames`, as the upload
// routes name them; any others in `files` as [field, blob, filename]).
function toForm(item) {
  const body = new FormData();
  for (const [k, v] of Object.entries(item.fields)) body.append(k, String(v));
  if (item.photo) body.append("photo", item.photo, "photo.jpg");
  (item.frames || []).forEach((f, i) => body.append("frames", f, `frame${i}.jpg`));
  for (const [field, blob, name] of item.files || []) body.append(field, blob, name);
  return body;
}

/**
 * What one attempt came to: delivered (2xx: stored now, or before — `duplicate`), refused (a 4xx the server
 * would give again: the item is dropped and the page says why), auth (401/403: kept until a valid token), or
 * kept (no network, 5xx, 408, 429: tried again later).
 */
export function outcomeOf(error) {
  if (error.status === 401 || error.status === 403) return "auth";
  if (error.transient || error.code === "IDEMPOTENCY_KEY_IN_PROGRESS") return "kept";
  return "refused";
}

/** An outbox kept in the IndexedDB database `dbName`, sending item.kind to routes[kind] through `client`. */
export function createOutbox({ client, dbName, routes }) {
  let dbPromise = null;
  let pumping = false;
  let again = false;
  const sending = new Set();
  const listeners = { change: [], result: [] };

  async function tx(mode, work) {
    dbPromise = dbPromise || openDatabase(dbName);
    const db = await dbPromise;
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

  async function attempt(item) {
    try {
      const body = await client.request(routes[item.kind], { method: "POST", body: toForm(item),
        idempotencyKey: item.key, retries: 0, auth: true });
      return { outcome: "delivered", body };
    } catch (e) {
      if (!("status" in e)) throw e;
      const outcome = outcomeOf(e);
      if (outcome === "refused") return { outcome, body: e.body || { code: `HTTP_${e.status}`, message: e.message } };
      return { outcome, body: e.body, status: e.status, error: e.message };
    }
  }

  async function sendOne(item) {
    sending.add(item.key);
    await changed();
    const r = await attempt(item);
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
      item.next_at = Date.now() + (r.outcome === "auth" ? 60000 : backoffMs(item.attempts, { baseMs: 2000 }));
      item.last_error = r.outcome === "auth" ? (r.body?.message || "令牌无效或已停用") : r.error;
      await put(item);
    }
    await changed();
    emit("result", item, r);
    return r;
  }

  // Send what is due (all when `force`: the network just came back or someone tapped 立即重试), oldest first, one
  // at a time; stop at the first failure that is not the item's own (the others would fail the same way).
  async function pump(force = false) {
    if (pumping) { again = again || force; return; }
    if (!client.token) return;
    pumping = true;
    try {
      for (const item of await all()) {
        if (!force && (item.next_at || 0) > Date.now()) continue;
        const r = await sendOne(item);
        if (r.outcome === "kept" || r.outcome === "auth") break;
      }
    } catch (e) {
      console.error(e);
    } finally {
      pumping = false;
    }
    if (again) { again = false; pump(true); }
  }

  return {
    all, pump, changed, newKey,
    on: (kind, f) => listeners[kind].push(f),
    /** Queues an upload (written before anything is sent), then tries to send it at once. */
    async add(item) {
      Object.assign(item, { key: item.key || newKey(), created: Date.now(), attempts: 0, next_at: 0, last_error: "" });
      await put(item);
      await changed();
      pump(true);
      return item;
    },
    start() {
      window.addEventListener("online", () => pump(true));
      document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") pump(true); });
      setInterval(() => { if (navigator.onLine !== false) pump(false); }, TICK_MS);
      changed().then(() => pump(true));
    },
  };
}

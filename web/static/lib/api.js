// The one API client every page uses: the bearer token (taken from the link's #token=, kept per page), JSON in
// and out, errors as ApiError with a zh-CN message (the server's own when it gives one), retries with back-off for
// what is safe to repeat (reads, and writes under one Idempotency-Key kept for all their attempts), a time limit
// per attempt, and one place that tells the page when the network or the token fails.

const RETRYABLE = new Set([408, 429, 502, 503, 504]);
const SAFE = new Set(["GET", "HEAD", "PUT", "DELETE"]);  // repeating them changes nothing more
const KEYED = new Set(["POST"]);  // the server answers a repeated POST with its Idempotency-Key by the first record
const NETWORK_DOWN = "网络异常：未能连接服务器";

// What a refusal means when the server's answer carries no message of its own.
const STATUS_WORDS = {
  400: "请求有误", 401: "令牌无效或已过期，请重新登录", 403: "无权执行此操作", 404: "未找到要操作的记录",
  408: "请求超时，请重试", 409: "与当前状态冲突，请刷新后重试", 413: "上传内容过大", 415: "文件格式不受支持",
  422: "提交的内容有误", 429: "请求过于频繁，请稍后再试", 507: "服务器存储空间不足，请稍后再试",
};

/** A refused or failed call: `status` is null when no answer came (network down or timed out). */
export class ApiError extends Error {
  constructor(message, { status = null, code = null, body = null, retryAfterS = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code || body?.code || null;
    this.body = body;
    this.retryAfterS = retryAfterS;
  }
  get network() { return this.status == null; }
  /** Worth trying again later with the same request: no answer, or the server said it was busy or down. */
  get transient() { return this.status == null || RETRYABLE.has(this.status) || this.status >= 500; }
}

/** The zh-CN words for an HTTP status the server answered without a message of its own. */
export function describeStatus(status) {
  if (STATUS_WORDS[status]) return `${STATUS_WORDS[status]}（HTTP ${status}）`;
  if (status >= 500) return `服务器暂时不可用（HTTP ${status}），请稍后再试`;
  return `请求未成功（HTTP ${status}）`;
}

/** A fresh key for one write (kept across its retries, so the server stores it once). */
export function newKey() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

/** The wait before retry number `n` (1, 2, …): base · 2^(n-1) up to `capMs`, ±20 % jitter, or what Retry-After says. */
export function backoffMs(n, { baseMs = 500, capMs = 60000, retryAfterS = null } = {}) {
  if (retryAfterS != null) return Math.min(capMs, retryAfterS * 1000);
  const base = Math.min(capMs, baseMs * 2 ** Math.max(0, n - 1));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

async function readBody(res) {
  if (!res.headers.get("content-type")?.includes("json")) return null;
  try { return await res.json(); } catch { return null; }
}

function retryAfterOf(res) {
  const raw = res.headers.get("retry-after");
  const s = raw == null ? NaN : Number(raw);
  return Number.isFinite(s) && s >= 0 ? s : null;
}

function tokenStore(key, keep) {
  const areas = keep === "local" ? [sessionStorage, localStorage] : [sessionStorage];
  return {
    read() { for (const a of areas) { try { const t = a.getItem(key); if (t) return t; } catch { /* disabled */ } } return null; },
    write(t) { for (const a of areas) { try { if (t) a.setItem(key, t); else a.removeItem(key); } catch { /* memory only */ } } },
  };
}

/**
 * A client for one page. `tokenKey` names where the token is kept (sessionStorage; also localStorage when
 * `keep: "local"`, for a phone that must stay signed in across restarts); a `#token=` in the link replaces it.
 */
export function createClient({ tokenKey = null, keep = "session", timeoutMs = 30000, retries = 2 } = {}) {
  const stored = tokenKey ? tokenStore(tokenKey, keep) : null;
  let token = null;
  const listeners = { auth: [], network: [], reach: [] };
  let online = true;
  let reach = "ok";  // how the last answer went: "ok", "server" (it answered 5xx), "unreachable" (no answer)

  function emit(kind, ...args) { for (const f of listeners[kind]) { try { f(...args); } catch (e) { console.error(e); } } }
  function setOnline(up) { if (up !== online) { online = up; emit("network", up); } }
  function setReach(r) { if (r !== reach) { reach = r; emit("reach", r); } }

  if (stored) {
    const m = location.hash.match(/token=([^&]+)/);
    if (m) {
      stored.write(decodeURIComponent(m[1]));
      history.replaceState(null, "", location.pathname + location.search);
    }
    token = stored.read();
  }

  // One attempt: the parsed answer, or an ApiError.
  async function attempt(path, { method, headers, body, signal }) {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    if (signal) signal.addEventListener("abort", () => abort.abort(), { once: true });
    let res;
    try {
      res = await fetch(path, { method, headers, body, signal: abort.signal });
    } catch {
      throw new ApiError(abort.signal.aborted && !signal?.aborted ? "服务器响应超时，请稍后重试" : NETWORK_DOWN);
    } finally {
      clearTimeout(timer);
    }
    return res;
  }

  /**
   * Calls the API. Options: method, json (sent as JSON), body (FormData or a string), headers, raw (answer the
   * Response instead of its JSON), retries, idempotencyKey (a POST gets a fresh one unless given), signal.
   */
  async function request(path, options = {}) {
    const method = (options.method || "GET").toUpperCase();
    const headers = Object.assign({}, options.headers || {});
    if (token && options.auth !== false) headers.Authorization = `Bearer ${token}`;
    let body = options.body;
    if (options.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(options.json);
    }
    const keyed = KEYED.has(method) && options.idempotencyKey !== false;
    if (keyed) headers["Idempotency-Key"] = options.idempotencyKey || newKey();
    const mayRepeat = SAFE.has(method) || keyed;
    const tries = 1 + (mayRepeat ? (options.retries ?? retries) : 0);
    for (let n = 1; ; n++) {
      let error;
      try {
        const res = await attempt(path, { method, headers, body, signal: options.signal });
        setOnline(true);
        setReach(res.status >= 500 ? "server" : "ok");
        if (res.ok) return options.raw ? res : (res.status === 204 ? null : await readBody(res));
        const answer = await readBody(res);
        error = new ApiError(answer?.message || describeStatus(res.status),
          { status: res.status, body: answer, retryAfterS: retryAfterOf(res) });
        // A repeat that arrives while the first attempt still runs on the server: wait for it, it will answer.
        if (error.code === "IDEMPOTENCY_KEY_IN_PROGRESS") error.retryAfterS = error.retryAfterS ?? 1;
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        error = e;
        if (error.network) { setOnline(false); setReach("unreachable"); }
      }
      if (error.status === 401) emit("auth", error);
      const again = error.transient || error.code === "IDEMPOTENCY_KEY_IN_PROGRESS";
      if (!again || n >= tries || options.signal?.aborted) throw error;
      await sleep(backoffMs(n, { retryAfterS: error.retryAfterS, capMs: 10000 }));
    }
  }

  const photos = new Map();
  const client = {
    request,
    get token() { return token; },
    setToken(t) { token = t || null; if (stored) stored.write(token); },
    get online() { return online; },
    /** How the server answered last: "ok" (any answer under 500), "server" (a 5xx: up but failing, e.g. its
     *  database), "unreachable" (no answer: the server down, the network cut, a time-out). */
    get reach() { return reach; },
    /** Subscribes to "auth" (a 401: the token is no longer valid), "network" (true/false as answers come or not)
     *  or "reach" (its value above, when it changes). */
    on(kind, f) { listeners[kind].push(f); },
    get: (path, options) => request(path, options),
    post: (path, json, options) => request(path, Object.assign({ method: "POST", json: json ?? {} }, options)),
    /** A file the API serves behind the token (a photo, a PDF, a download): its blob and headers. */
    async file(path, options) {
      const res = await request(path, Object.assign({ raw: true }, options));
      return { blob: await res.blob(), headers: res.headers };
    },
    /** An evidence photo as an object URL ("" when it cannot be fetched), fetched once per page. */
    photoUrl(sha) {
      if (!sha) return Promise.resolve("");
      if (!photos.has(sha)) {
        photos.set(sha, client.file(`/api/v1/evidence/${sha}`).then(f => URL.createObjectURL(f.blob), () => {
          photos.delete(sha);  // a failure is not remembered: the next view asks again
          return "";
        }));
      }
      return photos.get(sha);
    },
  };
  return client;
}

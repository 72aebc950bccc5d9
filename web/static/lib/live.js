// The live feed (/api/v1/live) as every page reads it: the token in the first message (never in the URL, which
// ends up in access logs), resumed from the last event id after any drop (a server restart included) with growing
// back-off, and a link that hears nothing for three of the server's pings (`ping_s` in hello) dropped as dead even
// if it never closed (a half-open connection after a network cut).
import { backoffMs } from "./api.js";

const AUTH_CODES = new Set(["AUTH_INVALID", "AUTH_ENDED", "FORBIDDEN_ROLE", "AUTH_REQUIRED"]);

/**
 * Opens the feed for `client` (its token). Handlers: hello(ev, resumed), event(ev), reset(ev), auth(message),
 * status({ live, attempt, dueAt, downSince }): called on every change of the link's state, for the page to show.
 * Returns { restart(), close(), lastId }.
 */
export function openLive(client, handlers, { since = null, firstDelayMs = 1000, maxDelayMs = 15000 } = {}) {
  const h = Object.assign({ hello() {}, event() {}, reset() {}, auth() {}, status() {} }, handlers);
  let lastId = since;
  let socket = null;
  let attempt = 0;
  let downSince = null;
  let retryTimer = null;
  let stopped = false;
  let heardAt = 0;
  let silenceLimitMs = 60000;

  const report = (live, dueAt = null) => h.status({ live, attempt, dueAt, downSince });

  function drop(ws) {
    ws.onclose = null;
    ws.onmessage = null;
    try { ws.close(); } catch { /* already gone */ }
  }
  function scheduleRetry() {
    attempt += 1;
    const delay = Math.min(maxDelayMs, backoffMs(attempt, { baseMs: firstDelayMs, capMs: maxDelayMs }));
    report(false, Date.now() + delay);
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, delay);
  }

  const watchdog = setInterval(() => {
    if (socket && socket.readyState === WebSocket.OPEN && Date.now() - heardAt > silenceLimitMs) {
      const dead = socket;
      socket = null;
      drop(dead);
      downSince = downSince ?? heardAt;
      scheduleRetry();
    }
  }, 2000);

  function connect() {
    if (stopped) return;
    clearTimeout(retryTimer);
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${proto}://${location.host}/api/v1/live`);
    socket = ws;
    heardAt = Date.now();
    if (attempt) report(false);
    ws.onopen = () => {
      const auth = { type: "auth", token: client.token };
      if (lastId != null) auth.since = lastId;
      ws.send(JSON.stringify(auth));
    };
    ws.onmessage = msg => {
      if (socket !== ws) return;
      heardAt = Date.now();
      let ev;
      try { ev = JSON.parse(msg.data); } catch { return; }
      if (ev.type === "ping") return;
      if (ev.type === "error") {
        if (AUTH_CODES.has(ev.code)) { stopped = true; drop(ws); socket = null; report(false); h.auth(ev.message); }
        return;
      }
      if (ev.type === "hello") {
        const resumed = downSince != null;
        attempt = 0;
        downSince = null;
        if (ev.ping_s) silenceLimitMs = 3 * ev.ping_s * 1000;
        if (lastId == null) lastId = ev.last_id;
        report(true);
        h.hello(ev, resumed);
        return;
      }
      if (ev.type === "reset") {  // missed too much while away: the page starts afresh and reloads its state
        lastId = ev.last_id;
        h.reset(ev);
        return;
      }
      lastId = Math.max(lastId || 0, ev.id);
      h.event(ev);
    };
    ws.onclose = () => {
      if (socket !== ws) return;
      socket = null;
      if (downSince == null) downSince = Date.now();
      scheduleRetry();
    };
  }

  connect();
  return {
    get lastId() { return lastId; },
    /** Reconnects at once (a new token, or the user asked): resumes from the last event seen. */
    restart() {
      stopped = false;
      attempt = 0;
      if (socket) { drop(socket); socket = null; }
      connect();
    },
    close() {
      stopped = true;
      clearInterval(watchdog);
      clearTimeout(retryTimer);
      if (socket) { drop(socket); socket = null; }
    },
  };
}

// The live feed over the WebSocket: authenticates with its first message, resumes from the last event id after any
// drop (a server restart included) with growing back-off, and says plainly when the wall is not live.
import { $, emit, state } from "./wall-state.js";

const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 15000;
let attempt = 0;
let retryTimer = null;
let countdown = null;
let socket = null;
let downSince = null;
let stopped = false;
// A link that hears nothing for three of the server's pings (it sends one when idle: `ping_s` in hello) is dead
// even if it never closed (a half-open connection after a network cut): it is dropped and the wall reconnects.
let heardAt = 0;
let silenceLimitMs = 60000;
setInterval(() => {
  if (socket && state.live && Date.now() - heardAt > silenceLimitMs) {
    const dead = socket;
    dead.onclose = null;
    try { dead.close(); } catch { /* already gone */ }
    downSince = downSince ?? heardAt;
    socket = null;
    scheduleRetry();
  }
}, 2000);

function show(live, text, detail) {
  state.live = live;
  document.body.dataset.live = live ? "on" : "off";
  const c = $("conn");
  c.className = "conn " + (live ? "on" : "off");
  c.textContent = text;
  $("offline").classList.toggle("hidden", live || downSince == null);
  $("offline-detail").textContent = detail || "";
}

function scheduleRetry() {
  attempt += 1;
  const delay = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** (attempt - 1)) * (0.8 + Math.random() * 0.4);
  const due = Date.now() + delay;
  const since = downSince ? `，数据截至 ${Monitor.time(new Date(downSince).toISOString())}` : "";
  const tick = () => {
    const s = Math.max(0, Math.ceil((due - Date.now()) / 1000));
    show(false, `未连接 · 重连中（第 ${attempt} 次，${s} 秒后）`, `（第 ${attempt} 次重试，${s} 秒后${since}）`);
  };
  tick();
  clearInterval(countdown);
  countdown = setInterval(tick, 500);
  retryTimer = setTimeout(() => { clearInterval(countdown); connect(); }, delay);
}

export function connect() {
  if (stopped) return;
  clearTimeout(retryTimer);
  const proto = location.protocol === "https:" ? "wss" : "ws";
  // The token goes in the first message, never in the URL (URLs end up in access logs).
  const ws = new WebSocket(`${proto}://${location.host}/api/v1/live`);
  socket = ws;
  if (attempt) show(false, `未连接 · 重连中（第 ${attempt} 次）`, `（第 ${attempt} 次重试，正在连接…）`);
  ws.onopen = () => {
    const auth = { type: "auth", token: state.token };
    if (state.lastId != null) auth.since = state.lastId;
    ws.send(JSON.stringify(auth));
  };
  ws.onmessage = msg => {
    if (socket !== ws) return;
    heardAt = Date.now();
    const ev = JSON.parse(msg.data);
    if (ev.type === "ping") return;
    if (ev.type === "error") {
      if (ev.code === "AUTH_INVALID" || ev.code === "FORBIDDEN_ROLE" || ev.code === "AUTH_REQUIRED") {
        stopped = true; ws.onclose = null; ws.close();
        show(false, "未连接（令牌无效）");
        emit("auth-error", ev.message);
      }
      return;
    }
    if (ev.type === "hello") {
      const resumed = downSince != null;
      attempt = 0; downSince = null;
      if (ev.ping_s) silenceLimitMs = 3 * ev.ping_s * 1000;
      state.role = ev.role;
      show(true, "实时连接正常");
      emit("hello", ev, resumed);
      return;
    }
    if (ev.type === "reset") {  // missed too much while away: start afresh and reload the state
      state.lastId = ev.last_id;
      emit("reset", ev);
      return;
    }
    state.lastId = Math.max(state.lastId || 0, ev.id);
    emit("event", ev);
  };
  ws.onclose = () => {
    if (socket !== ws) return;
    if (downSince == null) downSince = Date.now();
    scheduleRetry();
  };
}

export function restart() {
  stopped = false; attempt = 0;
  if (socket) { socket.onclose = null; socket.close(); }
  connect();
}

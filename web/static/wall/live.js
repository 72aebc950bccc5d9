// The view of the live feed's link: the banner in the header (实时连接正常, or 未连接 · 重连中 with the attempt and a
// countdown), the #offline box with the time the data dates from, and body[data-live]. The link itself (auth in the
// first message, resume from the last event id, back-off, the ping-silence watchdog) is lib/live.js.
import { openLive } from "../lib/live.js";
import { time } from "../lib/format.js";
import { $ } from "../lib/dom.js";
import { client, emit, state } from "./state.js";

let link = null;
let countdown = null;
let downSince = null;

function show(live, text, detail) {
  state.live = live;
  document.body.dataset.live = live ? "on" : "off";
  const c = $("conn");
  c.className = "conn " + (live ? "on" : "off");
  c.textContent = text;
  $("offline").classList.toggle("hidden", live || downSince == null);
  $("offline-detail").textContent = detail || "";
}

// Every change of the link's state: connected, connecting again (attempt N), or waiting until `dueAt` to retry.
function status({ live, attempt, dueAt, downSince: since }) {
  clearInterval(countdown);
  countdown = null;
  downSince = since;
  if (live) { show(true, "实时连接正常"); return; }
  if (!attempt) { show(false, "未连接"); return; }
  if (dueAt == null) {
    show(false, `未连接 · 重连中（第 ${attempt} 次）`, `（第 ${attempt} 次重试，正在连接…）`);
    return;
  }
  const upTo = since ? `，数据截至 ${time(new Date(since).toISOString())}` : "";
  const tick = () => {
    const s = Math.max(0, Math.ceil((dueAt - Date.now()) / 1000));
    show(false, `未连接 · 重连中（第 ${attempt} 次，${s} 秒后）`, `（第 ${attempt} 次重试，${s} 秒后${upTo}）`);
  };
  tick();
  countdown = setInterval(tick, 500);
}

const handlers = {
  status,
  hello(ev, resumed) {
    state.role = ev.role;
    state.may = ev.may || [];
    emit("hello", ev, resumed);
  },
  event(ev) {
    state.lastId = link.lastId;
    emit("event", ev);
  },
  reset(ev) {  // missed too much while away: start afresh and reload the state
    state.lastId = ev.last_id;
    emit("reset", ev);
  },
  auth(message) {
    show(false, "未连接（令牌无效）");
    emit("auth-error", message);
  },
};

export function connect() {
  if (link) return;
  link = openLive(client, handlers, { since: state.lastId });
}

/** Connects again at once (a new token): resumes from the last event seen. */
export function restart() {
  if (!link) { connect(); return; }
  link.restart();
}

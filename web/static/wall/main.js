// The wall screen (1920×1080): wires the state, the live feed and the views. Each view is a module; none talks to the
// others except through the state's events.
import * as M from "../lib/monitor.js";
import { $ } from "../lib/dom.js";
import { api, emit, on, setToken, state } from "./state.js";
import { connect, restart } from "./live.js";
import { initMap } from "./map.js";
import { initPanels } from "./panels.js";
import { initFeed } from "./feed.js";
import { initDispatch } from "./dispatch.js";
import { initReturned, tickReturned } from "./returned.js";
import { initDetail } from "./detail.js";
import { initFrames, refreshFrames } from "./frames.js";
import { initCrosscheck } from "./crosscheck.js";

function showLogin(message) {
  $("login").classList.remove("hidden");
  $("login-error").textContent = message || "";
}

async function refreshOverview() {
  try {
    state.overview = await api("/api/v1/overview");
    emit("overview", state.overview);
    showAlarms(state.overview.alarms || []);
    emit("shortfall", await api("/api/v1/inspections/shortfall"));
  } catch (e) {
    if (e.status === 401 || e.status === 403) showLogin(e.message);
  }
}

// The center's own alarms (STORAGE_LOW before the evidence disk is full): a red bar along the bottom of the wall.
function showAlarms(alarms) {
  const bar = $("alarms");
  bar.textContent = alarms.map(a => `系统告警：${a.message}`).join("　");
  bar.classList.toggle("hidden", !alarms.length);
}

let refreshTimer = null;
function scheduleRefresh() { clearTimeout(refreshTimer); refreshTimer = setTimeout(refreshOverview, 800); }

function tickClock() {
  $("clock").textContent = "北京时间 " + M.dateTime(new Date().toISOString());
  tickReturned();
}

let started = false;
async function start() {
  if (!state.token) { showLogin(); return; }
  if (!started) {
    started = true;
    await Promise.all([initMap(), M.catalogue]);
    setInterval(refreshOverview, 15000);
    connect();
  } else {
    restart();
  }
  await refreshOverview();
}

initPanels();
initFeed();
initDispatch();
initReturned();
initDetail();
initFrames();
initCrosscheck();
on("event", ev => {
  if (["anomaly", "anomaly_resolved", "alert", "verdict", "class_status"].includes(ev.type)) scheduleRefresh();
});
on("hello", (ev, resumed) => {
  state.role = ev.role;
  state.may = ev.may || [];
  if (resumed) { refreshOverview(); refreshFrames(); }  // back after a drop: the events are replayed, the counts reread
});
on("reset", () => { refreshOverview(); });
on("auth-error", showLogin);
$("login-form").addEventListener("submit", ev => {
  ev.preventDefault();
  setToken($("login-token").value.trim());
  $("login").classList.add("hidden");
  start();
});
tickClock(); setInterval(tickClock, 1000);
start();

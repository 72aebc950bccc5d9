// Alerts returned to the center: nobody on the ladder accepted, or the inspector handed the task back (a tie). They
// stand out on top of the alerts, each with why it came back and how long it has waited, and a button that opens the
// dispatch controls; a new one sounds (once a gesture has allowed the page to play sound).
import * as M from "../lib/monitor.js";
import { $, el } from "../lib/dom.js";
import { api, emit, isOperator, on, state } from "./state.js";
import { feedItem } from "./feed.js";

export const RETURNED_MAX = 50;
const list = $("returned");
let audio = null;

function unlock() {
  try {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!audio && Ctx) audio = new Ctx();
    if (audio && audio.state === "suspended") audio.resume().catch(() => {});
  } catch { audio = null; }
  const sound = $("sound");
  sound.textContent = audio ? "声音提示已开启" : "本浏览器不支持声音提示";
  sound.classList.toggle("on", !!audio); sound.classList.toggle("off", !audio);
}

function beep() {  // three falling two-tone calls, louder than the inspector's page: a wall is heard across a room
  if (!audio || audio.state !== "running") return false;
  try {
    const t = audio.currentTime;
    for (let i = 0; i < 3; i++) {
      for (const [at, freq] of [[0, 988], [0.22, 740]]) {
        const osc = audio.createOscillator();
        const gain = audio.createGain();
        const start = t + i * 0.6 + at;
        osc.type = "triangle"; osc.frequency.value = freq;
        gain.gain.setValueAtTime(0.0001, start);
        gain.gain.exponentialRampToValueAtTime(0.5, start + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.2);
        osc.connect(gain).connect(audio.destination);
        osc.start(start); osc.stop(start + 0.22);
      }
    }
    return true;
  } catch { return false; }
}

function announce() {
  const b = document.body.dataset;
  b.returnedAnnounced = String(Number(b.returnedAnnounced || 0) + 1);
  if (beep()) b.sounded = String(Number(b.sounded || 0) + 1);
}

export const prefectureName = county =>
  ((state.overview?.prefectures || []).find(p => p.code === county.slice(0, 4) + "00") || {}).name || "";

function fromDetail(a) {
  const back = [...a.transitions].reverse().find(t => t.to_state === "open");
  return { id: a.id, rule: a.rule, severity: a.severity, class_name: a.class_name, institution_name: a.institution_name,
    county_code: a.county_code, county_name: a.venue.county_name, prefecture_name: prefectureName(a.county_code),
    action: back ? back.action : "return", note: back && back.note || "", since: back ? back.at : a.last_at };
}
function fromEvent(d) {
  return { id: d.alert_id, rule: d.rule, severity: d.severity, class_name: d.class_name,
    institution_name: d.institution_name, institution_id: d.institution_id, county_code: d.county_code,
    county_name: d.county_name, prefecture_name: d.prefecture_name, action: d.action, note: d.note || "", since: d.at };
}

function waited(since) {
  const minutes = Math.max(0, Math.floor((Date.now() - Date.parse(since)) / 60000));
  if (minutes < 1) return "刚刚退回";
  return minutes < 60 ? `已等待 ${minutes} 分钟` : `已等待 ${Math.floor(minutes / 60)} 小时 ${minutes % 60} 分`;
}
export function tickReturned() {
  for (const li of list.children) {
    const entry = state.returned.get(Number(li.dataset.alertId));
    if (entry) li.querySelector(".waited").textContent = waited(entry.since);
  }
}
function render() {
  const entries = [...state.returned.values()].sort((a, b) => Date.parse(b.since) - Date.parse(a.since));
  $("returned-panel").classList.toggle("hidden", !entries.length);
  $("returned-count").textContent = entries.length ? `${entries.length} 条` : "";
  const operator = isOperator();
  list.replaceChildren(...entries.map(e => {
    const li = el("li", `${e.severity || ""}${e.fresh ? " fresh" : ""}`);
    e.fresh = false;  // flashes once, when it arrives
    li.dataset.alertId = e.id;
    const button = el("button", "", operator ? "派发" : "查看");
    button.type = "button";
    button.addEventListener("click", () => openReturned(e.id));
    li.append(el("div", "what", `${M.ruleName(e.rule)} · ${e.class_name}`), el("span", "waited", waited(e.since)),
      el("div", "where", `${e.institution_name} · ${e.prefecture_name || ""}${e.county_name || ""}`), button,
      el("div", "why", `退回原因：${e.note || M.DISPATCH.actions[e.action] || "—"}`));
    return li;
  }));
}

export async function loadReturned() {
  const load = ++state.returnedLoad;
  try {
    const alerts = await api(`/api/v1/alerts?state=returned&limit=${RETURNED_MAX}`);
    const details = await Promise.all(alerts.map(a => api(`/api/v1/alerts/${a.id}`).catch(() => null)));
    if (load !== state.returnedLoad) return;  // a live event changed the list meanwhile: it is newer
    state.returned.clear();
    for (const a of details) if (a && a.state === "open") state.returned.set(a.id, fromDetail(a));
    render();
  } catch { /* the next overview refresh tries again */ }
}

function onAlert(ev) {
  const d = ev.data;
  if (d.state === "open" && d.action === "return") {
    state.returnedLoad += 1;
    const fresh = state.announceAfter != null && ev.id > state.announceAfter;
    state.returned.set(d.alert_id, { ...fromEvent(d), fresh });
    render();
    if (fresh) announce();
  } else if (d.state !== "open" && state.returned.has(d.alert_id)) {
    state.returnedLoad += 1;
    state.returned.delete(d.alert_id);
    render();
  }
}

// The dispatch controls of a returned alert: from its feed item when the feed has one (photos, face check), else
// from the alert itself (its latest anomaly, and its class for the institution the recusal rule needs).
async function openReturned(id) {
  const li = feedItem(id);
  if (li && li.latest) { emit("open-detail", li.latest); return; }
  const entry = state.returned.get(id) || {};
  try {
    const a = await api(`/api/v1/alerts/${id}`);
    const cls = await api(`/api/v1/classes/${a.class_id}`).catch(() => null);
    const s = a.subjects[0] || {};
    emit("open-detail", { at: s.at || a.last_at, data: { alert_id: a.id, anomaly_id: s.anomaly_id || "", rule: a.rule,
      message: s.message || "", prefecture_name: entry.prefecture_name || prefectureName(a.county_code),
      county_name: a.venue.county_name, county_code: a.county_code, class_id: a.class_id, class_name: a.class_name, class_code: cls ? cls.code : "",
      institution_name: a.institution_name, institution_id: cls ? cls.institution_id : entry.institution_id,
      venue_name: a.venue.name, venue: { ...a.venue, polygon: null }, trainee_id: s.trainee_id, trainee_name: s.trainee_name,
      photo_sha256: s.photo_sha256, enrolled_photo_sha256: s.enrolled_sha256 } });
  } catch { /* the alert is gone from this token's scope: the next refresh drops it */ }
}

export function initReturned() {
  for (const type of ["pointerdown", "keydown", "touchstart"]) document.addEventListener(type, unlock, { passive: true });
  on("event", ev => { if (ev.type === "alert") onAlert(ev); });
  on("returned-changed", render);
  on("hello", ev => {
    if (state.announceAfter == null) { state.announceAfter = ev.last_id; render(); }  // the buttons follow the role
  });
  on("overview", overview => {
    // The list is kept by the live feed; a count that disagrees (missed events, a reopened alert that had been
    // paged) reloads it.
    if (Math.min(overview.counters.alerts_returned || 0, RETURNED_MAX) !== state.returned.size) loadReturned();
  });
  on("reset", loadReturned);
}

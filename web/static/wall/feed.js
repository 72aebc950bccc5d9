// The live anomaly feed (one item per alert, with its latest photo, count and state) and the latest verdicts.
import * as M from "../lib/monitor.js";
import { $, el } from "../lib/dom.js";
import { api, emit, on, photo, state } from "./state.js";

const feed = $("feed");
const verdicts = $("verdicts");
let received = 0;

export const feedItem = alertId => feed.querySelector(`li[data-alert-id="${alertId}"]`);

export function setBadge(li, stateCode, stateName) {
  const badge = li.querySelector(".state-badge");
  badge.textContent = stateName || "";
  badge.className = `state-badge ${stateCode || ""}`;
}

// A new item asks for its alert's state once; an "alert" event that arrived meanwhile is newer and wins.
export async function loadState(li, alertId, force = false) {
  try {
    const a = await api(`/api/v1/alerts/${alertId}`);
    if (force || !li.dataset.stateEvent) setBadge(li, a.state, a.state_name);
  } catch { /* the badge stays empty until the next alert event */ }
}

// A feed item shows, and opens, the latest anomaly of its alert; a photo that loads late never overwrites a newer one.
async function showPhoto(li, sha) {
  li.dataset.photo = sha || "";
  const url = await photo(sha);
  if (li.dataset.photo === (sha || "")) li.querySelector("img").src = url;
}

const who = d => `${d.trainee_name ? d.trainee_name + "：" : ""}${d.message}`;

async function addAnomaly(ev, fresh) {
  const d = ev.data;
  state.alarmed.set(d.class_id, Date.parse(ev.at));
  // Repeats of one rule on one class are one alert: update its count instead of flooding the feed.
  const existing = d.alert_id ? feedItem(d.alert_id) : null;
  if (existing) {
    if (Number(existing.dataset.eventId) > ev.id) return;  // an older repeat (replayed): a newer one is shown
    existing.dataset.eventId = ev.id;
    existing.latest = ev;
    existing.querySelector(".count").textContent = d.alert_count > 1 ? `×${d.alert_count}` : "";
    existing.querySelector(".msg").textContent = who(d);
    existing.querySelector(".time").textContent = M.time(ev.at);
    existing.classList.remove("fresh"); void existing.offsetWidth; existing.classList.add("fresh");
    feed.prepend(existing);
    await showPhoto(existing, d.photo_sha256);
    return;
  }
  const li = el("li", `${d.severity}${fresh ? " fresh" : ""}`);
  li.dataset.eventId = ev.id;
  li.dataset.rule = d.rule;
  if (d.alert_id) li.dataset.alertId = d.alert_id;
  li.latest = ev;
  const img = el("img"); img.alt = "现场照片";
  const text = el("div", "text");
  const title = el("div", "rule", `${M.ruleName(d.rule)} · ${M.SEVERITY[d.severity] || ""} `);
  title.append(el("span", "count", d.alert_count > 1 ? `×${d.alert_count}` : ""), el("span", "state-badge"));
  text.append(title,
    el("div", "where", `${d.prefecture_name} ${d.county_name} · ${d.class_name}`),
    el("div", "msg", who(d)),
    el("div", "time", M.time(ev.at)));
  li.append(img, text);
  li.addEventListener("click", () => emit("open-detail", li.latest));
  feed.prepend(li);
  while (feed.children.length > 60) feed.lastChild.remove();
  received += 1;
  $("feed-count").textContent = `（本次已接收 ${received} 条）`;
  if (d.alert_id) loadState(li, d.alert_id);
  await showPhoto(li, d.photo_sha256);
}

function addVerdict(ev) {
  const d = ev.data;
  if (d.subject_kind !== "checkin") return;
  const li = el("li");
  const ok = d.status === "passed";
  li.append(el("span", "what", `${M.time(ev.at)} ${d.class_name}`),
    el("span", ok ? "ok" : "bad", `${d.trainee_name || ""} ${d.kind === "sign_out" ? "签退" : "签到"}${ok ? "通过" : "未通过"}`));
  verdicts.prepend(li);
  while (verdicts.children.length > 8) verdicts.lastChild.remove();
}

function onResolved(ev) {
  const li = ev.data.alert_state === "resolved" && feedItem(ev.data.alert_id);
  if (li) {
    li.classList.add("resolved"); li.querySelector(".msg").textContent = `已消除：${ev.data.note}`;
    loadState(li, ev.data.alert_id, true);  // resolved by itself: no "alert" event says so
  }
}

function onAlert(ev) {
  const d = ev.data;
  const li = feedItem(d.alert_id);
  if (li && Number(li.dataset.stateEvent || 0) < ev.id) {
    li.dataset.stateEvent = ev.id;
    setBadge(li, d.state, d.state_name);
  }
}

export function initFeed() {
  on("event", ev => {
    if (ev.type === "anomaly") addAnomaly(ev, true);
    else if (ev.type === "anomaly_resolved") onResolved(ev);
    else if (ev.type === "alert") onAlert(ev);
    else if (ev.type === "verdict") addVerdict(ev);
  });
  on("reset", () => { feed.replaceChildren(); });
}

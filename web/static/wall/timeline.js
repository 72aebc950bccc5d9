// The trainee's day in the class: session windows as bands on a time axis, every sign-in, sign-out, online study,
// heartbeat and anomaly as a mark on it, and the same things listed in words below.
import * as M from "../lib/monitor.js";
import { $, el } from "../lib/dom.js";
import { api } from "./state.js";

const KINDS = { sign_in: "签到", sign_out: "签退", heartbeat: "在线学习抽拍", online_start: "开始在线学习",
  online_end: "结束在线学习", anomaly: "异常" };
const STATUS = { passed: "通过", failed: "未通过", review: "待人工复核", pending: "核验中", open: "未处置",
  resolved: "已消除" };
const hm = iso => M.time(iso).slice(0, 5);
const minutesOf = iso => { const [h, m] = M.time(iso).split(":").map(Number); return h * 60 + m; };
const hhmm = m => `${String(Math.floor(m / 60)).padStart(2, "0")}:${String(m % 60).padStart(2, "0")}`;
const toMinutes = s => Number(s.slice(0, 2)) * 60 + Number(s.slice(3, 5));

function describe(item) {
  const parts = [KINDS[item.kind] || item.kind];
  if (item.kind === "anomaly") parts.push(`${M.ruleName(item.rule)}：${item.message}`);
  else if (item.status) parts.push(STATUS[item.status] || item.status);
  if (item.face_distance != null) parts.push(`人脸距离 ${item.face_distance.toFixed(2)}`);
  if (item.fence_result) parts.push(item.fence_result === "inside" ? "围栏内" : item.fence_result === "outside"
    ? `围栏外 ${Math.round(item.fence_distance_m || 0)} 米` : "围栏边缘");
  if (item.reasons?.length) parts.push(item.reasons.map(r => r.message).join("；"));  // why a heartbeat failed or waits
  return parts.join(" · ");
}

export function renderTimeline(day, highlight) {
  const box = $("detail-timeline");
  $("timeline-title").textContent = `学员当日轨迹：${day.trainee_name}（${day.day}，${day.class_name}）`;
  const marks = day.items.map(i => minutesOf(i.at));
  const bounds = [...marks, ...day.sessions.flatMap(s => [toMinutes(s.start), toMinutes(s.end)])];
  let lo = bounds.length ? Math.min(...bounds) : 8 * 60, hi = bounds.length ? Math.max(...bounds) : 18 * 60;
  lo = Math.max(0, Math.floor((lo - 30) / 60) * 60); hi = Math.min(24 * 60, Math.ceil((hi + 30) / 60) * 60);
  if (hi - lo < 120) hi = Math.min(24 * 60, lo + 120);
  const x = m => `${(100 * (m - lo)) / (hi - lo)}%`;
  const track = el("div", "track");
  for (const s of day.sessions) {
    const band = el("div", "band", s.name);
    band.style.left = x(Math.max(lo, toMinutes(s.start)));
    band.style.width = `${(100 * (Math.min(hi, toMinutes(s.end)) - Math.max(lo, toMinutes(s.start)))) / (hi - lo)}%`;
    track.append(band);
  }
  const step = (hi - lo) > 12 * 60 ? 180 : (hi - lo) > 6 * 60 ? 120 : 60;
  for (let m = lo; m <= hi; m += step) {
    const tick = el("span", "tick", hhmm(m)); tick.style.left = x(m); track.append(tick);
  }
  day.items.forEach((item, k) => {
    const mark = el("i", `mark ${item.kind} ${item.status || ""}${item.kind === "anomaly" ? " " + item.severity : ""}`);
    mark.style.left = x(marks[k]);
    mark.title = `${hm(item.at)} ${describe(item)}`;
    track.append(mark);
  });
  const list = el("ol", "day-items");
  for (const item of day.items) {
    const li = el("li", `${item.kind} ${item.status || ""}`);
    if (highlight && item.kind === highlight.kind && item.subject_id === highlight.id) li.classList.add("this");
    li.append(el("span", "at", hm(item.at)), el("span", "what", describe(item)));
    list.append(li);
  }
  if (!day.items.length) list.append(el("li", "", "当日没有签到、在线学习或异常记录"));
  box.replaceChildren(track, list);
  box.dataset.items = String(day.items.length);
}

export async function showTimeline(d) {
  const box = $("detail-timeline");
  box.dataset.items = "";
  if (!d.trainee_id || !d.class_id) {
    $("timeline-title").textContent = "学员当日轨迹";
    box.replaceChildren(el("p", "empty", "该异常不针对某一学员（如课堂抓拍），没有个人轨迹"));
    return;
  }
  box.replaceChildren(el("p", "empty", "正在读取…"));
  try {
    const day = await api(`/api/v1/classes/${d.class_id}/trainees/${d.trainee_id}/day`);
    renderTimeline(day, d.subject_kind === "checkin" ? { kind: d.kind || "sign_in", id: d.subject_id } : null);
  } catch (e) {
    box.replaceChildren(el("p", "empty", e.status == null ? "网络异常，未能读取学员轨迹" : e.message));
  }
}

// The latest classroom frame of each class in session (camera or phone), newest first, with the faces counted against
// the trainees signed in; a click opens the class.
import * as M from "../lib/monitor.js";
import { $, el } from "../lib/dom.js";
import { api, on, photo } from "./state.js";

const grid = $("frames");
let frames = [];

// As many tiles as the panel holds (4 × 2 at 1920×1080).
const capacity = () => 8;

function tile(f) {
  const li = el("li", f.face_count != null && f.face_count < f.signed_in ? "short" : "");
  li.dataset.classId = f.class_id;
  li.dataset.snapshotId = f.snapshot_id;
  const img = el("img"); img.alt = `${f.class_name} 课堂画面`;
  const counts = f.face_count == null ? `核验中 · 签到 ${f.signed_in} 人`
    : `画面 ${f.face_count} 人 / 签到 ${f.signed_in} 人`;
  li.append(img, el("div", "name", f.class_name), el("div", "counts", counts),
    el("div", "when", `${M.time(f.captured_at).slice(0, 5)} · ${f.prefecture_name}${f.county_name}`));
  li.addEventListener("click", () => openClass(f));
  photo(f.photo_sha256).then(url => { if (li.dataset.snapshotId === String(f.snapshot_id)) img.src = url; });
  return li;
}

export async function refreshFrames() {
  try {
    const body = await api(`/api/v1/overview/frames?limit=${capacity()}`);
    frames = body.frames;
    $("frames-count").textContent = `${body.classes_with_frames}/${body.classes_in_session} 个上课班次有画面`;
    grid.replaceChildren(...frames.map(tile));
    if (!frames.length) grid.append(el("li", "empty", "上课班次今日尚无课堂画面"));
  } catch { /* kept until the next refresh */ }
}

async function openClass(f) {
  const view = $("class-view");
  $("class-title").textContent = `${f.class_name}（${f.class_code}）`;
  $("class-photo").src = await photo(f.photo_sha256);
  const rows = [["培训机构", f.institution_name], ["地区", `${f.prefecture_name} ${f.county_name}`],
    ["画面时间", M.dateTime(f.captured_at)], ["摄像头/设备", f.camera_id],
    ["画面人数", f.face_count == null ? "核验中" : `${f.face_count} 人`], ["签到在班", `${f.signed_in} 人`]];
  const render = extra => $("class-facts").replaceChildren(...[...rows, ...extra]
    .flatMap(([k, v]) => [el("dt", "", k), el("dd", "", v)]));
  render([]);
  view.dataset.classId = f.class_id;
  view.classList.remove("hidden");
  try {
    const cls = await api(`/api/v1/classes/${f.class_id}`);
    render([["培训日期", `${cls.start_date} 至 ${cls.end_date}`], ["花名册", `${cls.trainee_ids.length} 人`],
      ["每日课时", cls.sessions.map(s => `${s.name} ${s.start}–${s.end}`).join("，")]]);
  } catch { /* the frame's own facts stay */ }
}

export function initFrames() {
  $("class-close").addEventListener("click", () => $("class-view").classList.add("hidden"));
  on("event", ev => { if (ev.type === "verdict" && ev.data.subject_kind === "snapshot") scheduleFrames(); });
  on("overview", () => scheduleFrames());
}

let timer = null;
function scheduleFrames() { clearTimeout(timer); timer = setTimeout(refreshFrames, 500); }

// The evidence view of one anomaly, side by side: the enrolled photo against the check-in photo with the distance and
// its thresholds, the map with the fence, the fix and its accuracy, the trainee's day, the trainee's register
// cross-checks; and the dispatch controls.
import * as M from "../lib/monitor.js";
import { $, el } from "../lib/dom.js";
import { on, photo } from "./state.js";
import { showDispatch } from "./dispatch.js";
import { showEvidenceMap } from "./evidence-map.js";
import { showTimeline } from "./timeline.js";
import { showCrosscheck } from "./crosscheck.js";

const detailBox = $("detail");

function faceMeter(face) {
  const box = $("detail-face");
  if (!face) { box.replaceChildren(el("p", "", "该异常没有人脸比对")); return; }
  const bar = el("div", "meter");
  const scale = Math.max(1.2, (face.distance || 0) * 1.1, face.mismatch_threshold * 1.2);
  const at = v => `${Math.min(100, (100 * v) / scale)}%`;
  const pass = el("i", "pass"); pass.style.width = at(face.threshold);
  const grey = el("i", "grey"); grey.style.left = at(face.threshold);
  grey.style.width = `calc(${at(face.mismatch_threshold)} - ${at(face.threshold)})`;
  bar.append(pass, grey);
  if (face.distance != null) { const v = el("b", "value"); v.style.left = at(face.distance); bar.append(v); }
  const verdict = face.distance == null ? "未比对" : face.distance <= face.threshold ? "同一人"
    : face.distance > face.mismatch_threshold ? "不是同一人" : "待人工复核";
  box.replaceChildren(
    el("p", "distance", face.distance == null ? "人脸距离：未比对"
      : `人脸距离 ${face.distance.toFixed(2)} · 通过阈值 ≤ ${face.threshold.toFixed(2)} · 不符阈值 > ${face.mismatch_threshold.toFixed(2)} → ${verdict}`),
    bar);
}

export async function openDetail(ev) {
  const d = ev.data;
  detailBox.dataset.anomalyId = d.anomaly_id;
  detailBox.dataset.alertId = d.alert_id || "";
  detailBox.anomaly = d;
  $("detail-title").textContent = M.ruleName(d.rule);
  $("detail-title").title = d.rule;  // the rule's code, for the engineer on a call, not on the screen
  $("detail-message").textContent = d.message;
  const rows = [["时间", M.dateTime(ev.at)], ["地区", `${d.prefecture_name} ${d.county_name}`],
    ["班次", `${d.class_name}（${d.class_code}）`], ["培训机构", d.institution_name], ["场地", d.venue_name],
    ["学员", d.trainee_name || "—"]];
  if (d.fix) rows.push(["定位", `${d.fix.lat.toFixed(5)}, ${d.fix.lon.toFixed(5)}（精度 ${Math.round(d.fix.accuracy_m)} 米）`]);
  if (d.face) {
    const dist = d.face.distance === null ? "未比对" : `距离 ${d.face.distance.toFixed(2)}`;
    rows.push(["人脸比对", `${dist}（通过阈值 ≤ ${d.face.threshold.toFixed(2)}，不符阈值 > ${d.face.mismatch_threshold.toFixed(2)}）`]);
    rows.push(["比对模型", `${d.face.engine}（模型文件校验码 ${d.face.model_sha256.slice(0, 16)}…）`]);
  }
  $("detail-facts").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", "", k), el("dd", "", v)]));
  faceMeter(d.face);
  $("detail-photo").removeAttribute("src");
  $("detail-enrolled").removeAttribute("src");
  detailBox.classList.remove("hidden");
  showDispatch(d);
  showEvidenceMap(d);
  showTimeline(d);
  showCrosscheck(d);
  const [shot, enrolled] = await Promise.all([photo(d.photo_sha256), photo(d.enrolled_photo_sha256)]);
  if (detailBox.dataset.anomalyId !== String(d.anomaly_id)) return;  // another anomaly was opened meanwhile
  $("detail-photo").src = shot;
  $("detail-enrolled").src = enrolled;
}

export function initDetail() {
  on("open-detail", openDetail);
  $("detail-close").addEventListener("click", () => detailBox.classList.add("hidden"));
  document.addEventListener("keydown", e => { if (e.key === "Escape") detailBox.classList.add("hidden"); });
}

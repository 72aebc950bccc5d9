// The 「问题与异议」 view: what the center found against this institution's classes (each alert with its anomalies,
// the figures they rest on, the institution's own photos, the filed forms' digests to check at /verify), the
// blacklist decisions about it, its objections (异议) with their deadlines, and the form to object to an alert closed
// against it. Read when the tab opens; nothing here is kept offline.
import * as M from "../lib/monitor.js";
import { client } from "./state.js";

const { $, el } = M;
const PER_PAGE = 10;
const OBJECTABLE_LISTED = 100;  // the form's list of alerts that may be objected to (the API's largest page)
// The figures' names as a person reads them.
const FIGURES = {
  face_distance: "人脸相似距离", face_count: "人脸数", template_index: "比对的登记照",
  nearest_other_distance: "与同班其他学员的距离", nearest_other_min_distance: "与同班其他学员的最小距离",
  fence_result: "围栏判定", fence_distance_m: "距围栏（米）", accuracy_m: "定位精度（米）",
  distinct_trainees: "涉及学员数", quiet_minutes: "无动态时长（分钟）", rate: "出勤率", scheduled: "应出勤课时",
  local_time: "时间", session: "课时", day: "日期", minutes_apart: "相隔（分钟）", distance_m: "相距（米）",
  exif_age_s: "拍摄至上传（秒）", exif_gps_distance_m: "照片位置与定位相距（米）",
  face_match_threshold: "通过阈值", face_mismatch_threshold: "不符阈值", proxy_face_max_distance: "代签判定距离",
  proxy_face_margin: "代签判定差值", cohort_margin: "同班比对差值", face_engine: "人脸模型",
  face_model_sha256: "模型文件摘要", face_metric: "距离度量", min_attendance_rate: "出勤率下限",
  silent_after_minutes: "无动态告警（分钟）", session_grace_minutes: "允许提前/延后（分钟）",
  replay_phash_max_distance: "重复照片判定差异", proxy_device_window_s: "同设备判定时长（秒）",
  speed_kmh: "推算移动速度（公里/小时）", seconds: "相隔（秒）", outside_by_m: "超出围栏（米）", metric: "距离度量",
  fence_signed_m: "距围栏边界（米，负数在围栏内）", mock_location: "模拟定位", gps_max_speed_kmh: "速度上限（公里/小时）",
  gps_max_accuracy_m: "定位精度上限（米）",
};
const FIELD_WORDS = { true: "是", false: "否", inside: "围栏内", outside: "围栏外", uncertain: "无法判定" };
// Which limits a measured figure is judged against: a finding shows only the limits of the figures it measured (a
// face found missing is not judged against a speed limit; the center's record keeps them all).
const FACE_LIMITS = ["face_match_threshold", "face_mismatch_threshold", "face_engine", "face_model_sha256", "face_metric",
  "metric"];
const LIMITS_OF = {
  face_distance: FACE_LIMITS,
  nearest_other_distance: ["proxy_face_max_distance", "proxy_face_margin", "cohort_margin", ...FACE_LIMITS],
  nearest_other_min_distance: ["proxy_face_max_distance", "proxy_face_margin", "cohort_margin", ...FACE_LIMITS],
  speed_kmh: ["gps_max_speed_kmh"], accuracy_m: ["gps_max_accuracy_m"], rate: ["min_attendance_rate"],
  quiet_minutes: ["silent_after_minutes"], local_time: ["session_grace_minutes"],
  seconds: ["proxy_device_window_s"],
};
// Figures shown other than as stored: a template's 0-based index as the photo's place, a digest shortened.
const SHOWN_AS = {
  template_index: v => `第 ${Number(v) + 1} 张`,
  face_model_sha256: v => `${String(v).slice(0, 16)}…`,
};
let page = 1;
let shown = null;  // the last page of findings shown

// Only the figures named above, in words, numbers to three decimals (a code or an unnamed figure means nothing to
// the reader; the center has them all).
const shownValue = v => (v == null ? "—" : FIELD_WORDS[String(v)]
  || (typeof v === "number" && !Number.isInteger(v) ? String(Number(v.toFixed(3))) : v));
const figureText = (obj, only = null) => Object.entries(obj || {})
  .filter(([k]) => k in FIGURES && (only == null || only.has(k)))
  .map(([k, v]) => `${FIGURES[k]}：${v != null && SHOWN_AS[k] ? SHOWN_AS[k](v) : shownValue(v)}`).join("；");
const limitsOf = measured => new Set(Object.keys(measured || {}).flatMap(k => LIMITS_OF[k] || []));
const when = iso => (iso ? M.dateTime(iso) : "—");

function row(label, text, cls = "") {
  const p = el("p", `line ${cls}`.trim());
  p.append(el("span", "label", `${label}：`), el("span", "", text));
  return p;
}

function objectionItem(o) {
  const li = el("li", `objection ${o.state}${o.overdue ? " overdue" : ""}`);
  li.dataset.id = o.id;
  li.append(el("strong", "", `异议 ${o.id} · ${o.state_name}`),
    el("span", `timer${o.overdue ? " late" : ""}`, o.timer));
  li.append(row("告警", `${o.alert_id} ${o.rule_name}（${o.class_name}，${o.alert_outcome_name}）`),
    row("提出时间", when(o.submitted_at)), row("理由", o.reason), row("决定期限", when(o.decide_by)));
  if (o.decided_at) li.append(row("决定", `${o.decided_by || "监控中心"} ${when(o.decided_at)}：${o.decision_note || ""}`));
  if (o.reopened) li.append(el("p", "hint", "告警已退回监控中心重新核查"));
  return li;
}

function anomalyItem(a) {
  const li = el("li", "anomaly");
  li.append(el("strong", "", `${a.rule_name} · ${when(a.at)}`));
  if (a.trainee_name) li.append(row("学员", `${a.trainee_name}（${a.id_number_masked || ""}）`));
  li.append(el("p", "line", a.message));
  const measured = figureText(a.measured);
  if (measured) li.append(row("测量值", measured));
  const limits = figureText(a.thresholds, limitsOf(a.measured));
  if (limits) li.append(row("阈值", limits, "small"));
  if (a.model_version) li.append(row("核验模型版本", a.model_version, "small"));
  if (a.photo_sha256) {
    const img = el("img", "photo");
    img.alt = `${a.trainee_name || "课堂"}上传的照片`;
    img.loading = "lazy";
    client.photoUrl(a.photo_sha256).then(url => { if (url) img.src = url; else img.alt = "照片加载失败"; });
    li.append(img);
  }
  return li;
}

function formItem(f) {
  const li = el("li", "form");
  li.append(el("strong", "", `检查表 ${f.id} · ${f.kind_name} · ${when(f.inspected_at)}`));
  if (f.findings) li.append(row("检查发现", f.findings));
  if (f.record_sha256) {
    const p = row("记录摘要", "", "small digest");
    const a = el("a", "", f.record_sha256);
    a.href = f.verify_url;
    a.target = "_blank";
    a.rel = "noopener";
    p.lastChild.replaceWith(a);
    li.append(p);
  }
  return li;
}

function alertCard(a) {
  const card = el("article", `finding card ${a.state}`);
  card.dataset.alert = a.alert_id;
  card.append(el("h3", "", `${a.rule_name}（告警 ${a.alert_id}）`));
  card.append(row("班次", a.class_name), row("时间", `${when(a.first_at)} 至 ${when(a.last_at)}，共 ${a.count} 次`),
    row("状态", a.outcome_name ? `${a.state_name} · ${a.outcome_name}` : a.state_name));
  if (a.closing_note) card.append(row("办结说明", `${a.closing_note}（${when(a.closed_at)}）`));
  if (a.resolved_note) card.append(row("消除原因", a.resolved_note));
  if (a.anomalies.length) {
    const ul = el("ul", "anomalies");
    ul.append(...a.anomalies.map(anomalyItem));
    card.append(ul);
    if (a.anomalies_total > a.anomalies.length) card.append(el("p", "hint", `另有 ${a.anomalies_total - a.anomalies.length} 条未显示`));
  }
  if (a.inspections.length) { const ul = el("ul", "forms"); ul.append(...a.inspections.map(formItem)); card.append(ul); }
  if (a.objections.length) { const ul = el("ul", "objections"); ul.append(...a.objections.map(objectionItem)); card.append(ul); }
  if (a.objectable) {
    const b = el("button", "secondary object", "对此结论提出异议");
    b.type = "button";
    b.addEventListener("click", () => pick(a));
    card.append(b);
  } else if (a.objection_refusal) card.append(el("p", "hint", a.objection_refusal));
  return card;
}

function blacklistItem(d) {
  const li = el("li", `blacklist ${d.blacklisted ? "on" : "off"}`);
  const who = d.subject_kind === "institution" ? `本机构（${d.subject_name}）` : `教师 ${d.subject_name}`;
  li.append(el("strong", "", `${who}${d.blacklisted ? (d.lifetime ? "被终身列入黑名单" : "被列入黑名单") : "移出黑名单"}`),
    row("时间", when(d.decided_at)), row("原因", d.reason));
  const cited = [...d.alert_ids.map(i => `告警 ${i}`), ...d.inspection_ids.map(i => `检查表 ${i}`)];
  if (cited.length) li.append(row("所依据的证据", cited.join("、")));
  return li;
}

// Every alert it may object to now, whichever page of findings it is on (the newest hundred: a list, not a page).
function fillForm(objectable) {
  const open = objectable.alerts.filter(a => a.objectable);
  $("objection-alert").replaceChildren(...open.map(optionFor));
  $("objection-form").classList.toggle("hidden", !open.length);
  $("objection-none").classList.toggle("hidden", Boolean(open.length));
}

function optionFor(a) {
  const o = el("option", "", `告警 ${a.alert_id} · ${a.rule_name} · ${a.class_name}（${a.outcome_name}）`);
  o.value = a.alert_id;
  return o;
}

// A card's 对此结论提出异议 picks its alert in the form (added to the list if it was beyond the hundred listed).
function pick(a) {
  const select = $("objection-alert");
  if (![...select.options].some(o => o.value === String(a.alert_id))) select.append(optionFor(a));
  select.value = String(a.alert_id);
  $("objection-form").classList.remove("hidden");
  $("objection-none").classList.add("hidden");
  $("objection-reason").focus();
}

function say(kind, text) {
  const r = $("objection-result");
  r.className = `result ${kind}`;
  r.textContent = text;
}

async function load(target = page) {
  $("findings-status").textContent = "正在读取…";
  try {
    const [body, objections, objectable] = await Promise.all([
      client.get(`/api/v1/site/findings?page=${target}&per_page=${PER_PAGE}`),
      client.get("/api/v1/objections?limit=100"),
      client.get(`/api/v1/site/findings?objectable=true&per_page=${OBJECTABLE_LISTED}`)]);
    await M.catalogue;
    page = target;  // only once the page has come (offline, 下一页 stays where it was)
    shown = body;
    $("findings-status").textContent = body.total ? `共 ${body.total} 条告警，第 ${page} 页` : "本机构暂无被发现的问题";
    $("blacklist-banner").classList.toggle("hidden", !body.institution.blacklisted);
    $("blacklist-banner").textContent = body.institution.blacklisted
      ? `本机构已被列入黑名单：${body.institution.blacklist_reason || ""}` : "";
    $("findings-list").replaceChildren(...body.alerts.map(alertCard));
    $("blacklist-list").replaceChildren(...body.blacklist.map(blacklistItem));
    $("blacklist-box").classList.toggle("hidden", !body.blacklist.length);
    $("my-objections").replaceChildren(...objections.map(objectionItem));
    $("objections-none").classList.toggle("hidden", Boolean(objections.length));
    $("findings-prev").disabled = page <= 1;
    $("findings-next").disabled = page * PER_PAGE >= body.total;
    fillForm(objectable);
  } catch (e) {
    $("findings-status").textContent = `无法读取：${e.message}`;
  }
}

async function submit(event) {
  event.preventDefault();
  const alertId = Number($("objection-alert").value);
  const reason = $("objection-reason").value.trim();
  if (!alertId || !reason) { say("bad", "请选择告警并填写异议理由"); return; }
  $("objection-submit").disabled = true;
  try {
    const made = await client.post("/api/v1/objections", { alert_id: alertId, reason });
    say("ok", `异议已提交（编号 ${made.id}），监控中心须在 ${when(made.decide_by)} 前作出决定`);
    $("objection-reason").value = "";
    await load();
  } catch (e) {
    say("bad", e.message);
  } finally {
    $("objection-submit").disabled = false;
  }
}

export const SiteFindings = {
  init() {
    $("objection-form").addEventListener("submit", submit);
    $("findings-prev").addEventListener("click", () => { if (page > 1) load(page - 1); });
    $("findings-next").addEventListener("click", () => load(page + 1));
  },
  enter() { if (client.token) load(); },
  get shown() { return shown; },
};

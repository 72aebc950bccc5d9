// Register cross-checks on the wall (clause 八/九): in the evidence view, the trainee's findings for the class (rule,
// message, where it stands, the register period it rests on); and the panel of today's cross-check alerts by
// prefecture, refreshed every minute and whenever a live event concerns a cross-check rule.
import * as M from "../lib/monitor.js";
import { $, el } from "../lib/dom.js";
import { topWithRest } from "../lib/lists.js";
import { periodsText, sourceName } from "../lib/register-sources.js";
import { api, on, shortName, state } from "./state.js";

const detailBox = $("detail");
const mayRead = () => (state.may || []).includes("read_reports");  // from the live feed's hello
const REFRESH_MS = 60000;
const ROWS = 3;  // the panel's rows: the top prefectures, past three the rest summed in the last

// -- the evidence view's block ----------------------------------------------------------------------------------
function findingItem(f, who) {
  const li = el("li", `finding ${f.state}`);
  li.dataset.rule = f.rule;
  const head = el("div", "head");
  head.append(el("b", "name", `${who ? who + "：" : ""}${M.ruleName(f.rule)}`), el("span", `cc-state ${f.state}`, f.state_text));
  li.append(head, el("div", "msg", f.message));
  const basis = f.source ? `依据：${sourceName(f.source)}${f.register_period ? ` ${f.register_period}` : ""}` : "";
  li.append(el("div", "basis", [basis, `发现于 ${M.dateTime(f.at)}`].filter(Boolean).join(" · ")));
  return li;
}

export function renderCrosscheck(body, traineeId) {
  const note = $("crosscheck-note");
  const list = $("crosscheck-list");
  const own = traineeId ? (body.trainees.find(t => t.trainee_id === traineeId) || { findings: [] }).findings : [];
  const items = [...own.map(f => findingItem(f)), ...(traineeId ? [] : body.teachers.map(f => findingItem(f, "教师")))];
  const box = $("crosscheck");
  box.dataset.findings = String(items.length);
  if (!body.ran_at) {
    box.dataset.state = "unchecked";
    note.textContent = "尚未比对";
    list.replaceChildren(...items);
    return;
  }
  const when = M.dateTime(body.ran_at);
  const periods = periodsText(body.registers);
  box.dataset.state = items.length ? "found" : "clean";
  note.textContent = items.length ? `比对时间 ${when}${periods ? `；依据 ${periods}` : ""}`
    : `未发现异常（比对时间 ${when}）`;
  if (!items.length && periods) note.title = `依据 ${periods}`;
  list.replaceChildren(...items);
}

// `d` is an anomaly event's data (class_id, trainee_id): the block shows that trainee's findings in that class; an
// anomaly about no trainee shows the class's teachers' findings instead.
export async function showCrosscheck(d) {
  const box = $("crosscheck");
  const note = $("crosscheck-note");
  box.dataset.state = "";
  box.dataset.findings = "";
  note.removeAttribute("title");
  $("crosscheck-list").replaceChildren();
  if (!d.class_id || !mayRead()) { box.classList.add("hidden"); return; }  // the center's: not a region inspector's
  box.classList.remove("hidden");
  $("crosscheck-title").textContent = d.trainee_id ? "登记数据比对（该学员）" : "登记数据比对（本班教师）";
  note.textContent = "正在读取…";
  const opened = String(d.anomaly_id);
  try {
    const q = d.trainee_id ? `?trainee_id=${encodeURIComponent(d.trainee_id)}` : "";
    const body = await api(`/api/v1/classes/${d.class_id}/crosscheck${q}`);
    if (detailBox.dataset.anomalyId !== opened) return;  // another anomaly was opened meanwhile
    renderCrosscheck(body, d.trainee_id || null);
  } catch (e) {
    if (detailBox.dataset.anomalyId !== opened) return;
    note.textContent = e.status == null ? "网络异常，未能读取登记数据比对结果" : e.message;
  }
}

// -- today's panel ----------------------------------------------------------------------------------------------
const crossRules = new Set();  // the cross-check rules seen (today's answer, live events): their events refresh
let timer = null;
let loading = 0;

function prefectureItem(p, label = shortName(p.name)) {
  const li = el("li");
  li.dataset.code = p.code;
  li.title = `${p.name}：${Object.entries(p.by_rule).sort((a, b) => b[1] - a[1])
    .map(([rule, n]) => `${M.ruleName(rule)} ${n}`).join("，")}`;
  li.append(el("span", "name", label), el("b", "", String(p.alerts)),
    el("span", p.open ? "open" : "done", p.open ? `待处置 ${p.open}` : "已处置"));
  return li;
}

function renderToday(body) {
  for (const p of body.prefectures) for (const rule of Object.keys(p.by_rule)) crossRules.add(rule);
  $("cross-total").textContent = body.total;
  $("cross-open").textContent = body.open;
  const hit = body.prefectures.filter(p => p.alerts > 0);  // most alerts first
  const { shown, rest } = topWithRest(hit, ROWS);
  const items = shown.map(p => prefectureItem(p));
  if (rest.length) {
    const sum = key => rest.reduce((n, p) => n + p[key], 0);
    const li = prefectureItem({ code: "", name: "", by_rule: {}, alerts: sum("alerts"), open: sum("open") },
      `其他 ${rest.length} 个州市`);
    li.className = "rest";
    li.title = rest.map(p => `${p.name} ${p.alerts}`).join("，");
    items.push(li);
  }
  if (!items.length) items.push(el("li", "none", "今日暂无登记数据比对预警"));
  $("cross-prefs").replaceChildren(...items);
  $("cross-panel").dataset.day = body.day;
}

export async function refreshCrossToday() {
  if (!state.token || state.may == null) return;  // before the feed's hello: its `may` is not known yet
  if (!mayRead()) {  // a region inspector's wall: the cross-checks are the center's (the hello's `may` says so)
    $("cross-total").textContent = "–"; $("cross-open").textContent = "–";
    $("cross-prefs").replaceChildren(el("li", "none", "当前身份无权查看登记比对预警"));
    return;
  }
  const mine = ++loading;
  try {
    const body = await api("/api/v1/crosschecks/today");
    if (mine === loading) renderToday(body);
  } catch (e) {
    if (e.status === 403 && mine === loading) {  // a region inspector's wall: the cross-checks are the center's
      $("cross-total").textContent = "–"; $("cross-open").textContent = "–";
      $("cross-prefs").replaceChildren(el("li", "none", "当前身份无权查看登记比对预警"));
    }  // anything else: kept as it was, the next refresh tries again
  }
}

function soon() { clearTimeout(timer); timer = setTimeout(refreshCrossToday, 1000); }

function onEvent(ev) {
  const d = ev.data || {};
  if (ev.type === "anomaly" && d.subject_kind === "crosscheck") {
    crossRules.add(d.rule);
    soon();
  } else if ((ev.type === "alert" || ev.type === "anomaly_resolved") && crossRules.has(d.rule)) {
    soon();
  }
}

export function initCrosscheck() {
  on("event", onEvent);
  on("hello", () => { refreshCrossToday(); });  // connected, or back after a drop
  on("reset", () => { refreshCrossToday(); });
  setInterval(refreshCrossToday, REFRESH_MS);
}

// The dispatch controls in the evidence view: the alert's state, pages and history, and the operator's buttons.
import * as M from "../lib/monitor.js";
import { $, el } from "../lib/dom.js";
import { api, emit, isOperator, on, state } from "./state.js";
import { feedItem, setBadge } from "./feed.js";

const detailBox = $("detail");
let staffList = [];

const covers = (s, county) => s.level === "province" || (s.level === "prefecture"
  ? county.startsWith(s.region_code.slice(0, 4)) : s.region_code === county);

function dispatchMsg(text, ok) {
  const p = $("dispatch-msg");
  p.textContent = text || "";
  p.className = `dispatch-msg${ok ? " ok" : ""}`;
}

function renderDispatch(a, anomaly) {
  const { actions: ACTIONS, outcomes: OUTCOMES, page_states: PAGE_STATES, levels: LEVELS } = M.DISPATCH;
  const badge = $("dispatch-state");
  badge.textContent = a.state_name;
  badge.className = `state-badge ${a.state}`;
  const accepted = a.pages.filter(p => p.state === "accepted").at(-1);
  const assignee = accepted ? accepted.staff_name : (staffList.find(s => s.id === a.assignee_staff_id) || {}).name;
  const rows = [["状态", a.state_name], ["处置结果", a.outcome ? OUTCOMES[a.outcome] || a.outcome : "—"],
    ["接单人", a.assignee_staff_id ? assignee || `抽查人员 ${a.assignee_staff_id}` : "—"],
    ["告警次数", `${a.count} 次（未消除 ${a.open_count}）`], ["首次发生", M.dateTime(a.first_at)]];
  $("dispatch-facts").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", "", k), el("dd", "", v)]));
  // Records of this alert that cannot both be true, as the API states them.
  const contradictions = a.contradictions || [];
  $("dispatch-contradictions").classList.toggle("hidden", !contradictions.length);
  $("dispatch-contradiction-list").replaceChildren(...contradictions.map(text => el("li", "", text)));
  const pages = $("dispatch-pages");
  pages.replaceChildren(...a.pages.map(p => {
    const tr = el("tr");
    for (const v of [p.staff_name, LEVELS[p.level] || p.level, String(p.round), M.time(p.paged_at), M.time(p.deadline),
      PAGE_STATES[p.state] || p.state]) tr.append(el("td", "", v));
    return tr;
  }));
  if (!a.pages.length) {
    const tr = el("tr"); const td = el("td", "", "尚未派发"); td.colSpan = 6; tr.append(td); pages.append(tr);
  }
  $("dispatch-history").replaceChildren(...a.transitions.map(t => {
    const li = el("li");
    li.append(el("span", "at", M.dateTime(t.at)), el("span", "", `${ACTIONS[t.action] || t.action} · ${t.actor}`
      + `${t.outcome ? "（" + (OUTCOMES[t.outcome] || t.outcome) + "）" : ""}${t.note ? "：" + t.note : ""}`));
    return li;
  }));
  if (!a.transitions.length) $("dispatch-history").append(el("li", "", "暂无处置记录"));
  $("dispatch-actions").classList.toggle("hidden", !isOperator());
  const open = a.state === "open";
  const finished = a.state === "closed" || a.state === "resolved";
  $("dispatch-send").classList.toggle("hidden", !open);
  $("btn-dismiss").classList.toggle("hidden", !(open || a.state === "dispatched"));
  $("btn-reopen").classList.toggle("hidden", !finished);
  $("dispatch-note").classList.toggle("hidden", !(open || a.state === "dispatched" || finished));
  const select = $("dispatch-staff");
  const chosen = select.value;
  const eligible = staffList.filter(s => s.active && s.on_duty && covers(s, a.county_code)
    && !(anomaly.institution_id && s.tied_institution_ids.includes(anomaly.institution_id)));
  const auto = el("option", "", "系统随机抽取（在岗、无需回避的抽查人员）"); auto.value = "";
  select.replaceChildren(auto, ...eligible.map(s => {
    const o = el("option", "", `${s.name}（${LEVELS[s.level] || s.level} · ${s.region_code}）`);
    o.value = s.id;
    return o;
  }));
  if ([...select.options].some(o => o.value === chosen)) select.value = chosen;
}

export async function refreshDispatch() {
  const id = detailBox.dataset.alertId;
  const anomaly = detailBox.anomaly;
  if (!id || !anomaly) return;
  try {
    const a = await api(`/api/v1/alerts/${id}`);
    if (detailBox.dataset.alertId === id) renderDispatch(a, anomaly);
  } catch (e) { dispatchMsg(e.message || "网络异常，未能读取处置信息"); }
}

export async function showDispatch(d) {
  const box = $("dispatch");
  dispatchMsg("");
  $("dispatch-note").value = "";
  if (!d.alert_id) { box.classList.add("hidden"); return; }
  if (isOperator()) {
    try { staffList = await api("/api/v1/staff"); } catch { staffList = []; }
  }
  box.classList.remove("hidden");
  await refreshDispatch();
}

async function operate(action, body, done) {
  const id = detailBox.dataset.alertId;
  const buttons = document.querySelectorAll("#dispatch-actions button");
  buttons.forEach(b => { b.disabled = true; });
  dispatchMsg("正在提交…", true);
  try {
    const a = await api(`/api/v1/alerts/${id}/${action}`, { method: "POST", json: body });
    $("dispatch-note").value = "";
    if (detailBox.dataset.alertId === id) renderDispatch(a, detailBox.anomaly);
    const li = feedItem(id);
    if (li) setBadge(li, a.state, a.state_name);
    if (a.state !== "open" && state.returned.has(a.id)) {
      state.returnedLoad += 1; state.returned.delete(a.id); emit("returned-changed");
    }
    dispatchMsg(done(a), true);
  } catch (e) {
    dispatchMsg(e.status == null ? "网络异常，未能提交，请重试" : e.message);
  } finally { buttons.forEach(b => { b.disabled = false; }); }
}

export function initDispatch() {
  $("btn-dispatch").addEventListener("click", () => {
    const staffId = $("dispatch-staff").value;
    operate("dispatch", staffId ? { staff_id: Number(staffId) } : {},
      a => `已派发：${a.pages.filter(p => p.state === "paged").map(p => p.staff_name).join("、")}`);
  });
  for (const [id, action, word] of [["btn-dismiss", "dismiss", "不予派发"], ["btn-reopen", "reopen", "重新打开"]]) {
    $(id).addEventListener("click", () => {
      const note = $("dispatch-note").value.trim();
      if (note.length < 2) { dispatchMsg(`${word}必须填写说明（至少 2 个字）`); $("dispatch-note").focus(); return; }
      operate(action, { note }, a => `已${word}，当前状态：${a.state_name}`);
    });
  }
  on("event", ev => {
    if (ev.type === "alert" && !detailBox.classList.contains("hidden")
      && detailBox.dataset.alertId === String(ev.data.alert_id)) refreshDispatch();
  });
}

// The ledger page's register cross-check and payment block (clause 八/九): the class's latest cross-check (when, on
// which register periods, which alerts still hold payment, the teachers' findings), the institution's post-training
// employment against the provincial median, the payment decision, the admin's 「标记为可拨付」 and the payment list.
import * as M from "../lib/monitor.js";
import { periodsText } from "../lib/register-sources.js";

const { $ } = M;
const pct = v => `${(v * 100).toFixed(1)}%`;

// A ledger row's cross-check cell: its text and how it reads (confirmed excludes, open holds, checked passes).
export function crossCell(row) {
  const states = (row.crosscheck || []).map(f => f.state);
  const cls = states.includes("confirmed") ? "no" : states.includes("open") ? "pending"
    : row.crosscheck_text === "尚未比对" ? "" : "yes";
  const td = M.el("td", cls, row.crosscheck_text);
  td.dataset.state = cls || "unchecked";
  return td;
}

function crosscheckLine(cross) {
  if (!cross || !cross.ran_at) return "登记数据比对：尚未比对（未导入登记数据或尚未运行比对），不能标记为可拨付";
  const parts = [`登记数据比对：比对时间 ${M.dateTime(cross.ran_at)}`];
  const periods = periodsText(cross.registers);
  parts.push(`依据的登记期间：${periods || "无"}`);
  const open = cross.open_alerts || [];
  parts.push(open.length
    ? `待处置预警 ${open.length} 条（${[...new Set(open.map(a => M.ruleName(a.rule)))].join("、")}），处置完毕前不能拨付`
    : "无待处置预警");
  return parts.join("；");
}

function teacherItems(cross) {
  return ((cross && cross.teachers) || []).map(f => {
    const li = M.el("li", f.state === "confirmed" ? "no" : f.state === "open" ? "pending" : "yes");
    li.textContent = `教师：${M.ruleName(f.rule)}：${f.message}（${f.state_text}）`;
    return li;
  });
}

function paymentText(p) {
  if (!p) return "拨付状态：未标记为可拨付";
  const note = p.note ? `；备注：${p.note}` : "";
  return `拨付状态：已标记为可拨付（${p.marked_by}，${M.dateTime(p.marked_at)}；符合补贴 ${p.eligible} 人；`
    + `依据 ${M.dateTime(p.crosscheck_at)} 的比对，登记期间 ${periodsText(p.register_periods) || "无"}；`
    + `台账 SHA-256 ${p.ledger_sha256.slice(0, 16)}…${note}）`;
}

function employmentText(list) {
  const e = list[0];
  if (!e) return "培训后就业（结业后 6 个月内参保就业）：暂无统计";
  if (e.rate == null) return `培训后就业（结业后 6 个月内参保就业）：暂无（已结业学员 ${e.completed} 人，参保数据 ${e.insurance_period}）`;
  const median = e.median_rate == null ? "全省中位数暂无" : `全省中位数 ${pct(e.median_rate)}`;
  const below = e.median_rate == null ? "" : e.shortfall > 0
    ? `，低于中位数 ${(e.shortfall * 100).toFixed(1)}%（双随机抽查时加大抽中权重）` : "，不低于全省中位数";
  return `培训后就业（结业后 6 个月内参保就业）：${e.institution_name} ${pct(e.rate)}（${e.employed}/${e.completed} 人，`
    + `参保数据 ${e.insurance_period}），${median}${below}`;
}

export function createChecks({ client, isPayer, reload }) {
  const institutions = new Map();  // class id -> institution id
  let classId = null;

  async function showEmployment(id) {
    const line = $("employment");
    line.textContent = "";
    try {
      if (!institutions.has(id)) institutions.set(id, (await client.get(`/api/v1/classes/${id}`)).institution_id);
      const list = await client.get(`/api/v1/reports/employment?institution_id=${institutions.get(id)}`);
      if (classId === id) line.textContent = employmentText(list);
    } catch (e) {
      if (classId === id) line.textContent = `培训后就业：未能读取（${e.status ? e.message : "网络异常"}）`;
    }
  }

  function show(data) {
    classId = data.class.id;
    $("crosscheck-line").textContent = crosscheckLine(data.crosscheck);
    $("crosscheck-teachers").replaceChildren(...teacherItems(data.crosscheck));
    $("payment-state").textContent = paymentText(data.payment);
    $("payment-state").className = data.payment ? "ok" : "";
    $("payment-form").classList.toggle("hidden", !(isPayer() && !data.payment));
    $("payment-list").classList.toggle("hidden", !data.payment);
    $("checks").classList.remove("hidden");
    showEmployment(classId);
  }

  async function mark() {
    const msg = $("payment-msg");
    const id = classId;
    msg.className = ""; msg.textContent = "正在提交…";
    $("mark-payable").disabled = true;
    try {
      await client.post(`/api/v1/classes/${id}/payment`, { note: $("payment-note").value.trim() });
      msg.className = "ok"; msg.textContent = "已标记为可拨付";
      $("payment-note").value = "";
      await reload();
    } catch (e) {
      msg.className = "error";
      msg.textContent = e.status ? e.message : "网络异常，未能提交";
    } finally {
      $("mark-payable").disabled = false;
    }
  }

  async function downloadList() {
    const msg = $("payment-msg");
    let file;
    try { file = await client.file(`/api/v1/classes/${classId}/payment-list.xlsx`); } catch (e) {
      msg.className = "error"; msg.textContent = e.status ? e.message : "网络异常，未能下载拨付清单"; return;
    }
    const a = document.createElement("a");
    a.href = URL.createObjectURL(file.blob);
    a.download = decodeURIComponent((file.headers.get("content-disposition") || "").split("''")[1] || "拨付清单.xlsx");
    a.click();
  }

  $("mark-payable").addEventListener("click", mark);
  $("payment-list").addEventListener("click", ev => { ev.preventDefault(); downloadList(); });
  return { show, clearMessage: () => { $("payment-msg").textContent = ""; } };
}

// The auditor's ledger page: pick a class, see attendance, eligibility and the register cross-checks, download the
// same numbers as Excel/CSV; the payment decision and list (checks.js).
import * as M from "../lib/monitor.js";
import { createChecks, crossCell } from "./checks.js";

const { $ } = M;
const client = M.createClient({ tokenKey: "monitor.ledger.token" });
const login = M.tokenPrompt(client, () => start());
let payer = false;  // may mark a class payable (GET /api/v1/me `may`: the admins); the button is theirs only
const checks = createChecks({ client, isPayer: () => payer, reload: () => show() });

async function download(ext) {
  let file;
  try { file = await client.file(`/api/v1/classes/${$("class").value}/ledger.${ext}`); } catch (e) {
    $("error").textContent = e.status ? e.message : "网络异常，未能下载"; return;
  }
  const a = document.createElement("a");
  a.href = URL.createObjectURL(file.blob);
  a.download = decodeURIComponent((file.headers.get("content-disposition") || "").split("''")[1] || `ledger.${ext}`);
  a.click();
}

async function show() {
  const data = await client.get(`/api/v1/classes/${$("class").value}/ledger`);
  $("summary").textContent = `${data.class.name}（${data.class.code}），${data.class.institution}；已结束课时 ${data.sessions_scheduled} 个，学员 ${data.trainees} 人，符合补贴条件 ${data.eligible} 人`;
  $("rows").replaceChildren(...data.rows.map(r => {
    const tr = M.el("tr");
    const cells = [r.index, r.name, r.id_number_masked, r.scheduled, r.attended, r.pending_review, r.rate_percent ?? "—", r.valid_hours, r.eligible_text, r.reason];
    cells.forEach((v, i) => tr.append(M.el("td", i === 8 ? (r.eligible ? "yes" : r.eligible_text === "待复核" ? "pending" : "no") : "", String(v))));
    tr.append(crossCell(r), M.el("td", "", r.verification_ids));
    return tr;
  }));
  $("table").classList.remove("hidden");
  checks.show(data);
  showInspections(data.inspections || []);
}

// Each filed form opens as its PDF (fetched with the token: the PDF is evidence behind authorisation).
function showInspections(list) {
  $("inspections-summary").textContent = list.length >= 2
    ? `已检查 ${list.length} 次` : `已检查 ${list.length} 次，不足 2 次（通知第十四条）`;
  $("inspection-list").replaceChildren(...list.map(i => {
    const li = M.el("li");
    const link = M.el("a", "", `${M.dateTime(i.inspected_at)} ${i.kind === "on_site" ? "现场检查" : "电话抽查"}（${i.inspector}，负责人 ${i.responsible_name}）`);
    link.href = "#";
    link.addEventListener("click", async ev => {
      ev.preventDefault();
      let file;
      try { file = await client.file(i.pdf_url); } catch (e) {
        $("error").textContent = `检查表下载失败（${e.status || "网络异常"}）`; return;
      }
      window.open(URL.createObjectURL(file.blob), "_blank");
    });
    const where = { outside: "（检查人员定位在场地围栏外）", uncertain: "（检查人员定位在围栏边缘）", unproven: "（未提供定位）" }[i.fence_result] || "";
    li.append(link, M.el("small", where ? "no" : "", where), M.el("small", "", ` SHA-256 ${i.pdf_sha256.slice(0, 16)}…`));
    return li;
  }));
  $("inspections").classList.remove("hidden");
}

async function start() {
  if (login.missing()) return;
  try {
    const me = await client.get("/api/v1/me");  // the ledger is the center's: a site's or an inspector's token
    if (!me.may.includes("read_reports")) {  // is refused before any control is drawn, as the API would refuse it
      const refused = new Error(`当前身份（${me.role_name}）无权访问台账，需要：${me.capability_roles.read_reports.join("、")}`);
      refused.status = 403;
      throw refused;
    }
    payer = me.may.includes("mark_payable");
    const [classes] = await Promise.all([client.get("/api/v1/classes"), M.catalogue]);  // rule names for the checks
    $("class").replaceChildren(...classes.map(c => { const o = M.el("option", "", `${c.name}（${c.code}）`); o.value = c.id; return o; }));
    $("tools").classList.remove("hidden"); login.hide(); $("error").textContent = "";
    if (classes.length) await show();
  } catch (e) { login.failed(e); }
}
$("class").addEventListener("change", () => { checks.clearMessage(); show().catch(e => { $("error").textContent = e.message; }); });
$("xlsx").addEventListener("click", () => download("xlsx"));
$("csv").addEventListener("click", () => download("csv"));
start();

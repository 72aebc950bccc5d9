// The admin's register import page (issue 20, clause 八): pick a register and period, upload an extract, see the
// preview (counts, refused rows with their row numbers, a masked sample), commit it in full; the imports so far.
import * as M from "../lib/monitor.js";

const { $ } = M;
const client = M.createClient({ tokenKey: "monitor.registers.token" });
const login = M.tokenPrompt(client, () => start());
const STATES = { staging: "入库中", preview: "待确认", refused: "未通过", committed: "已导入（生效）", replaced: "已被替换",
  committing: "导入中", abandoned: "已中止（入库失败，数据已清除）" };
let sources = [];
let current = null;

const sourceName = code => (sources.find(s => s.source === code) || {}).name || code;

function showColumns() {
  const s = sources.find(x => x.source === $("source").value);
  if (!s) return;
  $("columns").textContent = "应含列：" + s.fields.map(f => `${f.headers[0]}${f.required ? "" : "（可选）"}`).join("、")
    + "。列名不同时，由管理员在登记表映射文件中添加别名，无需改程序。";
}

function showPreview(imp) {
  current = imp;
  $("preview").classList.remove("hidden");
  $("summary").textContent = `${sourceName(imp.source)} ${imp.period}：文件 ${imp.filename}，通过 ${imp.rows_accepted} 行，未通过 ${imp.rows_refused} 行。`
    + (imp.rows_refused ? "有未通过的行，整个文件不予导入，请更正后重新上传。" : imp.state === "preview" ? "全部通过，确认后导入并替换同一期间及更早期间的数据。" : `状态：${STATES[imp.state] || imp.state}`);
  $("errors").replaceChildren(...imp.errors.map(e => {
    const tr = M.el("tr");
    tr.append(M.el("td", "", String(e.row)), M.el("td", "", e.reason));
    return tr;
  }));
  $("errors-box").classList.toggle("hidden", !imp.errors.length);
  const keys = imp.sample.length ? Object.keys(imp.sample[0]) : [];
  const head = M.el("tr");
  const fields = (sources.find(x => x.source === imp.source) || { fields: [] }).fields;
  const title = k => k === "row" ? "行号" : (fields.find(f => f.name === k) || { headers: [k] }).headers[0];
  keys.forEach(k => head.append(M.el("th", "", title(k))));
  $("sample-head").replaceChildren(head);
  $("sample").replaceChildren(...imp.sample.map(r => {
    const tr = M.el("tr");
    keys.forEach(k => tr.append(M.el("td", "", r[k] == null ? "" : String(r[k]))));
    return tr;
  }));
  $("sample-box").classList.toggle("hidden", !imp.sample.length);
  $("commit").classList.toggle("hidden", imp.state !== "preview" || imp.rows_refused > 0);
}

async function loadImports() {
  const list = await client.get("/api/v1/registers/imports");
  $("imports").replaceChildren(...list.map(i => {
    const tr = M.el("tr");
    const cells = [i.id, sourceName(i.source), i.period, i.filename, i.sha256.slice(0, 16) + "…", i.rows_accepted, i.rows_refused,
      STATES[i.state] || i.state, i.created_by, M.dateTime(i.created_at), i.committed_at ? M.dateTime(i.committed_at) : ""];
    cells.forEach((v, n) => {
      const td = M.el("td", n === 4 ? "sha" : n === 7 ? `state-${i.state}` : "", String(v));
      if (n === 4) td.title = i.sha256;
      tr.append(td);
    });
    if (i.state === "preview" || i.state === "refused") {
      tr.style.cursor = "pointer";
      tr.addEventListener("click", () => showPreview(i));
    }
    return tr;
  }));
  $("imports-box").classList.remove("hidden");
}

// A new file's preview replaces the last one's, and none shows while it is checked or after it failed: an old
// preview's 确认导入 must never stand under a new file's error.
function hidePreview() {
  current = null;
  $("preview").classList.add("hidden");
  $("commit").classList.add("hidden");
}

async function upload(ev) {
  ev.preventDefault();
  $("error").textContent = "";
  hidePreview();
  const file = $("file").files[0];
  if (!file) { $("error").textContent = "请选择要上传的登记数据文件（.xlsx 或 .csv）"; $("file").focus(); return; }
  const body = new FormData();
  body.append("file", file);
  const params = new URLSearchParams({ source: $("source").value, period: $("period").value });
  $("send").disabled = true;
  $("send").textContent = "正在校验…";
  try {
    showPreview(await client.request(`/api/v1/registers/imports?${params}`, { method: "POST", body }));
    await loadImports();
  } catch (e) {
    $("error").textContent = e.status ? e.message : "网络异常，上传未完成";
  } finally {
    $("send").disabled = false;
    $("send").textContent = "上传并预览";
  }
}

async function commit() {
  if (!current) return;
  $("commit").disabled = true;
  try {
    showPreview(await client.post("/api/v1/registers/commits", { import_id: current.id }));
    await loadImports();
  } catch (e) {
    $("error").textContent = e.status ? e.message : "网络异常，导入未完成";
  } finally {
    $("commit").disabled = false;
  }
}

async function start() {
  if (login.missing()) return;
  try {
    sources = await client.get("/api/v1/registers/sources");
  } catch (e) {
    login.failed(e, "仅管理员可导入登记表数据");
    return;
  }
  $("source").replaceChildren(...sources.map(s => { const o = M.el("option", "", s.name); o.value = s.source; return o; }));
  const now = new Date(Date.now() + 8 * 3600 * 1000);
  $("period").value = now.toISOString().slice(0, 7);
  login.hide(); $("error").textContent = "";
  $("tools").classList.remove("hidden");
  showColumns();
  await loadImports();
}

$("source").addEventListener("change", () => { hidePreview(); showColumns(); });
$("upload").addEventListener("submit", upload);
$("commit").addEventListener("click", commit);
start();

// The public notice (公示): classes with their eligible trainees, names masked; no token.
import { createClient } from "../lib/monitor.js";

const client = createClient();  // public: no token, nothing kept
const fmt = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", dateStyle: "medium", timeStyle: "short" });

// The column names of a table, as its header says them: on a phone each cell shows its own (a row is a card there).
const columns = table => [...document.querySelectorAll(`#${table} thead th`)].map(th => th.textContent);

function cell(text, label, cls) {
  const td = document.createElement("td");
  td.setAttribute("role", "cell");
  td.textContent = text;
  if (label) td.dataset.label = label;
  if (cls) td.className = cls;
  return td;
}
function row(...cells) {
  const tr = document.createElement("tr");
  tr.setAttribute("role", "row");
  tr.append(...cells);
  return tr;
}
/** One row across the whole table saying there is nothing (暂无…) or that it could not be fetched. */
function only(body, table, text) {
  const td = cell(text, "", "empty");
  td.colSpan = columns(table).length;
  body.replaceChildren(row(td));
}
const failed = e => `暂时无法获取，请稍后刷新：${e.message}`;

const classBody = document.getElementById("rows");
client.get("/public/notice.json").then(data => {
  document.getElementById("generated").textContent = "更新时间：" + fmt.format(new Date(data.generated_at));
  const names = columns("classes");
  if (!data.classes.length) { only(classBody, "classes", "暂无公示的班次"); return; }
  classBody.replaceChildren(...data.classes.map(c => row(...[c.class_code, c.class_name, c.institution,
    `${c.start_date} 至 ${c.end_date}`, c.trainees, c.eligible, c.subsidy_status,
    c.eligible_names.join("、") || "—"].map((v, i) => cell(String(v), names[i])))));
}).catch(e => {  // e.g. 503 while the first notice is being built (the client already waited as Retry-After asked)
  document.getElementById("generated").textContent = `公示名单暂时无法获取：${e.message}`;
  only(classBody, "classes", failed(e));
});

// The audit chain's head as anchored outside the database, one per day: noted by anyone, compared later.
const anchorBody = document.getElementById("anchors");
client.get("/public/audit-anchors.json").then(data => {
  const names = columns("anchors-table");
  if (!data.anchors.length) { only(anchorBody, "anchors-table", "暂无锚点（链头每日锚定后在此公示）"); return; }
  anchorBody.replaceChildren(...data.anchors.map(a => row(cell(fmt.format(new Date(a.at)), names[0]),
    cell(String(a.seq), names[1]), cell(a.hash, names[2], "hash"))));
}).catch(e => only(anchorBody, "anchors-table", failed(e)));

// 双随机一公开: draws whose inspection window has passed, with their results, seed and algorithm version. Each draw
// is a row group of its own (one card on a phone): its head, then one row per class drawn.
const drawTable = document.getElementById("draws");
function drawGroups(groups) {
  for (const old of drawTable.querySelectorAll("tbody")) old.remove();
  drawTable.append(...groups);
}
function onlyDraws(text) {
  const body = document.createElement("tbody");
  body.setAttribute("role", "rowgroup");
  only(body, "draws", text);
  drawGroups([body]);
}
client.get("/public/draws.json").then(draws => {
  const names = columns("draws");
  if (!draws.length) { onlyDraws("暂无公示的抽取（检查期结束后在此公示）"); return; }
  const results = c => c.inspections.length
    ? c.inspections.map(i => `${i.kind_name}：${i.conclusion}${i.nonconforming.length ? "（" + i.nonconforming.join("；") + "）" : ""}`).join("；")
    : "检查期内未提交检查表";
  drawGroups(draws.map(d => {
    const body = document.createElement("tbody");
    body.className = "draw";
    body.setAttribute("role", "rowgroup");
    const head = `${d.day} ${d.kind_name}（第 ${d.seq} 次）`;
    const counts = `${d.candidates.length} / ${d.drawn.length}`;
    const rows = d.classes.length ? d.classes : [null];
    rows.forEach((c, n) => {
      const tr = row();
      if (n === 0) {
        for (const td of [cell(head, names[0]), cell(counts, names[1])]) { td.rowSpan = rows.length; tr.append(td); }
      }
      if (c) {
        tr.append(cell(`${c.class_code} ${c.class_name}`, names[2]), cell(`${c.institution_name}（${c.county_name}）`, names[3]),
          cell(c.inspector_tier_name || "无可选派人员", names[4]), cell(results(c), names[5]));
      } else {
        const td = cell("本次未抽中班次", names[2]); td.colSpan = 4; tr.append(td);
      }
      if (n === 0) { const td = cell(`${d.seed} · ${d.algorithm}`, names[6], "hash"); td.rowSpan = rows.length; tr.append(td); }
      body.append(tr);
    });
    return body;
  }));
}).catch(e => onlyDraws(failed(e)));

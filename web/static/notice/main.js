// The public notice (公示): classes with their eligible trainees, names masked; no token.
import { createClient } from "../lib/monitor.js";

const client = createClient();  // public: no token, nothing kept
const fmt = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", dateStyle: "medium", timeStyle: "short" });

client.get("/public/notice.json").then(data => {
  document.getElementById("generated").textContent = "更新时间：" + fmt.format(new Date(data.generated_at));
  const body = document.getElementById("rows");
  for (const c of data.classes) {
    const tr = document.createElement("tr");
    for (const v of [c.class_code, c.class_name, c.institution, `${c.start_date} 至 ${c.end_date}`, c.trainees, c.eligible, c.subsidy_status, c.eligible_names.join("、")]) {
      const td = document.createElement("td"); td.textContent = v; tr.append(td);
    }
    body.append(tr);
  }
}).catch(e => {  // e.g. 503 while the first notice is being built (the client already waited as Retry-After asked)
  document.getElementById("generated").textContent = `公示名单暂时无法获取：${e.message}`;
});

// The audit chain's head as anchored outside the database, one per day: noted by anyone, compared later.
client.get("/public/audit-anchors.json").then(data => {
  const body = document.getElementById("anchors");
  for (const a of data.anchors) {
    const tr = document.createElement("tr");
    [fmt.format(new Date(a.at)), String(a.seq), a.hash].forEach((v, i) => {
      const td = document.createElement("td"); td.textContent = v; if (i === 2) td.className = "hash"; tr.append(td);
    });
    body.append(tr);
  }
});

// 双随机一公开: draws whose inspection window has passed, with their results, seed and algorithm version.
client.get("/public/draws.json").then(draws => {
  const body = document.getElementById("draws");
  const cell = (text, cls) => { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; return td; };
  const results = c => c.inspections.length
    ? c.inspections.map(i => `${i.kind_name}：${i.conclusion}${i.nonconforming.length ? "（" + i.nonconforming.join("；") + "）" : ""}`).join("；")
    : "检查期内未提交检查表";
  for (const d of draws) {
    const head = `${d.day} ${d.kind_name}（第 ${d.seq} 次）`;
    const counts = `${d.candidates.length} / ${d.drawn.length}`;
    const rows = d.classes.length ? d.classes : [null];
    rows.forEach((c, n) => {
      const tr = document.createElement("tr");
      if (n === 0) {
        for (const td of [cell(head), cell(counts)]) { td.rowSpan = rows.length; tr.append(td); }
      }
      if (c) {
        tr.append(cell(`${c.class_code} ${c.class_name}`), cell(`${c.institution_name}（${c.county_name}）`),
          cell(c.inspector_tier_name || "无可选派人员"), cell(results(c)));
      } else {
        const td = cell("本次未抽中班次"); td.colSpan = 4; tr.append(td);
      }
      if (n === 0) { const td = cell(`${d.seed} · ${d.algorithm}`, "hash"); td.rowSpan = rows.length; tr.append(td); }
      body.append(tr);
    });
  }
});

// The public notice (公示): classes with their eligible trainees, names masked; no token.
"use strict";
fetch("/public/notice.json").then(r => r.json()).then(data => {
  const fmt = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", dateStyle: "medium", timeStyle: "short" });
  document.getElementById("generated").textContent = "更新时间：" + fmt.format(new Date(data.generated_at));
  const body = document.getElementById("rows");
  for (const c of data.classes) {
    const tr = document.createElement("tr");
    for (const v of [c.class_code, c.class_name, c.institution, `${c.start_date} 至 ${c.end_date}`, c.trainees, c.eligible, c.subsidy_status, c.eligible_names.join("、")]) {
      const td = document.createElement("td"); td.textContent = v; tr.append(td);
    }
    body.append(tr);
  }
});

// The audit chain's head as anchored outside the database, one per day: noted by anyone, compared later.
fetch("/public/audit-anchors.json").then(r => r.json()).then(data => {
  const fmt = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", dateStyle: "medium", timeStyle: "short" });
  const body = document.getElementById("anchors");
  for (const a of data.anchors) {
    const tr = document.createElement("tr");
    [fmt.format(new Date(a.at)), String(a.seq), a.hash].forEach((v, i) => {
      const td = document.createElement("td"); td.textContent = v; if (i === 2) td.className = "hash"; tr.append(td);
    });
    body.append(tr);
  }
});
